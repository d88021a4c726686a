"""winogen.gen is pure Python: importing any of its modules loads no Amaranth."""

import json
import subprocess
import sys

SCRIPT = """
import importlib, json, pkgutil, sys
import winogen.gen as gen
names = sorted(m.name for m in pkgutil.walk_packages(gen.__path__, gen.__name__ + "."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "amaranth": sorted(m for m in sys.modules
                                                       if m.split(".")[0] == "amaranth")}))
"""


def test_gen_imports_no_amaranth():
    # A fresh interpreter: this test process may have imported Amaranth already.
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert "winogen.gen.params" in report["modules"] and len(report["modules"]) >= 10
    assert report["amaranth"] == []


def test_cli_help_imports_no_amaranth():
    script = ("import sys\nfrom winogen.cli import build_parser\nbuild_parser()\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth'))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_cli_installs_inside_the_winogen_namespace():
    # `cli/` installs as winogen.cli only, never as a generic top-level `cli`.
    code = "import importlib.util as u; print(bool(u.find_spec('winogen.cli')), bool(u.find_spec('cli')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                         timeout=120)
    assert run.stdout.split() == ["True", "False"], run.stderr
