"""The package list in pyproject.toml is explicit (boards/, firmware/ and sim/
are mapped into the package): check that no subpackage is left out."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    src = ROOT / "src"
    found = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    for name, folder in config["package-dir"].items():
        if name:
            assert (ROOT / folder / "__init__.py").exists(), f"{name} maps to {folder}, which is not a package"
