"""Small helpers every hardware module shares: parameter checks and delay registers."""

import numbers

from amaranth.hdl import Signal

from ..gen.bounds import Interval

__all__ = ["check_stages", "check_interval", "delay"]


def check_stages(stages):
    """``stages`` as an ``int``: a non-negative integer (any :class:`numbers.Integral`, not a bool).

    Raises
    ------
    ValueError
        Otherwise, naming the value.
    """
    if not isinstance(stages, numbers.Integral) or isinstance(stages, bool) or stages < 0:
        raise ValueError(f"stages must be a non-negative integer, not {stages!r}")
    return int(stages)


def check_interval(name, value):
    """``value``, which must be an :class:`~winogen.gen.bounds.Interval` (``name`` names it)."""
    if not isinstance(value, Interval):
        raise TypeError(f"{name} must be an Interval, not {value!r}")
    return value


def delay(m, value, stages, name, *, reset_less, enable=None, first=1):
    """``value`` through ``stages`` registers of ``m``'s ``sync`` domain; return the last.

    The registers are ``Signal.like(value)``, named ``{name}_d{first}``,
    ``{name}_d{first + 1}``, ….

    Parameters
    ----------
    m : Module
    value : Value
    stages : int
    name : str
    reset_less : bool
        Whether the registers ignore ``rst``. There is no default: every caller states
        it. ``True`` for datapath values whose validity a valid chain tracks (a reset
        would cost logic and mean nothing); ``False`` for control (valid bits, flags,
        addresses), which must be clean after reset, and wherever the emitted Verilog
        has always reset them.
    enable : Value, optional
        Clock enable of every register (for registers ``EnableInserter`` cannot reach,
        such as those a PE shares with a vendor primitive).
    first : int
        Number of the first register in the names.
    """
    if not isinstance(reset_less, bool):
        raise TypeError(f"reset_less must be a bool, not {reset_less!r}")
    for i in range(first, first + stages):
        reg = Signal.like(value, name=f"{name}_d{i}", reset_less=reset_less)
        if enable is None:
            m.d.sync += reg.eq(value)
        else:
            with m.If(enable):
                m.d.sync += reg.eq(value)
        value = reg
    return value
