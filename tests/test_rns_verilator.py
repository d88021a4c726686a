"""Emitted RNS tile engines under Verilator: lint, bit-exactness, stalls, latency, fault detection.

Each configuration is generated (:func:`winogen.hw.rns.generate_rns_tile`), linted with
``verilator --lint-only -Wall``, built once (cached), and run through the cocotb testbench
:mod:`winogen.sim.tb_rns`, which compares every output tile with the integer direct
correlation and the RNS golden model. Generating the large engines takes Amaranth tens
of seconds, so the generated Verilog is cached too, keyed on the configuration and the
text of every source file of ``winogen.gen`` and ``winogen.hw`` (any change regenerates).
"""

import hashlib
import json
from importlib import metadata
from pathlib import Path

import pytest

import winogen.gen
import winogen.hw
from winogen.gen.rns import RNSTileConfig
from winogen.hw.rns import generate_rns_tile
from winogen.sim import build as vbuild, toolchain

pytestmark = pytest.mark.verilator

CONFIGS = [
    # F(4,3), modular inverses, three 8-bit primes plus a redundant one.
    RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1),
    # F(6,3), integer-scaled matrices on the special set {2¹⁶-1, 2¹⁶, 2¹⁶+1}.
    RNSTileConfig(6, 3, moduli="special-16"),
    # F(2,3) scaled on 251, 253, 255, 256 (2⁸-1 and 2⁸ among them), 256 redundant.
    RNSTileConfig(2, 3, moduli=(251, 253, 255, 256), redundant_moduli=1),
    # Large tile: F(10,3), n = 12, three 8-bit primes.
    RNSTileConfig(10, 3, moduli=(251, 241, 239)),
    # Partial forward reduction: the 20-bit V folded once into an 18-bit signed operand,
    # the PE reducing the 26-bit product.
    RNSTileConfig(6, 3, moduli="8bit-primes-4", redundant_moduli=1, forward_reduction="partial"),
    # Three input channels accumulated per output tile, residue-domain input transform.
    RNSTileConfig(4, 3, moduli="8bit-primes-4", redundant_moduli=1, channels=3,
                  input_transform="residue"),
]


def _source_digest():
    h = hashlib.sha256()
    for package in (winogen.gen, winogen.hw):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    h.update(metadata.version("amaranth").encode())
    return h.hexdigest()


def generated(cfg):
    """``(verilog_path, manifest_path, manifest)``, generated once per configuration and source."""
    key = hashlib.sha256((json.dumps(cfg.to_json(), sort_keys=True) + _source_digest())
                         .encode()).hexdigest()[:16]
    folder = vbuild.cache_root() / "rns-generated" / f"{cfg.module_name}-{key}"
    vpath, jpath = folder / f"{cfg.module_name}.v", folder / f"{cfg.module_name}.json"
    if not (folder / "complete").is_file():
        generate_rns_tile(cfg, folder)
        (folder / "complete").write_text("")
    return vpath, jpath, json.loads(jpath.read_text())


#: Verilator control file of the fault-injection build: only the registers the testbench
#: corrupts are public (making everything public, --public-flat-rw, multiplies the C++ to
#: compile many times over). PE outputs and operands, transform results.
FAULT_VLT = """`verilator_config
public_flat_rw -module "*" -var "term_d*"
public_flat_rw -module "*" -var "a_d1"
public_flat_rw -module "*" -var "y*_d1"
"""


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(cfg, faults=False):
        key = (cfg.module_name, faults)
        if key not in cache:
            vpath, jpath, manifest = generated(cfg)
            sources = [vpath]
            if faults:
                vlt = vpath.with_name("faults.vlt")
                vlt.write_text(FAULT_VLT)
                sources.append(vlt)
            else:
                # Lint once per generated text and Verilator version (the F(10,3) file is large).
                version = ".".join(map(str, toolchain.verilator_version()))
                stamp = vpath.with_name(f"lint-ok-{version}")
                if not stamp.is_file():
                    vbuild.lint([vpath], manifest["top"])
                    stamp.write_text("")
            handle = vbuild.build(sources, manifest["top"])
            cache[key] = (handle, jpath, manifest)
        return cache[key]
    return get


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.module_name)
def test_rns_tile_bit_exact_under_verilator(cfg, built):
    handle, jpath, manifest = built(cfg)
    assert manifest["latency"] == cfg.latency
    assert manifest["multipliers"] == len(cfg.moduli) * cfg.n ** 2
    tiles = "12" if cfg.n >= 12 else "40"
    result = vbuild.run(handle, "winogen.sim.tb_rns", seed=7,
                        testcase=["extremes_and_random_with_stalls", "throughput_and_latency"],
                        extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": tiles})
    assert len(result.passed) == 2


def test_rns_fault_injection_under_verilator(built, tmp_path):
    """1000 single-bit faults in single residue channels: every effective one flagged."""
    cfg = CONFIGS[0]
    handle, jpath, manifest = built(cfg, faults=True)
    report = tmp_path / "faults.json"
    vbuild.run(handle, "winogen.sim.tb_rns", seed=11, testcase="fault_injection",
               extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_FAULTS": "1200",
                          "WINOGEN_CLEAN": "1000", "WINOGEN_FAULT_REPORT": str(report)})
    summary = json.loads(report.read_text())
    assert summary["faults"] == 1200 and summary["effective"] >= 1000
    assert summary["missed"] == 0 and summary["wrong_and_unflagged"] == 0
    assert summary["flag_without_effect"] == 0
    assert summary["clean_tiles"] == 1000 and summary["clean_false_alarms"] == 0
    # Faults reached every channel, the redundant one included, and both PE and transform sites.
    sites = summary["by_site"]
    assert {key.split("/")[1] for key in sites} == {f"ch{i}" for i in range(len(cfg.moduli))}
    assert {key.split("/")[0] for key in sites} == {"P", "V", "Y"}


#: Multi-channel tiles for the ordering rule: ``--m 2 --r 3 --pe rns --moduli-preset auto
#: --channels 3``, without and with a redundant modulus.
CHANNEL_CONFIGS = [RNSTileConfig(2, 3, moduli="auto", channels=3, redundant_moduli=r)
                   for r in (0, 1)]


@pytest.mark.parametrize("cfg", CHANNEL_CONFIGS, ids=lambda c: c.module_name)
@pytest.mark.parametrize("stall", ["0.3", "0.6"])
def test_rns_weights_mid_group_do_not_deadlock(cfg, stall, built):
    """Weight beats at random points (mid-group included), random stalls on every stream:
    the run completes, no weight is accepted inside a channel group, and every output tile
    is bit-exact against the golden model under its group's filter."""
    handle, jpath, manifest = built(cfg)
    assert manifest["rns"]["redundant"] == list(cfg.moduli[len(cfg.base_moduli):])
    result = vbuild.run(handle, "winogen.sim.tb_rns", seed=13,
                        testcase=["weights_at_random_points", "throughput_and_latency"],
                        extra_env={"WINOGEN_MANIFEST": str(jpath), "WINOGEN_TILES": "60",
                                   "WINOGEN_STALL": stall,
                                   "WINOGEN_SEED": str(int(float(stall) * 10))})
    assert len(result.passed) == 2
