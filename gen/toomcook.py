"""Exact Toom-Cook/Winograd minimal filtering algorithms F(m, r).

Construction
------------
Linear convolution of a length-``r`` filter ``g`` with a length-``m`` signal
``h`` is the polynomial product ``s(x) = g(x) h(x)`` of degree ``n - 1`` with
``n = m + r - 1``. Evaluating both factors at ``n`` points, multiplying point by
point and interpolating gives the Toom-Cook algorithm::

    s = V⁻¹ [(E_r g) ⊙ (E_m h)]

where ``E_k`` evaluates a degree ``k - 1`` polynomial at the points (the point
at infinity evaluates the leading coefficient) and ``V = E_n``. Winograd's
correlation form F(m, r), ``y_j = Σ_k d_{j+k} g_k``, is the transpose of that
algorithm with respect to ``h``::

    y = Aᵀ [(G g) ⊙ (Bᵀ d)],   Aᵀ = E_mᵀ,  G = E_r,  Bᵀ = V⁻ᵀ

and nests to 2-D as ``Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A``.

Scaling
-------
For each Winograd-domain index ``i`` the triple (column ``i`` of ``Aᵀ``, row
``i`` of ``G``, row ``i`` of ``Bᵀ``) may be rescaled by any factors whose
product is 1. winogen normalises every such vector to a primitive integer
vector (coprime entries, natural sign) times a positive rational content, and
collects the contents in one diagonal ``scale``. Where the fractions then live
is the ``fractions`` option, after wincnn's ``FractionsInG/A/B/F``:

* ``"G"`` (default): ``scale`` is folded into the rows of ``G``;
* ``"A"``: into the columns of ``Aᵀ``;
* ``"B"``: into the rows of ``Bᵀ``;
* ``"F"``: all three matrices are integer and ``scale`` is returned apart —
  the *integer form* that integer hardware needs.

For hardware the integer form is folded once more (:meth:`ToomCook.hardware`):
``scale = t / D`` with integer ``t`` and the smallest integer ``D``, ``t`` goes
into ``G``, and the exact result is the integer output divided by ``D`` (``D²``
in 2-D), a division that is always exact.
"""

from dataclasses import dataclass
from fractions import Fraction
from math import lcm
import warnings

from . import rational as rq
from .bounds import Interval, signed_range, transform_intervals
from .checks import check_int
from .points import INF, MAX_TILE, check_points, format_point, parse_points, preset_points

__all__ = ["ToomCook", "MatrixToomCook", "load_transforms", "transforms_manifest",
           "APPROXIMATE_FUNCTION", "APPROXIMATE_LAYER_FUNCTION", "WinogradMatrices", "HardwareTransforms", "LinearToomCook",
           "NumericalWarning", "FRACTION_PLACEMENTS", "FLOAT_SAFE_TILE"]

#: Where the fractions of the scaled matrices may live (wincnn's FractionsIn*).
FRACTION_PLACEMENTS = ("G", "A", "B", "F")

#: Largest tile size considered numerically safe in floating point: F(6,3).
FLOAT_SAFE_TILE = 8


class NumericalWarning(UserWarning):
    """Floating-point evaluation of a large Toom-Cook tile loses accuracy."""


def _eval_matrix(points, k):
    """``E_k``: rows evaluate a degree ``k - 1`` polynomial (ascending coefficients)."""
    rows = []
    for p in points:
        if p is INF:
            rows.append([Fraction(int(j == k - 1)) for j in range(k)])
        else:
            rows.append([p ** j for j in range(k)])
    return rows


@dataclass(frozen=True)
class WinogradMatrices:
    """Exact matrices of F(m, r): ``y = Aᵀ [scale ⊙ (G g) ⊙ (Bᵀ d)]``.

    Members
    -------
    AT : list of list of Fraction, m × n
    G : list of list of Fraction, n × r
    BT : list of list of Fraction, n × n
    scale : tuple of Fraction, length n
        The diagonal left apart; all ones unless ``fractions == "F"``.
    fractions : str
        Where the fractions live: ``"G"``, ``"A"``, ``"B"`` or ``"F"``.
    """
    AT: list
    G: list
    BT: list
    scale: tuple
    fractions: str

    @property
    def is_integer(self):
        return all(rq.is_integer_matrix(M) for M in (self.AT, self.G, self.BT))

    def to_json(self):
        return {
            "fractions": self.fractions,
            "AT": rq.format_matrix(self.AT),
            "G": rq.format_matrix(self.G),
            "BT": rq.format_matrix(self.BT),
            "scale": [str(s) for s in self.scale],
        }


@dataclass(frozen=True)
class HardwareTransforms:
    """Integer transforms for hardware: ``Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A / D²``.

    All three matrices are integer tuples-of-tuples; ``denominator`` is ``D``.
    In 1-D the exact result is ``Aᵀ[(G g) ⊙ (Bᵀ d)] / D``. The division is exact
    for every integer input because the algorithm is.

    Members
    -------
    AT : tuple of tuple of int, m × n
    G : tuple of tuple of int, n × r
    BT : tuple of tuple of int, n × n
    denominator : int
    """
    AT: tuple
    G: tuple
    BT: tuple
    denominator: int

    def scale_divisor(self, dims=2):
        """The exact divisor of the integer result: ``D`` (1-D) or ``D²`` (2-D)."""
        return self.denominator ** dims

    def input_intervals(self, data_width):
        """Ranges of ``V = Bᵀ d B`` (row-major n×n) for ``data_width``-bit signed ``d``."""
        return transform_intervals(self.BT, signed_range(data_width), dims=2)

    def filter_intervals(self, weight_width):
        """Ranges of ``U = G g Gᵀ`` (row-major n×n) for ``weight_width``-bit signed ``g``."""
        return transform_intervals(self.G, signed_range(weight_width), dims=2)

    def to_json(self):
        return {"AT": [list(r) for r in self.AT], "G": [list(r) for r in self.G],
                "BT": [list(r) for r in self.BT], "denominator": self.denominator}


@dataclass(frozen=True)
class LinearToomCook:
    """Linear-convolution form: ``s = C [(G g) ⊙ (H h)]``, ``s = g * h`` of length n.

    Members
    -------
    C : n × n interpolation matrix (``V⁻¹``)
    G : n × r filter evaluation matrix
    H : n × m signal evaluation matrix
    """
    C: list
    G: list
    H: list

    def to_json(self):
        return {"C": rq.format_matrix(self.C), "G": rq.format_matrix(self.G),
                "H": rq.format_matrix(self.H)}


class ToomCook:
    """The exact Toom-Cook/Winograd algorithm F(m, r).

    Parameters
    ----------
    m : int
        Outputs per tile (per dimension), at least 1.
    r : int
        Filter taps (per dimension), at least 1.
    points : str or sequence, optional
        ``n = m + r - 1`` distinct points: numbers, fractions (``"1/2"``) or
        ``"inf"``. Overrides ``preset``.
    preset : str
        A named point set when ``points`` is not given: ``"lavin"`` (canonical
        Lavin–Gray points), ``"barabasz"`` (accuracy-optimised) or ``"default"``.

    Members
    -------
    m, r, n : int
    points : tuple of Fraction or INF
    """

    #: Point-built algorithms are exact (given matrices may not be: MatrixToomCook).
    exact = True

    def __init__(self, m, r, points=None, *, preset="default"):
        self.m = check_int("m", m, 1)
        self.r = check_int("r", r, 1)
        self.n = self.m + self.r - 1
        if self.n > MAX_TILE:
            raise ValueError(f"tile size n = m + r - 1 must be at most {MAX_TILE}, "
                             f"not {self.n} (m={self.m}, r={self.r})")
        if points is None:
            pts = preset_points(preset, self.n)
            self.preset = preset
        else:
            pts = parse_points(points)
            self.preset = None
        self.points = check_points(pts, self.n)
        self._build()

    def __repr__(self):
        pts = ",".join(format_point(p) for p in self.points)
        return f"ToomCook(m={self.m}, r={self.r}, points='{pts}')"

    @property
    def name(self):
        return f"F({self.m},{self.r})"

    @property
    def points_text(self):
        return ",".join(format_point(p) for p in self.points)

    def _build(self):
        n, m, r = self.n, self.m, self.r
        V = _eval_matrix(self.points, n)
        Vinv = rq.inverse(V)
        self._linear = LinearToomCook(C=Vinv, G=_eval_matrix(self.points, r),
                                      H=_eval_matrix(self.points, m))
        # Natural (unscaled) Winograd matrices.
        self._normalise(rq.transpose(_eval_matrix(self.points, m)),
                        _eval_matrix(self.points, r), rq.transpose(Vinv))

    def _normalise(self, AT, G, BT):
        """Per Winograd-domain index ``i``: the triple (column ``i`` of ``Aᵀ``, row ``i`` of
        ``G``, row ``i`` of ``Bᵀ``) as primitive integer vectors and one rational content."""
        n, m = self.n, self.m
        AT_int = [[None] * n for _ in range(m)]
        G_int, BT_int, scale = [], [], []
        for i in range(n):
            a_col = [AT[j][i] for j in range(m)]
            ca, cg, cb = rq.content(a_col), rq.content(G[i]), rq.content(BT[i])
            if not ca * cg * cb:
                zero = ("column", "AT") if not ca else ("row", "G") if not cg else ("row", "BT")
                raise ValueError(f"Winograd-domain index {i} must take part in the result, not "
                                 f"have an all-zero {zero[0]} {i} of {zero[1]}")
            for j in range(m):
                AT_int[j][i] = a_col[j] / ca
            G_int.append([x / cg for x in G[i]])
            BT_int.append([x / cb for x in BT[i]])
            scale.append(ca * cg * cb)
        self._AT_int, self._G_int, self._BT_int = AT_int, G_int, BT_int
        self._scale = tuple(scale)

    def matrices(self, fractions="G"):
        """Exact matrices with the fractions placed as asked.

        Parameters
        ----------
        fractions : str
            ``"G"``, ``"A"``, ``"B"`` or ``"F"`` (see the module docstring).

        Returns
        -------
        WinogradMatrices
        """
        if fractions not in FRACTION_PLACEMENTS:
            raise ValueError(f"fractions must be one of {', '.join(FRACTION_PLACEMENTS)}, "
                             f"not {fractions!r}")
        s = self._scale
        AT = [list(row) for row in self._AT_int]
        G = [list(row) for row in self._G_int]
        BT = [list(row) for row in self._BT_int]
        ones = tuple(Fraction(1) for _ in s)
        if fractions == "G":
            G = [[x * s[i] for x in G[i]] for i in range(self.n)]
        elif fractions == "B":
            BT = [[x * s[i] for x in BT[i]] for i in range(self.n)]
        elif fractions == "A":
            AT = [[AT[j][i] * s[i] for i in range(self.n)] for j in range(self.m)]
        else:
            return WinogradMatrices(AT, G, BT, s, fractions)
        return WinogradMatrices(AT, G, BT, ones, fractions)

    def integer(self):
        """The integer form: integer ``Aᵀ``, ``G``, ``Bᵀ`` and the diagonal ``scale``."""
        return self.matrices("F")

    def hardware(self, fold="A"):
        """Integer transforms with the scale over one denominator ``D``.

        ``scale = t / D`` with integer ``t``; ``fold`` says which matrix takes
        ``t``: ``"A"`` (columns of ``Aᵀ``, the default: the output transform is
        adds and shifts anyway, and the Hadamard operands stay narrow, which is
        what DSP blocks want) or ``"G"`` (rows of ``G``).
        """
        if fold not in ("A", "G"):
            raise ValueError(f"fold must be one of A, G, not {fold!r}")
        s = self._scale
        D = lcm(*(x.denominator for x in s))
        t = [int(x * D) for x in s]
        AT, G = self._AT_int, self._G_int
        if fold == "G":
            G = [[x * t[i] for x in G[i]] for i in range(self.n)]
        else:
            AT = [[row[i] * t[i] for i in range(self.n)] for row in AT]
        return HardwareTransforms(AT=rq.as_int_rows(AT), G=rq.as_int_rows(G),
                                  BT=rq.as_int_rows(self._BT_int), denominator=D)

    def linear(self):
        """The linear-convolution form ``s = C[(G g) ⊙ (H h)]`` (``s = g * h``)."""
        return self._linear

    def float_matrices(self, dtype="float32", fractions="G"):
        """The matrices as NumPy arrays of ``dtype``; warns when n > 8 (beyond F(6,3))."""
        import numpy as np
        if self.n > FLOAT_SAFE_TILE:
            warnings.warn(f"{self.name} (tile size {self.n}) is numerically unsafe in floating "
                          f"point: its transforms' dynamic range loses accuracy beyond F(6,3); "
                          f"use the exact or RNS paths", NumericalWarning, stacklevel=2)
        mats = self.matrices(fractions)
        conv = lambda M: np.array([[float(x) for x in row] for row in M], dtype=np.float64).astype(dtype)
        return conv(mats.AT), conv(mats.G), conv(mats.BT), np.array([float(x) for x in mats.scale]).astype(dtype)

    def to_json(self, form="rational", fractions="G"):
        """JSON-ready description; exact entries are strings such as ``"1/2"``."""
        out = {"m": self.m, "r": self.r, "n": self.n, "algorithm": self.name,
               "points": [format_point(p) for p in self.points or ()], "preset": self.preset,
               "form": form}
        if form == "rational":
            out.update(self.matrices(fractions).to_json())
        elif form == "integer":
            mats = self.integer()
            hw = self.hardware()
            out.update(mats.to_json())
            out["hardware"] = hw.to_json()
        elif form == "linear":
            out.update(self.linear().to_json())
        else:
            raise ValueError(f"form must be one of rational, integer, linear, not {form!r}")
        return out


class MatrixToomCook(ToomCook):
    """F(m, r) from given matrices ``(Aᵀ, G, Bᵀ)``: a transforms file, or learned transforms.

    The matrices are any rationals (ints, Fractions, ``"p/q"`` strings) of shapes
    ``AT (m, n)``, ``G (n, r)``, ``BT (n, n)``. They are **exact** when the 1-D identity
    tensor equals the correlation's::

        Σ_i Aᵀ[j][i] · G[i][k] · Bᵀ[i][l] = [l = j + k]     for every j, k, l,

    which is the same as ``Aᵀ[(G g) ⊙ (Bᵀ d)]`` being the correlation for every ``d`` and
    ``g`` (the form is trilinear, so the tensor is the whole function); the 2-D nesting
    is then exact too. Otherwise they are **approximate** (learned, or rounded to a few
    bits) and ``identity_error`` and :meth:`tile_error` say how far off they are.

    The integer and hardware forms are derived as for :class:`ToomCook` (per
    Winograd-domain index: primitive integer vectors and one content). For an
    approximate set the integer result is in general not divisible by the hardware
    denominator ``D²``.

    Parameters
    ----------
    AT, G, BT : matrices
    m, r : int, optional
        The tile's sizes, checked against the matrices when given.
    source : str, optional
        Where the matrices came from (a file name), for messages and the manifest.

    Members
    -------
    m, r, n : int
    points : None
    exact : bool
    identity_error : Fraction
        ``max |Σ_i Aᵀ[j][i] G[i][k] Bᵀ[i][l] - [l = j + k]|`` (0 when exact).
    """

    def __init__(self, AT, G, BT, *, m=None, r=None, source=None):
        from .matrixfile import check_full_rank, check_shapes, parse_matrix
        AT, G, BT = (parse_matrix(nm, M) for nm, M in zip(("AT", "G", "BT"), (AT, G, BT)))
        self.m, self.r, self.n = check_shapes(AT, G, BT, m, r, what="transforms")
        if self.n > MAX_TILE:
            raise ValueError(f"tile size n = m + r - 1 must be at most {MAX_TILE}, "
                             f"not {self.n} (m={self.m}, r={self.r})")
        check_full_rank(AT, G, BT)
        self.points, self.preset, self.source = None, None, source
        self.given = (AT, G, BT)
        self._normalise(AT, G, BT)
        self.identity_error = max(abs(v) for v in self.identity_deviation().values())
        self.exact = self.identity_error == 0

    def identity_deviation(self):
        """``{(j, k, l): Σ_i Aᵀ[j][i] G[i][k] Bᵀ[i][l] - [l = j + k]}`` (exact)."""
        AT, G, BT = self.given
        return {(j, k, l): sum((AT[j][i] * G[i][k] * BT[i][l] for i in range(self.n)),
                               Fraction(0)) - (l == j + k)
                for j in range(self.m) for k in range(self.r) for l in range(self.n)}

    def tile_error(self, tiles=1000, seed=0):
        """Measured 2-D error: RMS of ``Y - Y_exact`` over RMS of ``Y_exact``.

        ``tiles`` random n × n inputs and r × r filters, uniform in [-1, 1] (``seed``),
        in float64 with the given matrices; ``Y_exact`` is the direct correlation.
        0 for an exact set (up to float rounding, about 1e-16).
        """
        import numpy as np
        rng = np.random.default_rng(seed)
        AT, G, BT = (np.array([[float(x) for x in row] for row in M]) for M in self.given)
        d = rng.uniform(-1, 1, (tiles, self.n, self.n))
        g = rng.uniform(-1, 1, (tiles, self.r, self.r))
        U = np.einsum("ik,tkl,jl->tij", G, g, G)
        V = np.einsum("ik,tkl,jl->tij", BT, d, BT)
        Y = np.einsum("ai,tij,bj->tab", AT, U * V, AT)
        exact = np.zeros_like(Y)
        for a in range(self.r):
            for b in range(self.r):
                exact += d[:, a:a + self.m, b:b + self.m] * g[:, a, b][:, None, None]
        return float(np.sqrt(np.mean((Y - exact) ** 2) / np.mean(exact ** 2)))

    def __repr__(self):
        return (f"MatrixToomCook(m={self.m}, r={self.r}, "
                f"{'exact' if self.exact else 'approximate'}, source={self.source!r})")

    @property
    def points_text(self):
        return "custom" if self.source is None else f"custom ({self.source})"

    def linear(self):
        raise ValueError("the linear-convolution form needs interpolation points; given "
                         "matrices have none")

    def to_json(self, form="rational", fractions="G"):
        """As :meth:`ToomCook.to_json`, with ``exact``, ``identity_error``, ``tile_error``
        and ``source`` in place of the points; ``form`` is ``rational`` or ``integer``."""
        if form == "linear":
            self.linear()
        out = super().to_json(form, fractions)
        del out["points"], out["preset"]
        out.update({"source": self.source, "exact": self.exact,
                    "identity_error": str(self.identity_error),
                    "tile_error": 0.0 if self.exact else self.tile_error()})
        return out


#: What an engine with approximate given transforms computes (manifest text): tile engines.
APPROXIMATE_FUNCTION = ("Y = floor(A'^T (U' * V') A' / D^2), U' = G' g G'^T, V' = B'^T d B' "
                        "(algorithm.hardware; * element-wise): approximate given transforms "
                        "(algorithm.transforms), not the correlation")
#: The same for layer engines, whose tiles start at the padded map's origin.
APPROXIMATE_LAYER_FUNCTION = (
    "per output tile (tiles of m x m outputs from the zero-padded map's origin, zeros also "
    "beyond the map): Y = floor(A'^T [sum over C_in of U' * V'] A' / D^2) with the hardware "
    "matrices (algorithm.hardware): approximate given transforms (algorithm.transforms), not "
    "the correlation (winogen.gen.models.winograd_conv2d)")


def transforms_manifest(tc):
    """The manifest's ``transforms`` section of an engine built from given matrices
    (None for point-built algorithms): source, exactness and the measured error."""
    if not isinstance(tc, MatrixToomCook):
        return None
    return {"exact": tc.exact,
            "identity_error": str(tc.identity_error),
            "tile_error": 0.0 if tc.exact else tc.tile_error(),
            "tile_error_definition": "RMS of Y - Y_exact over RMS of Y_exact, 1000 random "
                                     "tiles and filters uniform in [-1, 1] (seed 0), float64 "
                                     "with the given matrices",
            "given": {"AT": rq.format_matrix(tc.given[0]), "G": rq.format_matrix(tc.given[1]),
                      "BT": rq.format_matrix(tc.given[2])}}


def load_transforms(path, m=None, r=None):
    """A :class:`MatrixToomCook` from a transforms file (:mod:`winogen.gen.matrixfile`'s
    format); messages name the file. A file's ``"exact"`` claim must hold."""
    from pathlib import Path
    from .matrixfile import read_matrix_file
    rows, claim = read_matrix_file(path, "transforms file", claims=True)
    try:
        tc = MatrixToomCook(*rows, m=m, r=r, source=Path(path).name)
    except ValueError as e:
        raise ValueError(f"transforms file {str(path)!r}: {e}") from None
    if claim is not None and claim != tc.exact:
        if claim:
            (j, k, l), dev = max(tc.identity_deviation().items(), key=lambda kv: abs(kv[1]))
            raise ValueError(f"transforms file {str(path)!r} claims to be exact, but its "
                             f"identity sum over i of AT[j][i] G[i][k] BT[i][l] - [l = j + k] "
                             f"is {dev} at (j, k, l) = ({j}, {k}, {l}), not 0")
        raise ValueError(f"transforms file {str(path)!r} claims to be approximate, but its "
                         f"matrices are an exact algorithm; drop the claim or set it to true")
    return tc
