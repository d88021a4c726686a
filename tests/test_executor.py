"""The executor seam (winogen.sim.executor): inline, local processes, local threads and a
Dask cluster give the same results in item order; failed items are named; bad choices are
refused in one line (Python and CLI); an explore sweep on Dask gives the local rows."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from winogen.cli import main
from winogen.sim.executor import (ClusterUnavailable, DaskExecutor, Executor, LocalExecutor,
                                  check_executor, make_executor)

WINOGEN = str(Path(sys.executable).with_name("winogen"))


# --- Work functions (top level: pickled by reference, imported by the workers) -------------

def seeded_work(item):
    """A result that depends on the item only: its own seed, from the user's and its index."""
    rng = np.random.default_rng(np.random.SeedSequence([item["seed"], item["index"]]))
    # Early items finish last on a pool, so completion order differs from item order.
    time.sleep(item.get("delay", 0.0))
    if item.get("fail"):
        raise ArithmeticError(f"item {item['index']} was told to fail")
    return {"index": item["index"], "draws": rng.integers(0, 2 ** 31, size=5).tolist(),
            "normal": float(rng.standard_normal())}


def where(item):
    return os.getpid()


def items(n=10, seed=2024, **extra):
    return [{"seed": seed, "index": i, "delay": 0.02 * max(0, 4 - i), **extra}
            for i in range(n)]


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes (items are pickled, as on a real cluster)."""
    distributed = pytest.importorskip("distributed")
    # dashboard_address ":0": any free port (the scheduler's HTTP server runs regardless).
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c


EXECUTORS = {
    "inline": lambda c: LocalExecutor(1),
    "processes": lambda c: LocalExecutor(2, kind="process"),
    "threads": lambda c: LocalExecutor(2, kind="thread"),
    "dask": lambda c: DaskExecutor(c),
}


@pytest.mark.parametrize("name", EXECUTORS)
def test_every_executor_gives_the_same_results_in_item_order(name, cluster):
    work = items()
    expected = [seeded_work(item) for item in work]
    calls = []
    with EXECUTORS[name](cluster) as ex:
        assert isinstance(ex, Executor)
        results = ex.map(seeded_work, work, progress=lambda *a: calls.append(a))
        assert ex.describe().startswith("dask at tcp://127.0.0.1:" if name == "dask"
                                        else "local, ")
    assert results == expected
    # Progress: once per item, in the caller, done counting up, every index once.
    assert [c[:2] for c in calls] == [(d, len(work)) for d in range(1, len(work) + 1)]
    assert sorted(c[2] for c in calls) == list(range(len(work)))


def test_a_seed_changes_the_results_and_the_same_seed_repeats_them():
    with LocalExecutor(2, kind="thread") as ex:
        a, b = ex.map(seeded_work, items(seed=1)), ex.map(seeded_work, items(seed=1))
        c = ex.map(seeded_work, items(seed=2))
    assert a == b and a != c
    # Distinct items draw distinct streams.
    assert len({tuple(r["draws"]) for r in a}) == len(a)


def test_where_the_items_run(cluster):
    me = os.getpid()
    with LocalExecutor(1) as ex:
        assert set(ex.map(where, items(4))) == {me} and ex.in_process
    with LocalExecutor(2, kind="thread") as ex:
        assert set(ex.map(where, items(4))) == {me} and ex.in_process
    with LocalExecutor(2, kind="process") as ex:
        assert me not in ex.map(where, items(4)) and not ex.in_process
        assert ex.describe() == "local, 2 processes"
    with DaskExecutor(cluster.scheduler_address) as ex:   # an address, as the CLI gives it
        assert me not in ex.map(where, items(4)) and not ex.in_process
        assert ex.describe() == f"dask at {cluster.scheduler_address}, 2 workers, 2 threads"
        assert ex.map(where, []) == []


@pytest.mark.parametrize("name", EXECUTORS)
def test_a_failed_item_is_raised_with_the_item_named(name, cluster):
    work = items(6)
    work[3]["fail"] = True
    with EXECUTORS[name](cluster) as ex:
        # (pytest matches the notes too: the message, then the note naming the item)
        with pytest.raises(ArithmeticError, match=r"^item 3 was told to fail(\n|$)") as info:
            ex.map(seeded_work, work)
        # The executor is still usable after a failed item.
        assert ex.map(seeded_work, items(2)) == [seeded_work(i) for i in items(2)]
    exc = info.value
    assert str(exc) == "item 3 was told to fail" and exc.winogen_work_item == 3
    if sys.version_info >= (3, 11):
        (note,) = exc.__notes__
        assert note.startswith("work item 3 (of 6) failed in seeded_work on ")
        assert note.endswith(": " + repr(work[3]))


@pytest.mark.parametrize("args, message", [
    (("nonsense",), r"^executor must be one of local, dask, not 'nonsense'$"),
    (("local", 0), r"^jobs must be an integer from 1 to 64, not 0$"),
    (("local", True), r"^jobs must be an integer from 1 to 64, not True$"),
    (("local", 2.0), r"^jobs must be an integer from 1 to 64, not 2.0$"),
    (("local", 1, "tcp://h:8786"),
     r"^scheduler applies only to executor 'dask', not executor 'local'$"),
    (("dask",), r"^executor 'dask' needs a scheduler: an address such as 'tcp://HOST:8786', "),
    (("dask", 4, "tcp://h:8786"), r"^jobs does not apply with executor 'dask' \(the cluster's "
                                  r"workers set the parallelism\), not 4$"),
    (("dask", 1, "h"), r"^scheduler must be a Dask scheduler address such as tcp://HOST:8786, "
                       r"not 'h'$"),
    (("dask", 1, "tcp://h"), r"^scheduler must be .*, not 'tcp://h'$"),
    (("dask", 1, "http://h:8786"), r"^scheduler must be .*, not 'http://h:8786'$"),
    (("dask", 1, "h:0"), r"^scheduler must be .*, not 'h:0'$"),
    (("dask", 1, "h:65536"), r"^scheduler must be .*, not 'h:65536'$"),
    (("dask", 1, "tcp://h:8786 "), r"^scheduler must be .*, not 'tcp://h:8786 '$"),
    (("dask", 1, 8786), r"^scheduler must be .*, or a distributed Client or cluster, not 8786$"),
])
def test_bad_parameters_are_refused_before_anything_starts(args, message):
    with pytest.raises(ValueError, match=message):
        check_executor(*args)
    with pytest.raises(ValueError, match=message):
        make_executor(*args)


def test_good_parameters_and_flag_wording():
    assert check_executor() == ("local", 1, None)
    assert check_executor("local", 3) == ("local", 3, None)
    for address in ("tcp://10.0.0.5:8786", "sched.example.org:8786", "tls://h:1",
                    "tcp://[::1]:8786", "ws://h:80"):
        assert check_executor("dask", 1, address) == ("dask", 1, address)
    with pytest.raises(ValueError, match=r"^--scheduler applies only to --executor dask, not "
                                         r"--executor local$"):
        check_executor("local", 1, "tcp://h:8786", flags=True)
    with pytest.raises(ValueError, match=r"^--jobs does not apply with --executor dask "):
        check_executor("dask", 2, "tcp://h:8786", flags=True)
    with pytest.raises(ValueError, match=r"^kind must be one of process, thread, not 'fork'$"):
        LocalExecutor(2, kind="fork")
    with pytest.raises(ValueError, match=r"^timeout must be a positive number of seconds, "):
        DaskExecutor("tcp://127.0.0.1:1", timeout=0)
    with pytest.raises(TypeError, match=r"^fn must be a callable, not 3$"):
        LocalExecutor(1).map(3, [1])


def test_an_unreachable_scheduler_fails_quickly_naming_it():
    start = time.monotonic()
    with pytest.raises(ClusterUnavailable) as info:
        DaskExecutor("tcp://127.0.0.1:1", timeout=1)
    assert time.monotonic() - start < 10
    assert isinstance(info.value, ConnectionError)
    assert str(info.value) == ("the Dask scheduler at tcp://127.0.0.1:1 is unavailable: no answer "
                               "within 1 s; is `dask scheduler` running there, and its port open?")


def test_the_module_loads_neither_dask_nor_amaranth():
    """The seam works without a cluster: Dask is imported only by DaskExecutor."""
    script = ("import sys\nfrom winogen.sim.executor import LocalExecutor\n"
              "from winogen.cli import build_parser\nbuild_parser()\n"
              "assert LocalExecutor(1).map(abs, [-1, 2]) == [1, 2]\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & "
              "{'dask', 'distributed', 'amaranth'}))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


# --- explore -----------------------------------------------------------------------------

TINY = ["--m", "2", "--r", "2", "--widths", "4", "--algorithms", "direct", "--pipeline", "1",
        "--no-place"]


def check_one_line(status, out, err, *needles):
    assert status == 2, err
    assert out == "" and "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("winogen: error: ")
    for needle in needles:
        assert needle in line, (needle, line)
    return line


@pytest.mark.parametrize("argv, needles", [
    (["--executor", "dask"], ("--executor dask needs --scheduler ADDRESS",)),
    (["--scheduler", "tcp://h:8786"], ("--scheduler applies only to --executor dask",)),
    (["--executor", "nonsense"], ("--executor must be one of local, dask, not 'nonsense'",)),
    (["--executor", "dask", "--scheduler", "tcp://h:8786", "-j", "2"],
     ("--jobs does not apply with --executor dask", "not 2")),
    (["--executor", "dask", "--scheduler", "h"],
     ("--scheduler must be a Dask scheduler address such as tcp://HOST:8786, not 'h'",)),
])
def test_cli_refuses_bad_executor_flags_in_one_line(argv, needles, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.chdir(tmp_path)
    status = main(["explore", *TINY, *argv, "-o", "out"])
    captured = capsys.readouterr()
    check_one_line(status, captured.out, captured.err, *needles)
    assert list(tmp_path.iterdir()) == []


def test_cli_console_script_refuses_dask_without_scheduler(tmp_path):
    run = subprocess.run([WINOGEN, "explore", *TINY, "--executor", "dask", "-o", "out"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    check_one_line(run.returncode, run.stdout, run.stderr, "--executor dask needs --scheduler")
    assert list(tmp_path.iterdir()) == []


def test_cli_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    import winogen.sim.executor as executor_module
    monkeypatch.setattr(executor_module, "DEFAULT_TIMEOUT", 0.5)
    monkeypatch.chdir(tmp_path)
    status = main(["explore", *TINY, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1",
                   "-o", "out"])
    captured = capsys.readouterr()
    line = check_one_line(status, captured.out, captured.err)
    assert line == ("winogen: error: --scheduler must be a running Dask scheduler with a worker, "
                    "not 'tcp://127.0.0.1:1' (no answer within 0.5 s; is `dask scheduler` "
                    "running there, and its port open?)")
    assert list(tmp_path.iterdir()) == []


def test_explore_refuses_jobs_with_an_executor_and_a_non_executor(tmp_path):
    from winogen.fpga.explore import explore
    with pytest.raises(ValueError, match=r"^jobs does not apply with an executor \(it sets the "
                                         r"parallelism\), not 2$"):
        explore({"m": 2}, tmp_path, place=False, jobs=2, executor=LocalExecutor(1))
    with pytest.raises(ValueError, match=r"^executor must be a winogen.sim.executor.Executor, "
                                         r"not 'dask'$"):
        explore({"m": 2}, tmp_path, place=False, executor="dask")
    assert list(tmp_path.iterdir()) == []


def sweep_item(tmp_path, versions=None, marker=True):
    """One explore work item whose worker check fails before any synthesis."""
    from winogen.fpga.explore import configurations, normalize_grid
    from winogen.fpga.explore.cache import _versions
    (point,), _ = configurations(normalize_grid({"m": 2, "r": 2, "widths": 4,
                                                 "algorithms": "direct", "pipeline": 1}))
    (tmp_path / "cache").mkdir()
    if marker:
        (tmp_path / "cache" / ".sweep-x").write_text("")
    flow = {"target": "ecp5", "device": "LFE5U-85F-8 CABGA381", "freq_mhz": None,
            "place": False, "nodsp": False,
            "versions": versions or _versions("ecp5", False)}
    return {"label": "D F(2,2) 4b p1", "point": point, "flow": flow, "out": str(tmp_path),
            "device": None, "retry_failed": False, "run_spec": {}, "marker": ".sweep-x",
            "say": None}


def test_explore_refuses_a_worker_without_the_shared_folder(tmp_path):
    from winogen.fpga.explore.sweep import WorkerSetupError, _sweep_item
    with pytest.raises(WorkerSetupError, match=r"^worker .* does not see the output folder "
                                               r".*: workers must share its filesystem, at "
                                               r"the same path"):
        _sweep_item(sweep_item(tmp_path, marker=False))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_explore_refuses_a_worker_with_other_sources(tmp_path):
    from winogen.fpga.explore.cache import _versions
    from winogen.fpga.explore.sweep import WorkerSetupError, _sweep_item
    theirs = {**_versions("ecp5", False), "sources": "0123456789abcdef"}
    with pytest.raises(WorkerSetupError, match=r"runs other sources or tools than the caller: "
                                               r"sources [0-9a-f]{16} \(caller: "
                                               r"0123456789abcdef\); install the same winogen"):
        _sweep_item(sweep_item(tmp_path, versions=theirs))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".sweep-x"]


# The same sweep locally and on two Dask worker processes: Yosys only, two 4-bit F(2,2)
# engines (about 15 s in all).
GRID = {"m": 2, "r": 2, "widths": 4, "algorithms": ["direct", "winograd"], "pipeline": 1}


@pytest.fixture(scope="module")
def dask_sweeps(cluster, tmp_path_factory):
    from winogen.fpga.explore import explore
    local, remote = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("dask")
    rows = explore(GRID, local, place=False)
    lines = []
    with DaskExecutor(cluster) as ex:
        dask_rows = explore(GRID, remote, place=False, executor=ex, progress=lines.append)
    return local, rows, remote, dask_rows, lines


@pytest.mark.synth
def test_explore_on_dask_gives_the_local_rows(dask_sweeps):
    local, rows, remote, dask_rows, lines = dask_sweeps
    assert len(rows) == 2 and not any(r["error"] for r in rows)
    # Identical, but for the time each configuration took.
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]
    assert strip(dask_rows) == strip(rows)
    assert not any(r["cached"] for r in dask_rows)
    # The workers built into the caller's cache: the same Verilog, and no marker left.
    for row in rows:
        (mine,) = (local / "cache" / row["key"] / "design").glob("*.v")
        (theirs,) = (remote / "cache" / row["key"] / "design").glob("*.v")
        assert mine.read_bytes() == theirs.read_bytes()
    assert sorted(p.name for p in (remote / "cache").iterdir()) == sorted(r["key"] for r in rows)
    # Progress in the caller: the executor named, one line per configuration.
    assert re.search(r"; dask at tcp://127\.0\.0\.1:\d+, 2 workers, 2 threads$", lines[0])
    assert len([ln for ln in lines if ln.startswith("[")]) == 2
    meta = json.loads((remote / "explore.json").read_text())
    assert strip(meta["rows"]) == strip(json.loads((local / "explore.json").read_text())["rows"])


@pytest.mark.synth
def test_cli_explore_on_a_dask_scheduler(dask_sweeps, cluster, tmp_path):
    # A copy of the cache: every configuration is read back by a worker, nothing rebuilt.
    local, rows = dask_sweeps[:2]
    out = tmp_path / "copy"
    shutil.copytree(local / "cache", out / "cache")
    run = subprocess.run([WINOGEN, "explore", "--m", "2", "--r", "2", "--widths", "4",
                          "--algorithms", "direct,winograd", "--pipeline", "1", "--no-place",
                          "--executor", "dask", "--scheduler", cluster.scheduler_address,
                          "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert f"; dask at {cluster.scheduler_address}, 2 workers, 2 threads" in lines[0]
    progress = [ln for ln in lines if ln.startswith("winogen explore: [")]
    assert len(progress) == 2 and all(": cached " in ln for ln in progress)
    table = json.loads((out / "explore.json").read_text())["rows"]
    assert [r["key"] for r in table] == [r["key"] for r in rows]


def test_cli_refuses_a_worker_with_other_sources(tmp_path, monkeypatch, capsys):
    """A worker whose sources differ: one line naming --scheduler (workers in this process,
    behind a tcp scheduler, so the test can give them other sources)."""
    distributed = pytest.importorskip("distributed")
    from winogen.fpga.explore import sweep
    from winogen.fpga.explore.cache import _versions
    theirs = {**_versions("ecp5", False), "sources": "0123456789abcdef"}
    monkeypatch.setattr(sweep, "_WORKER_VERSIONS", {("ecp5", False): theirs})
    monkeypatch.chdir(tmp_path)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp://", dashboard_address=":0") as c:
        status = main(["explore", *TINY, "--executor", "dask", "--scheduler",
                       c.scheduler_address, "-o", "out"])
    captured = capsys.readouterr()
    # The sweep had started (its first line), then stopped at the first item: one error.
    progress, _, error = captured.err.partition("winogen: error: ")
    assert progress.startswith("winogen explore: 1 configurations, ")
    assert progress.count("\n") == 1
    line = check_one_line(status, captured.out, "winogen: error: " + error)
    assert re.fullmatch(rf"winogen: error: --scheduler {c.scheduler_address}: worker .* runs "
                        r"other sources or tools than the caller: sources 0123456789abcdef "
                        r"\(caller: [0-9a-f]{16}\); install the same winogen on every worker",
                        line), line
    # Nothing was built; the sweep's marker is gone.
    assert [p.name for p in (tmp_path / "out" / "cache").iterdir()] == []
