"""Packing arrays of signed integers into flat payload integers and back.

The layout is that of :class:`amaranth.lib.data.ArrayLayout` of a signed shape as it appears
on a Verilog port: element 0 in the least significant bits, each element in ``width``-bit
two's complement. Pure Python, so golden models and non-cocotb code can use it.
"""

import numbers

__all__ = ["pack_signed", "unpack_signed", "pack_unsigned", "unpack_unsigned"]


def _check_positive(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _check_count(count):
    if not isinstance(count, numbers.Integral) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative integer, not {count!r}")


def _as_int(value):
    # numpy integers are Integral but not int; bool would silently pack as 0/1.
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"Element must be an integer, not {value!r}")
    return int(value)


def pack_signed(values, width):
    """Pack signed integers into one non-negative integer.

    Parameters
    ----------
    values : iterable of :class:`int`
        Elements, each in ``[-2**(width-1), 2**(width-1) - 1]``; element 0 goes to the least
        significant bits. NumPy integers are accepted.
    width : :class:`int`
        Width of each element in bits.

    Returns
    -------
    :class:`int`
        The packed value, in ``[0, 2**(width*len(values)))``.

    Raises
    ------
    ValueError
        If ``width`` is not a positive integer or an element is out of range.
    TypeError
        If an element is not an integer.
    """
    _check_positive("width", width)
    return _pack(values, width, -(1 << (width - 1)), (1 << (width - 1)) - 1, "a signed")


def _pack(values, width, lo, hi, kind):
    mask = (1 << width) - 1
    packed = 0
    for index, value in enumerate(values):
        value = _as_int(value)
        if not lo <= value <= hi:
            raise ValueError(f"Element {index} is {value}, which does not fit in {kind} "
                             f"{width}-bit integer [{lo}, {hi}]")
        packed |= (value & mask) << (index * width)
    return packed


def unpack_signed(value, width, count):
    """Unpack a non-negative integer into ``count`` signed integers.

    Parameters
    ----------
    value : :class:`int`
        The packed value, in ``[0, 2**(width*count))``.
    width : :class:`int`
        Width of each element in bits.
    count : :class:`int`
        Number of elements.

    Returns
    -------
    :class:`list` of :class:`int`
        Elements, element 0 taken from the least significant bits.

    Raises
    ------
    ValueError
        If ``width`` or ``count`` is invalid, or ``value`` does not fit in ``width*count`` bits.
    """
    elements = unpack_unsigned(value, width, count)
    sign = 1 << (width - 1)
    return [element - (element & sign) * 2 for element in elements]


def pack_unsigned(values, width):
    """Pack unsigned integers into one integer, element 0 in the least significant bits.

    Parameters
    ----------
    values : iterable of :class:`int`
        Elements, each in ``[0, 2**width - 1]``.
    width : :class:`int`
        Width of each element in bits.

    Returns
    -------
    :class:`int`

    Raises
    ------
    ValueError
        If ``width`` is not a positive integer or an element is out of range.
    TypeError
        If an element is not an integer.
    """
    _check_positive("width", width)
    return _pack(values, width, 0, (1 << width) - 1, "an unsigned")


def unpack_unsigned(value, width, count):
    """Unpack a non-negative integer into ``count`` unsigned integers.

    Parameters
    ----------
    value : :class:`int`
        The packed value, in ``[0, 2**(width*count))``.
    width : :class:`int`
        Width of each element in bits.
    count : :class:`int`
        Number of elements.

    Returns
    -------
    :class:`list` of :class:`int`

    Raises
    ------
    ValueError
        If ``width`` or ``count`` is invalid, or ``value`` does not fit in ``width*count`` bits.
    """
    _check_positive("width", width)
    _check_count(count)
    value = _as_int(value)
    if not 0 <= value < (1 << (width * count)):
        raise ValueError(f"Packed value {value} does not fit in {count} elements of "
                         f"{width} bits")
    mask = (1 << width) - 1
    return [(value >> (index * width)) & mask for index in range(count)]
