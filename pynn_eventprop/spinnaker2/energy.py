"""Time and energy per sample at each clock level, from counted traffic and work.

Time (per batch; replicas run their samples in parallel, so per sample = per batch / batch size)::

    forward, backward   sum over ticks of max(timer tick, busiest PE's cycles / f)   "realtime"
                        sum over ticks of busiest PE's cycles / f                     "compute"
    loss                one tick, same rule
    update              critical path of the reduction, update and redistribution / f

Energy (per batch, at clock level f with its coefficients)::

    E = time * (n_PEs * P_pe(f) + n_chips * P_chip)        baseline of the PEs and chips used
      + cycles * E_cycle(f)                                 dynamic processor energy
      + router hops * E_hop                                 packet transport

No primary source gives these coefficients for SpiNNaker2: every one is
named, marked ``"assumed"`` and overridable via :meth:`EnergyCoefficients.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hardware import ASSUMED, Figures, figure
from .mapping import Mapping
from .packets import Traffic

PROGRAMS = ("forward", "loss", "backward", "update")


@dataclass(frozen=True)
class EnergyCoefficients(Figures):
    """Power and energy coefficients; per-clock-level tuples follow ``clock_levels_mhz``."""

    pe_baseline_mw: tuple[float, ...] = figure(
        (1.0, 2.0), "mW per PE", ASSUMED + " (leakage and clock of an active PE, per level)"
    )
    energy_per_cycle_pj: tuple[float, ...] = figure(
        (10.0, 15.0), "pJ/cycle", ASSUMED + " (Cortex-M4F dynamic energy, per level)"
    )
    chip_baseline_mw: float = figure(
        200.0, "mW per chip", ASSUMED + " (router, network-on-chip, DRAM interface, monitor)"
    )
    router_hop_nj: float = figure(0.2, "nJ per packet per router", ASSUMED)


@dataclass
class CostEstimate:
    """Time and energy per sample at each clock level.

    Attributes
    ----------
    clock_mhz : list of float
    time_ms : dict mode -> dict program -> float array (n_levels,)
        Per sample; programs ``forward, loss, backward, update, total``; modes ``realtime``
        and ``compute`` (see the module docstring).
    energy_uj : dict mode -> dict part -> float array (n_levels,)
        Per sample; parts ``pe_baseline, chip_baseline, dynamic, packets, total``.
    overrun : dict program -> bool array (n_levels,)
        Whether any tick of the program overran the timer tick at that clock level.
    coefficients : EnergyCoefficients
    """

    clock_mhz: list
    time_ms: dict
    energy_uj: dict
    overrun: dict
    coefficients: EnergyCoefficients

    def samples_per_second(self, mode: str = "realtime") -> np.ndarray:
        return 1e3 / self.time_ms[mode]["total"]

    def to_dict(self) -> dict:
        def lists(d):
            return {k: np.asarray(v).tolist() for k, v in d.items()}

        return {
            "clock_mhz": list(self.clock_mhz),
            "time_per_sample_ms": {m: lists(v) for m, v in self.time_ms.items()},
            "samples_per_second": {m: self.samples_per_second(m).tolist() for m in self.time_ms},
            "energy_per_sample_uJ": {m: lists(v) for m, v in self.energy_uj.items()},
            "overrun": lists(self.overrun),
            "energy_coefficients": self.coefficients.figures(),
        }


def estimate_cost(
    mapping: Mapping, traffic: Traffic, coefficients: EnergyCoefficients | None = None
) -> CostEstimate:
    """Time and energy per sample from accumulated :class:`Traffic` (see the module doc)."""
    hw = mapping.hardware
    co = coefficients if coefficients is not None else EnergyCoefficients()
    levels = np.asarray(hw.clock_levels_mhz, float)
    for name in ("pe_baseline_mw", "energy_per_cycle_pj"):
        if len(getattr(co, name)) != len(levels):
            raise ValueError(
                f"{name} needs one value per clock level {tuple(levels)}, got {getattr(co, name)}"
            )
    n = traffic.samples
    time_ms, energy = {}, {}
    for mode in ("realtime", "compute"):
        t = {p: np.asarray(traffic.time_ms[p][mode], float) / n for p in PROGRAMS}
        t["total"] = sum(t[p] for p in PROGRAMS)
        time_ms[mode] = t
        cycles = sum(traffic.total_cycles.values()) / n
        hops = sum(k.hops for k in traffic.kinds.values()) / n
        e = {
            # mW * ms = uJ
            "pe_baseline": mapping.n_pes * np.asarray(co.pe_baseline_mw) * t["total"],
            "chip_baseline": mapping.chips_used * co.chip_baseline_mw * t["total"],
            "dynamic": cycles * np.asarray(co.energy_per_cycle_pj) * 1e-6 * np.ones_like(levels),
            "packets": hops * co.router_hop_nj * 1e-3 * np.ones_like(levels),
        }
        e["total"] = sum(e.values())
        energy[mode] = e
    overrun = {p: np.asarray(traffic.overrun_ticks[p]) > 0 for p in PROGRAMS}
    return CostEstimate(levels.tolist(), time_ms, energy, overrun, co)
