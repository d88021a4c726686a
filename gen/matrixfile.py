"""User transform matrices ``(Aᵀ, G, Bᵀ)``: exact parsing, shape and rank checks, JSON files.

One format serves every place a user gives matrices (AdderNet's ``--adder-matrices FILE``
and the multiply engines' custom transforms): a JSON object ``{"AT": [[...]], "G":
[[...]], "BT": [[...]]}`` whose entries are integers or exact rationals as strings
(``"1/2"``); a transforms file may add ``"exact": true`` (or ``false``), a claim that
is checked. Floats are refused in files (they are not exact); in the Python API a float
is taken as the nearest fraction with a denominator of at most 2^20.

Shapes: ``AT`` is m × n, ``G`` n × r, ``BT`` n × n with ``n = m + r - 1``.
"""

from fractions import Fraction

import numpy as np

from .checks import read_json_file

__all__ = ["parse_entry", "parse_matrix", "rank", "check_shapes", "check_full_rank",
           "read_matrix_file"]


def parse_entry(x):
    """One exact entry: an int, Fraction, ``"p/q"`` string or (API only) a float."""
    if isinstance(x, (bool, np.bool_)):
        raise ValueError(f"matrix entries must be rational numbers, not {x!r}")
    if isinstance(x, np.integer):
        x = int(x)
    try:
        return Fraction(x) if not isinstance(x, float) else Fraction(x).limit_denominator(1 << 20)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ValueError(f"matrix entries must be rational numbers, not {x!r}") from None


def parse_matrix(name, M):
    """``M`` as a tuple of rows of Fractions; refuses ragged or empty matrices."""
    try:
        rows = [list(r) for r in M]
    except TypeError:
        raise ValueError(f"{name} must be a matrix (a sequence of rows), not {M!r}") from None
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise ValueError(f"{name} must be a non-empty rectangular matrix, not {M!r}")
    return tuple(tuple(parse_entry(x) for x in r) for r in rows)


def rank(M):
    """The exact rank of a matrix of Fractions (Gaussian elimination)."""
    rows = [list(row) for row in M]
    found, cols = 0, len(rows[0]) if rows else 0
    for c in range(cols):
        pivot = next((i for i in range(found, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[found], rows[pivot] = rows[pivot], rows[found]
        for i in range(found + 1, len(rows)):
            f = rows[i][c] / rows[found][c]
            rows[i] = [a - f * b for a, b in zip(rows[i], rows[found])]
        found += 1
    return found


def check_shapes(AT, G, BT, m=None, r=None, what="matrices"):
    """Check ``AT (m, n)``, ``G (n, r)``, ``BT (n, n)``, ``n = m + r - 1``; returns (m, r, n).

    ``m`` and ``r``, when given, are the tile's; otherwise they are read off ``AT`` and ``G``.
    """
    mm, rr = len(AT), len(G[0])
    if m is not None and r is not None:
        mm, rr = m, r
    n = mm + rr - 1
    shapes = {"AT": (len(AT), len(AT[0])), "G": (len(G), len(G[0])), "BT": (len(BT), len(BT[0]))}
    expected = {"AT": (mm, n), "G": (n, rr), "BT": (n, n)}
    if shapes != expected:
        raise ValueError(f"{what} must have shapes AT {expected['AT']}, G {expected['G']}, "
                         f"BT {expected['BT']} (n = m + r - 1), not AT {shapes['AT']}, "
                         f"G {shapes['G']}, BT {shapes['BT']}")
    return mm, rr, n


def check_full_rank(AT, G, BT):
    """Refuse degenerate transforms.

    A degenerate transform discards part of its operand for every input (an all-zero
    ``Bᵀ`` makes the engine ignore the activations): no Winograd algorithm has one. ``Bᵀ``
    must be invertible, ``G`` must keep all r filter taps, ``Aᵀ`` must give m independent
    outputs.
    """
    n, r, m = len(BT), len(G[0]), len(AT)
    for name, M, need, what in (("BT", BT, n, f"invertible (rank {n})"),
                                ("G", G, r, f"of full column rank {r}"),
                                ("AT", AT, m, f"of full row rank {m}")):
        found = rank(M)
        if found != need:
            raise ValueError(f"{name} must be {what}, not a degenerate matrix of rank {found}")


def read_matrix_file(path, label, claims=False):
    """The raw ``(AT, G, BT)`` rows of a matrix file, checked for form (not for shape).

    With ``claims``, the file may also hold ``"exact": true|false``, a claim the caller
    checks; the rows are then returned with the claim (None when absent).

    Parameters
    ----------
    path : str or Path
    label : str
        How messages name the file, e.g. ``"adder matrix file"``.

    Raises
    ------
    ValueError
        If the file cannot be read, is not one object with exactly the keys AT, G, BT,
        or holds an entry that is not an integer or a rational string; the message
        names the file.
    """
    where = f"{label} {str(path)!r}"
    data = read_json_file(path, where)
    keys = {"AT", "G", "BT"}
    if not isinstance(data, dict) or not keys <= set(data) <= keys | ({"exact"} if claims else set()):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        allowed = "AT, G, BT (and optionally exact)" if claims else "AT, G, BT"
        raise ValueError(f"{where} must hold an object with keys {allowed}, not {got!r}")
    claim = data.get("exact")
    if claim is not None and not isinstance(claim, bool):
        raise ValueError(f"{where}: exact must be true or false, not {claim!r}")
    for key in ("AT", "G", "BT"):
        rows = data[key]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise ValueError(f"{where}: {key} must be a list of rows, not {rows!r}")
        for row in rows:
            for x in row:
                if isinstance(x, bool) or not isinstance(x, (int, str)):
                    raise ValueError(f"{where}: {key} entries must be integers or rationals "
                                     f"as strings such as \"1/2\", not {x!r}")
    rows = (data["AT"], data["G"], data["BT"])
    return (rows, claim) if claims else rows
