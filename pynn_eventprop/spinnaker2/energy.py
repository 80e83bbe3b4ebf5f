"""Time and energy per training sample at each clock level, from counted traffic and work.

Time (per batch; the replicas run their samples in parallel and a PE processes its local
batch within the same ticks, so per sample = per batch / batch size)::

    forward, backward   realtime:       sum over ticks of max(timer tick, busiest PE's cycles / f)
                        compute-bound:  sum over ticks of busiest PE's cycles / f
    loss                one tick, same rule
    update              critical path of the reduction, update and redistribution / f

"realtime": the machine advances one tick per timer tick (the way SpiNNaker runs a network),
unless the busiest PE needs longer; "compute-bound": every tick lasts exactly the busiest PE's
work (the fastest the programs could run).

Energy (per batch, at clock level f)::

    E = time * (n_PEs * P_pe(f) + n_chips * P_chip)         baseline of the PEs and chips used
      + synaptic operations * E_synop                         forward and backward synapse work
      + (cycles - cycles of synaptic operations) * E_cycle(f) the other processor work
      + router hops * E_hop                                   packet transport

Only ``E_synop`` has a published value (see :class:`EnergyCoefficients`); every other
coefficient is marked ``"assumed"`` and overridable via :meth:`EnergyCoefficients.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hardware import ASSUMED, Figures, OperationCycles, figure
from .mapping import Mapping
from .packets import Traffic

PROGRAMS = ("forward", "loss", "backward", "update")
#: Traffic operations that are synaptic operations, with the OperationCycles field of each.
SYNAPTIC_OPERATIONS = {
    "synaptic_events": "synaptic_event",
    "backward_synapses": "backward_synapse",
    "gradient_synapses": "gradient_synapse",
}
SYNOP_SOURCE = (
    "Hoeppner et al. 2021, arXiv:2103.08392, as tabulated in Tang et al. 2023, SENECA, "
    "Front. Neurosci. 17:1187252, Table 3 (energy per synaptic operation)"
)


@dataclass(frozen=True)
class EnergyCoefficients(Figures):
    """Power and energy coefficients; per-clock-level tuples follow ``clock_levels_mhz``."""

    synaptic_operation_pj: float = figure(10.0, "pJ per synaptic operation", SYNOP_SOURCE)
    pe_baseline_mw: tuple[float, ...] = figure(
        (1.0, 2.0), "mW per PE", ASSUMED + " (leakage and clock of an active PE, per level)"
    )
    energy_per_cycle_pj: tuple[float, ...] = figure(
        (10.0, 15.0), "pJ/cycle", ASSUMED + " (Cortex-M4F work other than synapses, per level)"
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
        Per sample; parts ``pe_baseline, chip_baseline, synaptic, dynamic, packets, total``.
    samples_per_batch : float
        Samples per batch of the counted traffic (per-batch latency = per sample x this).
    overrun : dict program -> bool array (n_levels,)
        Whether any tick of the program overran the timer tick at that clock level.
    coefficients : EnergyCoefficients
    """

    clock_mhz: list
    time_ms: dict
    energy_uj: dict
    overrun: dict
    coefficients: EnergyCoefficients
    samples_per_batch: float = 1.0

    def batch_latency_ms(self, mode: str = "realtime") -> np.ndarray:
        """Wall time of one training batch (all four programs) at each clock level."""
        return self.time_ms[mode]["total"] * self.samples_per_batch

    def samples_per_second(self, mode: str = "realtime") -> np.ndarray:
        return 1e3 / self.time_ms[mode]["total"]

    def to_dict(self) -> dict:
        def lists(d):
            return {k: np.asarray(v).tolist() for k, v in d.items()}

        return {
            "clock_mhz": list(self.clock_mhz),
            "time_per_sample_ms": {m: lists(v) for m, v in self.time_ms.items()},
            "samples_per_batch": self.samples_per_batch,
            "batch_latency_ms": {m: self.batch_latency_ms(m).tolist() for m in self.time_ms},
            "samples_per_second": {m: self.samples_per_second(m).tolist() for m in self.time_ms},
            "energy_per_sample_uJ": {m: lists(v) for m, v in self.energy_uj.items()},
            "overrun": lists(self.overrun),
            "energy_coefficients": self.coefficients.figures(),
        }


def estimate_cost(
    mapping: Mapping,
    traffic: Traffic,
    coefficients: EnergyCoefficients | None = None,
    cycles: OperationCycles | None = None,
) -> CostEstimate:
    """Time and energy per sample from accumulated :class:`Traffic` (see the module doc);
    ``cycles`` must be the :class:`OperationCycles` the traffic was counted with."""
    hw = mapping.hardware
    co = coefficients if coefficients is not None else EnergyCoefficients()
    cyc = cycles if cycles is not None else OperationCycles()
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
        synops = sum(traffic.operations.get(op, 0.0) for op in SYNAPTIC_OPERATIONS) / n
        synop_cycles = sum(
            traffic.operations.get(op, 0.0) * getattr(cyc, f)
            for op, f in SYNAPTIC_OPERATIONS.items()
        )
        cycles = max(sum(traffic.total_cycles.values()) - synop_cycles, 0.0) / n
        hops = sum(k.hops for k in traffic.kinds.values()) / n
        e = {
            # mW * ms = uJ; pJ * 1e-6 = uJ
            "pe_baseline": mapping.n_pes * np.asarray(co.pe_baseline_mw) * t["total"],
            "chip_baseline": mapping.chips_used * co.chip_baseline_mw * t["total"],
            "synaptic": synops * co.synaptic_operation_pj * 1e-6 * np.ones_like(levels),
            "dynamic": cycles * np.asarray(co.energy_per_cycle_pj) * 1e-6 * np.ones_like(levels),
            "packets": hops * co.router_hop_nj * 1e-3 * np.ones_like(levels),
        }
        e["total"] = sum(e.values())
        energy[mode] = e
    overrun = {p: np.asarray(traffic.overrun_ticks[p]) > 0 for p in PROGRAMS}
    per_batch = n / max(traffic.batches, 1)
    return CostEstimate(levels.tolist(), time_ms, energy, overrun, co, per_batch)
