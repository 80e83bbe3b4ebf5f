"""Membrane dynamics of the supported neuron models, in the EventProp frame.

Each model turns a :class:`~pynn_eventprop.network.CompiledPopulation` into per-neuron arrays
and offers two operations used by the simulation loop (docs/equations.md §2):

``prepare(syn_prev, e)``
    everything of step ``n`` that does not depend on ``V``, for all steps of a chunk at once,
    from the synaptic variables at the start of each step (``syn_prev[x][k] = I_x[n-1]``) and
    the external current ``e[n]`` (nA);
``membrane(v, k, drive)``
    the pre-reset voltage ``U[n]`` from ``V[n-1]``.
"""

from __future__ import annotations

import numpy as np

from ..network import CompiledPopulation

RECEPTOR_KEYS = {"excitatory": "E", "inhibitory": "I"}


def _uniform(pop: CompiledPopulation, name: str) -> float:
    values = np.asarray(pop.params[name], float)
    if values.size and not np.allclose(values, values.flat[0], rtol=1e-12, atol=0):
        raise ValueError(
            f"{name} must be the same for every neuron of population '{pop.label}' "
            f"(precisely timed spike arrival needs one synaptic decay per receptor), got values "
            f"from {values.min()} to {values.max()} ms"
        )
    return float(values.flat[0])


class LIFModel:
    """Parameters and spike/reset logic shared by the LIF models.

    Attributes (EventProp frame, arrays of shape ``(size,)``)
    ----------
    theta : ``v_thresh - v_rest`` (mV);  v_reset : ``v_reset - v_rest`` (mV)
    v_rest : mV, added back when ``v`` is recorded
    refractory_steps : ``round(tau_refrac / dt)``
    b : ``exp(-dt/tau_m)``;  a : dict receptor key -> scalar ``exp(-dt/tau_syn)``
    """

    synaptic_state = ("isyn_exc", "isyn_inh")

    def __init__(self, pop: CompiledPopulation, disc, dtype):
        p = pop.params
        self.size = pop.size
        self.dtype = dtype
        self.dt = disc.dt
        self.v_rest = np.asarray(p["v_rest"], dtype)
        self.theta = np.asarray(p["v_thresh"] - p["v_rest"], dtype)
        self.v_reset = np.asarray(p["v_reset"] - p["v_rest"], dtype)
        if np.any(self.v_reset >= self.theta):
            raise ValueError(
                f"v_reset must be below v_thresh in population '{pop.label}', got "
                f"v_reset={p['v_reset'].max()} mV, v_thresh={p['v_thresh'].min()} mV"
            )
        self.refractory_steps = np.rint(np.asarray(p["tau_refrac"], float) / disc.dt).astype(
            np.int64
        )
        self.has_refractory = bool(np.any(self.refractory_steps > 0))
        self.tau_syn = {"E": _uniform(pop, "tau_syn_E"), "I": _uniform(pop, "tau_syn_I")}
        self.a = {x: dtype(np.exp(-disc.dt / tau)) for x, tau in self.tau_syn.items()}
        self.i_offset = np.asarray(p["i_offset"], dtype)

    def initial_v(self, pop: CompiledPopulation):
        return np.asarray(pop.initial["v"], self.dtype) - self.v_rest

    def initial_syn(self, pop: CompiledPopulation):
        return {
            x: np.asarray(pop.initial[name], self.dtype)
            for x, name in zip("EI", self.synaptic_state, strict=True)
        }


class CurrentLIF(LIFModel):
    """``IF_curr_exp``: ``U[n] = b V[n-1] + p_E I_E[n-1] + p_I I_I[n-1] + c e[n]``."""

    def __init__(self, pop, disc, dtype):
        super().__init__(pop, disc, dtype)
        p = pop.params
        coef = disc.coefficients(p["tau_m"], p["cm"], p["tau_syn_E"], p["tau_syn_I"])
        self.b = coef.b.astype(dtype)
        self.p = {"E": coef.p_E.astype(dtype), "I": coef.p_I.astype(dtype)}
        self.c = coef.c.astype(dtype)

    def prepare(self, syn_prev, e):
        return self.p["E"] * syn_prev["E"] + self.p["I"] * syn_prev["I"] + self.c * e

    def membrane(self, v, k, drive):
        return self.b * v + drive[k]


class ConductanceLIF(LIFModel):
    """``IF_cond_exp`` (forward only), exponential Euler with conductances held over a step.

    ``g = cm/tau_m + g_E + g_I`` (uS), ``V_inf = (g_E E_E + g_I E_I + e) / g`` (frame: E_x
    relative to v_rest), ``U[n] = V_inf + (V[n-1] - V_inf) exp(-dt g / cm)``, with the
    conductances at the start of the step and the external current of the step.
    """

    synaptic_state = ("gsyn_exc", "gsyn_inh")

    def __init__(self, pop, disc, dtype):
        super().__init__(pop, disc, dtype)
        p = pop.params
        self.cm = np.asarray(p["cm"], dtype)
        self.g_leak = np.asarray(p["cm"] / p["tau_m"], dtype)
        self.e_rev = {
            "E": np.asarray(p["e_rev_E"] - p["v_rest"], dtype),
            "I": np.asarray(p["e_rev_I"] - p["v_rest"], dtype),
        }

    def prepare(self, syn_prev, e):
        g = self.g_leak + syn_prev["E"] + syn_prev["I"]
        v_inf = (syn_prev["E"] * self.e_rev["E"] + syn_prev["I"] * self.e_rev["I"] + e) / g
        return v_inf, np.exp(-self.dt * g / self.cm)

    def membrane(self, v, k, drive):
        v_inf, decay = drive
        return v_inf[k] + (v - v_inf[k]) * decay[k]


MODELS = {"IF_curr_exp": CurrentLIF, "IF_cond_exp": ConductanceLIF}


def make_model(pop: CompiledPopulation, disc, dtype):
    try:
        cls = MODELS[pop.model]
    except KeyError:
        raise ValueError(
            f"population '{pop.label}' has model {pop.model!r}; the engine supports "
            f"{sorted(MODELS)} and spike sources"
        ) from None
    return cls(pop, disc, dtype)
