"""Fixed weights of a weight-specialized layer engine (``generate … --weights FILE.npz``).

A weight-specialized engine has its filters built in: each Winograd-domain product is a
constant product, a zero weight costs no multiplier, no storage and no adder input, and
the weight stream is gone. :class:`FixedWeights` holds the weights as the user gave them,
either raw filters ``w`` (C_out, C_in, r, r), which the engine's filter transform turns
into its ``U`` (``Û`` on a quantized domain), or Winograd-domain weights ``u`` (C_out,
C_in, n, n) as a quantized offline engine's weight stream would carry them (pruned or
learned networks: :mod:`winogen.nets.prune`). :func:`load_weights_file` reads the file.

The weights define the layer's channel counts: the engine computes all ``C_in × C_out``
channel pairs of a tile at once (``p_in = max_cin = C_in``, ``p_out = max_cout = C_out``),
one tile per cycle.
"""

import hashlib
import zipfile

import numpy as np

from .checks import check_integer_values

__all__ = ["check_layer", "FixedWeights", "WEIGHT_KINDS", "load_weights_file",
           "specialized_products", "dsp_products", "DSP_MIN_DIGITS"]

#: The arrays a weights file may hold (exactly one of them).
WEIGHT_KINDS = {
    "w": "raw filters (C_out, C_in, r, r), in the weight width",
    "u": "Winograd-domain weights (C_out, C_in, n, n), a quantized offline domain's Û",
}


class FixedWeights:
    """Weights fixed at generation time.

    Parameters
    ----------
    kind : str
        ``"w"`` (raw filters) or ``"u"`` (Winograd-domain ``Û``): :data:`WEIGHT_KINDS`.
    values : array-like of int
        Four dimensions: (C_out, C_in, r, r) or (C_out, C_in, n, n).

    Two instances are equal when their kind and values are; the hash of the values
    (:attr:`sha256`) names them in the manifest and the module name.
    """

    def __init__(self, kind, values):
        if kind not in WEIGHT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(WEIGHT_KINDS)}, not {kind!r}")
        values = check_integer_values("fixed weight", values)
        if values.ndim != 4 or values.shape[2] != values.shape[3] or min(values.shape) < 1:
            raise ValueError(f"fixed weights must have shape (C_out, C_in, k, k), not "
                             f"{values.shape}")
        values = values.astype(np.int64)
        values.setflags(write=False)
        self.kind = kind
        self.values = values

    @property
    def cout(self):
        return int(self.values.shape[0])

    @property
    def cin(self):
        return int(self.values.shape[1])

    @property
    def sha256(self):
        """SHA-256 of the kind, the shape and the values (int64, little-endian, C order)."""
        h = hashlib.sha256()
        h.update(f"{self.kind}:{self.values.shape}:".encode())
        h.update(self.values.astype("<i8").tobytes())
        return h.hexdigest()

    def __eq__(self, other):
        return (isinstance(other, FixedWeights) and self.kind == other.kind
                and np.array_equal(self.values, other.values))

    def __hash__(self):
        return hash(self.sha256)

    def __repr__(self):
        return f"FixedWeights({self.kind!r}, shape={self.values.shape}, sha256={self.sha256[:12]})"

    def check(self, tile):
        """Refuse weights ``tile`` cannot hold (shape of the kind, the weight width or the
        ``Û`` ranges); returns ``self``."""
        # Messages name the configuration field (the CLI shows it as --weights).
        if self.kind == "w":
            if self.values.shape[2] != tile.r:
                raise ValueError(f"fixed_weights w (raw filters) must have shape (C_out, C_in, "
                                 f"{tile.r}, {tile.r}), not {self.values.shape}")
            check_integer_values("fixed_weights w", self.values, tile.weight_interval)
        else:
            from .layer import check_winograd_weights
            try:
                check_winograd_weights(tile, self.values)
            except ValueError as e:
                raise ValueError(f"fixed_weights u: {e}") from None
        return self

    def core_weights(self, tile):
        """The engine's constant operands (C_out, C_in, n, n): ``U = G g Gᵀ`` (integer
        transforms), ``Û`` on a quantized domain, or the given ``u``."""
        self.check(tile)
        if self.kind == "u":
            return self.values
        return np.asarray(tile.golden_model().filter_transform(self.values), dtype=np.int64)

    def nonzero_fraction(self, tile):
        """The fraction of the engine's constant operands that are not zero."""
        u = self.core_weights(tile)
        return float(np.count_nonzero(u)) / u.size

    # -- JSON (the manifest's config) -------------------------------------------------------------

    def to_json(self):
        return {"kind": self.kind, "shape": list(self.values.shape),
                "values": self.values.ravel().tolist(), "sha256": self.sha256}

    @classmethod
    def from_json(cls, data):
        weights = cls(data["kind"], np.asarray(data["values"], dtype=np.int64)
                      .reshape(data["shape"]))
        if "sha256" in data and data["sha256"] != weights.sha256:
            raise ValueError(f"fixed weights' sha256 must match their values, not "
                             f"{data['sha256']!r}")
        return weights


def check_layer(layer):
    """``layer.fixed_weights`` (a :class:`FixedWeights` or its JSON form) checked against the
    rest of the :class:`~winogen.gen.config.LayerConfig`; returns the :class:`FixedWeights`."""
    fw = layer.fixed_weights
    if isinstance(fw, dict):
        fw = FixedWeights.from_json(fw)
    if not isinstance(fw, FixedWeights):
        raise TypeError(f"fixed_weights must be a FixedWeights, not {fw!r}")
    layer.require_winograd_mul("fixed_weights")
    if layer.harden:
        raise ValueError(f"fixed_weights and harden cannot be combined, not harden="
                         f"{','.join(f'{a}:{b}' for a, b in layer.harden)!r}")
    fw.check(layer.tile)
    for key, want in (("max_cin", fw.cin), ("p_in", fw.cin), ("max_cout", fw.cout),
                      ("p_out", fw.cout)):
        if getattr(layer, key) != want:
            raise ValueError(f"{key} must be {want} with these fixed weights (C_out, C_in = "
                             f"{fw.cout}, {fw.cin}: a weight-specialized engine computes "
                             f"every channel pair of a tile at once), not "
                             f"{getattr(layer, key)!r}")
    for key, default in (("filters_per_beat", 1), ("weight_buffers", 2),
                         ("filter_store", "transformed")):
        if getattr(layer, key) != default:
            raise ValueError(f"{key} does not apply to a weight-specialized engine (it has "
                             f"no weight stream or memory), not {getattr(layer, key)!r}")
    return fw


def load_weights_file(path, flag="--weights"):
    """The :class:`FixedWeights` of an ``.npz`` file holding exactly one integer array,
    ``w`` or ``u`` (:data:`WEIGHT_KINDS`).

    Messages name ``flag`` and say what is accepted. The shape and the values are checked
    against an engine by :meth:`FixedWeights.check` (the configuration does it).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise ValueError(f"{flag} must name an existing .npz file, not {str(path)!r}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"{flag} must be a NumPy .npz file, not {str(path)!r} ({e})") from None
    if not isinstance(arrays, dict) or sorted(arrays) not in (["w"], ["u"]):
        raise ValueError(f"{flag} must hold exactly one array, named w (raw filters) or u "
                         f"(Winograd-domain weights), not {sorted(arrays)!r}")
    (kind, values), = arrays.items()
    if values.dtype.kind not in "iu":
        raise ValueError(f"{flag} array {kind} must hold integers, not dtype {values.dtype}")
    if values.ndim != 4:
        raise ValueError(f"{flag} array {kind} must have 4 dimensions "
                         f"({WEIGHT_KINDS[kind]}), not shape {values.shape}")
    return FixedWeights(kind, values)


#: The cost model's threshold: with DSP blocks (``dsp`` other than ``"inferred"``), a
#: constant product goes to a DSP block when its CSD form has at least this many nonzero
#: digits (``digits - 1`` adders of about the operand's width plus the constant's in the
#: fabric: from 2 adders on, ~36 LUT4 for a 9-bit V by a 10-bit Û on ECP5, a DSP block
#: costs none); 1-digit products (shifts, free) and 2-digit ones (one adder) stay in
#: the fabric, where a DSP block would hold a shift or a single add.
DSP_MIN_DIGITS = 3


def dsp_products(u, dsp):
    """The cost model: a boolean array like ``u``, True where the constant product goes to
    a DSP block (``dsp`` not ``"inferred"`` and :data:`DSP_MIN_DIGITS` CSD digits or more);
    with ``dsp="inferred"`` every product is a shift-add tree."""
    from .csd import csd_digits
    u = np.asarray(u, dtype=np.int64)
    if dsp == "inferred":
        return np.zeros(u.shape, dtype=bool)
    digits = np.vectorize(lambda v: len(csd_digits(int(v))), otypes=[int])(u)
    return digits >= DSP_MIN_DIGITS


def specialized_products(u):
    """Counts of a weight-specialized core's constant products (``u``: C_out, C_in, n, n):
    ``products`` (all channel pairs and positions), ``nonzero`` (those built),
    ``powers_of_two`` (nonzero products that are one shift), ``csd_digits`` (nonzero
    canonical-signed-digit terms of all built products)."""
    from .csd import csd_digits
    u = np.asarray(u, dtype=np.int64)
    nz = u[u != 0]
    digits = [len(csd_digits(int(v))) for v in nz.tolist()]
    return {"products": int(u.size), "nonzero": int(nz.size),
            "powers_of_two": int(sum(d == 1 for d in digits)),
            "csd_digits": int(sum(digits))}
