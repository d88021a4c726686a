"""Moved: the ``synth`` subcommand lives in :mod:`winogen.cli.synth`.

Kept so that ``from winogen.fpga.cli import add_synth_parser`` keeps working.
"""

from winogen.cli.synth import add_parser as add_synth_parser, run as run_synth

__all__ = ["add_synth_parser", "run_synth"]
