"""Fault campaigns on a Dask cluster (issue 18's cluster acceptance): a
``distributed.LocalCluster`` of two worker processes runs a small model-level ``winogen
faults`` campaign and RTL campaigns through ``--executor dask``; the numbers equal the local
executor's with the same seed."""

import json

import pytest

from winogen.cli import main

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes (items are pickled, as on a real cluster)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c


#: Timing and where it ran: the only fields that may differ between executors.
_RUN_FIELDS = ("executor", "wall_seconds", "seconds", "build_seconds")


def _numbers(report):
    return {k: v for k, v in report.items() if k not in _RUN_FIELDS}


def test_model_campaign_on_dask_equals_local(cluster, tmp_path, capsys):
    argv = ["--engines", "direct,f23", "--images", "6", "--bers", "0,1e-4", "--trials", "2",
            "--flips", "8", "--seed", "11"]
    reports = {}
    for name, extra in (("local", []),
                        ("dask", ["--executor", "dask", "--scheduler",
                                  cluster.scheduler_address])):
        assert main(["faults", "-o", str(tmp_path / name), *argv, *extra]) == 0
        reports[name] = json.loads((tmp_path / name / "faults.json").read_text())
    capsys.readouterr()
    assert reports["dask"]["executor"].startswith(f"dask at {cluster.scheduler_address}, "
                                                  "2 workers")
    assert reports["local"]["executor"] == "local, 1 job (inline)"
    assert _numbers(reports["dask"]) == _numbers(reports["local"])
    # The campaign did inject (and a different seed draws other faults).
    flips = reports["local"]["accuracy"]["flips_per_image"]["f23"][1]
    assert sum(flips.values()) > 0
    assert main(["faults", "-o", str(tmp_path / "other"), *argv[:-1], "12"]) == 0
    other = json.loads((tmp_path / "other" / "faults.json").read_text())
    assert other["error"] != reports["local"]["error"]


@pytest.mark.verilator
def test_rtl_campaign_items_on_dask_equal_local(cluster, tmp_path):
    """An RTL campaign split into three work items (one simulation each) gives the same
    summary on the cluster's workers as inline."""
    from winogen.gen.config import TileConfig
    from winogen.sim.executor import DaskExecutor, LocalExecutor
    from winogen.sim.faults import rtl_fault_campaign
    cfg = TileConfig(2, 3, 8, 8, algorithm="direct")
    with LocalExecutor(1) as ex:
        local = rtl_fault_campaign(cfg, 150, 3, chunk=50, executor=ex)
    with DaskExecutor(cluster) as ex:
        remote = rtl_fault_campaign(cfg, 150, 3, chunk=50, executor=ex)
    assert local["items"] == 3 and len(set(local["item_seeds"])) == 3
    assert local["agree"] == 150 and local["disagree"] == 0
    assert _numbers(remote) == _numbers(local)


@pytest.mark.verilator
def test_cli_rtl_campaign_on_dask(cluster, tmp_path, capsys):
    from winogen.gen.config import TileConfig
    from winogen.hw.generate import generate_tile
    generate_tile(TileConfig(2, 3, 8, 8, algorithm="direct"), tmp_path / "engine")
    reports = {}
    for name, extra in (("local", []), ("dask", ["--executor", "dask", "--scheduler",
                                                 cluster.scheduler_address])):
        assert main(["faults", "--rtl", str(tmp_path / "engine"), "--injections", "40",
                     "--seed", "2", "-o", str(tmp_path / name), *extra]) == 0
        reports[name] = json.loads((tmp_path / name / "faults_rtl.json").read_text())
    capsys.readouterr()
    assert reports["dask"]["executor"].startswith("dask at ")
    assert reports["local"]["agree"] == 40
    assert _numbers(reports["dask"]) == _numbers(reports["local"])


def test_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    """winogen faults with a scheduler that does not answer: one line, exit 2, nothing
    written (model studies and --rtl alike)."""
    import winogen.sim.executor as executor_module
    monkeypatch.setattr(executor_module, "DEFAULT_TIMEOUT", 0.5)
    for argv in (["--images", "2"], ["--rtl", str(tmp_path / "engine")]):
        if argv[0] == "--rtl":
            from winogen.gen.config import TileConfig
            from winogen.hw.generate import generate_tile
            generate_tile(TileConfig(2, 3, 8, 8, algorithm="direct"), tmp_path / "engine")
        status = main(["faults", *argv, "--executor", "dask", "--scheduler",
                       "tcp://127.0.0.1:1", "-o", str(tmp_path / "out")])
        captured = capsys.readouterr()
        assert status == 2 and captured.out == "" and "Traceback" not in captured.err
        (line,) = captured.err.splitlines()
        assert line == ("winogen: error: --scheduler must be a running Dask scheduler with a "
                        "worker, not 'tcp://127.0.0.1:1' (no answer within 0.5 s; is `dask "
                        "scheduler` running there, and its port open?)")
        assert not (tmp_path / "out").exists()
