"""What every subcommand shares: :class:`UserError`, the parser class, value types.

A value the user typed is checked where it enters (an argparse type, or the
subcommand's own check before any work), and a mistake raises
:class:`UserError` naming the option as typed. Nothing here imports Amaranth.
"""

import argparse
import math
import os
import re
import textwrap
from pathlib import Path

__all__ = ["UserError", "Parser", "integer", "number", "choice_list", "shown",
           "check_output_folder", "check_output_file", "user_errors",
           "add_executor_arguments", "check_executor_args", "executor_from_args"]


class UserError(Exception):
    """A mistake in what the user typed: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    # argparse prints the usage block before the error; winogen prints one line.
    # No abbreviations: --out for --output today would be ambiguous tomorrow.
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UserError(_argparse_message(message))


def _argparse_message(message):
    """argparse's wording in winogen's: ``--pe must be one of adder, mul, not 'x'``."""
    text = " ".join(message.split())
    mo = re.fullmatch(r"argument (\S+): invalid choice: (.*) \(choose from (.*)\)", text)
    if mo:
        option = mo.group(1).split("/")[-1]
        choices = ", ".join(c.strip(" '") for c in mo.group(3).split(","))
        return f"{option} must be one of {choices}, not {shown(mo.group(2).strip(chr(39)))}"
    mo = re.fullmatch(r"argument (\S+): (.*)", text)
    if mo:
        names = mo.group(1).split("/")
        rest = mo.group(2)
        if any(rest.startswith(n + " ") or rest.startswith(n + ":") for n in names):
            return rest
        return f"{names[-1]}: {rest}"
    return text


def shown(value, limit=100):
    """``repr(value)``, cut to about ``limit`` characters with the full length named."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return text[:limit - 10] + f"…' ({len(str(value))} characters)"


_INT = re.compile(r"[+-]?[0-9]+")


def integer(option, accepted="a positive integer", minimum=1, maximum=None):
    """An argparse type: a decimal integer (no ``_``, no spaces) within bounds.

    ``int()`` reads ``1_0`` as 10; an option takes plain digits only.
    """
    def parse(text):
        value = int(text) if _INT.fullmatch(text) else None
        if value is None or (minimum is not None and value < minimum) \
                or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{option} must be {accepted}, not {shown(text)}")
        return value
    return parse


def number(option, accepted="a positive number", minimum=0.0, maximum=None, open_low=True):
    """An argparse type: a finite decimal number within bounds (``open_low``: > minimum)."""
    def parse(text):
        try:
            value = float(text) if re.fullmatch(r"[+-]?[0-9.eE+-]+", text) else math.nan
        except ValueError:
            value = math.nan
        bad = not math.isfinite(value) or (value <= minimum if open_low else value < minimum) \
            or (maximum is not None and value >= maximum)
        if bad:
            raise argparse.ArgumentTypeError(f"{option} must be {accepted}, not {shown(text)}")
        return value
    return parse


def choice_list(option, choices):
    """An argparse type: one value of ``choices`` (the accepted set named on error)."""
    def parse(text):
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{option} must be one of {', '.join(choices)}, "
                                             f"not {shown(text)}")
        return text
    return parse


def text_value(option, what="a non-empty value"):
    """An argparse type: any non-empty text without line breaks."""
    def parse(text):
        if not text.strip() or "\n" in text or "\0" in text:
            raise argparse.ArgumentTypeError(f"{option} must be {what}, not {shown(text)}")
        return text
    return parse


def _first_existing(path):
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _path(path):
    return shown(str(path), 300)


def check_output_folder(option, path):
    """Refuse an output folder that cannot be created or written, creating nothing."""
    if not str(path).strip():
        raise UserError(f"{option} must name a folder, not ''")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{option} must be a folder, not the file {_path(path)}")
    base = _first_existing(p)
    if not base.is_dir():
        raise UserError(f"{option} must be a writable folder, not {_path(path)} "
                        f"(not writable: {_path(base)} is a file)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"{option} must be a writable folder, not {_path(path)} "
                        f"(not writable: {_path(base)})")


def check_output_file(option, path, suffix):
    """Refuse an output file that could not be written, before any work."""
    text = str(path)
    if not text.strip():
        raise UserError(f"{option} must name a {suffix} file, not ''")
    if not text.lower().endswith(suffix):
        raise UserError(f"{option} must be a {suffix} file name, not {_path(text)}")
    p = Path(text)
    if p.is_dir():
        raise UserError(f"{option} must be a {suffix} file, not the folder {_path(text)}")
    if not p.parent.exists():
        raise UserError(f"{option} must be in an existing folder, not {_path(text)} "
                        f"(its folder does not exist)")
    if not p.parent.is_dir():
        raise UserError(f"{option} must be in a folder, not {_path(text)} "
                        f"({_path(p.parent.name)} is a file)")
    if not os.access(p.parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UserError(f"{option} must be a writable file, not {_path(text)}")


class user_errors:
    """``with user_errors(context):`` turns a ``ValueError`` raised inside into a
    :class:`UserError`, its message in option names (``p_in`` → ``--pin``).

    Only around the code that turns typed values into configurations: a
    ``ValueError`` from anywhere else is an internal error.
    """

    def __init__(self, context=""):
        self.context = context

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, ValueError):
            from winogen.gen.params import flag_message
            raise UserError(flag_message(exc, self.context)) from None
        return False


# --- Where the work runs: -j/--jobs, --executor, --scheduler ---------------------------------

def add_executor_arguments(parser, jobs_help):
    """Add ``-j/--jobs``, ``--executor`` and ``--scheduler`` (one group) to ``parser``.

    ``jobs_help`` says what runs in parallel (``configurations synthesized in parallel``).
    Read them back with :func:`check_executor_args` (before any work) and
    :func:`executor_from_args`.
    """
    from winogen.sim.executor import EXECUTORS, MAX_JOBS
    # Wrapped here: some subcommands print descriptions as they are written.
    group = parser.add_argument_group("where the work runs", textwrap.fill(
        "on this machine (-j N), or on the workers of a running Dask cluster (--executor "
        "dask --scheduler tcp://HOST:8786); the results are the same either way", 78))
    group.add_argument("--jobs", "-j", type=integer("--jobs", f"an integer from 1 to {MAX_JOBS}",
                                                    1, MAX_JOBS),
                       default=1, metavar="N",
                       help=f"{jobs_help} on this machine (default: 1; --executor local only)")
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       metavar="{" + ",".join(EXECUTORS) + "}",
                       help="local: this machine; dask: the workers of a Dask distributed "
                            "cluster (default: local)")
    group.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="the Dask scheduler's address, as `dask scheduler` prints it, "
                            "such as tcp://HOST:8786 (--executor dask only)")


def check_executor_args(args):
    """Refuse a bad or contradictory ``-j``/``--executor``/``--scheduler`` (UserError);
    connects to nothing, so it runs with the other checks, before any work."""
    from winogen.sim.executor import check_executor
    try:
        check_executor(args.executor, args.jobs, args.scheduler, flags=True)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def executor_from_args(args, kind="process"):
    """The executor the options chose (connected, for Dask); close it when done.

    ``kind`` is the local pool's (``thread`` for work that waits on tool processes). A
    scheduler that does not answer, or has no worker, is the user's: one line naming
    ``--scheduler``.
    """
    check_executor_args(args)
    from winogen.sim.executor import ClusterUnavailable, make_executor
    try:
        return make_executor(args.executor, args.jobs, args.scheduler, kind=kind)
    except ClusterUnavailable as exc:
        raise UserError(f"--scheduler must be a running Dask scheduler with a worker, "
                        f"not {shown(args.scheduler)} ({exc.reason})") from None
