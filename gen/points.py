"""Interpolation points for Toom-Cook/Winograd algorithms.

A point set for F(m, r) has ``n = m + r - 1`` distinct points: either ``n``
finite rationals, or ``n - 1`` finite rationals plus the point at infinity
(which evaluates a polynomial's leading coefficient). Points are kept as
:class:`fractions.Fraction` so every matrix built from them is exact.
"""

from fractions import Fraction
import numbers

__all__ = ["INF", "Infinity", "PRESETS", "parse_point", "parse_points", "format_point",
           "preset_points", "check_points", "MAX_TILE"]

#: Largest supported tile size ``n = m + r - 1`` (exact and RNS paths go this far).
MAX_TILE = 16


class Infinity:
    """The point at infinity (a singleton, :data:`INF`)."""
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "INF"

    def __str__(self):
        return "inf"

    def __reduce__(self):
        return (Infinity, ())


INF = Infinity()


def parse_point(text):
    """Parse one point: an integer, a fraction ``"1/2"``, a decimal, or ``"inf"``.

    Numbers (``int``, ``Fraction``, finite ``float``) are accepted as well.
    """
    if text is INF:
        return INF
    if isinstance(text, bool):
        raise TypeError(f"point must be a number, a fraction like 1/2, or inf, not {text!r}")
    if isinstance(text, numbers.Rational):
        return Fraction(text)
    if isinstance(text, float):
        if text != text or text in (float("inf"), float("-inf")):
            if text == float("inf"):
                return INF
            raise ValueError(f"point must be a number, a fraction like 1/2, or inf, not {text!r}")
        return Fraction(text)
    if isinstance(text, str):
        s = text.strip().lower()
        if s in ("inf", "infinity", "∞", "+inf"):
            return INF
        try:
            value = Fraction(s)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"point must be a number, a fraction like 1/2, or inf, not {text!r}") from None
        return value
    raise TypeError(f"point must be a number, a fraction like 1/2, or inf, not {text!r}")


def parse_points(points):
    """Parse a comma-separated string or a sequence of points into a tuple."""
    if isinstance(points, str):
        items = [p for p in points.split(",")]
        if any(not p.strip() for p in items):
            raise ValueError(f"points must be a comma-separated list of numbers, not {points!r}")
    else:
        try:
            items = list(points)
        except TypeError:
            raise TypeError(f"points must be a sequence of numbers or a comma-separated string, "
                            f"not {points!r}") from None
    return tuple(parse_point(p) for p in items)


def format_point(point):
    """Exact text form of a point: ``"0"``, ``"-1/2"``, ``"inf"``."""
    return "inf" if point is INF else str(point)


def check_points(points, n):
    """Validate a parsed point tuple for tile size ``n``; return it."""
    if len(points) != n:
        raise ValueError(f"points must hold exactly n = m + r - 1 = {n} distinct points "
                         f"(or {n - 1} finite points plus inf), not {len(points)}")
    seen = set()
    for p in points:
        key = "inf" if p is INF else p
        if key in seen:
            raise ValueError(f"points must be distinct, not {', '.join(map(format_point, points))} "
                             f"(repeated {format_point(p)})")
        seen.add(key)
    return points


# Toom-Cook's canonical points are the small integers 0, 1, -1, 2, -2, ... and
# infinity; Lavin & Gray's published F(2,3) and F(4,3) use exactly these. The
# reciprocal sequence (wincnn's habit) follows each k >= 2 by ±1/k: 0, ±1, ±2,
# ±1/2, ±3, ±1/3, ..., which keeps the dynamic range of large tiles lower.
def _small_points(reciprocals):
    yield Fraction(0)
    k = 1
    while True:
        yield Fraction(k)
        yield Fraction(-k)
        if reciprocals and k > 1:
            yield Fraction(1, k)
            yield Fraction(-1, k)
        k += 1


def _take(reciprocals, n):
    seq = _small_points(reciprocals)
    return tuple(next(seq) for _ in range(n - 1)) + (INF,)


def _canonical(n):
    return _take(False, n)


def _f(*values):
    return tuple(INF if v == "inf" else Fraction(v) for v in values)


# Barabasz, Anderson, Soodhalter & Gregg, "Error analysis and improving the
# accuracy of Winograd convolution for deep neural networks" (ACM TOMS 2020):
# accuracy-optimised points, keyed by tile size n.
_BARABASZ = {
    4: _f(0, -1, 1, "inf"),
    6: _f(0, -1, 1, "1/2", -3, "inf"),
    8: _f(0, "-1/2", "1/2", -1, 1, -2, 2, "inf"),
}


def _lavin(n):
    return _canonical(n)


def _barabasz(n):
    if n not in _BARABASZ:
        sizes = ", ".join(str(k) for k in sorted(_BARABASZ))
        raise ValueError(f"preset 'barabasz' is defined for tile sizes n = m + r - 1 in {{{sizes}}}, "
                         f"not {n}")
    return _BARABASZ[n]


def _reciprocal(n):
    return _take(True, n)


def _default(n):
    # The accuracy-optimised points where the literature gives them, else small
    # points with reciprocals (lower dynamic range than integers alone).
    return _BARABASZ.get(n, _reciprocal(n))


PRESETS = {
    "lavin": _lavin,
    "canonical": _lavin,
    "reciprocal": _reciprocal,
    "barabasz": _barabasz,
    "default": _default,
}


def preset_points(name, n):
    """The points of preset ``name`` for tile size ``n``."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(sorted(PRESETS))}, not {name!r}")
    if not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"tile size n must be a positive integer, not {n!r}")
    return PRESETS[name](int(n))
