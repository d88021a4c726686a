"""winogen.sim: cocotb testbenches, stream drivers and the Verilator build cache."""
