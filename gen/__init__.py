"""winogen.gen: the math and the truth.

Exact Toom-Cook/Winograd matrices, bit-growth bounds, configuration objects and
vectorized golden models. Nothing in this package imports Amaranth.
"""
