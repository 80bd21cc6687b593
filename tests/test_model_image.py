import copy
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from dhq_rtl import model_image
from dhq_rtl.errors import ModelImageError
from dhq_rtl.golden import GoldenModel, pixel_coordinates
from dhq_rtl.synthetic import random_model


@pytest.fixture(scope="module")
def model():
    return random_model(width=8, depth=2, size=8, rotate=True, seed=3)


@pytest.fixture(scope="module")
def blob(model):
    return model_image.dumps(model)


def _reseal(body):
    return body + struct.pack("<I", zlib.crc32(body))


def test_roundtrip_is_exact(model, blob, tmp_path):
    path = tmp_path / "m.dhq"
    model_image.save(model, path)
    back = model_image.load(path)
    xs, ys = pixel_coordinates(8, 8)
    assert np.array_equal(GoldenModel(back).predict(xs, ys), GoldenModel(model).predict(xs, ys))
    for a, b in zip(model.layers, back.layers):
        for name in ("weight", "mult", "bias"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
    assert path.read_bytes() == blob


def test_bad_magic(blob):
    with pytest.raises(ModelImageError, match="not a dhq_rtl model image"):
        model_image.loads(b"PNG!" + blob[4:])


def test_wrong_version(blob):
    body = bytearray(blob[:-4])
    struct.pack_into("<H", body, 4, model_image.FORMAT_VERSION + 1)
    with pytest.raises(ModelImageError, match="format version"):
        model_image.loads(_reseal(bytes(body)))


@pytest.mark.parametrize("cut", [0, 3, 10, 100, -5, -1])
def test_truncated(blob, cut):
    with pytest.raises(ModelImageError, match="truncated|corrupt"):
        model_image.loads(blob[:cut])


def test_corrupt_payload(blob):
    b = bytearray(blob)
    b[-10] ^= 0xFF
    with pytest.raises(ModelImageError, match="CRC"):
        model_image.loads(bytes(b))


def test_missing_file(tmp_path):
    with pytest.raises(ModelImageError, match="cannot read"):
        model_image.load(tmp_path / "nope.dhq")


def _mutated(model, fn):
    m = copy.deepcopy(model)
    fn(m)
    return m


@pytest.mark.parametrize("mutate, message", [
    (lambda m: setattr(m.layers[1], "in_features", 4), "takes 4 inputs"),
    (lambda m: setattr(m, "channels", 3), "channels"),
    (lambda m: setattr(m.layers[1], "weight_bits", 17), "weight_bits"),
    (lambda m: setattr(m.layers[1], "act_bits", 1), "act_bits"),
    (lambda m: setattr(m, "phase_bits", 20), "phase_bits"),
    (lambda m: m.layers[1].weight.__setitem__((0, 0), 300), "weight has values"),
    (lambda m: setattr(m.layers[1], "lut", m.layers[1].lut[:10]), "lut has shape"),
    (lambda m: setattr(m.layers[0], "in_features", 3), "2 pixel coordinates"),
    (lambda m: setattr(m, "layers", m.layers[:1]), "at least two layers"),
    (lambda m: setattr(m.layers[1], "mult", m.layers[1].mult * 0 + 300), "mult has values"),
])
def test_validation_errors(model, mutate, message):
    with pytest.raises(ModelImageError, match=message):
        _mutated(model, mutate).validate()


def test_save_refuses_invalid_model(model, tmp_path):
    bad = _mutated(model, lambda m: setattr(m, "channels", 2))
    with pytest.raises(ModelImageError):
        model_image.save(bad, tmp_path / "x.dhq")
    assert not (tmp_path / "x.dhq").exists()


def test_accumulator_bound_and_overflow(model, monkeypatch):
    def huge(m):
        m.layers[1].mult_bits = 24
        m.layers[1].weight_bits = 16
        m.layers[1].weight = np.full_like(m.layers[1].weight, 32767)
        m.layers[1].act_bits = 16
        m.layers[1].lut_bits = 16
    m = _mutated(model, huge)
    # 8 inputs · 32767 · 32767 = 8 589 410 312 < 2**33: 33 magnitude bits + sign.
    assert m.accumulator_bits(1) == 34
    assert m.accumulator_bounds(1) == (-8 * 32767 * 32767, 8 * 32767 * 32767)
    m.validate()
    monkeypatch.setattr(model_image, "MAX_INTERMEDIATE_BITS", 40)
    with pytest.raises(ModelImageError, match="scaled accumulator needs 59 bits"):
        m.validate()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_loader_only_raises_model_image_error(blob, data):
    """Random byte edits, truncations and insertions: either a clean load of a
    valid model or ModelImageError — never another exception."""
    b = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        pos = data.draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del b[pos:pos + data.draw(st.integers(1, 64))]
        elif op == "insert":
            b[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif b:
            b[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()) and len(b) > 4:
        b = bytearray(_reseal(bytes(b[:-4])))  # defeat the CRC so the parser itself is fuzzed
    try:
        m = model_image.loads(bytes(b))
    except ModelImageError:
        return
    m.validate()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=10),
       st.sampled_from(["height", "phase_bits", "layers", "meta", "omega0", "payload_size", "channels"]))
def test_fuzz_header_fields(blob, value, key):
    """Replace one header field by arbitrary JSON (with a valid CRC)."""
    import json
    hlen = struct.unpack_from("<I", blob, 6)[0]
    header = json.loads(blob[10:10 + hlen])
    header[key] = value
    h = json.dumps(header).encode()
    body = blob[:6] + struct.pack("<I", len(h)) + h + blob[10 + hlen:-4]
    try:
        model_image.loads(_reseal(body))
    except ModelImageError:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                    max_leaves=10),
       st.integers(0, 2), st.sampled_from(model_image.FLOAT_ARRAYS),
       st.sampled_from([None, "dtype", "shape", "offset", "size"]),
       st.binary(min_size=4, max_size=4))
def test_fuzz_float_parameter_fields(blob, value, layer, name, key, word):
    """The float parameters of format version 3: one array description (or
    one of its fields) replaced by arbitrary JSON, and one float32 value of
    the payload replaced by arbitrary bits (NaN, Inf, subnormal, …), CRC made
    valid: a valid model or ModelImageError, never another exception."""
    import json
    hlen = struct.unpack_from("<I", blob, 6)[0]
    header = json.loads(blob[10:10 + hlen])
    arrays = header["layers"][layer]["arrays"]
    off = 10 + hlen + arrays[name]["offset"]
    if key is None:
        arrays[name] = value
    else:
        arrays[name][key] = value
    h = json.dumps(header).encode()
    body = bytearray(blob[:6] + struct.pack("<I", len(h)) + h + blob[10 + hlen:-4])
    body[off - hlen + len(h):off - hlen + len(h) + 4] = word
    try:
        m = model_image.loads(_reseal(bytes(body)))
    except ModelImageError:
        return
    m.validate()
    assert all(np.all(np.isfinite(l.float_weight)) for l in m.layers if l.float_weight is not None)


def test_midrise_table_range_and_accumulator_bound():
    """An unrotated layer's table holds its input codes: on the mid-rise grid
    −2**(act_bits−1) is one of them, and the accumulator bound counts it; a
    rotated layer's table (which feeds the butterfly) stays symmetric."""
    m = random_model(width=8, depth=2, size=8, rotate=False, weight_bits=4, act_bits=4, act_midrise=True, seed=2)
    lut = m.layers[1].lut
    assert lut.min() == -8 and lut.max() == 7
    row = int(np.abs(m.layers[1].weight).sum(axis=1).max())
    assert m.accumulator_bounds(1) == (-8 * row, 8 * row)
    bad = _mutated(m, lambda x: x.layers[1].lut.__setitem__(0, -9))
    with pytest.raises(ModelImageError, match=r"lut has values in \[-9"):
        bad.validate()
    rot = random_model(width=8, depth=2, size=8, rotate=True, seed=2)
    lim = (1 << (rot.layers[1].lut_bits - 1)) - 1
    with pytest.raises(ModelImageError, match="lut has values"):
        _mutated(rot, lambda x: x.layers[1].lut.__setitem__(0, -lim - 1)).validate()
    # and the mid-rise model runs through the golden model and the file format unchanged
    again = model_image.loads(model_image.dumps(m))
    assert np.array_equal(GoldenModel(again).render(), GoldenModel(m).render())


def test_midrise_first_layer_weights_range_parity_and_roundtrip():
    """Mid-rise first-layer weights are stored as the odd integers 2q + 1:
    |w| ≤ 2**weight_bits − 1, every one odd, the first layer only; the
    accumulator bound follows the stored values, and the file round trip is
    exact."""
    m = random_model(width=8, depth=2, size=8, rotate=False, weight_bits=4, act_bits=4, first_weight_midrise=True,
                     seed=2)
    w = m.layers[0].weight.astype(np.int64)
    assert m.layers[0].weight_midrise and not any(l.weight_midrise for l in m.layers[1:])
    assert np.all(w % 2 == 1) and np.abs(w).max() == 15  # min-max step: the outermost level is used
    row = int(np.abs(w).sum(axis=1).max())
    assert m.accumulator_bounds(0) == (-row * 7, row * 7)  # coordinates of an 8×8 image: |v| ≤ 7
    again = model_image.loads(model_image.dumps(m))
    assert again.layers[0].weight_midrise and np.array_equal(again.layers[0].weight, w)
    assert np.array_equal(GoldenModel(again).render(), GoldenModel(m).render())
    with pytest.raises(ModelImageError, match="must be odd"):
        _mutated(m, lambda x: x.layers[0].weight.__setitem__((0, 0), 2)).validate()
    with pytest.raises(ModelImageError, match=r"weight has values in \[.*17"):
        _mutated(m, lambda x: x.layers[0].weight.__setitem__((0, 0), 17)).validate()
    with pytest.raises(ModelImageError, match="only the first layer"):
        _mutated(m, lambda x: setattr(x.layers[1], "weight_midrise", True)).validate()
    with pytest.raises(ModelImageError, match="true or false"):
        _mutated(m, lambda x: setattr(x.layers[0], "weight_midrise", 1)).validate()
    with pytest.raises(ModelImageError, match="16-bit mid-rise weights; at most 15"):
        _mutated(m, lambda x: setattr(x.layers[0], "weight_bits", 16)).validate()
    # the same odd values without the flag are out of the mid-tread range
    with pytest.raises(ModelImageError, match="weight has values"):
        _mutated(m, lambda x: setattr(x.layers[0], "weight_midrise", False)).validate()


def _as_version(blob, version):
    """The same model written as an older format version: no float
    parameters (versions 1 and 2) and no weight_midrise field (version 1)."""
    import json
    (hlen,) = struct.unpack_from("<I", blob, 6)
    header = json.loads(blob[10:10 + hlen])
    for layer in header["layers"]:
        for name in model_image.FLOAT_ARRAYS:
            layer["arrays"].pop(name, None)
        if version < 2:
            assert layer.pop("weight_midrise") is False
    h = json.dumps(header).encode()
    body = blob[:4] + struct.pack("<HI", version, len(h)) + h + blob[10 + hlen:-4]
    return _reseal(body)


def test_reads_version_1_files(model, blob):
    """Version 1 (before mid-rise first-layer weights) still loads, with every
    weight on the mid-tread grid; a version-2 file without the field does not."""
    old = model_image.loads(_as_version(blob, 1))
    assert not any(l.weight_midrise for l in old.layers)
    assert np.array_equal(GoldenModel(old).render(), GoldenModel(model).render())
    v2_without = bytearray(_as_version(blob, 1)[:-4])
    struct.pack_into("<H", v2_without, 4, 2)
    with pytest.raises(ModelImageError, match="weight_midrise"):
        model_image.loads(_reseal(bytes(v2_without)))


def test_float_parameters_roundtrip_and_older_versions(model, blob):
    """Format version 3 carries the float model next to the integer one,
    exactly (float32 bit patterns); version-2 files (no float parameters)
    still load, run the integer core as before and say they have none; a
    version-2 file that names float arrays is refused."""
    assert model_image.FORMAT_VERSION == 3 and blob[4:6] == struct.pack("<H", 3)
    assert model.has_float
    back = model_image.loads(blob)
    for a, b in zip(model.layers, back.layers):
        for name in model_image.FLOAT_ARRAYS:
            x, y = getattr(a, name), getattr(b, name)
            assert y.dtype == np.float32 and np.array_equal(x.view(np.uint32), y.view(np.uint32))
    v2 = model_image.loads(_as_version(blob, 2))
    assert not v2.has_float and all(l.float_weight is None and l.float_bias is None for l in v2.layers)
    assert np.array_equal(GoldenModel(v2).render(), GoldenModel(model).render())
    # a file without float parameters is written as version 3 and reads back without them
    again = model_image.loads(model_image.dumps(v2))
    assert not again.has_float
    named = bytearray(blob[:-4])
    struct.pack_into("<H", named, 4, 2)
    with pytest.raises(ModelImageError, match="'float_weight' is not part of format version 2"):
        model_image.loads(_reseal(bytes(named)))


@pytest.mark.parametrize("mutate,message", [
    (lambda m: (setattr(m.layers[1], "float_weight", None), setattr(m.layers[1], "float_bias", None)),
     r"float parameters are in layers \[0, 2\] only; a model carries them in every layer or in none"),
    (lambda m: setattr(m.layers[0], "float_bias", None), "layer 0 float_bias must be a float32 array, got NoneType"),
    (lambda m: setattr(m.layers[2], "float_bias", m.layers[2].float_bias.astype(np.float64)),
     "layer 2 float_bias must be a float32 array, got float64"),
    (lambda m: setattr(m.layers[1], "float_weight", m.layers[1].float_weight[:, :3]),
     r"layer 1 float_weight has shape \(8, 3\), expected \(8, 8\)"),
    (lambda m: m.layers[1].float_weight.__setitem__((0, 0), np.inf), "layer 1 float_weight holds a value that is not finite"),
    (lambda m: m.layers[0].float_bias.__setitem__(0, np.nan), "layer 0 float_bias holds a value that is not finite"),
])
def test_float_parameter_validation(model, mutate, message):
    with pytest.raises(ModelImageError, match=message):
        _mutated(model, mutate).validate()


def test_float_parameters_in_the_file_are_checked(blob):
    """The float arrays' descriptions and values in a file, each edited
    (CRC made valid again): a clean one-line ModelImageError each."""
    import json
    (hlen,) = struct.unpack_from("<I", blob, 6)
    cases = [
        (lambda a: a["float_weight"].__setitem__("dtype", "<f8"), "dtype must be '<f4'"),
        (lambda a: a["float_bias"].__setitem__("shape", [3]), "size 32 does not match shape"),
        (lambda a: a.pop("float_bias"), "layer 1 float_bias must be a float32 array, got NoneType"),
        (lambda a: a["float_weight"].__setitem__("offset", 10 ** 9), "lies outside the payload"),
    ]
    for edit, message in cases:
        header = json.loads(blob[10:10 + hlen])
        edit(header["layers"][1]["arrays"])
        h = json.dumps(header).encode()
        body = blob[:6] + struct.pack("<I", len(h)) + h + blob[10 + hlen:-4]
        with pytest.raises(ModelImageError, match=message):
            model_image.loads(_reseal(body))
    # a NaN written into the payload
    header = json.loads(blob[10:10 + hlen])
    off = 10 + hlen + header["layers"][2]["arrays"]["float_weight"]["offset"]
    body = bytearray(blob[:-4])
    body[off:off + 4] = struct.pack("<I", 0x7FC00000)
    with pytest.raises(ModelImageError, match="layer 2 float_weight holds a value that is not finite"):
        model_image.loads(_reseal(bytes(body)))
