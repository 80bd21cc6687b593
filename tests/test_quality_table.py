"""The quality ladder's tables (bench/quality_table.py): Δ to the float model
of the same image, rung and seed; seed means and spreads; the targets' verdicts."""

from tests.safety_checks import load_script


def _row(image, rung, seed, method, bits, golden, fakequant=None, recipe="uniform"):
    return {"image": image, "rung": rung, "seed": seed, "method": method, "requested_bits": bits,
            "recipe": recipe, "psnr_fp32": golden if method == "fp32" else golden + 5, "psnr_golden": golden,
            "psnr_fakequant": golden if fakequant is None else fakequant}


ROWS = [
    _row("a", "64:32", 0, "fp32", "w16a16", 30.0), _row("a", "64:32", 1, "fp32", "w16a16", 31.0),
    _row("a", "64:32", 0, "dhq-auto", "w8a8", 29.9), _row("a", "64:32", 1, "dhq-auto", "w8a8", 30.8),
    _row("b", "64:32", 0, "fp32", "w16a16", 40.0), _row("b", "64:32", 0, "dhq-auto", "w8a8", 39.5, 39.49),
    _row("b", "64:32", 0, "dhq-auto", "w6a6", 39.0, recipe="first-wide"),
    _row("a", "128:64", 0, "fp32", "w16a16", 35.0),           # a rung with only its float model so far
    _row("c", "64:32", 0, "dhq-auto", "w8a8", 20.0),           # no float model of its seed: left out
]


def test_deltas_are_to_the_float_model_of_the_same_seed():
    qt = load_script("quality_table")
    data = qt.ladder(ROWS)
    best8 = ("dhq-auto", "w8a8", "uniform", "")
    assert [(seed, round(d, 6)) for seed, d in sorted(data["64:32"]["a"][best8])] == [(0, -0.1), (1, -0.2)]
    assert "c" not in data["64:32"]
    assert data["128:64"]["a"]["fp32"] == [35.0]


def test_tables_have_one_column_per_method_bits_and_recipe():
    qt = load_script("quality_table")
    text = qt.format_tables(ROWS)
    lines = text.splitlines()
    header = lines[lines.index("| image | fp32 dB | best W8A8 | best W6A6 first-wide |")]
    assert header
    assert "| a | 30.50 | -0.15 (2: -0.20…-0.10) |  |" in lines
    assert "| b | 40.00 | -0.50 | -1.00 |" in lines
    # Every row of every table has as many cells as its header.
    for i, line in enumerate(lines):
        if line.startswith("| image"):
            cells = line.count("|")
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].count("|") == cells, lines[j]
                j += 1
    assert lines[-1].endswith("over 5 rows: 0.010 dB.")


def test_targets_count_the_images_where_the_mean_holds():
    qt = load_script("quality_table")
    text = qt.format_targets(ROWS)
    line = next(l for l in text.splitlines() if l.startswith("| 64², width 32 | W8A8"))
    assert "a -0.15 (2; fp32 30.5 dB)" in line and "b -0.50 (1; fp32 40.0 dB)" in line
    assert line.endswith("| 1 of 2 |")
    assert "W6A6" not in text                 # the first-wide row is not the uniform recipe's target
