"""The ``winogen`` command line.

Every subcommand validates its input through the same configuration objects as
the Python API, so errors read the same. Bad input prints one line,
``winogen: error: <what> must be <accepted values>, not <given>``, and exits
with status 2; there is never a traceback for a user mistake.
"""

import argparse
import importlib
import json
import sys

from .points import PRESETS

__all__ = ["main", "build_parser", "CLIError", "dumps_json", "int_argument", "markdown_table"]


class CLIError(Exception):
    """A user error detected by the CLI itself (printed as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage block before the error; winogen prints one line.
    def error(self, message):
        raise CLIError(message)


def int_argument(name, accepted="a positive integer", minimum=None):
    """An argparse type: an integer, with the Amaranth-style message on bad text.

    Range checks belong to the configuration objects (one message everywhere);
    ``minimum`` is for arguments that no configuration object sees.
    """
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {accepted}, not {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be {accepted}, not {value}")
        return value
    return parse


def _positive_int(name):
    return int_argument(name, minimum=1)


def _add_algorithm_args(p, *, r_required=True):
    p.add_argument("--m", type=_positive_int("m"), required=True,
                   help="outputs per tile and dimension: F(m×m, r×r)")
    p.add_argument("--r", type=_positive_int("r"), required=r_required,
                   help="filter size per dimension")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--points", metavar="LIST",
                       help="interpolation points, e.g. 0,1,-1,1/2,-3,inf (n = m + r - 1 of them)")
    group.add_argument("--preset", choices=sorted(PRESETS), default="default",
                       help="named point set (default: %(default)s; lavin = canonical "
                            "Lavin-Gray, barabasz = accuracy-optimised)")


def _cmd_matrices(args):
    from .toomcook import ToomCook
    tc = ToomCook(args.m, args.r, args.points, preset=args.preset)
    form = args.form
    data = tc.to_json(form=form, fractions=args.fractions)
    if args.json:
        print(dumps_json(data))
        return 0
    print(f"{tc.name}  n = {tc.n}  points = {tc.points_text}")
    if form == "rational":
        mats = tc.matrices(args.fractions)
        blocks = [("Aᵀ", mats.AT), ("G", mats.G), ("Bᵀ", mats.BT)]
        note = f"fractions in {args.fractions}"
    elif form == "linear":
        lin = tc.linear()
        blocks = [("C (interpolation)", lin.C), ("G (filter)", lin.G), ("H (signal)", lin.H)]
        note = "linear convolution s = C[(G g) ⊙ (H h)]"
    else:
        mats, hw = tc.integer(), tc.hardware()
        blocks = [("Aᵀ", mats.AT), ("G", mats.G), ("Bᵀ", mats.BT),
                  ("scale (diagonal)", [[s] for s in mats.scale]),
                  (f"hardware Aᵀ (scale numerators folded in, D = {hw.denominator})", hw.AT)]
        note = "integer form: y = Aᵀ[scale ⊙ (G g) ⊙ (Bᵀ d)]"
    print(note)
    for title, M in blocks:
        print(f"\n{title}:")
        print(_format_matrix(M))
    return 0


def dumps_json(data):
    """JSON with each innermost list (a matrix row) kept on one line."""
    import re
    text = json.dumps(data, indent=2)
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda mo: "[" + " ".join(mo.group(1).split()) + "]", text)


def markdown_table(rows, columns):
    """A Markdown table: a header of ``columns``, then one line per row (a dict).

    ``None`` and missing values print as empty cells. No trailing newline.
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join("" if row.get(c) is None else str(row[c])
                                       for c in columns) + " |")
    return "\n".join(lines)


def _format_matrix(M):
    cells = [[str(x) for x in row] for row in M]
    width = max((len(c) for row in cells for c in row), default=1)
    return "\n".join("  [" + " ".join(c.rjust(width) for c in row) + "]" for row in cells)


def _add_matrices_parser(sub):
    p = sub.add_parser("matrices", help="print the exact Aᵀ, G, Bᵀ of F(m, r)",
                       description="Print the exact Toom-Cook/Winograd matrices of F(m×m, r×r).")
    _add_algorithm_args(p)
    p.add_argument("--form", choices=("rational", "integer", "linear"), default="rational",
                   help="rational matrices, integer matrices plus diagonal scale, or the "
                        "linear-convolution form (default: %(default)s)")
    p.add_argument("--fractions", choices=("G", "A", "B", "F"), default="G",
                   help="where the fractions live in the rational form, as wincnn's "
                        "FractionsIn* (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON with exact entries as strings")
    p.set_defaults(func=_cmd_matrices)


# Subcommands contributed by other parts of the package, registered lazily by
# module path so that `winogen matrices` never imports Amaranth.
_EXTENSIONS = [
    ("winogen.gen.accuracy", "add_accuracy_parser"),
    ("winogen.gen.generate_cli", "add_generate_parser"),
    ("winogen.fpga.cli", "add_synth_parser"),
    ("winogen.fpga.explore", "add_explore_parser"),
]


def build_parser():
    parser = _Parser(prog="winogen",
                     description="Generate Winograd-convolution accelerators: exact matrices, "
                                 "Verilog, bit-exact proof under Verilator, FPGA reports.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _add_matrices_parser(sub)
    for module, function in _EXTENSIONS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        getattr(mod, function)(sub)
    return parser


def main(argv=None):
    """Entry point of the ``winogen`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        status = args.func(args)
    except (CLIError, ValueError, TypeError) as exc:
        print(f"winogen: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("winogen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # tool failures from other layers that carry a message
        if getattr(exc, "winogen_user_error", False):
            print(f"winogen: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        raise
    return status or 0


def _one_line(exc):
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
