"""``winogen synth``: command-line front end of :func:`winogen.fpga.synth.synth`.

Options are checked before any tool runs: the target and device
(:func:`~winogen.fpga.synth.parse_device`), the clock (refused where no place and
route would use it) and the folder. Errors of the flow (missing folder, manifest or
tool, a tool failure) print as one line, exit status 2.
"""

import argparse
import json
import sys
import time
from pathlib import Path

from ._base import UserError, integer, number, shown

__all__ = ["add_parser", "run"]

_DESCRIPTION = """\
Synthesize a generated design and, for targets that place and route, place and route
it; write OUT/reports/<target>.json and OUT/reports/<target>.md (tool logs in
OUT/reports/<target>/).

{targets}"""

_EPILOG = """\
default clock constraint: {freqs}.
exit status: 0 when the design fits (even if timing fails: see the PASS/FAIL line),
1 when it does not fit the device, 2 on usage errors.

examples:
  winogen synth build/f23 --target ecp5 --device LFE5U-25F-6 --freq 120
  winogen synth build/f23 --target ice40 --device hx8k --nodsp
  winogen synth build/f43 --freq 180 --seed 2
  winogen synth build/f23 --target xilinx7 --json > f23-xc7.json
"""


def add_parser(subparsers):
    """Register the ``synth`` subcommand; its defaults carry ``func=run``."""
    from winogen.fpga.targets import TARGETS, help_text
    targets = tuple(TARGETS)
    freqs = ", ".join(f"{name} {t.default_freq_mhz:g} MHz"
                      for name, t in TARGETS.items() if t.places)
    count_only = "".join(f" or {name}" for name, t in TARGETS.items() if not t.places)
    p = subparsers.add_parser(
        "synth", help="synthesize and place-and-route a generated design, write reports",
        description=_DESCRIPTION.format(targets=help_text(86)),
        epilog=_EPILOG.format(freqs=freqs),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", metavar="OUT",
                   help="generator output folder holding <name>.json (manifest) and the Verilog")
    p.add_argument("--target", default="ecp5", choices=targets,
                   metavar="{" + ",".join(targets) + "}",
                   help="FPGA family and flow (default: ecp5)")
    p.add_argument("--device", default=None,
                   help="part within the family (default: "
                        + ", ".join(t.default_device for t in TARGETS.values())
                        + "); see above")
    p.add_argument("--freq", type=number("--freq", "a positive number of MHz", 0.0, 10000.0),
                   default=None, metavar="MHZ",
                   help="clock constraint for nextpnr in MHz (place and route only: not with "
                        f"--no-place{count_only})")
    from winogen.fpga.synth import MAX_SEED
    p.add_argument("--seed", type=integer("--seed", f"an integer from 0 to {MAX_SEED}", 0, MAX_SEED),
                   default=None, metavar="N",
                   help="nextpnr placer seed (place and route only; default: nextpnr's). "
                        "Another seed can move Fmax by tens of MHz on a large design: "
                        "compare designs over a few seeds")
    p.add_argument("--nodsp", action="store_true",
                   help="map multipliers to LUT logic instead of DSP blocks")
    p.add_argument("--no-place", dest="place", action="store_false",
                   help="stop after Yosys: resource counts without place and route (fast)")
    p.add_argument("--json", action="store_true",
                   help="print the report JSON to stdout instead of the summary table")
    p.set_defaults(func=run)
    return p


def flow_error(exc):
    """Whether ``exc`` is the flow's one-line error about its input (``SynthError``)."""
    return bool(getattr(exc, "winogen_user_error", False))


def check_flow(target, device, freq, place, option_prefix="", seed=None):
    """Refuse a device the target does not have, and a clock or a placer seed nothing
    would use."""
    from winogen.fpga.synth import parse_device
    from winogen.fpga.targets import get_target
    try:
        parse_device(target, device)
    except Exception as exc:
        if not flow_error(exc):
            raise
        text = " ".join(str(exc).split())
        text = "--" + text if text.startswith("device ") else text
        raise UserError(text if text.startswith("--") else f"--device: {text}") from None
    if place and get_target(target).places:
        return
    why = "--no-place" if not place else f"--target {target} (no place and route)"
    if freq is not None:
        raise UserError(f"--freq does not apply with {why}, not {freq:g}")
    if seed is not None:
        raise UserError(f"--seed does not apply with {why}, not {seed}")


def _summary(report, out_dir):
    r = report
    lines = [f"{r['design']} on {r['part']} ({r['target']}, {r['estimate']})",
             f"  {'class':<6} {'primitive':<36} {'used':>8} {'available':>10} {'util':>7}"]
    for k, used in r["resources"].items():
        avail = r["available"].get(k)
        util = f"{100.0 * used / avail:.1f}%" if avail else ""
        lines.append(f"  {k:<6} {r['primitives'][k]:<36} {used:>8} "
                     f"{avail if avail is not None else '':>10} {util:>7}")
    t = r["timing"]
    if t is not None:
        if t["fmax_mhz"] is None:
            lines.append(f"  fmax   no clocked path (constraint {t['constraint_mhz']:g} MHz)")
        else:
            lines.append(f"  fmax   {t['fmax_mhz']:.2f} MHz on {t['clock']} "
                         f"(constraint {t['constraint_mhz']:g} MHz): "
                         f"{'PASS' if t['met'] else 'FAIL'}")
        cp = t["critical_path"]
        if cp is not None:
            lines.append(f"  path   {cp['from']} -> {cp['to']} ({cp['delay_ns']:.2f} ns)")
    else:
        lines.append(f"  fmax   not estimated ({r['estimate']})")
    times = ", ".join(f"{k} {v:.1f} s" for k, v in r["wall_time_s"].items())
    lines.append(f"  time   {times}")
    lines.append(f"  report {Path(out_dir) / 'reports' / (r['target'] + '.md')}")
    return "\n".join(lines)


def _out_text(text):
    """A flow message in the CLI's words: the folder is the positional ``OUT``."""
    text = " ".join(str(text).split())
    return "OUT" + text[len("out_dir"):] if text.startswith("out_dir") else text


def _check_manifest(folder):
    """Refuse a folder without one readable manifest before any tool runs."""
    from winogen.gen import manifest
    read = getattr(manifest, "read_manifest", None)
    if read is None:        # the flow checks it itself
        return
    try:
        read(folder)
    except ValueError as exc:   # ManifestError: the folder's content, the user's input
        raise UserError(_out_text(exc)) from None


def run(args):
    """Run the ``synth`` subcommand: 0 when the design fits, 1 when it does not."""
    from winogen.fpga.synth import synth
    check_flow(args.target, args.device, args.freq, args.place, seed=args.seed)
    folder = Path(args.out_dir)
    if not folder.is_dir():
        raise UserError(f"OUT must be a generator output folder, not {shown(args.out_dir)} "
                        f"({'a file' if folder.exists() else 'no such folder'})")
    _check_manifest(folder)
    start = time.monotonic()

    def progress(stage):
        print(f"winogen synth: [{time.monotonic() - start:6.1f} s] {stage}",
              file=sys.stderr, flush=True)

    try:
        report = synth(args.out_dir, args.target, device=args.device, freq_mhz=args.freq,
                       nodsp=args.nodsp, progress=progress, place=args.place, seed=args.seed)
    except Exception as exc:
        if not flow_error(exc):
            raise
        raise UserError(_out_text(exc)) from None
    if args.json:
        print(json.dumps(report, indent=2))
    elif report["fits"]:
        print(_summary(report, args.out_dir))
    if not report["fits"]:
        md = Path(args.out_dir) / "reports" / f"{report['target']}.md"
        print(f"winogen synth: {report['message']} (report: {md})", file=sys.stderr)
        return 1
    return 0
