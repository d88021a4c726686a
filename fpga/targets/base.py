"""The interface every FPGA target implements, and the nextpnr output parsers they share.

A target is one vendor family behind one flow: how a device string is read, the Yosys
script, the nextpnr invocation (or none, for a count-only estimate), how the tools' logs
become utilisation and timing, how Yosys cells map to the report's resource classes, and
what "fits" means. :mod:`winogen.fpga.synth` drives any :class:`Target` the same way, so a
new family is one module in this package plus its registration in ``__init__.py``.
"""

import math
import re
from dataclasses import dataclass, field

from ..yosys import SynthError, quote

__all__ = ["Device", "Target", "RESOURCE_CLASSES", "parse_log_utilisation",
           "parse_report_utilisation", "parse_timing", "fit_failure", "describe_over"]

#: Resource classes of every report, in report order.
RESOURCE_CLASSES = ("lut", "ff", "dsp", "bram", "carry")


@dataclass(frozen=True)
class Device:
    """A resolved target device.

    Attributes
    ----------
    target : str
        Registry name of the target, e.g. ``"ecp5"``.
    name : str
        Canonical part name, e.g. ``"LFE5U-85F"``, ``"iCE40UP5K"``, ``"xc7a35t"``, ``"LIFCL-40"``.
    package : str or None
    speed : int or None
        Speed grade, where the family has one.
    nextpnr_args : tuple of str
        Device flags for nextpnr (empty for count-only targets).
    has_dsp : bool
        Whether the device has DSP blocks (iCE40: decides ``synth_ice40 -dsp``).
    capacity : dict
        Data-sheet capacity per resource class, used only by count-only targets (nextpnr
        reports its own for placed ones).
    part : str or None
        Full ordering code, for families whose tools name parts that way
        (``"LIFCL-40-9BG400C"``); it is then the :attr:`label`.
    """
    target: str
    name: str
    package: str | None = None
    speed: int | None = None
    nextpnr_args: tuple = ()
    has_dsp: bool = True
    capacity: dict = field(default_factory=dict)
    part: str | None = None

    @property
    def label(self):
        """Human-readable part, e.g. ``"LFE5U-85F-8 CABGA381"``."""
        if self.part is not None:
            return self.part
        name = f"{self.name}-{self.speed}" if self.speed is not None else self.name
        return f"{name} {self.package}" if self.package else name


class Target:
    """One FPGA family and its flow. Subclasses set the class attributes and the hooks.

    Class attributes
    ----------------
    name : str
        Registry key and ``--target`` value.
    title : str
        One line for help texts, e.g. ``"Lattice ECP5: synth_ecp5 + nextpnr-ecp5"``.
    default_device : str
        Device string used when none is given; :meth:`parse_device` must accept it.
    device_names : tuple of str
        The parts, for the help text and the unknown-device error.
    device_hint : str
        Other accepted spellings, e.g. ``"; optional -<package>, e.g. hx8k-ct256"``.
    default_freq_mhz : float or None
        Clock constraint when none is given; None for count-only targets (no timing).
    nextpnr : str or None
        YoWASP console script that places and routes, or None for a count-only target.
    estimate : str
        The report's ``estimate`` label of a placed (or counted) run.
    cells : dict
        Resource class -> ``(label, {cell-type regex: weight})``: the report's
        ``resources[k]`` is the weighted sum of the Yosys cells whose type fully matches a
        regex, ``primitives[k]`` the label.
    capacity_bels : dict
        Resource class -> nextpnr bel type whose ``available`` is the device capacity.
    native_primitives : frozenset of str
        Vendor primitives a generated design may instantiate directly for this target
        (the manifest's ``target_primitives``, e.g. ECP5's ``MULT18X18D`` with ``--dsp ecp5``).
    dff_retry : bool
        Whether the Yosys script accepts ``abc9_dff`` (``synth_* -dff``), so that a Yosys
        ABC9 reintegration crash can be retried that way.
    cleanup_retry_label : str or None
        A label of the ``synth_*`` script at which a run that crashed inside ABC9 (also
        with ``-dff``) is retried in two halves with ``opt -full`` and ``opt_clean -purge``
        between them; None: no such retry.
    """
    name = None
    title = ""
    default_device = None
    device_names = ()
    device_hint = ""
    default_freq_mhz = None
    nextpnr = None
    estimate = "post-route (nextpnr)"
    cells = {}
    capacity_bels = {}
    native_primitives = frozenset()
    dff_retry = False
    cleanup_retry_label = None

    @property
    def places(self):
        """Whether this target runs place and route (and so reports timing)."""
        return self.nextpnr is not None

    # --- Devices -------------------------------------------------------------------------

    def parse_device(self, text):
        """Resolve a stripped device string to a :class:`Device`; raise :class:`SynthError`."""
        raise NotImplementedError

    def device_error(self, device):
        """The one-line error for a device string that names no known part."""
        return SynthError(f"device must be one of {', '.join(self.device_names)}, "
                          f"not {device!r} (target {self.name}{self.device_hint})")

    # --- Yosys ---------------------------------------------------------------------------

    def synth_commands(self, name, work_rel, device, nodsp, abc9_dff):
        """Yosys commands after ``read_verilog``: technology mapping, statistics, netlist.

        Must run :meth:`stat_command` once the cells are final and, when :attr:`places`,
        write :meth:`netlist_path` (the JSON netlist nextpnr reads). File names are
        relative to the output folder; ``work_rel`` is the work folder within it.
        """
        raise NotImplementedError

    @staticmethod
    def stat_command(work_rel):
        """The Yosys command writing the cell statistics that the report counts."""
        return f"tee -q -o {work_rel}/stat.json stat -json"

    @staticmethod
    def netlist_path(work_rel):
        return f"{work_rel}/netlist.json"

    def yosys_script(self, name, verilog, work_rel, device, nodsp, abc9_dff=False):
        """The whole Yosys script, as lines; file names are relative to the output folder."""
        lines = [f"read_verilog {' '.join(quote(v) for v in verilog)}"]
        return lines + self.synth_commands(name, work_rel, device, nodsp, abc9_dff)

    def fix_netlist(self, netlist):
        """Repair the Yosys JSON netlist (a dict) in place before nextpnr reads it.

        Returns a one-line note of what was changed, or None (the default: nothing).
        """
        return None

    # --- nextpnr -------------------------------------------------------------------------

    def nextpnr_args(self, device, freq_mhz):
        """nextpnr arguments; file names are relative to the work folder."""
        return [*device.nextpnr_args, "--json", "netlist.json", "--freq", f"{freq_mhz:g}",
                "--report", "nextpnr_report.json", "--timing-allow-fail",
                "--log", "nextpnr.log", "-q"]

    def utilisation(self, log_text, npr_report):
        """Placed utilisation ``{bel: (used, available)}`` from nextpnr's report or log."""
        return parse_report_utilisation(npr_report) or parse_log_utilisation(log_text)

    def timing(self, npr_report, freq_mhz):
        """Fmax and critical path from nextpnr's ``--report`` JSON (see :func:`parse_timing`)."""
        return parse_timing(npr_report, freq_mhz)

    # --- Resources and fit ---------------------------------------------------------------

    def classify(self, cells):
        """Yosys cell counts -> ``(resources, primitives)`` keyed by :data:`RESOURCE_CLASSES`."""
        resources, primitives = {}, {}
        for k in RESOURCE_CLASSES:
            label, patterns = self.cells.get(k, ("none", {}))
            resources[k] = sum(n * w for t, n in cells.items()
                               for p, w in patterns.items() if re.fullmatch(p, t))
            primitives[k] = label
        # Name the DSP cells actually used, so that a summary shows which multiplier sizes.
        types = self.dsp_types(cells)
        if types:
            primitives["dsp"] = (next(iter(types)) if len(types) == 1
                                 else "+".join(f"{n}×{t}" for t, n in types.items()))
        return resources, primitives

    def dsp_types(self, cells):
        """The DSP cells by type, e.g. ``{"MULT18X18": 16}``: which multiplier sizes were used."""
        _, patterns = self.cells.get("dsp", ("none", {}))
        return {t: n for t, n in sorted(cells.items())
                if n and any(re.fullmatch(p, t) for p in patterns)}

    def available(self, device, util):
        """Device capacity per resource class (placed: from nextpnr's utilisation)."""
        if not self.places:
            return dict(device.capacity)
        return {k: util[bel][1] for k, bel in self.capacity_bels.items() if bel in util}

    def count_fit(self, device, resources, primitives):
        """Overflowing classes of a count-only estimate, as ``failing_resources`` entries."""
        return [{"resource": f"{k} ({primitives[k]})", "used": resources[k], "available": avail}
                for k, avail in self.available(device, {}).items() if resources[k] > avail]

    def placed_fit(self, util, log_text):
        """Overflowing resources of a failed nextpnr run, or None if it failed otherwise."""
        return fit_failure(util, log_text)

    def __repr__(self):
        return f"<Target {self.name}>"


# --- nextpnr output, common to the nextpnr architectures --------------------------------------

_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)
_NO_BELS_RE = re.compile(r"no BELs remaining to implement cell type '(\w+)'")


def parse_log_utilisation(log_text):
    """nextpnr's "Device utilisation" block (post-pack) as ``{bel: (used, available)}``."""
    util = {}
    for bel, used, avail in _UTIL_RE.findall(log_text):
        util[bel] = (int(used), int(avail))  # the last block printed wins
    return util


def parse_report_utilisation(npr_report):
    """nextpnr's ``--report`` JSON ``utilization`` section as ``{bel: (used, available)}``."""
    return {bel: (v["used"], v["available"])
            for bel, v in (npr_report or {}).get("utilization", {}).items()}


def fit_failure(util, log_text):
    """Overflowing resources from a failed nextpnr run, or None if it failed for another reason."""
    over = [{"resource": bel, "used": u, "available": a} for bel, (u, a) in util.items() if u > a]
    for bel in _NO_BELS_RE.findall(log_text):
        if not any(o["resource"] == bel for o in over):
            used, avail = util.get(bel, (None, 0))
            over.append({"resource": bel, "used": used, "available": avail})
    if not over and re.search(r"ERROR:.*(rout|congest)", log_text, re.IGNORECASE):
        over.append({"resource": "routing", "used": None, "available": None})
    return over or None


def describe_over(over):
    """``failing_resources`` entries as one phrase, e.g. ``"ICESTORM_DSP 9/8"``."""
    parts = []
    for o in over:
        if o["used"] is None:
            parts.append(f"{o['resource']} (failed)")
        else:
            parts.append(f"{o['resource']} {o['used']}/{o['available']}")
    return ", ".join(parts)


def _endpoint(step, key):
    end = step.get(key, {})
    cell = str(end.get("cell", "?")).lstrip("\\")
    return f"{cell}.{end.get('port', '?')}"


def _critical_path(paths):
    def length(p):
        return sum(s.get("delay", 0.0) for s in p["path"])
    path = max(paths, key=length)
    steps = path["path"]
    nets = [s for s in steps if s.get("type") == "routing"]
    return {
        "from": _endpoint(steps[0], "from"),
        "to": _endpoint(steps[-1], "to"),
        "from_net": nets[0]["net"].lstrip("\\") if nets else None,
        "to_net": nets[-1]["net"].lstrip("\\") if nets else None,
        # Yosys techmap library locations (/share/...) say nothing about the design.
        "sources": sorted({src for s in nets for src in s.get("sources", [])
                           if not src.startswith("/share/")}),
        "clock_edges": f"{path.get('from', '?')} -> {path.get('to', '?')}",
        "delay_ns": round(length(path), 3),
        "logic_ns": round(sum(s["delay"] for s in steps if s.get("type") != "routing"), 3),
        "routing_ns": round(sum(s["delay"] for s in nets), 3),
        "steps": len(steps),
    }


def parse_timing(npr_report, constraint):
    """Fmax and critical path from nextpnr's ``--report`` JSON.

    Returns
    -------
    dict
        ``constraint_mhz``, ``fmax_mhz`` (of the slowest clock; None without a clocked
        path), ``met``, ``clock``, ``clocks`` (every domain) and ``critical_path`` (None or
        ``from``, ``to``, ``from_net``, ``to_net``, ``sources``, ``delay_ns``, ``logic_ns``,
        ``routing_ns``, ...).
    """
    npr_report = npr_report or {}
    clocks = {name: {"achieved_mhz": v.get("achieved"), "constraint_mhz": v.get("constraint")}
              for name, v in npr_report.get("fmax", {}).items()}
    timing = {"constraint_mhz": constraint, "fmax_mhz": None, "met": None, "clock": None,
              "clocks": clocks, "critical_path": None}
    if clocks:
        # The slowest clock domain limits the design.
        clock = min(clocks, key=lambda c: clocks[c]["achieved_mhz"] or math.inf)
        fmax = clocks[clock]["achieved_mhz"]
        # nextpnr names promoted clocks after their buffers (clk$SB_IO_IN_$glb_clk).
        timing.update(clock=clock.split("$")[0] or clock,
                      fmax_mhz=fmax, met=bool(fmax is not None and fmax >= constraint))
    paths = [p for p in npr_report.get("critical_paths", []) if p.get("path")]
    if paths:
        timing["critical_path"] = _critical_path(paths)
    return timing
