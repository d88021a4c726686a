"""Lattice Nexus (CrossLink-NX, Certus-NX) multiplier primitives with their registers.

Yosys's ``synth_nexus`` maps every ``$mul`` up to 18 × 18 to a whole ``MULT18X18``
block, 9 × 9 products included, so a narrow (quantized) Winograd domain saves no DSP
blocks when its products are inferred. :func:`nexus_mult` instantiates the block that
fits instead: ``MULT9X9`` when both operands fit 9 bits (two of them share one 18 × 18
block), else ``MULT18X18``, with the block's input and output registers on the PE's
clock enable, as :mod:`winogen.hw.ecp5` does for ECP5's ``MULT18X18D``.

:data:`NEXUS_MULT_SIM_MODEL` is a behavioural Verilog model of the subset used, for
Verilator (synthesis uses Yosys's own cells); it stops the simulation if an instance asks
for a mode it does not model.
"""

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Signal, signed

from ..gen.config import NEXUS_MULT9_WIDTH

__all__ = ["NEXUS_MULT_WIDTH", "NEXUS_REGISTERS", "nexus_block", "nexus_mult",
           "NEXUS_MULT_SIM_MODEL", "NEXUS_SIM_MODEL_FILE"]

NEXUS_MULT_WIDTH = 18
#: The block's registers in the order data passes them.
NEXUS_REGISTERS = ("input", "output")
NEXUS_SIM_MODEL_FILE = "NEXUS_MULT_sim.v"


def nexus_block(a_width, b_width):
    """``(primitive, operand width)`` for signed operands of these widths."""
    widest = max(a_width, b_width)
    if widest <= NEXUS_MULT9_WIDTH:
        return "MULT9X9", NEXUS_MULT9_WIDTH
    if widest <= NEXUS_MULT_WIDTH:
        return "MULT18X18", NEXUS_MULT_WIDTH
    raise ValueError(f"operands must be at most {NEXUS_MULT_WIDTH} bits wide for a Nexus "
                     f"multiplier block, not {widest}")


def nexus_mult(m, a, b, *, registers=(), enable=1, name="mult"):
    """Add a signed ``a * b`` on a Nexus ``MULT9X9`` or ``MULT18X18`` to module ``m``;
    return the product signal (18 or 36 bits).

    Parameters
    ----------
    m : Module
    a, b : Value
        Signed operands (sign-extended to the block's width).
    registers : set of str
        Which of the block's registers to use (:data:`NEXUS_REGISTERS`); each adds one
        cycle of latency. ``"input"`` registers both operands.
    enable : Value
        Clock enable of every register used (``CEA``, ``CEB``, ``CEOUT``).
    """
    unknown = set(registers) - set(NEXUS_REGISTERS)
    if unknown:
        raise ValueError(f"registers must be a subset of {', '.join(NEXUS_REGISTERS)}, "
                         f"not {sorted(unknown)!r}")
    for operand, value in (("a", a), ("b", b)):
        if not value.shape().signed:
            raise ValueError(f"{operand} must be a signed value, not {value.shape()!r}")
    primitive, width = nexus_block(a.shape().width, b.shape().width)
    a_in = Signal(signed(width), name=f"{name}_a")
    b_in = Signal(signed(width), name=f"{name}_b")
    product = Signal(signed(2 * width), name=f"{name}_p")
    m.d.comb += [a_in.eq(a), b_in.eq(b)]
    mode = lambda reg: "REGISTER" if reg in registers else "BYPASS"
    m.submodules[name] = Instance(
        primitive,
        p_REGINPUTA=mode("input"), p_REGINPUTB=mode("input"), p_REGOUTPUT=mode("output"),
        p_GSR="DISABLED", p_RESETMODE="SYNC",
        i_A=a_in, i_B=b_in, i_CLK=ClockSignal(),
        i_CEA=enable, i_RSTA=ResetSignal(), i_CEB=enable, i_RSTB=ResetSignal(),
        i_CEOUT=enable, i_RSTOUT=ResetSignal(),
        i_SIGNEDA=1, i_SIGNEDB=1,
        o_Z=product)
    return product


def _module(primitive, w):
    return f"""\
module {primitive} #(
    parameter REGINPUTA = "REGISTER",
    parameter REGINPUTB = "REGISTER",
    parameter REGOUTPUT = "REGISTER",
    parameter GSR = "ENABLED",
    parameter RESETMODE = "SYNC"
) (
    input [{w - 1}:0] A,
    input [{w - 1}:0] B,
    input CLK, CEA, RSTA, CEB, RSTB, SIGNEDA, SIGNEDB, RSTOUT, CEOUT,
    output [{2 * w - 1}:0] Z
);
    initial begin
        if (RESETMODE != "SYNC" || REGINPUTA != REGINPUTB
                || (REGINPUTA != "REGISTER" && REGINPUTA != "BYPASS")
                || (REGOUTPUT != "REGISTER" && REGOUTPUT != "BYPASS")) begin
            $display("{primitive} model: unsupported parameters in %m");
            $finish;
        end
    end
    reg signed [{w - 1}:0] a_q, b_q;
    reg signed [{2 * w - 1}:0] z_q;
    always @(posedge CLK) begin
        if (SIGNEDA !== 1'b1 || SIGNEDB !== 1'b1) begin
            $display("{primitive} model: only signed products in %m");
            $finish;
        end
        if (RSTA) a_q <= 0; else if (CEA) a_q <= A;
        if (RSTB) b_q <= 0; else if (CEB) b_q <= B;
        if (RSTOUT) z_q <= 0; else if (CEOUT) z_q <= product;
    end
    wire signed [{w - 1}:0] a_in = REGINPUTA == "REGISTER" ? a_q : A;
    wire signed [{w - 1}:0] b_in = REGINPUTB == "REGISTER" ? b_q : B;
    wire signed [{2 * w - 1}:0] product = a_in * b_in;
    assign Z = REGOUTPUT == "REGISTER" ? z_q : product;
endmodule
"""


NEXUS_MULT_SIM_MODEL = (
    "// Behavioural models of the Lattice Nexus MULT9X9 and MULT18X18 subset that winogen\n"
    "// instantiates: signed products, input and output registers (synchronous reset).\n"
    "// Simulation only: synthesis uses Yosys's own cells (synth_nexus).\n"
    "/* verilator lint_off UNUSEDPARAM */\n/* verilator lint_off UNUSEDSIGNAL */\n"
    "/* verilator lint_off DECLFILENAME */\n/* verilator lint_off MULTITOP */\n"
    "// String parameters compared with literals of another length (\"BYPASS\"):\n"
    "/* verilator lint_off WIDTHEXPAND */\n/* verilator lint_off WIDTHTRUNC */\n"
    + _module("MULT9X9", NEXUS_MULT9_WIDTH) + _module("MULT18X18", NEXUS_MULT_WIDTH))
