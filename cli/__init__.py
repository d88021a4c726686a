"""The ``winogen`` command line.

One module per subcommand (:mod:`.matrices`, :mod:`.accuracy`, :mod:`.generate`,
:mod:`.simulate`, :mod:`.synth`, :mod:`.explore`), each with ``add_parser(sub)``.
Hardware, simulation and synthesis modules are imported only when their
subcommand runs, so ``winogen matrices`` never imports Amaranth.

Errors come in two kinds:

* a user mistake raises :class:`UserError` (argparse errors included): one line
  ``winogen: error: <what> must be <accepted>, not <given>``, exit status 2;
* anything else is an internal error: the traceback, one line asking to report
  it, exit status 1.
"""

import re
import sys
import traceback

from ._base import Parser, UserError

__all__ = ["main", "build_parser", "UserError", "version"]

_SUBCOMMANDS = ("matrices", "accuracy", "generate", "simulate", "run_net", "synth", "explore",
                "faults")


def version():
    """The installed winogen version."""
    from importlib import metadata
    try:
        return metadata.version("winogen")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser():
    """The ``winogen`` parser with every subcommand registered."""
    import importlib
    parser = Parser(prog="winogen",
                    description="Generate Winograd-convolution accelerators: exact matrices, "
                                "Verilog, bit-exact proof under Verilator, FPGA reports.")
    parser.add_argument("--version", action="version", version=f"winogen {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in _SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def _one_line(exc, limit=1000):
    """The message on one line; over-long echoed values were cut where they were quoted,
    and the line is capped as a last resort."""
    from ._base import shown
    text = " ".join(str(exc).split())
    # Long unbroken runs are echoed values (a 5,000-character option, say).
    text = re.sub(r"'[^']{301,}'", lambda mo: shown(mo.group(0)[1:-1]), text)
    text = " ".join(w if len(w) <= 320 else shown(w).strip("'") for w in text.split(" "))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _tool_error(exc):
    """Errors of other layers that describe a user's input (a missing folder, a bad
    manifest, a missing tool): one line, like a :class:`UserError`."""
    return bool(getattr(exc, "winogen_user_error", False))


def main(argv=None):
    """Entry point of the ``winogen`` console script; returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        status = args.func(args)
    except UserError as exc:
        print(f"winogen: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("winogen: interrupted", file=sys.stderr)
        return 130
    except SystemExit:  # --help, --version
        raise
    except Exception as exc:
        if _tool_error(exc):
            print(f"winogen: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        traceback.print_exc()
        print(f"winogen: internal error ({type(exc).__name__}): this is a bug in winogen, "
              "not in your input; please report it with the command line and the traceback above", file=sys.stderr)
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
