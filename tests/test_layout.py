"""Package layout promises: one `winogen` namespace, and `winogen.gen` free of Amaranth."""

import importlib.util
import pkgutil
import subprocess
import sys

import winogen.gen


def test_gen_never_imports_amaranth():
    modules = [f"winogen.gen.{m.name}" for m in pkgutil.iter_modules(winogen.gen.__path__)]
    assert "winogen.gen.toomcook" in modules and len(modules) > 10
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_generic_top_level_packages():
    for name in ("gen", "hw", "sim", "fpga"):
        spec = importlib.util.find_spec(f"winogen.{name}")
        assert spec is not None
    # run from a neutral folder so the repository checkout itself is not on sys.path
    code = "import importlib.util as u; print([n for n in ('gen', 'hw', 'sim', 'fpga') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
