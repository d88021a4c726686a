"""Package layout promises: one `winogen` namespace, every package folder installed."""

import importlib.util
import subprocess
import sys



# gen's freedom from Amaranth is tests/test_gen_no_amaranth.py (every subpackage too).


def test_no_generic_top_level_packages():
    for name in ("gen", "hw", "sim", "fpga"):
        spec = importlib.util.find_spec(f"winogen.{name}")
        assert spec is not None
    # run from a neutral folder so the repository checkout itself is not on sys.path
    code = "import importlib.util as u; print([n for n in ('gen', 'hw', 'sim', 'fpga', 'nets') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_every_package_folder_is_listed_for_installation():
    """A non-editable install copies only the packages pyproject lists: every folder
    with an ``__init__.py`` under gen, hw, sim, fpga, cli and nets must be one of them."""
    import tomllib
    from pathlib import Path
    top = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((top / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"winogen." + ".".join(init.parent.relative_to(top).parts)
             for folder in ("gen", "hw", "sim", "fpga", "cli", "nets")
             for init in (top / folder).rglob("__init__.py")}
    assert found and found == listed
