"""PyNN ``IF_curr_exp`` parameters as the per-neuron rows the exact kernels read."""

from __future__ import annotations

import numpy as np

from ...network import CompiledNetwork, CompiledPopulation
from .closed_form import MAX_POWER, PARAM_NAMES

#: Receptor name -> channel of the arrival (index of the current it adds to).
CHANNELS = {"excitatory": 0, "inhibitory": 1}


def _positive(pop: CompiledPopulation, name: str) -> np.ndarray:
    x = np.broadcast_to(np.asarray(pop.params[name], float), (pop.size,))
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"{name} must be finite and > 0 in population '{pop.label}'")
    return x


def parameter_rows(pop: CompiledPopulation) -> np.ndarray:
    """``(size, len(PARAM_NAMES))`` float64 rows in the EventProp frame (ms, 1/nF, MOhm, mV).

    ``theta = v_thresh - v_rest``, ``v_reset`` relative to ``v_rest``, ``R = tau_m/cm``,
    ``kappa_x = 1/tau_syn_x - 1/tau_m``.
    """
    p = {name: np.broadcast_to(np.asarray(v, float), (pop.size,)) for name, v in pop.params.items()}
    tau_m, cm = _positive(pop, "tau_m"), _positive(pop, "cm")
    tau_e, tau_i = _positive(pop, "tau_syn_E"), _positive(pop, "tau_syn_I")
    theta = p["v_thresh"] - p["v_rest"]
    v_reset = p["v_reset"] - p["v_rest"]
    if np.any(v_reset >= theta):
        raise ValueError(f"v_reset must be below v_thresh in population '{pop.label}'")
    if np.any(p["tau_refrac"] < 0) or not np.all(np.isfinite(p["tau_refrac"])):
        raise ValueError(f"tau_refrac must be finite and >= 0 in population '{pop.label}'")
    columns = {
        "inv_tau_m": 1 / tau_m,
        "inv_cm": 1 / cm,
        "inv_tau_E": 1 / tau_e,
        "inv_tau_I": 1 / tau_i,
        "kappa_E": 1 / tau_e - 1 / tau_m,
        "kappa_I": 1 / tau_i - 1 / tau_m,
        "R": tau_m / cm,
        "theta": theta,
        "v_reset": v_reset,
        "tau_refrac": p["tau_refrac"],
        "syn_power": _syn_power(tau_m, tau_e, tau_i),
    }
    return np.ascontiguousarray(np.stack([columns[n] for n in PARAM_NAMES], axis=1))


def _syn_power(tau_m, tau_e, tau_i):
    """Per neuron ``k`` where ``tau_syn_E = tau_syn_I = tau_m/k`` (integer ``1 <= k <=
    MAX_POWER``, to 1e-14 relative), else 0 (see :func:`.closed_form.flow`)."""
    k = np.rint(tau_m / tau_e)
    exact = (tau_e == tau_i) & (np.abs(tau_m / tau_e - k) <= 1e-14 * k)
    return np.where(exact & (k >= 1) & (k <= MAX_POWER), k, 0.0)


def delays_ms(network: CompiledNetwork, k: int, dt: float) -> np.ndarray:
    """Delays of projection ``k`` in ms (float64): compiled delays are ms, or whole steps.

    Integer arrays are read as whole steps of ``dt``.
    """
    d = np.asarray(network.projections[k].delays)
    return d * dt if np.issubdtype(d.dtype, np.integer) else d.astype(np.float64)


def components(network: CompiledNetwork) -> list[list[int]]:
    """Strongly connected components of the population graph, in an order in which every
    projection between components goes forward.

    A component of one population without a projection onto itself is feed-forward; any other
    is recurrent.
    """
    n = len(network.populations)
    reach = np.eye(n, dtype=bool)
    for proj in network.projections:
        reach[proj.pre, proj.post] = True
    for k in range(n):  # transitive closure (Floyd-Warshall)
        reach |= reach[:, k : k + 1] & reach[k : k + 1, :]
    comps, seen = [], set()
    for i in range(n):
        if i not in seen:
            comp = [j for j in range(n) if reach[i, j] and reach[j, i]]
            seen.update(comp)
            comps.append(comp)
    # a component comes after every component that reaches it
    comps.sort(key=lambda c: int(reach[:, c[0]].sum()))
    return comps


def is_recurrent(network: CompiledNetwork, comp: list[int]) -> bool:
    return len(comp) > 1 or any(p.pre == p.post == comp[0] for p in network.projections)
