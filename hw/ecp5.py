"""Lattice ECP5 primitives that Yosys cannot infer with their registers.

Yosys maps ``$mul`` onto ``MULT18X18D`` but leaves the block's input, pipeline
and output registers unused: every product then pays the multiplier's whole
combinational delay between two fabric flip-flops, which caps the engine's clock
(the README's measured figures compare both builds). :func:`mult18x18d`
instantiates the block with its registers on ``CLK0``/``CE0``/``RST0`` instead, so
nextpnr times the products from register to register inside the DSP slice.

:data:`MULT18X18D_SIM_MODEL` is a behavioural Verilog model of the subset that
:func:`mult18x18d` uses, for Verilator; it is for simulation only (synthesis uses
Yosys's own ``MULT18X18D`` blackbox), and it stops the simulation if an instance
asks for a mode it does not model.
"""

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Signal, signed

__all__ = ["MULT18X18D_WIDTH", "MULT18X18D_REGISTERS", "mult18x18d", "MULT18X18D_SIM_MODEL",
           "SIM_MODEL_FILE"]

MULT18X18D_WIDTH = 18
#: The block's registers in the order data passes them.
MULT18X18D_REGISTERS = ("input", "pipeline", "output")
SIM_MODEL_FILE = "MULT18X18D_sim.v"


def mult18x18d(m, a, b, *, registers=(), enable=1, name="mult"):
    """Add a signed ``a * b`` MULT18X18D to module ``m``; return its 36-bit product signal.

    Parameters
    ----------
    m : Module
    a, b : Value
        Signed operands of at most 18 bits (sign-extended to 18).
    registers : set of str
        Which of the block's registers to use (:data:`MULT18X18D_REGISTERS`);
        each adds one cycle of latency. ``"input"`` registers both operands.
    enable : Value
        Clock enable of every register used (``CE0``).
    """
    unknown = set(registers) - set(MULT18X18D_REGISTERS)
    if unknown:
        raise ValueError(f"registers must be a subset of {', '.join(MULT18X18D_REGISTERS)}, "
                         f"not {sorted(unknown)!r}")
    for operand, value in (("a", a), ("b", b)):
        if value.shape().width > MULT18X18D_WIDTH or not value.shape().signed:
            raise ValueError(f"{operand} must be a signed value of at most {MULT18X18D_WIDTH} bits, "
                             f"not {value.shape()!r}")
    a18 = Signal(signed(MULT18X18D_WIDTH), name=f"{name}_a")
    b18 = Signal(signed(MULT18X18D_WIDTH), name=f"{name}_b")
    product = Signal(signed(2 * MULT18X18D_WIDTH), name=f"{name}_p")
    m.d.comb += [a18.eq(a), b18.eq(b)]
    clk = lambda reg: "CLK0" if reg in registers else "NONE"
    ports = {f"i_A{i}": a18[i] for i in range(MULT18X18D_WIDTH)}
    ports.update({f"i_B{i}": b18[i] for i in range(MULT18X18D_WIDTH)})
    ports.update({f"o_P{i}": product[i] for i in range(2 * MULT18X18D_WIDTH)})
    m.submodules[name] = Instance(
        "MULT18X18D",
        p_REG_INPUTA_CLK=clk("input"), p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
        p_REG_INPUTB_CLK=clk("input"), p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
        p_REG_PIPELINE_CLK=clk("pipeline"), p_REG_PIPELINE_CE="CE0", p_REG_PIPELINE_RST="RST0",
        p_REG_OUTPUT_CLK=clk("output"), p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        p_RESETMODE="SYNC", p_GSR="DISABLED",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CE0=enable, i_RST0=ResetSignal(),
        **ports)
    return product


def _sim_model():
    w = MULT18X18D_WIDTH
    bits = lambda prefix, count: ", ".join(f"{prefix}{i}" for i in reversed(range(count)))
    params = "\n".join(f'    parameter {reg}_{kind} = "{default}",'
                       for reg in ("REG_INPUTA", "REG_INPUTB", "REG_PIPELINE", "REG_OUTPUT")
                       for kind, default in (("CLK", "NONE"), ("CE", "CE0"), ("RST", "RST0")))
    return f"""\
// Behavioural model of the ECP5 MULT18X18D subset that winogen instantiates:
// signed 18x18 products, registers on CLK0/CE0/RST0 (synchronous reset).
// Simulation only: synthesis uses Yosys's MULT18X18D blackbox (synth_ecp5).
/* verilator lint_off UNUSEDPARAM */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off DECLFILENAME */
module MULT18X18D #(
{params}
    parameter RESETMODE = "SYNC",
    parameter GSR = "DISABLED"
) (
    input {bits("A", w)},
    input {bits("B", w)},
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CE0, RST0,
    output {bits("P", 2 * w)}
);
    initial begin
        if (RESETMODE != "SYNC" || REG_INPUTA_CLK != REG_INPUTB_CLK
                || (REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0")
                || (REG_PIPELINE_CLK != "NONE" && REG_PIPELINE_CLK != "CLK0")
                || (REG_OUTPUT_CLK != "NONE" && REG_OUTPUT_CLK != "CLK0")) begin
            $display("MULT18X18D model: unsupported parameters in %m");
            $finish;
        end
    end
    wire signed [{w - 1}:0] a = {{{bits("A", w)}}};
    wire signed [{w - 1}:0] b = {{{bits("B", w)}}};
    reg signed [{w - 1}:0] a_q, b_q;
    reg signed [{2 * w - 1}:0] pipe_q, out_q;
    always @(posedge CLK0) begin
        if (SIGNEDA !== 1'b1 || SIGNEDB !== 1'b1 || SOURCEA !== 1'b0 || SOURCEB !== 1'b0) begin
            $display("MULT18X18D model: only signed products from the A/B inputs in %m");
            $finish;
        end
        if (RST0) begin
            a_q <= 0; b_q <= 0; pipe_q <= 0; out_q <= 0;
        end else if (CE0) begin
            a_q <= a; b_q <= b; pipe_q <= product; out_q <= piped;
        end
    end
    wire signed [{w - 1}:0] a_in = REG_INPUTA_CLK == "CLK0" ? a_q : a;
    wire signed [{w - 1}:0] b_in = REG_INPUTB_CLK == "CLK0" ? b_q : b;
    wire signed [{2 * w - 1}:0] product = a_in * b_in;
    wire signed [{2 * w - 1}:0] piped = REG_PIPELINE_CLK == "CLK0" ? pipe_q : product;
    assign {{{bits("P", 2 * w)}}} = REG_OUTPUT_CLK == "CLK0" ? out_q : piped;
endmodule
"""


MULT18X18D_SIM_MODEL = _sim_model()
