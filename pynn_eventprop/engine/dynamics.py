"""Membrane dynamics of the supported neuron models, in the EventProp frame.

Each model turns a :class:`~pynn_eventprop.network.CompiledPopulation` into per-neuron arrays
(docs/equations.md §2):

* ``a[x]`` synaptic decay per step for receptor ``x`` in ``"E"``, ``"I"``;
* ``arrival[x]`` the coefficients ``(log_a, log_b, kappa_dt, dt_over_cm)`` with which a spike
  arriving inside a step reaches the current and the voltage at the next grid point
  (:func:`pynn_eventprop.engine.kernels.arrival_factors`); arrays of length 1 when the
  population is uniform;
* ``membrane(v, syn, e, u_arrival)``: the pre-reset voltage ``U[n]`` from ``V[n-1]``, the
  synaptic variables at the start of the step, the external current (nA) and the voltage
  carried by spikes that arrived inside the step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..network import CompiledPopulation

RECEPTOR_KEYS = {"excitatory": "E", "inhibitory": "I"}


class LayerParameters(NamedTuple):
    """Per-neuron arrays ``(size,)`` the compiled forward loop of a layer reads."""

    b: np.ndarray
    p_e: np.ndarray
    p_i: np.ndarray
    c: np.ndarray
    a_e: np.ndarray
    a_i: np.ndarray
    theta: np.ndarray
    v_reset: np.ndarray
    refractory_steps: np.ndarray


class AdjointParameters(NamedTuple):
    """Per-neuron arrays ``(size,)`` the compiled adjoint loop of a layer reads."""

    b: np.ndarray
    p_e: np.ndarray
    p_i: np.ndarray
    a_e: np.ndarray
    a_i: np.ndarray
    theta: np.ndarray


class LIFModel:
    """Parameters and spike/reset logic shared by the LIF models.

    Attributes (EventProp frame, arrays of shape ``(size,)``)
    ----------
    theta : ``v_thresh - v_rest`` (mV);  v_reset : ``v_reset - v_rest`` (mV)
    v_rest : mV, added back when ``v`` is recorded
    refractory_steps : ``round(tau_refrac / dt)``
    a : dict receptor key -> ``exp(-dt/tau_syn)``
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
        tau = {"E": np.asarray(p["tau_syn_E"], float), "I": np.asarray(p["tau_syn_I"], float)}
        self.a = {x: disc.decay(t).astype(dtype) for x, t in tau.items()}
        self.i_offset = np.asarray(p["i_offset"], dtype)
        self.arrival = {x: self._arrival(disc, t, p) for x, t in tau.items()}

    def _arrival(self, disc, tau_syn, p):
        log_a = -disc.dt / tau_syn
        log_b = -disc.dt / np.asarray(p["tau_m"], float)
        kappa_dt = disc.dt / tau_syn - disc.dt / np.asarray(p["tau_m"], float)
        dt_over_cm = disc.dt / np.asarray(p["cm"], float) * self.voltage_arrival
        arrays = np.broadcast_arrays(log_a, log_b, kappa_dt, dt_over_cm)
        if all(np.all(x == x.flat[0]) for x in arrays):
            return tuple(np.asarray(x[:1], self.dtype) for x in arrays)
        return tuple(np.ascontiguousarray(x, self.dtype) for x in arrays)

    def initial_v(self, initial: dict):
        """``V`` (frame) from initial values in PyNN units (``initial["v"]`` in mV)."""
        return np.asarray(initial["v"], self.dtype) - self.v_rest

    def initial_syn(self, initial: dict):
        """Synaptic state by receptor key from initial values in PyNN units."""
        return {
            x: np.asarray(initial[name], self.dtype)
            for x, name in zip("EI", self.synaptic_state, strict=True)
        }


class CurrentLIF(LIFModel):
    """``IF_curr_exp``: ``U[n] = b V[n-1] + p_E I_E[n-1] + p_I I_I[n-1] + c e[n] + q-arrivals``."""

    voltage_arrival = 1.0

    def __init__(self, pop, disc, dtype):
        super().__init__(pop, disc, dtype)
        p = pop.params
        coef = disc.coefficients(p["tau_m"], p["cm"], p["tau_syn_E"], p["tau_syn_I"])
        self.b = coef.b.astype(dtype)
        self.p = {"E": coef.p_E.astype(dtype), "I": coef.p_I.astype(dtype)}
        self.c = coef.c.astype(dtype)

    def membrane(self, v, syn, e, u_arrival):
        return self.b * v + self.p["E"] * syn["E"] + self.p["I"] * syn["I"] + self.c * e + u_arrival

    def layer_parameters(self) -> LayerParameters:
        """Arguments of :func:`~pynn_eventprop.engine.kernels.forward_layer`."""
        p, a = self.p, self.a
        return LayerParameters(
            self.b,
            p["E"],
            p["I"],
            self.c,
            a["E"],
            a["I"],
            self.theta,
            self.v_reset,
            self.refractory_steps,
        )

    def adjoint_parameters(self) -> AdjointParameters:
        """Arguments of :func:`~pynn_eventprop.engine.kernels.adjoint_layer`."""
        p, a = self.p, self.a
        return AdjointParameters(self.b, p["E"], p["I"], a["E"], a["I"], self.theta)


class ConductanceLIF(LIFModel):
    """``IF_cond_exp`` (forward only), exponential Euler with conductances held over a step.

    ``g = cm/tau_m + g_E + g_I`` (uS), ``V_inf = (g_E E_E + g_I E_I + e) / g`` (frame: E_x
    relative to v_rest), ``U[n] = V_inf + (V[n-1] - V_inf) exp(-dt g / cm)``, with the
    conductances at the start of the step and the external current of the step.  Spikes arriving
    inside a step enter the conductance with ``a**phi`` but give the voltage no head start.
    """

    synaptic_state = ("gsyn_exc", "gsyn_inh")
    voltage_arrival = 0.0

    def __init__(self, pop, disc, dtype):
        super().__init__(pop, disc, dtype)
        p = pop.params
        self.cm = np.asarray(p["cm"], dtype)
        self.g_leak = np.asarray(p["cm"] / p["tau_m"], dtype)
        self.e_rev = {
            "E": np.asarray(p["e_rev_E"] - p["v_rest"], dtype),
            "I": np.asarray(p["e_rev_I"] - p["v_rest"], dtype),
        }

    def membrane(self, v, syn, e, u_arrival):
        g = self.g_leak + syn["E"] + syn["I"]
        v_inf = (syn["E"] * self.e_rev["E"] + syn["I"] * self.e_rev["I"] + e) / g
        return v_inf + (v - v_inf) * np.exp(-self.dt * g / self.cm)


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
