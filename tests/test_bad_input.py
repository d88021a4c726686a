"""Malformed invocations of every subcommand: exit 2, one line naming the option, nothing left.

Each case runs in-process through :func:`winogen.cli.main` in an empty working folder
that holds only the inputs the case created; a few run through the console script to
prove it behaves the same. A case passes when the exit status is 2, stderr is exactly
one line ``winogen: error: …`` naming the option typed (and the accepted values where
there is a set), there is no traceback, and the folder holds nothing new.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from winogen.cli import main

WINOGEN = str(Path(sys.executable).with_name("winogen"))

PE = ("adder", "mul", "rns")
TILE = ["generate", "tile", "--m", "2", "--r", "3"]
CONV = ["generate", "conv", "--m", "2", "--r", "3"]
DIRECT = ["generate", "direct", "--m", "2", "--r", "3"]
SIM = ["simulate", "direct", "--m", "2", "--r", "3", "--max-cin", "4", "--max-height", "12",
       "--max-width", "12"]
OUT = ["-o", "out"]
LONG = "x" * 5000
F23 = {"AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
       "G": [[1, 0, 0], ["1/2", "1/2", "1/2"], ["1/2", "-1/2", "1/2"], [0, 0, 1]],
       "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]}


def case(argv, *needles, files=None, marks=(), id=None):
    """One malformed invocation: ``needles`` must all be in the error line (the first
    is the option); ``files`` maps names to contents (str, or None for a folder)."""
    return pytest.param(argv, needles, files or {}, marks=marks, id=id)


def bad_ints(prefix, option, values, *needles, suffix=OUT):
    return [case([*prefix, option, v, *suffix], option, *needles,
                 id=f"{' '.join(prefix[:2])} {option} {v!r}") for v in values]


def bad_choice(prefix, option, value, choices, suffix=OUT):
    return case([*prefix, option, value, *suffix], option, *choices,
                id=f"{' '.join(prefix[:2])} {option} {value!r}")


def manifest_folder(text):
    return {"design": None, "design/design.json": text, "design/design.v": "module design; endmodule"}


CASES = [
    # --- the list -----------------------------------------------------------------
    case(["accuracy", "--m", "2", "--plot", "missing/err.png"], "--plot", "does not exist"),
    case(["accuracy", "--m", "2", "--plot", "file/err.png"], "--plot", "is a file",
         files={"file": "x"}),
    case(["accuracy", "--m", "2", "--plot", "dir.png"], "--plot", "folder",
         files={"dir.png": None}),
    case(["accuracy", "--m", "20"], "--m 20"),
    case([*TILE, "--pe", "rns", "--moduli", str((1 << 67) - 1) + ",251", *OUT], "--moduli",
         id="67-bit modulus"),
    case(["explore", "--pe", "adder", "--dsp", "ecp5", "--no-place", *OUT], "--dsp ecp5",
         "--pe adder"),
    case([*TILE, "--pe", "adder", "--dsp", "ecp5", *OUT], "--dsp ecp5", "--pe adder"),
    case([*DIRECT, "--pe", "adder", "--keep-scale", "yes", *OUT], "--keep-scale"),
    case([*TILE, "--algorithm", "direct", "--pe", "adder", "--keep-scale", "yes", *OUT],
         "--keep-scale"),
    case([*TILE, "--algorithm", "direct", "--points", "0,1,-1,inf", *OUT], "--points"),
    case([*TILE, "--algorithm", "direct", "--filter-transform", "online", *OUT],
         "--filter-transform"),
    case([*TILE, "--algorithm", "direct", "--keep-scale", "no", *OUT], "--keep-scale"),
    case([*DIRECT, "--points", "0,1,-1,inf", *OUT], "--points"),
    case([*DIRECT, "--filter-transform", "offline", *OUT], "--filter-transform"),
    case([*DIRECT, "--keep-scale", "yes", *OUT], "--keep-scale"),
    case([*SIM, "--random-layer", "3x9x9:4", "--shift", "3"], "--shift", "--output-width"),
    case([*TILE, "--freq", "200", *OUT], "--freq", "--bundle"),
    case([*TILE, "--part", "xc7a100tcsg324-1", *OUT], "--part", "--bundle"),
    case(["matrices", "--m", "2", "--r", "3", "--form", "integer", "--fractions", "A"],
         "--fractions", "--form integer"),
    case([*TILE, "-o", ""], "-o"),
    case([*TILE, "--name", "module", *OUT], "--name", "keyword"),
    case([*TILE, "--name", "wire", *OUT], "--name", "keyword"),
    case([*CONV, "--name", "always", *OUT], "--name", "keyword"),
    case(["matrices", "--m", "1_0", "--r", "3"], "--m", "'1_0'"),
    case([*TILE[:3], "1_0", "--r", "3", *OUT], "--m", "'1_0'"),
    case([*CONV, "--pin", "0", *OUT], "--pin"),
    case(["explore", "--freq", "-1", *OUT], "--freq"),
    case(["synth", "design", "--target", "ecp5"], "design", files=manifest_folder("{not json")),
    case([*TILE, "--name", LONG, *OUT], "--name", "5000 characters"),
    case([*TILE, "--name", "x" * 250, *OUT], "--name", "1 to 200 characters"),
    case([*TILE, "--points", LONG, *OUT], "--points", "5000 characters"),
    case(["explore", "--m", LONG, "--no-place", *OUT], "--m", "5000 characters"),
    case([*TILE, "--pe", "adder", "--adder-matrices", "div0.json", *OUT], "--adder-matrices",
         files={"div0.json": json.dumps({**F23, "G": [[1, 0, 0], ["1/0", 1, 1], [1, -1, 1],
                                                      [0, 0, 1]]})},
         id="adder matrix 1/0"),
    case([*TILE, "--pe", "adder", "--adder-matrices", "zero.json", *OUT], "--adder-matrices",
         files={"zero.json": json.dumps({**F23, "BT": [[0] * 4] * 4})},
         id="adder matrix zero BT"),

    # --- matrices ----------------------------------------------------------------------------
    *bad_ints(["matrices", "--r", "3"], "--m", ["0", "x", "-2", "", " 3", "2.0", "0x10"],
              suffix=[]),
    *bad_ints(["matrices", "--m", "2"], "--r", ["0", "y", "1_0"], suffix=[]),
    case(["matrices", "--m", "12", "--r", "6"], "--m 12", "at most 16"),
    case(["matrices", "--m", "2", "--r", "3", "--points", "0,1,1,inf"], "--points", "distinct"),
    case(["matrices", "--m", "2", "--r", "3", "--points", "0,1,x,inf"], "--points"),
    case(["matrices", "--m", "2", "--r", "3", "--points", "0,1,inf"], "--points"),
    case(["matrices", "--m", "2", "--r", "3", "--points", ""], "--points"),
    case(["matrices", "--m", "2", "--r", "3", "--points", "0,1,-1,inf", "--preset", "lavin"],
         "--preset", "--points"),
    bad_choice(["matrices", "--m", "2", "--r", "3"], "--preset", "nope",
               ("barabasz", "canonical", "default", "lavin", "reciprocal"), suffix=[]),
    bad_choice(["matrices", "--m", "2", "--r", "3"], "--form", "cubic",
               ("rational", "integer", "linear"), suffix=[]),
    bad_choice(["matrices", "--m", "2", "--r", "3"], "--fractions", "X", ("G", "A", "B", "F"),
               suffix=[]),
    case(["matrices", "--m", "2", "--r", "3", "--form", "linear", "--fractions", "G"],
         "--fractions"),
    case(["matrices", "--r", "3"], "--m"),
    case(["matrices", "--m", "2", "--r", "3", "--colour", "red"], "--colour"),
    case(["nonsense"], "nonsense", "matrices", "generate", "explore"),

    # --- accuracy ----------------------------------------------------------------------------
    *bad_ints(["accuracy"], "--m", ["x", "2,,4", "0", "1_0", "2,-4"], suffix=[]),
    *bad_ints(["accuracy"], "--r", ["0", "x", "1_0"], suffix=[]),
    *bad_ints(["accuracy"], "--channels", ["0", "x"], suffix=[]),
    *bad_ints(["accuracy"], "--size", ["0", "1_0"], suffix=[]),
    *bad_ints(["accuracy"], "--seed", ["-1", "1_0", "x"], suffix=[]),
    case(["accuracy", "--size", "2", "--r", "3"], "--size", "--r 3"),
    bad_choice(["accuracy"], "--dtype", "int8", ("float16", "float32", "float64"), suffix=[]),
    case(["accuracy", "--presets", "lavin,foo"], "--presets", "barabasz", "lavin"),
    case(["accuracy", "--data", "random,lena"], "--data", "random", "camera", "astronaut"),
    case(["accuracy", "--plot", "err.jpg"], "--plot", ".png"),
    case(["accuracy", "--plot", ""], "--plot"),

    # --- generate tile -----------------------------------------------------------------------
    *bad_ints(TILE, "--data-width", ["1", "17", "x", "1_0"], "2 to 16"),
    *bad_ints(TILE, "--weight-width", ["0", "33"], "2 to 16"),
    *bad_ints(TILE, "--pipeline", ["9", "-1", "x"], "0 to 8"),
    *bad_ints(TILE, "--input-stages", ["9"], "0 to 8"),
    *bad_ints(TILE, "--pe-stages", ["x"], "0 to 8"),
    *bad_ints(TILE, "--output-stages", ["1_0"], "0 to 8"),
    *bad_ints(TILE, "--filter-stages", ["-2"], "0 to 8"),
    *bad_ints(TILE, "--descale-stages", ["9"], "0 to 8"),
    *bad_ints([*TILE, "--pe", "rns"], "--convert-stages", ["x"], "0 to 8"),
    *bad_ints([*TILE, "--pe", "rns"], "--redundant-moduli", ["2", "x"], "0 or 1"),
    *bad_ints([*TILE, "--pe", "rns"], "--channels", ["0", "5000"]),
    bad_choice(TILE, "--algorithm", "fft", ("winograd", "direct")),
    bad_choice(TILE, "--pe", "nand", PE),
    bad_choice(TILE, "--filter-transform", "both", ("online", "offline")),
    bad_choice(TILE, "--keep-scale", "maybe", ("yes", "no")),
    bad_choice(TILE, "--descale", "exact", ("auto", "shift")),
    bad_choice(TILE, "--fold", "B", ("A", "G")),
    bad_choice(TILE, "--dsp", "dsp48", ("inferred", "ecp5")),
    bad_choice([*TILE, "--pe", "rns"], "--rns-method", "crt", ("auto", "scaled", "inverse")),
    bad_choice([*TILE, "--pe", "rns"], "--rns-input-transform", "octal", ("binary", "residue")),
    bad_choice([*TILE, "--pe", "rns"], "--rns-forward-reduction", "lazy", ("full", "partial")),
    case([*TILE[:3], "4", "--r", "3", "--preset", "barabasz", "--descale", "shift", *OUT],
         "--descale shift"),
    case([*TILE, "--pipeline", "0", *OUT], "--pipeline"),
    case([*TILE, "--algorithm", "direct", "--preset", "lavin", *OUT], "--preset"),
    case([*TILE, "--algorithm", "direct", "--descale", "shift", *OUT], "--descale"),
    case([*TILE, "--algorithm", "direct", "--fold", "G", *OUT], "--fold"),
    case([*TILE, "--algorithm", "direct", "--filter-stages", "1", *OUT], "--filter-stages"),
    case([*TILE, "--algorithm", "direct", "--descale-stages", "1", *OUT], "--descale-stages"),
    case([*TILE, "--algorithm", "direct", "--pe", "adder", "--adder-matrices", "balanced", *OUT],
         "--adder-matrices"),
    case([*TILE, "--pe", "adder", "--keep-scale", "yes", *OUT], "--keep-scale"),
    case([*TILE, "--pe", "adder", "--descale", "shift", *OUT], "--descale"),
    case([*TILE[:3], "4", "--r", "3", "--pe", "adder", *OUT], "--adder-matrices"),
    case([*TILE, "--adder-matrices", "balanced", *OUT], "--adder-matrices", "--pe mul"),
    case([*TILE, "--pe", "adder", "--adder-matrices", "mine.txt", *OUT], "--adder-matrices",
         "standard", "balanced"),
    case([*TILE, "--pe", "adder", "--adder-matrices", "missing.json", *OUT], "--adder-matrices"),
    case([*TILE, "--pe", "adder", "--adder-matrices", "bad.json", *OUT], "--adder-matrices",
         files={"bad.json": "{not json"}),
    case([*TILE[:3], "4", "--r", "3", "--pe", "adder", "--adder-matrices", "f23.json", *OUT],
         "--adder-matrices", files={"f23.json": json.dumps(F23)}),
    case([*TILE, "--moduli", "7,11,13", *OUT], "--moduli", "--pe mul"),
    case([*TILE, "--moduli-preset", "special-8", *OUT], "--moduli-preset", "--pe mul"),
    case([*TILE, "--channels", "3", *OUT], "--channels", "--pe mul"),
    case([*TILE, "--rns-method", "scaled", *OUT], "--rns-method", "--pe mul"),
    case([*TILE, "--pe", "adder", "--convert-stages", "1", *OUT], "--convert-stages"),
    case([*TILE, "--pe", "rns", "--filter-transform", "online", *OUT], "--filter-transform"),
    case([*TILE, "--pe", "rns", "--keep-scale", "no", *OUT], "--keep-scale"),
    case([*TILE, "--pe", "rns", "--dsp", "ecp5", *OUT], "--dsp"),
    case([*TILE, "--pe", "rns", "--algorithm", "direct", *OUT], "--algorithm direct"),
    case([*TILE, "--pe", "rns", "--filter-stages", "1", *OUT], "--filter-stages"),
    # --- the quantized Winograd domain (issue 19) -------------------------------------------
    *bad_ints(TILE, "--wino-width", ("1", "x", "33"), "an integer from 2 to 32"),
    case([*TILE, "--wino-width", "12", *OUT], "--wino-width", "from 2 to 11", "not 12"),
    case([*TILE, "--wino-scales", "tapwise", *OUT], "--wino-scales", "--wino-width only"),
    bad_choice(TILE, "--wino-scales", "perchannel", ("global", "tapwise")),
    case([*TILE, "--wino-width", "9", "--pe", "adder", *OUT], "--wino-width", "--pe mul"),
    case([*TILE, "--wino-width", "9", "--pe", "rns", *OUT], "--wino-width", "--pe rns"),
    case([*TILE, "--wino-width", "9", "--algorithm", "direct", *OUT], "--wino-width",
         "direct"),
    case([*TILE[:3], "4", "--r", "3", "--wino-width", "9", "--filter-transform", "online",
          *OUT], "--wino-width", "--filter-transform offline", "power of two"),
    case([*TILE, "--wino-width", "9", "--keep-scale", "yes", *OUT], "--keep-scale",
         "--wino-width"),
    case([*TILE, "--wino-width", "9", "--descale", "shift", *OUT], "--descale", "--wino-width"),
    case([*DIRECT, "--wino-width", "9", *OUT], "--wino-width", "direct"),
    case([*CONV, "--wino-width", "9", "--harden", "products:tmr", *OUT], "--harden",
         "--wino-width 9"),
    case([*CONV, "--wino-scales", "global", *OUT], "--wino-scales", "--wino-width only"),
    case([*TILE, "--pe", "rns", "--moduli", "4,6", *OUT], "--moduli", "coprime"),
    case([*TILE, "--pe", "rns", "--moduli", "7,x", *OUT], "--moduli"),
    case([*TILE, "--pe", "rns", "--moduli", "7,11,13", *OUT], "--moduli", "cover"),
    case([*TILE, "--pe", "rns", "--moduli", "auto-99", *OUT], "--moduli", "auto-99"),
    case([*TILE, "--pe", "rns", "--moduli-preset", "nope", *OUT], "--moduli-preset", "nope"),
    case([*TILE, "--pe", "rns", "--moduli", "7,11", "--moduli-preset", "special-8", *OUT],
         "--moduli-preset", "--moduli"),
    case([*TILE, "-o", "file"], "-o", files={"file": "x"}),
    case([*TILE, "-o", "file/sub"], "-o", "file", files={"file": "x"}),
    case([*TILE, "--name", "1abc", *OUT], "--name"),
    case([*TILE, "--name", "", *OUT], "--name"),
    case([*TILE, "--bundle", "--freq", "-5", *OUT], "--freq"),
    case([*TILE, "--bundle", "--freq", "nan", *OUT], "--freq"),
    case([*TILE, "--bundle", "--freq", "inf", *OUT], "--freq"),
    case([*TILE, "--bundle", "--part", "", *OUT], "--part"),
    case(["generate", "tile", "--r", "3", *OUT], "--m"),
    case(["generate", "tile", "--m", "2", "--r", "3"], "--output"),
    case(["generate", "layer", "--m", "2", "--r", "3", *OUT], "layer", "tile", "conv", "direct"),

    # --- generate conv / direct ------------------------------------------------------------------
    *bad_ints(CONV, "--max-cin", ["0", "x", "5000"], "1 to 4096"),
    *bad_ints(CONV, "--max-width", ["1_0"], "1 to 4096"),
    *bad_ints(DIRECT, "--max-height", ["-1"], "1 to 4096"),
    *bad_ints(DIRECT, "--max-cout", ["0"], "1 to 4096"),
    *bad_ints(CONV, "--pout", ["x", "0"], "1 to 64"),
    *bad_ints(CONV, "--output-width", ["1", "40"], "2 to 32"),
    bad_choice([*CONV, "--output-width", "8"], "--rounding", "up", ("half_even", "half_up")),
    case([*CONV, "--rounding", "half_up", *OUT], "--rounding", "--output-width"),
    case([*DIRECT, "--pe", "rns", *OUT], "--pe rns", "generate conv"),
    case([*CONV, "--pe", "rns", "--channels", "3", *OUT], "--channels", "--max-cin"),
    case([*CONV, "--algorithm", "direct", *OUT], "--algorithm"),
    case([*CONV, "--pin", "2", "--filters-per-beat", "3", *OUT], "--filters-per-beat"),
    case([*CONV, "--filter-store", "raw", *OUT], "--filter-store", "--filter-transform"),
    case([*DIRECT, "--filter-store", "raw", *OUT], "--filter-store"),
    bad_choice(CONV, "--bram", "m20k", ("inferred", "ecp5")),
    case([*CONV, "--bram", "ecp5", "--max-width", "4096", "--max-cin", "64", *OUT], "--bram",
         "16384 words"),
    case([*DIRECT, "--preset", "lavin", *OUT], "--preset"),
    case([*DIRECT, "--descale", "shift", *OUT], "--descale"),
    case([*DIRECT, "--pe", "adder", "--adder-matrices", "balanced", *OUT], "--adder-matrices"),
    case([*CONV, "--moduli", "7,11,13", *OUT], "--moduli", "--pe mul"),
    case([*CONV, "--pe", "rns", "--moduli", "7,11,13", *OUT], "--moduli", "cover"),
    case([*CONV, "-o", "f"], "-o", files={"f": "x"}),
    case([*DIRECT, "--freq", "100", *OUT], "--freq", "--bundle"),

    # --- simulate ------------------------------------------------------------------------------
    case([*SIM, "--random-layer", "3x9"], "--random-layer", "CINxHxW:COUT"),
    case([*SIM, "--random-layer", "x"], "--random-layer"),
    case([*SIM, "--random-layer", "3x9x9:4:2"], "--random-layer"),
    case([*SIM, "--random-layer", "5x9x9:4"], "--random-layer", "cin"),
    case([*SIM, "--random-layer", "3x13x9:4"], "--random-layer", "height"),
    case([*SIM, "--random-layer", "3x9x9:4", "--padding", "2"], "--padding", "0 or 1"),
    case([*SIM, "--random-layer", "3x9x9:4", "--padding", "x"], "--padding"),
    case([*SIM, "--random-layer", "3x9x9:4", "--output-width", "8", "--shift", "99"], "--shift"),
    *bad_ints([*SIM, "--random-layer", "1x9x9:2"], "--kernel", ["0", "16", "x"], "1 to 15",
              suffix=[]),
    bad_choice([*SIM, "--random-layer", "1x9x9:2"], "--stride", "3", ("1", "2"), suffix=[]),
    case([*SIM, "--random-layer", "1x9x9:2", "--kernel", "5", "--padding", "5"], "--padding",
         "below the kernel size 5"),
    case([*SIM, "--random-layer", "3x9x9:2", "--kernel", "5"], "--random-layer", "4 pieces",
         "cin"),
    case([*SIM, "--random-layer", "1x3x3:2", "--kernel", "7", "--padding", "1"],
         "--random-layer", "does not fit"),
    case([*SIM, "--pe", "adder", "--random-layer", "1x9x9:2", "--stride", "2"], "--stride 2",
         "multiplying PE", "--pe adder"),
    case([*SIM, "--random-layer", "3x9x9:4", "--stall", "1.5"], "--stall", "[0, 1)"),
    case([*SIM, "--random-layer", "3x9x9:4", "--stall", "-0.1"], "--stall"),
    case([*SIM, "--random-layer", "3x9x9:4", "--stall", "nan"], "--stall"),
    case([*SIM, "--random-layer", "3x9x9:4", "--seed", "-1"], "--seed"),
    case([*SIM, "--random-layer", "3x9x9:4", "--seed", "1_0"], "--seed"),
    case([*SIM, "--random-layer", "3x9x9:4", "--data-width", "1"], "--data-width"),
    case([*SIM, "--random-layer", "3x9x9:4", "--keep-scale", "yes"], "--keep-scale"),
    case([*SIM, "--random-layer", "3x9x9:4", "--bundle"], "--bundle"),
    case([*SIM], "--random-layer"),
    case(["simulate", "tile", "--m", "2", "--r", "3", "--random-layer", "3x9x9:4"],
         "tile", "conv", "direct"),

    # --- synth ---------------------------------------------------------------------------------
    case(["synth", "missing"], "missing"),
    case(["synth", "file"], "file", files={"file": "x"}),
    case(["synth", "empty"], "empty", files={"empty": None}),
    case(["synth", "design", "--target", "vivado"], "--target", "ecp5", "ice40", "xilinx7",
         files=manifest_folder("{}")),
    case(["synth", "design", "--device", "LFE5U-99F"], "--device", "LFE5U-99F",
         files=manifest_folder("{}")),
    case(["synth", "design", "--target", "ice40", "--device", "up9k"], "--device", "up9k",
         files=manifest_folder("{}")),
    case(["synth", "design", "--freq", "-1"], "--freq", files=manifest_folder("{}")),
    case(["synth", "design", "--freq", "x"], "--freq", files=manifest_folder("{}")),
    case(["synth", "design", "--freq", "100", "--no-place"], "--freq", "--no-place",
         files=manifest_folder("{}")),
    case(["synth", "design", "--freq", "100", "--target", "xilinx7"], "--freq", "xilinx7",
         files=manifest_folder("{}")),
    case(["synth"], "OUT"),

    # --- explore -------------------------------------------------------------------------------
    *bad_ints(["explore", "--no-place"], "--m", ["x", "0", "1_0"]),
    *bad_ints(["explore", "--no-place"], "--r", ["-3"]),
    *bad_ints(["explore", "--no-place"], "--pipeline", ["9"], "0 to 8"),
    *bad_ints(["explore", "--no-place"], "--jobs", ["0", "x", "65"], "1 to 64"),
    case(["explore", "--widths", "8y4", "--no-place", *OUT], "--widths", "DxW"),
    case(["explore", "--algorithms", "fft", "--no-place", *OUT], "--algorithms", "winograd",
         "direct"),
    case(["explore", "--dsp", "dsp48", "--no-place", *OUT], "--dsp", "inferred", "ecp5"),
    case(["explore", "--pe", "nand", "--no-place", *OUT], "--pe", *PE),
    case(["explore", "--presets", "foo", "--no-place", *OUT], "--presets", "lavin"),
    case(["explore", "--filter-transforms", "both", "--no-place", *OUT], "--filter-transforms",
         "online", "offline"),
    case(["explore", "--pe", "rns", "--moduli", "foo", "--no-place", *OUT], "--moduli"),
    case(["explore", "--pe", "rns", "--redundant-moduli", "2", "--no-place", *OUT],
         "--redundant-moduli"),
    case(["explore", "--pe", "rns", "--rns-method", "crt", "--no-place", *OUT], "--rns-method",
         "auto", "scaled", "inverse"),
    case(["explore", "--pe", "rns", "--rns-forward-reduction", "lazy", "--no-place", *OUT],
         "--rns-forward-reduction", "full", "partial"),
    case(["explore", "--moduli", "special-8", "--no-place", *OUT], "--moduli", "pe rns"),
    case(["explore", "--pe", "rns", "--algorithms", "direct", "--no-place", *OUT], "--pe rns"),
    case(["explore", "--m", "4", "--pe", "adder", "--algorithms", "winograd", "--no-place", *OUT],
         "F(4,3)", "--adder-matrices"),
    case(["explore", "--layer", "16x16", "--no-place", *OUT], "--layer", "HxWxCINxCOUT"),
    case(["explore", "--layer", "0x16x16x8", "--no-place", *OUT], "--layer"),
    case(["explore", "--engine", "foo", "--no-place", *OUT], "--engine", "tile", "layer"),
    case(["explore", "--pin", "0", "--no-place", *OUT], "--pin"),
    case(["explore", "--target", "asic", *OUT], "--target", "ecp5", "ice40", "xilinx7"),
    case(["explore", "--device", "LFE5U-99F", *OUT], "--device"),
    case(["explore", "--freq", "100", "--no-place", *OUT], "--freq", "--no-place"),
    case(["explore", "--grid", "missing.toml", *OUT], "--grid"),
    case(["explore", "--no-place", "--executor", "dask", *OUT], "--executor dask",
         "--scheduler"),
    case(["explore", "--no-place", "--scheduler", "tcp://h:8786", *OUT], "--scheduler",
         "--executor dask"),
    bad_choice(["explore", "--no-place"], "--executor", "nonsense", ("local", "dask")),
    case(["explore", "--no-place", "--executor", "dask", "--scheduler", "tcp://h:8786", "-j", "2",
          *OUT], "--jobs", "--executor dask"),
    case(["explore", "--no-place", "--executor", "dask", "--scheduler", "h", *OUT], "--scheduler",
         "tcp://HOST:8786"),
    case(["explore", "--grid", "bad.toml", *OUT], "--grid", files={"bad.toml": "m = [2\n"}),
    case(["explore", "--grid", "colour.toml", *OUT], "--grid", "colour",
         files={"colour.toml": 'colour = "red"\n'}),
    case(["explore", "--grid", "m.toml", "--no-place", *OUT], "--grid", "m",
         files={"m.toml": "m = [0]\n"}),
    case(["explore", "-o", ""], "-o"),
    case(["explore", "-o", "f"], "-o", files={"f": "x"}),
    case(["explore", "--no-place"], "--output"),
    # --- winogen faults ----------------------------------------------------------------
    case(["faults"], "--output"),
    case(["faults", "--engines", "f63", *OUT], "--engines", "direct", "f23", "f43"),
    case(["faults", "--engines", "f23,f23", *OUT], "--engines", "repeat"),
    case(["faults", "--bers", "1e-6,x", *OUT], "--bers", "[0, 0.5]"),
    case(["faults", "--bers", "0.7", *OUT], "--bers", "[0, 0.5]"),
    case(["faults", "--study", "speed", *OUT], "--study", "accuracy", "error", "vulnerability"),
    case(["faults", "--classes", "multipliers", *OUT], "--classes", "products", "lane_sums"),
    case(["faults", "--classes", "output_transform", "--engines", "direct", *OUT],
         "--classes", "direct", "output_transform"),
    case(["faults", "--classes", "products", "--study", "vulnerability", *OUT],
         "--classes", "vulnerability"),
    case(["faults", "--images", "360", *OUT], "--images", "1 to 359"),
    case(["faults", "--trials", "0", *OUT], "--trials"),
    case(["faults", "--seed", "-1", *OUT], "--seed"),
    case(["faults", "-o", "f"], "-o", files={"f": "x"}),
    case(["faults", "--harden", "f99=products:tmr", *OUT], "--harden", "direct", "f23", "f43"),
    case(["faults", "--harden", "direct=descale:tmr", *OUT], "--harden", "descale"),
    case(["faults", "--harden", "f23=products:qmr", *OUT], "--harden", "tmr", "dmr"),
    case(["faults", "--harden", "f23=auto:0", *OUT], "--harden", "budget"),
    case(["faults", "--study", "vulnerability", "--harden", "f23=products:tmr", *OUT],
         "--harden", "accuracy"),
    case(["faults", "--scheduler", "tcp://127.0.0.1:8786", *OUT], "--scheduler", "dask"),
    case(["faults", "--executor", "dask", *OUT], "--scheduler"),
    case(["faults", "--executor", "dask", "--scheduler", "tcp://h:1", "-j", "2", *OUT], "-j"),
    case(["faults", "--injections", "10", *OUT], "--injections", "--rtl"),
    case(["faults", "--costs", "--study", "accuracy", *OUT], "--costs", "vulnerability"),
    case(["faults", "--rtl", "nowhere", *OUT], "--rtl"),
    case(["faults", "--rtl", "design", "--bers", "1e-6", *OUT], "--bers", "--rtl",
         files=manifest_folder('{"name": "design", "verilog": "design.v"}')),
    # issue 18's list: a BER outside its range, an unknown site class, an unknown register,
    # a hardening spec that names no block (an unreachable scheduler: test_faults_cluster)
    case(["faults", "--bers", "-0.1", *OUT], "--bers", "[0, 0.5]", "-0.1"),
    case(["faults", "--bers", "2", *OUT], "--bers", "[0, 0.5]", "'2'"),
    case(["faults", "--rtl", "design", "--classes", "pe_outputs", *OUT], "--classes",
         "pe_outputs", files=manifest_folder('{"name": "design", "verilog": "design.v"}')),
    case(["faults", "--rtl", "design", *OUT], "--rtl", "unknown register", "pe0.term",
         files=manifest_folder(
             '{"name": "design", "kind": "tile", "top": "design", "verilog": ["design.v"], '
             '"fault_sites": {"classes": {"products": {"delay": 1, "step": "each", '
             '"registers": [{"name": "pe0.term", "width": 4, "lsb": 0, "copy": 0, '
             '"values": [{"element": 0, "shift": 0}]}]}}}}')),
    case(["faults", "--harden", "f23=", *OUT], "--harden", "at least one CLASS:SCHEME"),
    case(["faults", "--harden", "f23=products", *OUT], "--harden", "CLASS:SCHEME",
         "'products'"),
]


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _make(root, files):
    for name, text in files.items():
        path = root / name
        if text is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def check(status, out, err, needles):
    assert status == 2, (status, err[-2000:])
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err[-2000:]
    assert lines[0].startswith("winogen: error: ") and "Traceback" not in err
    assert len(lines[0]) < 700, lines[0][:200]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_the_table_is_large():
    assert len(CASES) >= 130


@pytest.mark.parametrize("argv, needles, files", CASES)
def test_malformed_invocation(argv, needles, files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _make(tmp_path, files)
    before = _tree(tmp_path)
    status = main(argv)
    captured = capsys.readouterr()
    check(status, captured.out, captured.err, needles)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("argv, needles, files", [
    CASES[0].values, CASES[5].values, CASES[23].values,
    (["generate", "conv", "--m", "2", "--r", "3", "--max-cin", "x", "-o", "out"],
     ("--max-cin", "1 to 4096"), {}),
])
def test_console_script(argv, needles, files, tmp_path):
    _make(tmp_path, files)
    before = _tree(tmp_path)
    run = subprocess.run([WINOGEN, *argv], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    check(run.returncode, run.stdout, run.stderr, needles)
    assert _tree(tmp_path) == before
