"""FPGA targets: one module per vendor family behind :class:`~.base.Target`, registered here.

Adding a family is one module (a :class:`~.base.Target` subclass) and one line in
:data:`TARGETS`; :mod:`winogen.fpga.synth`, the ``synth`` and ``explore`` commands pick it
up from this registry.
"""

import textwrap

from ..yosys import SynthError
from .base import RESOURCE_CLASSES, Device, Target
from .ecp5 import ECP5
from .ice40 import ICE40
from .nexus import Nexus
from .xilinx7 import Xilinx7

__all__ = ["TARGETS", "get_target", "help_text", "Target", "Device", "RESOURCE_CLASSES"]

#: Target name -> :class:`~.base.Target` instance, in help order (the first is the default).
TARGETS = {t.name: t for t in (ECP5(), ICE40(), Xilinx7(), Nexus())}


def get_target(name):
    """The registered :class:`~.base.Target` called ``name``.

    Raises
    ------
    SynthError
        ``target must be one of ecp5, ice40, ..., not 'x'`` for an unknown name.
    """
    if isinstance(name, str) and name in TARGETS:
        return TARGETS[name]
    raise SynthError(f"target must be one of {', '.join(TARGETS)}, not {name!r}")


def help_text(width=90):
    """The ``targets:`` and ``devices:`` blocks of a help text, from the registry.

    So that a command's help lists a new target without being edited.
    """
    def block(title, rows):
        lines = [f"{title}:"]
        for name, text in rows:
            lines += textwrap.wrap(text, width, initial_indent=f"  {name:<9}",
                                   subsequent_indent=" " * 11, break_on_hyphens=False)
        return lines
    targets = block("targets", [(n, t.title) for n, t in TARGETS.items()])
    devices = block("devices", [(n, f"{', '.join(t.device_names)} (default {t.default_device})"
                                    f"{t.device_hint}") for n, t in TARGETS.items()])
    return "\n".join(targets + [""] + devices) + "\n"
