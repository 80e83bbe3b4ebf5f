"""``IF_cond_exp`` in the exact engine (forward only): events at exact times, RK4 between them.

References: a DC-driven neuron without synaptic input is a plain LIF neuron (analytic spike
times); with synaptic input, ``scipy.integrate.solve_ivp`` (DOP853, rtol 1e-12) between the
same events.  Tolerance 1e-6 ms / 1e-6 mV: RK4 on 0.01 ms substeps has a global error of
about ``(h/tau)^4`` relative, ~1e-8 here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from test_exact_networks import projection, source

from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation

COND = dict(v_rest=-65.0, cm=1.0, tau_m=15.0, tau_refrac=2.0, tau_syn_E=3.0, tau_syn_I=8.0,
            i_offset=0.0, v_reset=-70.0, v_thresh=-52.0, e_rev_E=0.0, e_rev_I=-80.0)  # fmt: skip


def cond_population(size, **params):
    p = {**COND, **params}
    values = {k: np.full(size, float(v)) for k, v in p.items()}
    initial = {"v": np.full(size, p["v_rest"]), "gsyn_exc": np.zeros(size),
               "gsyn_inh": np.zeros(size)}  # fmt: skip
    return CompiledPopulation("c", size, "IF_cond_exp", values, initial)


def test_dc_driven_conductance_neuron_is_a_plain_lif():
    sim = ExactSimulation(CompiledNetwork([cond_population(1, i_offset=1.5)], []), 0.1)
    spikes = sim.run(1000).spikes[0].per_neuron(0)[0]
    ir, theta, v_r = 1.5 * 15.0, 13.0, -5.0  # mV: I R, threshold and reset in the frame
    first = -15.0 * math.log(1 - theta / ir)
    isi = 2.0 - 15.0 * math.log((ir - theta) / (ir - v_r))
    np.testing.assert_allclose(spikes[0], first, atol=1e-6)
    np.testing.assert_allclose(np.diff(spikes), isi, atol=1e-6)


def _reference_v(times, weights, receptors, t_end):
    """V(t) of one IF_cond_exp neuron (no spike) by solve_ivp between arrivals."""
    p = COND
    e_e, e_i, g_l = p["e_rev_E"] - p["v_rest"], p["e_rev_I"] - p["v_rest"], p["cm"] / p["tau_m"]

    def rhs(_, y):
        v, ge, gi = y
        dv = (-g_l * v + ge * (e_e - v) + gi * (e_i - v)) / p["cm"]
        return [dv, -ge / p["tau_syn_E"], -gi / p["tau_syn_I"]]

    y, t, out = np.zeros(3), 0.0, {}
    grid = np.arange(1, int(round(t_end / 0.1)) + 1) * 0.1
    for ta, w, rc in [*zip(times, weights, receptors, strict=True), (t_end, 0.0, 0)]:
        sol = solve_ivp(rhs, (t, ta), y, method="DOP853", rtol=1e-12, atol=1e-14,
                        dense_output=True)  # fmt: skip
        for tg in grid[(grid > t) & (grid <= ta)]:
            out[round(tg, 6)] = sol.sol(tg)[0]
        y = sol.y[:, -1].copy()
        y[1 + rc] += w
        t = ta
    return np.array([out[round(tg, 6)] for tg in grid])


def test_subthreshold_conductance_response_matches_solve_ivp():
    pre = source("s", 2)
    post = cond_population(1, v_thresh=0.0)
    projs = [projection(0, 1, [[0.02], [0.0]], [[1.25], [1.0]]),
             projection(0, 1, [[0.0], [0.03]], [[1.0], [2.35]], "inhibitory")]  # fmt: skip
    projs[0].mask[1, 0] = projs[1].mask[0, 0] = False
    sim = ExactSimulation(CompiledNetwork([pre, post], projs), 0.1)
    inp = SpikeTrains.from_lists([[[2.0, 9.3], [4.1]]])
    v = sim.run(200, sources={0: inp}, record={1: ["v"]}).signals[1]["v"][:, 0, 0] + 65.0
    ref = _reference_v([3.25, 6.45, 10.55], [0.02, 0.03, 0.02], [0, 1, 0], 20.0)
    np.testing.assert_allclose(v, ref, atol=1e-6)


def test_conductance_populations_are_not_trainable():
    sim = ExactSimulation(CompiledNetwork([cond_population(1)], []), 0.1)
    with pytest.raises(ValueError, match="forward-only"):
        sim.check_trainable()
