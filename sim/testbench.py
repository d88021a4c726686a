"""What every cocotb testbench of an emitted engine reads from its environment.

The testbenches (:mod:`~winogen.sim.tb_tile`, :mod:`~winogen.sim.tb_rns`,
:mod:`~winogen.sim.tb_layer`) know nothing but the engine's manifest, named by
``WINOGEN_MANIFEST``; they read it here, through :func:`winogen.gen.manifest.read_manifest`,
so that a missing, damaged or newer manifest fails the same way as in every other reader.
"""

import os

from ..gen.manifest import ENGINE_KEYS, ManifestError, read_manifest

__all__ = ["MANIFEST_ENV", "engine_manifest"]

#: The environment variable naming the engine's manifest (a file or the output folder).
MANIFEST_ENV = "WINOGEN_MANIFEST"


def engine_manifest():
    """The manifest ``WINOGEN_MANIFEST`` names, checked for the keys a testbench needs.

    Raises
    ------
    winogen.gen.manifest.ManifestError
        If the variable is unset or the manifest cannot be read (one line).
    """
    path = os.environ.get(MANIFEST_ENV)
    if not path:
        raise ManifestError(f"{MANIFEST_ENV} must name the engine's manifest JSON, not "
                            f"{path!r}")
    return read_manifest(path, require=ENGINE_KEYS)


def close_fault_campaign(dut, summary, problems, start, what):
    """End an RTL fault campaign (``sim/tb_faults.py``, ``sim/tb_tile_faults.py``): the totals
    per classification, the time, the log line and ``WINOGEN_FAULT_REPORT``; then, unless
    ``WINOGEN_FAULT_CHECK=0``, fail on any problem, any disagreement with the model, or a
    site class that received no injection."""
    import json
    import time
    from pathlib import Path
    from ..gen.faultmodel import CLASSIFICATIONS
    summary["totals"] = {x: sum(e[x] for e in summary["by_class"].values())
                         for x in CLASSIFICATIONS}
    summary["seconds"] = round(time.monotonic() - start, 1)
    dut._log.info("%s summary %s", what, json.dumps(summary))
    report = os.environ.get("WINOGEN_FAULT_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary, indent=2) + "\n")
    if os.environ.get("WINOGEN_FAULT_CHECK", "1") == "0":
        return
    assert not problems, f"{len(problems)} problems, e.g. {problems[:5]}"
    assert summary["disagree"] == 0
    missing = [k for k, e in summary["by_class"].items() if e["injections"] == 0]
    assert not missing, f"no injection in {missing}"
