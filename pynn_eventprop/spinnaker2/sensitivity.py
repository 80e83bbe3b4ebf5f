"""How time and energy per training sample move when one coefficient is doubled or halved.

Every figure that enters the estimate (energy coefficients, cycles per operation, the timer
tick and the clock levels) is scaled by 2 and by 1/2 in turn, the batch is counted again
(:func:`~.packets.count_traffic` on its spike rasters) and costed
(:func:`~.energy.estimate_cost`); the table gives the relative change of the time per sample
(realtime and compute-bound) and of the energy per sample (realtime) at one clock level.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .energy import EnergyCoefficients, estimate_cost
from .hardware import OperationCycles
from .packets import count_traffic, plan_traffic

FACTORS = (2.0, 0.5)
HARDWARE_FIGURES = ("timer_tick_ms", "clock_levels_mhz")


def _scaled(figures, name, factor):
    value = getattr(figures, name)
    new = tuple(v * factor for v in value) if isinstance(value, tuple) else value * factor
    return figures.replace(**{name: new})


def _cost(mapping, routing, rasters, n_ticks, coefficients, cycles):
    plan = plan_traffic(mapping, routing, cycles)
    traffic = count_traffic(plan, rasters, n_ticks=n_ticks)
    return estimate_cost(mapping, traffic, coefficients, cycles)


def _figures(cost, level):
    return np.array([
        cost.time_ms["realtime"]["total"][level],
        cost.time_ms["compute"]["total"][level],
        cost.energy_uj["realtime"]["total"][level],
    ])  # fmt: skip


def sensitivity(mapping, routing, rasters, n_ticks, coefficients=None, cycles=None, level=0):
    """The sensitivity table of one trained batch (see the module docstring).

    Parameters
    ----------
    mapping, routing : the model's mapping and routing tables
    rasters : spike counts per population ``(ticks, batch, size)`` (:func:`count_traffic`'s
        convention) of the batch
    n_ticks : steps of the batch
    coefficients, cycles : EnergyCoefficients and OperationCycles of the estimate
    level : index of the clock level the table is given at

    Returns
    -------
    dict with ``clock_mhz``, ``baseline`` (time realtime and compute-bound in ms, energy in uJ,
    per sample) and ``rows``: per figure its ``group``, ``name``, ``source`` and, per factor,
    the relative changes ``time_realtime``, ``time_compute``, ``energy`` (fractions).
    """
    co = coefficients if coefficients is not None else EnergyCoefficients()
    cyc = cycles if cycles is not None else OperationCycles()
    base = _figures(_cost(mapping, routing, rasters, n_ticks, co, cyc), level)
    rows = []
    groups = [("energy", co, f.name) for f in co._figure_fields()]
    groups += [("cycles", cyc, f.name) for f in cyc._figure_fields()]
    groups += [("hardware", mapping.hardware, name) for name in HARDWARE_FIGURES]
    for group, figures, name in groups:
        row = {"group": group, "name": name, "source": figures.source(name)}
        for factor in FACTORS:
            changed = _scaled(figures, name, factor)
            m, c, y = mapping, co, cyc
            if group == "energy":
                c = changed
            elif group == "cycles":
                y = changed
            else:
                m = dataclasses.replace(mapping, hardware=changed)
            new = _figures(_cost(m, routing, rasters, n_ticks, c, y), level)
            rel = np.where(base > 0, new / np.where(base > 0, base, 1.0) - 1.0, 0.0)
            row[f"x{factor:g}"] = dict(zip(("time_realtime", "time_compute", "energy"),
                                           rel.tolist(), strict=True))  # fmt: skip
        rows.append(row)
    return {
        "clock_mhz": float(mapping.hardware.clock_levels_mhz[level]),
        "baseline": dict(
            zip(("time_realtime_ms", "time_compute_ms", "energy_uJ"), base.tolist(), strict=True)
        ),  # fmt: skip
        "rows": rows,
    }
