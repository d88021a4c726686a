"""Toom-Cook/Winograd transforms in another polynomial base (Barabasz, "Quantaized
Winograd/Toom-Cook Convolution for DNNs: Beyond Canonical Polynomials Base", 2020).

F(m, r) evaluates the filter and the signal polynomials at the points and interpolates
the product (:mod:`winogen.gen.toomcook`). Their coefficients need not be monomial ones:
with a base ``p_0, p_1, …`` (``p_j`` of degree ``j``, e.g. Legendre polynomials) and
``T_k`` the k × k matrix whose column ``j`` holds the monomial coefficients of ``p_j``,
the evaluation matrices become ``E_k T_k``. In the correlation form this factors each
transform into a constant *base-change* matrix and a transform in the new base::

    G = G_P · S_g,     Bᵀ = Bᵀ_P · S_d,     Aᵀ = S_y · Aᵀ_P,
    S_g = T_r⁻¹,       S_d = T_nᵀ,          S_y = T_m⁻ᵀ,
    G_P = E_r T_r,     Bᵀ_P = (E_n T_n)⁻ᵀ,  Aᵀ_P = (E_m T_m)ᵀ.

The engine then computes ``d → S_d d S_dᵀ → Bᵀ_P (·) B_P`` (a pre-transform before the
input transform), ``g → S_g g S_gᵀ → G_P (·) G_Pᵀ``, and ``Aᵀ_P M A_P → S_y (·) S_yᵀ``
(a post-transform after the output transform); the products are the same numbers.

Any invertible ``T_k`` is accepted (:func:`change_base`); :func:`legendre_matrix` gives
the Legendre base, which we take to be the paper's (its text was not available here).

In integer hardware each factor is scaled to a primitive integer matrix (its own
content), so the Winograd-domain values of a base-changed engine are those of the
monomial engine times a constant per position, ``V_bc[i][j] = γ_i γ_j V[i][j]``
(:attr:`BaseChange.v_factors`): with exact transforms the output is the same; a
quantized domain rounds ``V_bc`` instead of ``V``, on a grid that differs from the
monomial one wherever ``γ_i γ_j`` is not a power of two.
"""

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from math import lcm

from . import rational as rq

__all__ = ["BASES", "legendre_matrix", "monomial_matrix", "base_matrix", "BaseChange",
           "change_base"]

#: Named polynomial bases.
BASES = ("monomial", "legendre")


def monomial_matrix(k):
    """The identity: the monomial base ``1, x, …, x^(k-1)``."""
    return rq.identity(k)


def legendre_matrix(k):
    """``T_k``: column ``j`` holds the monomial coefficients of the Legendre polynomial
    ``P_j`` (``(j+1) P_{j+1} = (2j+1) x P_j − j P_{j−1}``), exactly."""
    polys = [[Fraction(1)], [Fraction(0), Fraction(1)]]
    while len(polys) < k:
        j = len(polys) - 1
        nxt = [Fraction(0)] * (j + 2)
        for a, c in enumerate(polys[j]):
            nxt[a + 1] += Fraction(2 * j + 1, j + 1) * c
        for a, c in enumerate(polys[j - 1]):
            nxt[a] -= Fraction(j, j + 1) * c
        polys.append(nxt)
    return [[polys[j][a] if a < len(polys[j]) else Fraction(0) for j in range(k)]
            for a in range(k)]


def base_matrix(base, k):
    """``T_k`` of a named base or a given k × k matrix (checked invertible)."""
    if isinstance(base, str):
        if base not in BASES:
            raise ValueError(f"base must be one of {', '.join(BASES)} or a matrix, "
                             f"not {base!r}")
        return monomial_matrix(k) if base == "monomial" else legendre_matrix(k)
    from .matrixfile import parse_matrix, rank
    T = parse_matrix("base", base)
    if (len(T), len(T[0])) != (k, k):
        raise ValueError(f"a base matrix must be {k} x {k} here, not "
                         f"{len(T)} x {len(T[0])}")
    if rank(T) != k:
        raise ValueError(f"a base matrix must be invertible, not of rank {rank(T)}")
    return [list(row) for row in T]


def _primitive(M):
    """``(M / c, c)`` with ``M / c`` a primitive integer matrix and ``c > 0``."""
    c = rq.content([x for row in M for x in row])
    return [[x / c for x in row] for row in M], c


@dataclass(frozen=True)
class BaseChange:
    """F(m, r) in another base: the factors and their integer (hardware) forms.

    Members
    -------
    S_d, S_g, S_y : list of list of Fraction
        Pre-transforms of the data (n × n) and the filter (r × r), post-transform of the
        output (m × m).
    AT_P, G_P, BT_P : list of list of Fraction
        The transforms in the new base.
    """
    m: int
    r: int
    S_d: list
    S_g: list
    S_y: list
    AT_P: list
    G_P: list
    BT_P: list

    @property
    def n(self):
        return self.m + self.r - 1

    def composed(self):
        """``(Aᵀ, G, Bᵀ)`` = ``(S_y Aᵀ_P, G_P S_g, Bᵀ_P S_d)``: the algorithm it computes."""
        return (rq.matmul(self.S_y, self.AT_P), rq.matmul(self.G_P, self.S_g),
                rq.matmul(self.BT_P, self.S_d))

    @cached_property
    def hardware(self):
        """Integer factors and the output divisor.

        Returns
        -------
        dict
            ``S_d``, ``S_g``, ``S_y``, ``BT``, ``G``, ``AT`` (primitive integer matrices:
            ``BT`` and ``G`` per Winograd index, ``AT`` carrying the index scales' numerators)
            and ``denominator`` ``D``: the engine's result
            ``S_y' Aᵀ' [(G' S_g' g S_g'ᵀ G'ᵀ) ⊙ (Bᵀ' S_d' d S_d'ᵀ B')] A' S_y'ᵀ`` is
            ``D²`` times the correlation.
        """
        S_d, c_d = _primitive(self.S_d)
        S_g, c_g = _primitive(self.S_g)
        S_y, c_y = _primitive(self.S_y)
        n, m = self.n, self.m
        BT, G, AT, scale = [], [], [[None] * n for _ in range(m)], []
        for i in range(n):
            cb, cg = rq.content(self.BT_P[i]), rq.content(self.G_P[i])
            ca = rq.content([self.AT_P[j][i] for j in range(m)])
            BT.append([x / cb for x in self.BT_P[i]])
            G.append([x / cg for x in self.G_P[i]])
            for j in range(m):
                AT[j][i] = self.AT_P[j][i] / ca
            # Per dimension the result carries c_y·ca·cg·cb·c_g·c_d for index i.
            scale.append(c_y * ca * cg * cb * c_g * c_d)
        D = lcm(*(s.denominator for s in scale))
        t = [int(s * D) for s in scale]
        AT = [[AT[j][i] * t[i] for i in range(n)] for j in range(m)]
        as_int = rq.as_int_rows
        return {"S_d": as_int(S_d), "S_g": as_int(S_g), "S_y": as_int(S_y),
                "BT": as_int(BT), "G": as_int(G), "AT": as_int(AT), "denominator": D}

    @cached_property
    def v_factors(self):
        """``γ_i``: row ``i`` of the integer ``Bᵀ' S_d'`` over row ``i`` of the monomial
        engine's ``Bᵀ'`` (its content), so that ``V_bc = γ_i γ_j V``."""
        hw = self.hardware
        eff = rq.matmul(hw["BT"], hw["S_d"])
        return tuple(rq.content(row) for row in eff)

    def effective(self):
        """Integer ``(Aᵀ_eff, G_eff, Bᵀ_eff, D)`` of the two stages multiplied out:
        ``Bᵀ_eff = Bᵀ' S_d'``, ``G_eff = G' S_g'``, ``Aᵀ_eff = S_y' Aᵀ'``."""
        hw = self.hardware
        return (rq.as_int_rows(rq.matmul(hw["S_y"], hw["AT"])),
                rq.as_int_rows(rq.matmul(hw["G"], hw["S_g"])),
                rq.as_int_rows(rq.matmul(hw["BT"], hw["S_d"])), hw["denominator"])


def change_base(tc, base="legendre", *, filter_base=None, data_base=None, output_base=None):
    """F(m, r) of ``tc`` (a :class:`~winogen.gen.toomcook.ToomCook`) in another base.

    Parameters
    ----------
    tc : ToomCook
    base : str or matrix
        The base of all three polynomials (``"legendre"``, ``"monomial"``), unless a
        per-polynomial base is given; a matrix is ``T_k`` itself (only with the
        per-polynomial arguments, whose sizes differ).
    filter_base, data_base, output_base : str or matrix, optional
        ``T_r``, ``T_n``, ``T_m`` (names or matrices).

    Raises
    ------
    ValueError
        For an unknown base, a matrix of the wrong size or not invertible.
    """
    m, r, n = tc.m, tc.r, tc.n
    if not isinstance(base, str) and None in (filter_base, data_base, output_base):
        raise ValueError("a base matrix is per polynomial: give filter_base, data_base and "
                         "output_base, not base as a matrix")
    T_r = base_matrix(filter_base if filter_base is not None else base, r)
    T_n = base_matrix(data_base if data_base is not None else base, n)
    T_m = base_matrix(output_base if output_base is not None else base, m)
    M = tc.matrices("G")
    S_g = rq.inverse(T_r)
    S_d = rq.transpose(T_n)
    S_y = rq.transpose(rq.inverse(T_m))
    G_P = rq.matmul(M.G, T_r)                        # G = G_P S_g
    BT_P = rq.matmul(M.BT, rq.inverse(S_d))          # Bᵀ = Bᵀ_P S_d
    AT_P = rq.matmul(rq.transpose(T_m), M.AT)        # Aᵀ = S_y Aᵀ_P
    return BaseChange(m, r, S_d, S_g, S_y, AT_P, G_P, BT_P)
