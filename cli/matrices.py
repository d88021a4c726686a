"""``winogen matrices``: the exact Toom-Cook/Winograd matrices of F(m×m, r×r)."""

from winogen.gen.points import PRESETS
from winogen.gen.report import dumps_json

from ._base import integer, text_value, user_errors

__all__ = ["add_parser", "add_algorithm_arguments", "run"]


def add_algorithm_arguments(p):
    """``--m``, ``--r`` and ``--points``/``--preset`` (exclusive)."""
    p.add_argument("--m", type=integer("--m"), required=True,
                   help="outputs per tile and dimension: F(m×m, r×r)")
    p.add_argument("--r", type=integer("--r"), required=True, help="filter size per dimension")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--points", metavar="LIST", type=text_value("--points", "a list of points"),
                       help="interpolation points, e.g. 0,1,-1,1/2,-3,inf (n = m + r - 1 of them)")
    group.add_argument("--preset", choices=sorted(PRESETS), default=None,
                       help="named point set (default: default; lavin = canonical "
                            "Lavin-Gray, barabasz = accuracy-optimised)")


def add_parser(sub):
    p = sub.add_parser("matrices", help="print the exact Aᵀ, G, Bᵀ of F(m, r)",
                       description="Print the exact Toom-Cook/Winograd matrices of F(m×m, r×r).")
    add_algorithm_arguments(p)
    p.add_argument("--form", choices=("rational", "integer", "linear"), default="rational",
                   help="rational matrices, integer matrices plus diagonal scale, or the "
                        "linear-convolution form (default: %(default)s)")
    p.add_argument("--fractions", choices=("G", "A", "B", "F"), default=None,
                   help="where the fractions live in the rational form, as wincnn's "
                        "FractionsIn* (default: G; --form rational only)")
    p.add_argument("--json", action="store_true", help="print JSON with exact entries as strings")
    p.set_defaults(func=run)
    return p


def run(args):
    from winogen.gen.toomcook import ToomCook
    from ._base import UserError
    if args.fractions is not None and args.form != "rational":
        raise UserError(f"--fractions does not apply to --form {args.form} (--form rational "
                        f"only), not {args.fractions!r}")
    fractions = args.fractions or "G"
    with user_errors(f"--m {args.m} --r {args.r}"):
        tc = ToomCook(args.m, args.r, args.points, preset=args.preset or "default")
    data = tc.to_json(form=args.form, fractions=fractions)
    if args.json:
        print(dumps_json(data))
        return 0
    print(f"{tc.name}  n = {tc.n}  points = {tc.points_text}")
    if args.form == "rational":
        mats = tc.matrices(fractions)
        blocks = [("Aᵀ", mats.AT), ("G", mats.G), ("Bᵀ", mats.BT)]
        note = f"fractions in {fractions}"
    elif args.form == "linear":
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


def _format_matrix(M):
    cells = [[str(x) for x in row] for row in M]
    width = max((len(c) for row in cells for c in row), default=1)
    return "\n".join("  [" + " ".join(c.rjust(width) for c in row) + "]" for row in cells)
