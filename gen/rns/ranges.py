"""Ranges: the values an RNS must represent, and the check that moduli cover them."""

from ..bounds import Interval, signed_range, transform2d_intervals, transform_intervals
from ..checks import check_int
from ..models import _check_toomcook
from .common import BOUNDS, _as_interval, _check_method
from .moduli import _as_moduli

__all__ = ["check_range", "required_range", "result_range"]


def _need(iv):
    """The smallest ``M`` whose signed dynamic range holds ``iv``."""
    return max(2 * max(-iv.lo, 0), 2 * max(iv.hi, 0) + 1, 1)


def check_range(moduli, interval):
    """Refuse a moduli set whose dynamic range does not cover ``interval``.

    Parameters
    ----------
    moduli : ModuliSet, sequence of int or preset name
    interval : Interval or (lo, hi)
        The values that must be representable (see :func:`required_range`).

    Returns
    -------
    ModuliSet
        The validated set.

    Raises
    ------
    ValueError
        When ``M`` is too small, naming both ranges.
    """
    ms = _as_moduli(moduli)
    iv = _as_interval(interval)
    if not ms.covers(iv):
        need = _need(iv)
        raise ValueError(f"moduli product {ms.product} must cover the result range "
                         f"[{iv.lo}, {iv.hi}] (needs ≥ {need}, {(need - 1).bit_length()} bits), "
                         f"not {ms.product} ({ms.bits} bits, moduli {list(ms.moduli)})")
    return ms


def result_range(tc, data_interval, weight_interval, channels=1, method="scaled",
                 bound="exact"):
    """Range of the value the RNS must represent, for given operand ranges.

    Parameters
    ----------
    tc : ToomCook
    data_interval, weight_interval : Interval
        Ranges of the activations and weights.
    channels : int
        Input channels summed in the Winograd domain before reverse conversion.
    method : str
        ``"scaled"``: the result carries ``D²``; ``"inverse"``: it is ``Y``.
    bound : str
        ``"exact"`` (default): the tight range of the final value, ``D²`` (or
        1) times the correlation range ``channels · r² · [d]·[g]``. Enough,
        because only the final value must not wrap. ``"transform"``: the
        interval bound of ``Aᵀ[Σ (G g Gᵀ) ⊙ (Bᵀ d B)]A`` stage by stage
        (:func:`~winogen.gen.bounds.transform2d_intervals`), what a binary
        datapath of the scaled result would need; never smaller. Method
        ``"inverse"`` has no integer stages and always uses ``"exact"``.

    Returns
    -------
    Interval
    """
    tc = _check_toomcook(tc)
    method = _check_method(method)
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, not {bound!r}")
    check_int("channels", channels, 1)
    d_iv, w_iv = _as_interval(data_interval), _as_interval(weight_interval)
    hw = tc.hardware()
    if method == "scaled" and bound == "transform":
        # Operand intervals must contain 0 for the row-norm bounds of bounds.py.
        d_iv, w_iv = d_iv.hull(0), w_iv.hull(0)
        u = transform_intervals(hw.G, w_iv, dims=2)
        v = transform_intervals(hw.BT, d_iv, dims=2)
        out = transform2d_intervals(hw.AT, [(a * b).times(channels) for a, b in zip(u, v)])
        return Interval(min(iv.lo for iv in out), max(iv.hi for iv in out))
    y = (d_iv * w_iv).times(tc.r * tc.r * channels)
    return y.scale(hw.scale_divisor(2)) if method == "scaled" else y


def required_range(tc, data_width, weight_width, channels=1, method="scaled", bound="exact"):
    """Range the moduli must cover for ``data_width``/``weight_width``-bit signed operands.

    :func:`result_range` for the full two's complement ranges; pass the
    result to :func:`check_range`. ``required_range(...).width`` is the range
    in bits.
    """
    return result_range(tc, signed_range(data_width), signed_range(weight_width), channels,
                        method, bound)
