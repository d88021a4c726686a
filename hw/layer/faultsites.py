"""The layer manifest's ``fault_sites``: the registers of a binary layer engine that hold
the values of the operation-level fault model (:mod:`winogen.gen.faultmodel`).

A cocotb campaign (:mod:`winogen.sim.tb_faults`) flips a bit of one of these registers at
the cycle it holds a chosen step's value and compares the engine's output with
:meth:`~winogen.gen.faultmodel.LayerFaultModel.forward` given the same fault. The
registers come from the cores' own names and stage counts
(:meth:`~winogen.hw.layer.cores.WinogradCore.fault_registers`); Yosys may then name a
register after the port it drives (a register that *is* a block's output), so every name
is resolved against the emitted Verilog text, and a name that does not resolve to a
clocked ``reg`` of the stated width fails the generation.
"""

import re
from functools import cached_property

from .cores import core_latency

__all__ = ["fault_sites", "tile_fault_sites", "resolve_register", "verilog_modules",
           "STEP_ORDER"]

#: The order of the compute steps (the scheduler's loops, ``cig`` innermost).
STEP_ORDER = "for ty: for tx: for cog: for cig"

#: What the index of each site class is, in the fault model's axes (image axis left out).
_INDEX = {
    "input_transform": "(tile_row, tile_col, cout_group, cin, element)",
    "products": "(tile_row, tile_col, cout, cin, element) Winograd; "
                "(tile_row, tile_col, cout, cin, element, tap) direct",
    "lane_sums": "(tile_row, tile_col, cout, cin_group, element)",
    "accumulation": "(tile_row, tile_col, cout, cin_group, element)",
    "output_transform": "(tile_row, tile_col, cout, element)",
    "descale": "(tile_row, tile_col, cout, element)",
    "requantization": "(tile_row, tile_col, cout, element)",
}

_MODULE = re.compile(r"^module (\\?\S+)\s*\(.*?^endmodule", re.M | re.S)
_DECL = re.compile(r"^\s*(reg|wire|input|output)\s+(?:\[(\d+):(\d+)\]\s+)?([A-Za-z_][\w$]*)\b",
                   re.M)
_ASSIGN = re.compile(r"^\s*assign ([A-Za-z_][\w$]*) = ([A-Za-z_][\w$]*)(?:\[(\d+)(?::(\d+))?\])?;",
                     re.M)


class _Module(str):
    """A module's text, with its declarations and aliases parsed once (on first use)."""

    @cached_property
    def declarations(self):
        regs, widths = set(), {}
        for kind, hi, lo, name in _DECL.findall(self):
            width = int(hi) - int(lo) + 1 if hi else 1
            if kind == "reg":
                regs.add(name)
            widths.setdefault(name, width)
        return regs, widths

    @cached_property
    def aliases(self):
        return {a: (src, int(lo or hi or 0)) for a, src, hi, lo in _ASSIGN.findall(self)}

    @cached_property
    def clocked(self):
        return set(re.findall(r"^\s*([A-Za-z_][\w$]*) <=", self, re.M))


def verilog_modules(text):
    """The modules of emitted Verilog: name (without the leading backslash) -> body text."""
    return {m.group(1).lstrip("\\"): _Module(m.group(0)) for m in _MODULE.finditer(text)}


def resolve_register(modules, top, path, width, lsb=0):
    """The clocked ``reg`` that holds the ``width``-bit value ``path`` (relative to ``top``)
    in the emitted Verilog, following whole and sliced ``assign`` aliases.

    Returns
    -------
    (str, int)
        The register's path relative to ``top`` and the lowest bit of the value in it.

    Raises
    ------
    ValueError
        If the module or signal does not exist, is not a clocked register, or is too narrow.
    """
    *scope, name = path.split(".")
    module = ".".join([top, *scope])
    body = modules.get(module)
    if body is None:
        raise ValueError(f"fault site {path}: no module {module!r} in the Verilog")
    if not isinstance(body, _Module):
        body = _Module(body)
    regs, widths = body.declarations
    aliases = body.aliases
    seen = set()
    while name not in regs:
        if name in seen or name not in aliases:
            raise ValueError(f"fault site {path}: {name!r} is not a register of {module!r}")
        seen.add(name)
        name, offset = aliases[name]
        lsb += offset
    if name not in body.clocked:
        raise ValueError(f"fault site {path}: {name!r} of {module!r} is not clocked")
    if widths[name] < lsb + width:
        raise ValueError(f"fault site {path}: {name!r} of {module!r} has {widths[name]} bits, "
                         f"fewer than {lsb + width}")
    return ".".join([*scope, name]), lsb


def fault_sites(config, verilog):
    """The ``fault_sites`` section of a binary layer engine's manifest.

    Parameters
    ----------
    config : LayerConfig
        With a binary tile (Winograd or direct, any PE kind of the binary cores).
    verilog : str
        The engine's emitted Verilog (names are resolved against it).

    Returns
    -------
    dict
        ``reference`` (the top-level register that is high in the cycle a step's tiles are
        at the core's inputs, once per step, steps in ``step_order``), ``step_order``,
        ``lanes`` and ``index`` (how a register maps to the fault model's index), and
        ``classes``: per site class, ``delay`` (clock edges after that cycle at which the
        registers hold the step's values), ``step`` (``each`` step, or the tile's ``last``
        step), ``registers`` (see :meth:`~winogen.hw.layer.cores.WinogradCore.fault_registers`;
        names relative to the top module).
    """
    from ..engines import layer_engine_class
    from .engine import CORE_NAME, CORE_VALID, REQUANTIZER_NAME, REQUANT_STAGES
    from .cores import block_copies
    c = config
    top = c.module_name
    modules = verilog_modules(verilog)
    classes = {}
    for name, site in layer_engine_class(c).core_class.fault_registers(c).items():
        classes[name] = {**site, "registers": [{**r, "name": f"{CORE_NAME}.{r['name']}"}
                                               for r in site["registers"]]}
    # The core's result leaves its last register at the core's latency: the delays
    # summed here from the stage counts must agree with the latency the engine uses.
    last = ("accumulation" if c.algorithm == "direct" else
            "descale" if c.tile.removes_scale else "output_transform")
    if last in classes and classes[last]["delay"] != core_latency(c):
        raise RuntimeError(f"fault sites: {last} at {classes[last]['delay']} edges, the core's "
                           f"latency is {core_latency(c)}")
    if c.output_width is not None:
        ow, mm = c.output_width, c.m ** 2
        classes["requantization"] = {
            "delay": core_latency(c) + REQUANT_STAGES, "step": "last",
            "registers": [{"name": f"{REQUANTIZER_NAME}.{prefix}y", "width": ow,
                           "lsb": (j * mm + e) * ow, "copy": copy, "cout_lane": j,
                           "values": [{"element": e, "shift": 0}]}
                          for copy, prefix in block_copies(c, "requantization")
                          for j in range(c.p_out) for e in range(mm)]}
    for site in classes.values():
        for reg in site["registers"]:
            reg["name"], reg["lsb"] = resolve_register(modules, top, reg["name"], reg["width"],
                                                       reg["lsb"])
    reference, _ = resolve_register(modules, top, CORE_VALID, 1)
    return {
        "reference": reference,
        "step_order": STEP_ORDER,
        "lanes": "cout = cog*P_out + cout_lane, cin = cig*P_in + cin_lane, with (ty, tx, cog, "
                 "cig) the step's; tile_row = ty, tile_col = tx, cout_group = cog, cin_group "
                 "= cig; element: Winograd-domain n*n row-major (input_transform, products, "
                 "lane_sums, accumulation), output m*m row-major (output_transform, descale, "
                 "requantization, and every direct class); tap: a*r + b (direct products)",
        "timing": "the register holds a step's value between the delay-th and the "
                  "(delay+1)-th rising edge after the cycle in which reference is high for "
                  "that step (step 'each': every step; 'last': the tile's last step, the "
                  "values after all its channel groups)",
        "value": "a register holds the values of its 'values': element = register << shift, "
                 "from bit lsb of the Verilog reg, width bits; 'copy' is the copy of a "
                 "hardened block (Fault.copy)",
        "index": {name: _INDEX[name] for name in classes},
        "classes": classes,
    }


#: What the index of each site class of a tile engine is, in
#: :class:`~winogen.gen.faultmodel.TileFaultModel`'s axes (the tile axis left out).
_TILE_INDEX = {
    "input_transform": "(element,)",
    "filter_transform": "(element,), image 0: the filter load (every tile after it)",
    "products": "(element,) Winograd; (element, tap) direct",
    "lane_sums": "(element,)",
    "output_transform": "(element,)",
    "descale": "(element,)",
}


#: The same for an RNS tile engine (:class:`~winogen.gen.rns.faultmodel.RNSTileFaultModel`).
_RNS_INDEX = {
    "input_transform": "(cin, element) binary input transform; (modulus, cin, element) residue",
    "forward_conversion": "(modulus, cin, element)",
    "products": "(modulus, cin, element)",
    "accumulation": "(modulus, cin, element)",
    "output_transform": "(modulus, element)",
    "descale": "(element,)",
}


def tile_fault_sites(config, verilog):
    """The ``fault_sites`` section of a binary tile engine's manifest (:mod:`winogen.hw.tile`).

    Parameters
    ----------
    config : TileConfig or RNSTileConfig
        A binary tile engine (Winograd or direct, ``mul`` or ``adder`` PEs), or an RNS
        tile engine (``forward_reduction="full"``).
    verilog : str
        The engine's emitted Verilog (names are resolved against it).

    Returns
    -------
    dict
        ``reference`` (per step kind, the stream whose transfer starts the count),
        ``advance`` (the condition under which the stallable datapath moves: its
        registers hold a value until an edge in which it is true), ``timing``, ``value``,
        ``index`` and ``classes``: per site class ``delay``, ``step`` (``each``: every
        tile, edges counted only where ``advance`` holds; ``load``: the weight beat,
        every edge counted) and ``registers``
        (see :meth:`winogen.hw.tile.WinogradTile.fault_registers`).
    """
    from ...gen.rns import RNSTileConfig
    from ..rns.tile import RNSTile
    from ..tile import DirectTile, WinogradTile
    c = config
    top = c.module_name
    modules = verilog_modules(verilog)
    rns = isinstance(c, RNSTileConfig)
    if rns:
        classes = RNSTile.fault_registers(c)
        last = "descale"
    else:
        classes = (WinogradTile if c.algorithm == "winograd" else DirectTile).fault_registers(c)
        last = "lane_sums" if c.algorithm == "direct" else \
            "descale" if c.removes_scale else "output_transform"
    if last in classes and classes[last]["delay"] != c.latency:
        raise RuntimeError(f"fault sites: {last} at {classes[last]['delay']} edges, the "
                           f"engine's latency is {c.latency}")
    for site in classes.values():
        for reg in site["registers"]:
            reg["name"], reg["lsb"] = resolve_register(modules, top, reg["name"], reg["width"],
                                                       reg["lsb"])
    index = _RNS_INDEX if rns else _TILE_INDEX
    return {
        "reference": {"each": "tiles", "last": "tiles", "load": "weights"},
        "advance": {"not": "outputs__valid", "or": "outputs__ready"},
        "timing": "a class of step 'each' holds a tile beat's value between the delay-th "
                  "and the next rising edge, counting from the edge that ends the cycle in "
                  "which the beat is accepted (tiles__valid and tiles__ready) and only edges "
                  "at which the datapath advances (outputs__valid low or outputs__ready "
                  "high); step 'last' likewise from the output tile's last beat (its last "
                  "input channel); a class of step 'load' holds the filter's value between "
                  "the delay-th and the (delay+1)-th rising edge after the cycle in which "
                  "the weight beat is accepted, every edge counted",
        "value": "a register holds the values of its 'values': element = register << shift, "
                 "from bit lsb of the Verilog reg, width bits; 'modulus' is the residue "
                 "channel of an RNS engine's register",
        "index": {name: index[name] for name in classes},
        "classes": classes,
    }
