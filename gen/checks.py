"""Parameter checks shared by every configuration and model of :mod:`winogen.gen`.

One place for the Amaranth-style messages ("m must be a positive integer, not 0"),
so that a configuration, a golden model and the CLI word the same mistake alike.
"""

import numbers

import numpy as np

__all__ = ["check_int", "check_choice", "check_bool", "check_name", "check_integer_values"]


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name, value, lo=None, hi=None):
    """``value`` as an ``int`` in ``[lo, hi]`` (either bound optional), else ``ValueError``.

    The message says what is accepted: "a positive integer" (``lo`` 1, no ``hi``),
    "a non-negative integer" (``lo`` 0), "an integer of at least lo", "an integer from
    lo to hi" or "an integer".
    """
    ok = _is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        if hi is not None:
            accepted = f"an integer from {lo} to {hi}"
        else:
            accepted = {None: "an integer", 0: "a non-negative integer",
                        1: "a positive integer"}.get(lo, f"an integer of at least {lo}")
        raise ValueError(f"{name} must be {accepted}, not {value!r}")
    return int(value)


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if not isinstance(value, (str, numbers.Number, type(None))) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")
    return value


def check_bool(name, value):
    """``value`` if it is a ``bool``, else ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_name(name, value):
    """``value`` if it is None or a Verilog (Python) identifier, else ``ValueError``."""
    if value is not None and not (isinstance(value, str) and value.isidentifier()):
        raise ValueError(f"{name} must be a Verilog identifier, not {value!r}")
    return value


def check_integer_values(name, values, interval=None):
    """``values`` as an integer NumPy array whose elements lie in ``interval`` (if given).

    Refuses floats (NaN included: a model computes exact integers, and a float that
    happens to be integral hides a caller's mistake), booleans and anything outside
    the range the hardware port holds, with one line naming ``name``.
    """
    x = np.asarray(values)
    if x.dtype == object:
        if not all(_is_int(v) for v in x.flat):
            bad = next(v for v in x.flat if not _is_int(v))
            raise TypeError(f"{name} values must be integers, not {bad!r}")
    elif not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"{name} values must be integers, not {x.dtype}")
    if interval is not None and x.size:
        lo, hi = x.min(), x.max()
        if lo < interval.lo or hi > interval.hi:
            raise ValueError(f"{name} values must lie in [{interval.lo}, {interval.hi}], "
                             f"not [{lo}, {hi}]")
    return x


def read_json_file(path, where):
    """The JSON value in file ``path``; ``where`` names it in messages
    (e.g. ``"scale file 's.json'"``).

    Raises
    ------
    ValueError
        If the file cannot be read or does not hold valid JSON (one line).
    """
    import json
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(f"{where} must be a readable JSON file, not missing or unreadable "
                         f"({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{where} must hold valid JSON, not text failing at line {e.lineno} "
                         f"({e.msg})") from None
