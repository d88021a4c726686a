"""Lattice ECP5 block RAM (``DP16KD``) with its output register.

Yosys maps memories onto ``DP16KD`` with ``REGMODE="NOREG"`` only (its
``brams_16kd.txt`` has no output-register option), so every read pays the block's
4.26 ns clock-to-output and the route to the next flip-flop in one cycle.
:func:`ebr_memory` instantiates the blocks of an :class:`~winogen.gen.ebr.EBRPlan` with
``REGMODE="OUTREG"`` instead: the same two-cycle read (address register, output
register) as a synchronous read port followed by one fabric register, with a short
clock-to-output.

Each block is used as a simple dual-port memory: port A writes, port B reads
(the 36-bit mode is the block's pseudo-dual-port mode: data in on ``DIA``/``DIB``, out
on ``DOA``/``DOB``). :data:`DP16KD_SIM_MODEL` is a behavioural Verilog model of that
subset, for Verilator only (synthesis uses Yosys's ``DP16KD`` blackbox); it stops the
simulation if an instance asks for anything else.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Signal

from ..gen.ebr import ECP5_EBR_ADDRESS_BITS, ECP5_EBR_MODES, EBRPlan

__all__ = ["ebr_memory", "EBR_READ_LATENCY", "DP16KD_SIM_MODEL", "DP16KD_SIM_MODEL_FILE"]

#: Cycles from a read address to its data: the block's address and output registers.
EBR_READ_LATENCY = 2
DP16KD_SIM_MODEL_FILE = "DP16KD_sim.v"
_PORT_WIDTH = 18


def ebr_memory(m, plan, *, write_addr, write_data, write_en, read_addr, name):
    """Add the DP16KD blocks of ``plan`` to ``m``; return the read data of each group.

    Parameters
    ----------
    m : Module
    plan : EBRPlan
    write_addr, read_addr : Value
        Word addresses (at most ``plan.block_depth`` words).
    write_data : sequence of Value
        The data of each write group (``plan.group_widths`` bits each).
    write_en : sequence of Value
        The write enable of each group.
    name : str
        Prefix of the instance names.

    Returns
    -------
    list of Signal
        The words of each group at ``read_addr``, :data:`EBR_READ_LATENCY` cycles later.
    """
    if not isinstance(plan, EBRPlan):
        raise TypeError(f"plan must be an EBRPlan, not {plan!r}")
    groups = len(plan.group_widths)
    if len(write_data) != groups or len(write_en) != groups:
        raise ValueError(f"write_data and write_en must have one entry per group ({groups}), "
                         f"not {len(write_data)} and {len(write_en)}")
    words_bits = ECP5_EBR_ADDRESS_BITS - plan.address_shift
    for what, addr in (("write_addr", write_addr), ("read_addr", read_addr)):
        if addr.shape().width > words_bits:
            raise ValueError(f"{what} must have at most {words_bits} bits for "
                             f"{plan.block_depth}-word blocks, not {addr.shape().width}")
    w = plan.data_width
    block_in = [Signal(w, name=f"{name}_b{b}_di") for b in range(plan.blocks)]
    block_out = [Signal(w, name=f"{name}_b{b}_do") for b in range(plan.blocks)]
    read_data = [Signal(width, name=f"{name}_g{g}_rd")
                 for g, width in enumerate(plan.group_widths)]
    for s in plan.slices:
        m.d.comb += [
            block_in[s.block][s.block_lo:s.block_lo + s.width].eq(
                write_data[s.group][s.group_lo:s.group_lo + s.width]),
            read_data[s.group][s.group_lo:s.group_lo + s.width].eq(
                block_out[s.block][s.block_lo:s.block_lo + s.width]),
        ]
    shift = plan.address_shift
    for b in range(plan.blocks):
        if plan.byte_enabled:
            lanes = [Const(0, 1) if g is None else write_en[g] for g in plan.lane_groups[b]]
            low = lanes + [Const(0, 1)] * (shift - len(lanes))
            # the first lane of every block is used: lanes are filled in order
            block_en = Signal(name=f"{name}_b{b}_we")
            m.d.comb += block_en.eq(_any(write_en[g] for g in sorted(
                {g for g in plan.lane_groups[b] if g is not None})))
            we_a = Const(1, 1) if w == 36 else block_en
        else:
            low = [Const(0, 1)] * shift
            block_en = write_en[plan.lane_groups[b][0]]
            we_a = block_en
        ad_a = Signal(ECP5_EBR_ADDRESS_BITS, name=f"{name}_b{b}_ada")
        ad_b = Signal(ECP5_EBR_ADDRESS_BITS, name=f"{name}_b{b}_adb")
        m.d.comb += [ad_a[:shift].eq(_cat(low)), ad_a[shift:].eq(write_addr),
                     ad_b[shift:].eq(read_addr)]
        di_a = block_in[b][:min(w, _PORT_WIDTH)]
        di_b = block_in[b][_PORT_WIDTH:] if w == 36 else Const(0, _PORT_WIDTH)
        do_a = Signal(_PORT_WIDTH, name=f"{name}_b{b}_doa")
        do_b = Signal(_PORT_WIDTH, name=f"{name}_b{b}_dob")
        m.d.comb += block_out[b].eq(_cat([do_a, do_b]) if w == 36 else do_b[:w])
        ports = {}
        for i in range(ECP5_EBR_ADDRESS_BITS):
            ports[f"i_ADA{i}"] = ad_a[i]
            ports[f"i_ADB{i}"] = ad_b[i]
        for i in range(_PORT_WIDTH):
            ports[f"i_DIA{i}"] = di_a[i] if i < len(di_a) else Const(0, 1)
            ports[f"i_DIB{i}"] = di_b[i] if w == 36 else Const(0, 1)
            ports[f"o_DOA{i}"] = do_a[i]
            ports[f"o_DOB{i}"] = do_b[i]
        for port in ("CSA0", "CSA1", "CSA2", "CSB0", "CSB1", "CSB2", "RSTA", "RSTB", "WEB"):
            ports[f"i_{port}"] = Const(0, 1)
        m.submodules[f"{name}_b{b}"] = Instance(
            "DP16KD",
            p_DATA_WIDTH_A=w, p_DATA_WIDTH_B=w,
            p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG",
            p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
            p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
            p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="DISABLED",
            i_CLKA=ClockSignal(), i_CLKB=ClockSignal(),
            i_CEA=block_en, i_WEA=we_a, i_OCEA=Const(1, 1),
            i_CEB=Const(1, 1), i_OCEB=Const(1, 1),
            **ports)
    return read_data


def _cat(values):
    return Cat(*values)


def _any(values):
    values = list(values)
    result = values[0]
    for v in values[1:]:
        result = result | v
    return result


def _sim_model():
    p = _PORT_WIDTH
    a = ECP5_EBR_ADDRESS_BITS
    bits = lambda prefix, count: ", ".join(f"{prefix}{i}" for i in reversed(range(count)))
    depth_of = " :\n        ".join(f"DATA_WIDTH_B == {w} ? {d}" for w, d in ECP5_EBR_MODES) + " : 0"
    return f"""\
// Behavioural model of the ECP5 DP16KD subset that winogen instantiates (--bram ecp5):
// port A writes, port B reads, both ports in one data-width mode (36: the pseudo-dual-port
// mode, data in on DIA/DIB and out on DOA/DOB), byte enables on the low A address bits in
// the 18- and 36-bit modes, REGMODE NOREG or OUTREG, chip selects and resets unused.
// Simulation only: synthesis uses Yosys's DP16KD blackbox (synth_ecp5).
/* verilator lint_off UNUSEDPARAM */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off DECLFILENAME */
/* verilator lint_off WIDTHTRUNC */
/* verilator lint_off WIDTHEXPAND */
module DP16KD #(
    parameter DATA_WIDTH_A = 18,
    parameter DATA_WIDTH_B = 18,
    parameter REGMODE_A = "NOREG",
    parameter REGMODE_B = "NOREG",
    parameter RESETMODE = "SYNC",
    parameter ASYNC_RESET_RELEASE = "SYNC",
    parameter CSDECODE_A = "0b000",
    parameter CSDECODE_B = "0b000",
    parameter WRITEMODE_A = "NORMAL",
    parameter WRITEMODE_B = "NORMAL",
    parameter GSR = "DISABLED"
) (
    input {bits("DIA", p)},
    input {bits("ADA", a)},
    input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    output {bits("DOA", p)},
    input {bits("DIB", p)},
    input {bits("ADB", a)},
    input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output {bits("DOB", p)}
);
    localparam W = DATA_WIDTH_B;
    localparam DEPTH = {depth_of};
    localparam SHIFT = W == 36 ? 5 : W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
    initial begin
        if (DEPTH == 0 || DATA_WIDTH_A != DATA_WIDTH_B || REGMODE_A != REGMODE_B
                || (REGMODE_B != "NOREG" && REGMODE_B != "OUTREG")
                || CSDECODE_A != "0b000" || CSDECODE_B != "0b000") begin
            $display("DP16KD model: unsupported parameters in %m");
            $finish;
        end
    end
    wire [{p - 1}:0] dia = {{{bits("DIA", p)}}};
    wire [{p - 1}:0] dib = {{{bits("DIB", p)}}};
    wire [{a - 1}:0] ada = {{{bits("ADA", a)}}};
    wire [{a - 1}:0] adb = {{{bits("ADB", a)}}};
    wire [35:0] din = W == 36 ? {{dib, dia}} : {{18'b0, dia}};
    wire [3:0] be = W == 36 ? ada[3:0] : W == 18 ? {{2'b0, ada[1:0]}} : 4'b1111;
    reg [35:0] mem [0:DEPTH - 1];
    reg [35:0] read_q, out_q;
    wire [35:0] mask = {{{{9{{be[3]}}}}, {{9{{be[2]}}}}, {{9{{be[1]}}}}, {{9{{be[0]}}}}}} & ((36'd1 << W) - 36'd1);
    always @(posedge CLKA) begin
        if ({{CSA2, CSA1, CSA0, RSTA}} !== 4'b0) begin
            $display("DP16KD model: chip selects and resets must be 0 in %m");
            $finish;
        end
        if (CEA && WEA)
            mem[ada >> SHIFT] <= (mem[ada >> SHIFT] & ~mask) | (din & mask);
    end
    always @(posedge CLKB) begin
        if ({{CSB2, CSB1, CSB0, RSTB, WEB}} !== 5'b0) begin
            $display("DP16KD model: port B only reads, chip selects and resets must be 0 in %m");
            $finish;
        end
        if (CEB) read_q <= mem[adb >> SHIFT];
        if (OCEB) out_q <= read_q;
    end
    wire [35:0] dout = REGMODE_B == "OUTREG" ? out_q : read_q;
    wire [35:0] dout_w = dout & ((36'd1 << W) - 36'd1);
    assign {{{bits("DOA", p)}}} = W == 36 ? dout_w[17:0] : 18'b0;
    assign {{{bits("DOB", p)}}} = W == 36 ? dout_w[35:18] : dout_w[17:0];
endmodule
"""


DP16KD_SIM_MODEL = _sim_model()
