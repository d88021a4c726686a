"""The emitted Verilog (and manifest) of a fixed list of configurations, byte for byte.

Recorded before the architecture restructuring (issue 15) and checked after every
change since: a refactoring must not change what a user receives. An intended
change re-records the hashes (``python tests/test_emitted_hashes.py --record``) and
names the configurations it changed, and why, in the commit message.

The manifest is compared without its ``tools`` (versions) and ``schema`` fields.
"""

import hashlib
import json
import sys
from pathlib import Path

import pytest

HASHES = Path(__file__).with_name("emitted_hashes.json")

SMALL_LAYER = ["--max-width", "8", "--max-height", "8", "--max-cin", "4", "--max-cout", "4"]

#: name -> the ``winogen generate`` arguments (without ``-o``).
CONFIGURATIONS = {
    "tile_f23": ["tile", "--m", "2", "--r", "3"],
    "tile_f43": ["tile", "--m", "4", "--r", "3"],
    "tile_f63": ["tile", "--m", "6", "--r", "3"],
    "tile_f43_lavin_pipeline1": ["tile", "--m", "4", "--r", "3", "--preset", "lavin",
                                 "--pipeline", "1"],
    "tile_f25_12bit": ["tile", "--m", "2", "--r", "5", "--data-width", "12"],
    "tile_direct_f23": ["tile", "--m", "2", "--r", "3", "--algorithm", "direct"],
    "tile_f23_online": ["tile", "--m", "2", "--r", "3", "--filter-transform", "online"],
    "tile_f43_keep_scale": ["tile", "--m", "4", "--r", "3", "--keep-scale", "yes"],
    "tile_f23_dsp_ecp5": ["tile", "--m", "2", "--r", "3", "--dsp", "ecp5"],
    "tile_f43_dsp_ecp5_stages": ["tile", "--m", "4", "--r", "3", "--dsp", "ecp5",
                                 "--input-stages", "3", "--pe-stages", "3",
                                 "--output-stages", "4", "--descale-stages", "2"],
    "tile_adder_standard": ["tile", "--m", "2", "--r", "3", "--pe", "adder"],
    "tile_adder_balanced": ["tile", "--m", "2", "--r", "3", "--pe", "adder",
                            "--adder-matrices", "balanced"],
    "tile_direct_adder": ["tile", "--m", "2", "--r", "3", "--pe", "adder",
                          "--algorithm", "direct"],
    "tile_rns_f43_inverse": ["tile", "--m", "4", "--r", "3", "--pe", "rns",
                             "--redundant-moduli", "1"],
    "tile_rns_f23_scaled_special": ["tile", "--m", "2", "--r", "3", "--pe", "rns",
                                    "--moduli", "255,256,257",
                                    "--rns-method", "scaled"],
    "tile_rns_f43_partial": ["tile", "--m", "4", "--r", "3", "--pe", "rns",
                             "--rns-forward-reduction", "partial"],
    "tile_rns_f23_auto": ["tile", "--m", "2", "--r", "3", "--pe", "rns", "--moduli-preset", "auto"],
    "tile_rns_f23_residue_channels": ["tile", "--m", "2", "--r", "3", "--pe", "rns",
                                      "--rns-input-transform", "residue", "--channels", "3",
                                      "--redundant-moduli", "1"],
    "tile_f43_q9_tapwise": ["tile", "--m", "4", "--r", "3", "--wino-width", "9",
                            "--wino-scales", "tapwise"],
    "tile_f23_q8_global": ["tile", "--m", "2", "--r", "3", "--wino-width", "8"],
    "conv_f23": ["conv", "--m", "2", "--r", "3", *SMALL_LAYER],
    "conv_f23_p2x2_requant": ["conv", "--m", "2", "--r", "3", *SMALL_LAYER, "--pin", "2",
                              "--pout", "2", "--output-width", "8"],
    "conv_f23_online_half_up": ["conv", "--m", "2", "--r", "3", *SMALL_LAYER,
                                "--filter-transform", "online", "--output-width", "8",
                                "--rounding", "half_up"],
    "conv_f43_q9_tapwise_p2x2": ["conv", "--m", "4", "--r", "3", *SMALL_LAYER, "--pin", "2",
                                 "--pout", "2", "--wino-width", "9", "--wino-scales", "tapwise"],
    "direct_f23": ["direct", "--m", "2", "--r", "3", *SMALL_LAYER],
    "conv_adder_f23": ["conv", "--m", "2", "--r", "3", "--pe", "adder", *SMALL_LAYER],
    "direct_adder_f23": ["direct", "--m", "2", "--r", "3", "--pe", "adder", *SMALL_LAYER],
    "conv_rns_f23": ["conv", "--m", "2", "--r", "3", "--pe", "rns", "--moduli-preset", "auto",
                     "--redundant-moduli", "1", *SMALL_LAYER, "--pin", "2"],
}


def _main():
    from winogen.cli import main
    return main


def emit(name, out_dir):
    """Generate configuration ``name`` into ``out_dir``; return its hashes."""
    status = _main()(["generate", *CONFIGURATIONS[name], "--name", name, "-o", str(out_dir)])
    assert status == 0, f"generate {name} exited {status}"
    verilog = (Path(out_dir) / f"{name}.v").read_bytes()
    manifest = json.loads((Path(out_dir) / f"{name}.json").read_text())
    for volatile in ("tools", "schema"):
        manifest.pop(volatile, None)
    return {"verilog": hashlib.sha256(verilog).hexdigest(),
            "manifest": hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()}


def _recorded():
    return json.loads(HASHES.read_text())


def test_every_configuration_is_recorded():
    assert sorted(_recorded()) == sorted(CONFIGURATIONS)
    assert len(CONFIGURATIONS) >= 20


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_emitted_verilog_is_unchanged(name, tmp_path, capsys):
    got = emit(name, tmp_path)
    expected = _recorded()[name]
    assert got["verilog"] == expected["verilog"], f"{name}: emitted Verilog changed"
    assert got["manifest"] == expected["manifest"], f"{name}: manifest changed"


if __name__ == "__main__":
    import tempfile
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_emitted_hashes.py --record")
    hashes = {}
    for name in sorted(CONFIGURATIONS):
        with tempfile.TemporaryDirectory() as tmp:
            hashes[name] = emit(name, tmp)
        print(name, hashes[name]["verilog"][:16], file=sys.stderr)
    HASHES.write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n")
