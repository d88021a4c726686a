"""cocotb testbench of the zero-skipping layer engine's compressed weight stream
(:mod:`winogen.gen.sparse`), beside :mod:`winogen.sim.tb_layer` whose harness it uses.

Environment: ``WINOGEN_MANIFEST`` (the engine's manifest) and ``WINOGEN_SPARSE_U`` (an
``.npy`` of the layer's Winograd-domain weights ``Û``).
"""

import numpy as np

import cocotb
from cocotb.triggers import ClockCycles

from ..gen.layer import LayerRun, RUN_ERRORS, layer_golden
from .driver import activation_beats, complete_run, output_beats
from .streams import StreamSink, StreamSource
from .tb_layer import LayerHarness, _given_u
from .testbench import engine_manifest


@cocotb.test()
async def bad_entries(dut):
    """A zero-skipping engine's compressed stream with an entry out of range (another lane's
    position, then an input channel beyond C_in): refused by the driver's check, and, sent
    anyway, flagged by ``status.errors`` bit ``weights``; the next config beat clears it and
    a clean layer runs bit-exact."""
    from ..gen.sparse import check_stream, pack_entry
    h = LayerHarness(dut, engine_manifest())
    await h.start()
    c = h.cfg
    assert c.sparse, "bad_entries needs a zero-skipping engine"
    u = _given_u(None)
    rng = np.random.default_rng(5)
    run = LayerRun(min(c.max_height, 6), min(c.max_width, 6), u.shape[1], u.shape[0], 1, 5)
    from .driver import sparse_stream
    sw = sparse_stream(c, u, winograd_weights=True)
    run = complete_run(c, run, u, winograd_weights=True)
    slots = c.lane_slots
    for corrupt in ("position", "channel"):
        beats = [list(map(dict, beat)) for beat in sw.beats]
        k = next(k for k in range(c.sparse_lanes) if beats[0][k]["valid"])
        if corrupt == "position":
            other = (k + 1) % c.sparse_lanes
            beats[0][k]["position"] = sw.lane_map[other * slots]
        else:
            beats[0][k]["cin_index"] = run.cin
        try:
            check_stream(c, run, beats, sw.lane_map)
        except ValueError as exc:
            dut._log.info("driver refuses: %s", exc)
        else:
            raise AssertionError(f"check_stream accepted a bad {corrupt}")
        x = rng.integers(-128, 128, (run.cin, run.height, run.width))
        config = StreamSource(dut, "config", dut.clk)
        weights = StreamSource(dut, "weights", dut.clk)
        acts = StreamSource(dut, "activations", dut.clk)
        sink = StreamSink(dut, "outputs", dut.clk)
        sink.start()
        await config.send([h.pack_config(run)])
        await weights.send([h.pack("weights", [pack_entry(c, e) for e in beat])
                            for beat in beats])
        await acts.send([h.pack("activations", b) for b in activation_beats(c, x)])
        await sink.wait_for(output_beats(c, run), timeout_cycles=50000)
        sink.stop()
        await ClockCycles(dut.clk, 4)
        errors = h.status("errors")
        assert errors == 1 << RUN_ERRORS["weights"], f"{corrupt}: status.errors {errors:#b}"
    # a clean layer: its config beat clears the flag, and it is bit-exact
    x = rng.integers(-128, 128, (run.cin, run.height, run.width))
    y, errors, _ = await h.run_layer(run, x, u, seed=6, winograd_weights=True)
    assert errors == 0 and h.status("errors") == 0
    assert (y == layer_golden(c, run, x, u, winograd_weights=True)).all()
