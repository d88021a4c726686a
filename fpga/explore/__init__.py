"""Design-space exploration: sweep engine parameters, synthesize each point, compare.

:func:`explore` takes a grid (lists of values per parameter), builds the cartesian
product of configurations, and for each one generates the hardware
(:mod:`winogen.hw`), synthesizes it (:func:`winogen.fpga.synth.synth`; Yosys only with
``place=False``) and derives throughput figures. Each configuration's result is cached
under ``OUT/cache/<key>/``, the key hashing the configuration, the generator's source, the
tool versions, the target, device, clock and flags, so a rerun only redoes what changed.

Outputs in ``OUT/``: ``explore.csv``, ``explore.json``, ``explore.md`` (a Markdown table
and a comparison with published Winograd accelerators), four PNG plots and
``plots.json`` (what each plot holds, read back from the plotted artists).

RNS engines
-----------
``pe`` ``rns`` sweeps residue-number-system Winograd engines
(:class:`~winogen.gen.rns.RNSTileConfig`; layer engines accumulate ``max_cin`` channels
mod each modulus). Four axes apply to them only, so a ``mul`` or ``adder`` point is not
repeated per value: ``moduli`` (preset names of :data:`~winogen.gen.rns.MODULI_PRESETS`,
``auto``/``auto-BITS`` (:func:`~winogen.gen.rns.select_moduli` per configuration), or
explicit sets written with colons, ``251:241:239``), ``redundant_moduli`` (0, 1),
``rns_method`` (``auto``, ``scaled``, ``inverse``; ``auto`` is resolved, so it collapses
with the method it picks) and ``rns_forward_reduction`` (``full``, ``partial``). The
direct algorithm is left out for them (RNS engines are
Winograd only), and ``pipeline N`` maps to register stages through
:func:`~winogen.gen.config.pipeline_stages`, as ``winogen generate --pipeline N`` does (the
mixed-radix converter gets a register per level from N = 2 on). A combination the RNS configuration
rejects (moduli too small for the result range, ``inverse`` with a modulus that shares a
factor with a denominator, a redundant modulus that leaves too small a set) is skipped and
reported with its one-line message, like every combination a configuration rejects
(see :func:`configurations`); a grid with no valid combination is an error. Rows
carry ``moduli`` (as written in the grid; ``auto=251:241:131`` names the chosen set),
``redundant_moduli``, ``rns_method`` (the method used), ``multiplier_width`` and
``rns_forward_reduction``; these columns are empty for other PE kinds, and
``multipliers`` counts the modular multipliers (``n²`` per modulus). Labels read e.g.
``W F(4,3) 8b rns 8bit-primes-4+r p2`` (``+r``: a redundant modulus; the method is added
when the sweep has more than one, `` partial`` for a partial forward reduction).

Figures of merit
----------------
Operations are counted as ``2 × MACs`` of the equivalent direct convolution, whatever
the algorithm computes internally, so Winograd and direct engines compare on the work
they deliver:

* tile engines: ``m²`` outputs per cycle at initiation interval 1, i.e. ``2·m²·r²``
  operations per cycle;
* layer engines: the layer cycle model (:meth:`winogen.gen.layer.LayerConfig.cycles`) on
  one workload (by default the largest layer, padding ``r // 2``), counting every phase
  (configuration, weight and activation loading, compute, pipeline drain).

``ops_per_dsp_cycle`` divides by the DSP blocks actually used after synthesis;
``gops`` multiplies by the achieved Fmax (place and route only) and ``gops_per_dsp``
divides that by the DSP blocks.

Modules: :mod:`.grid` (axes, TOML, checks), :mod:`.configs` (the configurations of a
grid, through :func:`winogen.gen.params.config_from_params`), :mod:`.cache`,
:mod:`.sweep` (running), :mod:`.plots` and :mod:`.report` (CSV, JSON, Markdown). The
command line is :mod:`winogen.cli.explore`.
"""

from .configs import _label, configurations  # noqa: F401 (_label: the tests' labels)
from .grid import (GRID_KEYS, LAYER_KEYS, PE_CHOICES, RNS_KEYS, RUN_KEYS, layers_available,
                   load_grid, normalize_grid)
from .plots import write_plots
from .report import COLUMNS, PUBLISHED, render_markdown
from .sweep import cycle_figures, explore, prepare

__all__ = ["GRID_KEYS", "LAYER_KEYS", "RUN_KEYS", "RNS_KEYS", "PE_CHOICES", "PUBLISHED",
           "COLUMNS", "explore", "prepare", "load_grid", "normalize_grid", "configurations",
           "layers_available", "cycle_figures", "write_plots", "render_markdown"]

