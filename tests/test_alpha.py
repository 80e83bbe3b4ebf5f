"""``IF_curr_alpha`` in the exact engine (forward only), against independent references.

* a single PSP: the current peaks at ``w`` after ``tau_syn`` and, when ``tau_syn = tau_m``, the
  voltage peaks at ``2 w tau/(e cm)`` after ``2 tau`` (closed form of the convolution, not the
  engine's propagator); tolerance 1e-12 (rounding);
* a DC-driven neuron is a plain LIF neuron: analytic spike times to 1e-12 ms;
* a small network with both receptors, refractoriness, per-neuron parameters and real-valued
  delays: ``scipy.integrate.solve_ivp`` (DOP853, rtol 1e-12, atol 1e-12) with event detection
  of the threshold, restarted at every arrival, spike and end of refractoriness.  Tolerance
  1e-9 ms on spike times and 1e-9 mV on the voltage, the ODE solver's error bound (measured:
  2e-12 ms, 2e-11 mV);
* a crossing that goes above threshold and back within one time step (5 ms) is found, at the
  same time as with a 0.1 ms step (1e-12 ms: both are exact).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from test_exact_networks import projection, source

import pynn_eventprop as sim
from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.eventprop import TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation

ALPHA = dict(v_rest=-65.0, cm=1.0, tau_m=10.0, tau_refrac=2.0, tau_syn_E=0.5, tau_syn_I=2.0,
             i_offset=0.0, v_reset=-70.0, v_thresh=-52.0)  # fmt: skip


def alpha_population(size, **params):
    p = {**ALPHA, **params}
    values = {k: np.broadcast_to(np.asarray(v, float), (size,)).copy() for k, v in p.items()}
    initial = {"v": values["v_rest"].copy(), "isyn_exc": np.zeros(size),
               "isyn_inh": np.zeros(size)}  # fmt: skip
    return CompiledPopulation("alpha", size, "IF_curr_alpha", values, initial)


def _one_input(post, weight, delay, spike, dt=0.1, steps=300):
    net = CompiledNetwork([source("s", 1), post], [projection(0, 1, [[weight]], delay)])
    sim = ExactSimulation(net, dt)
    inp = SpikeTrains.from_lists([[[spike]]])
    return sim.run(steps, sources={0: inp}, record={1: ["v", "isyn_exc"]})


def test_single_psp_peaks_where_the_alpha_function_says():
    tau, w = 5.0, 0.8  # tau_syn_E = tau_m: V = (w e/(cm tau)) s^2/2 exp(-s/tau)
    post = alpha_population(1, tau_m=tau, tau_syn_E=tau, cm=2.0, v_thresh=100.0)
    res = _one_input(post, w, 1.0, 1.0)  # arrival at 2.0 ms
    i_e, v = res.signals[1]["isyn_exc"][:, 0, 0], res.signals[1]["v"][:, 0, 0] + 65.0
    t = 0.1 * np.arange(1, 301)
    k_i, k_v = int(np.argmax(i_e)), int(np.argmax(v))
    assert t[k_i] == pytest.approx(2.0 + tau) and t[k_v] == pytest.approx(2.0 + 2 * tau)
    assert i_e[k_i] == pytest.approx(w, abs=1e-12)
    assert v[k_v] == pytest.approx(2 * w * tau / (math.e * 2.0), abs=1e-12)
    s = t - 2.0
    expected = np.where(s > 0, w * math.e / (2.0 * tau) * s**2 / 2 * np.exp(-s / tau), 0.0)
    np.testing.assert_allclose(v, expected, atol=1e-12)


def test_dc_driven_alpha_neuron_is_a_plain_lif():
    sim = ExactSimulation(CompiledNetwork([alpha_population(1, i_offset=1.5)], []), 0.1)
    spikes = sim.run(1000).spikes[0].per_neuron(0)[0]
    ir, theta, v_r = 15.0, 13.0, -5.0  # mV: I R, threshold and reset in the frame
    first = -10.0 * math.log(1 - theta / ir)
    isi = 2.0 - 10.0 * math.log((ir - theta) / (ir - v_r))
    assert spikes.size == 4
    np.testing.assert_allclose(spikes[0], first, atol=1e-12)
    np.testing.assert_allclose(np.diff(spikes), isi, atol=1e-12)


def _reference(p, arrivals, t_end):
    """Spike times and ``V`` on the grid of one alpha neuron by ``solve_ivp``.

    ``arrivals``: sorted ``(time, weight, channel)``.  State ``(V, I_E, J_E, I_I, J_I)``.
    """
    vr, theta = p["v_reset"] - p["v_rest"], p["v_thresh"] - p["v_rest"]
    taus = (p["tau_syn_E"], p["tau_syn_I"])

    def rhs(_, y, clamped):
        dv = 0.0 if clamped else -y[0] / p["tau_m"] + (y[1] + y[3] + p["i_offset"]) / p["cm"]
        return [dv, y[2] - y[1] / taus[0], -y[2] / taus[0], y[4] - y[3] / taus[1], -y[4] / taus[1]]

    def crossing(_, y, clamped):
        return y[0] - theta

    crossing.terminal, crossing.direction = True, 1
    grid = np.round(0.1 * np.arange(1, int(round(t_end / 0.1)) + 1), 9)
    y, t, ref, spikes, v = np.zeros(5), 0.0, -1.0, [], {}
    events = [*arrivals, (t_end, 0.0, 0)]
    m = 0
    while t < t_end:
        stop = events[m][0]
        clamped = t < ref
        if clamped:
            stop = min(stop, ref)
        detect = None if clamped else crossing
        sol = solve_ivp(rhs, (t, stop), y, method="DOP853", rtol=1e-12, atol=1e-12,
                        events=detect, dense_output=True, args=(clamped,))  # fmt: skip
        t_stop = sol.t[-1]
        for tg in grid[(grid > t) & (grid <= t_stop)]:
            v[tg] = sol.sol(tg)[0]
        y, t = sol.y[:, -1].copy(), t_stop
        if not clamped and sol.status == 1:  # threshold crossing
            spikes.append(t)
            y[0], ref = vr, t + p["tau_refrac"]
            continue
        if clamped:
            y[0] = vr
        while m < len(events) - 1 and events[m][0] <= t:
            _, w, c = events[m]
            y[2 + 2 * c] += w * math.e / taus[c]
            m += 1
        if t >= t_end:
            break
    return np.array(spikes), np.array([v[tg] for tg in grid])


def test_network_matches_solve_ivp_with_event_detection():
    pre = source("s", 3)
    params = dict(tau_m=[10.0, 7.0], tau_syn_E=[0.5, 1.5], tau_syn_I=[2.0, 7.0],
                  tau_refrac=[2.0, 0.5], v_reset=[-70.0, -60.0])  # fmt: skip
    post = alpha_population(2, **params)
    weights = np.array([[9.0, 4.0], [8.0, 3.5], [0.0, 0.0]])
    delays = np.array([[1.25, 0.7], [1.0, 2.35], [1.1, 0.3]])
    inhibitory = [[0.0, 0.0], [0.0, 0.0], [-2.0, -3.0]]
    projs = [projection(0, 1, weights, delays),
             projection(0, 1, inhibitory, delays, "inhibitory")]  # fmt: skip
    projs[0].mask[2] = False
    projs[1].mask[:2] = False
    sim = ExactSimulation(CompiledNetwork([pre, post], projs), 0.1)
    times = [[1.0, 4.0, 6.3, 6.9, 15.0], [2.2, 5.0, 6.1, 12.4], [3.3, 7.0, 7.2, 14.0]]
    res = sim.run(250, sources={0: SpikeTrains.from_lists([times])}, record={1: ["v"]})
    for j in range(2):
        p = {k: (v[j] if isinstance(v, list) else v) for k, v in {**ALPHA, **params}.items()}
        arrivals = sorted(
            (t + delays[i, j], w, c)
            for i in range(3)
            for t in times[i]
            for w, c in ((weights[i, j], 0), (-2.0 if j == 0 else -3.0, 1))
            if (c == 0) == (i < 2)
        )
        spikes, v = _reference(p, arrivals, 25.0)
        got = res.spikes[1].per_neuron(0)[j]
        assert spikes.size >= 2 and got.size == spikes.size
        np.testing.assert_allclose(got, spikes, atol=1e-9)
        np.testing.assert_allclose(res.signals[1]["v"][:, 0, j] + 65.0, v, atol=1e-9)


def test_brief_crossing_inside_a_long_step_is_found():
    """A PSP that peaks just above threshold and decays within one 5 ms step, excitation and
    inhibition with different time constants (the full crossing chain)."""
    pre = source("s", 2)
    post = alpha_population(1, tau_syn_E=0.3, tau_syn_I=3.0, v_thresh=-64.0, tau_refrac=0.0)
    projs = [projection(0, 1, [[4.0], [0.0]], 0.5),
             projection(0, 1, [[0.0], [-0.5]], 0.5, "inhibitory")]  # fmt: skip
    projs[0].mask[1] = False
    projs[1].mask[0] = False
    inp = SpikeTrains.from_lists([[[0.1], [0.1]]])
    free = alpha_population(1, tau_syn_E=0.3, tau_syn_I=3.0, v_thresh=100.0)
    sim = ExactSimulation(CompiledNetwork([pre, free], projs), 0.1)
    v = sim.run(50, sources={0: inp}, record={1: ["v"]}).signals[1]["v"][:, 0, 0]
    assert v.max() > -64.0 > v[-1]  # above threshold and back below by the end of the step
    spikes = []
    for dt, steps in ((5.0, 2), (0.1, 100)):
        sim = ExactSimulation(CompiledNetwork([pre, post], projs), dt)
        spikes.append(sim.run(steps, sources={0: inp}).spikes[1].per_neuron(0)[0])
    assert spikes[0].size == 1
    np.testing.assert_allclose(spikes[0], spikes[1], atol=1e-12)


def test_alpha_populations_are_forward_only():
    sim = ExactSimulation(CompiledNetwork([alpha_population(1)], []), 0.1)
    with pytest.raises(ValueError, match=r"IF_curr_alpha populations \['alpha'\] are forward-only"):
        sim.check_trainable()


@pytest.mark.parametrize(("name", "value"), [("tau_syn_E", 0.0), ("tau_m", -1.0), ("cm", np.nan)])
def test_bad_alpha_parameters_are_named(name, value):
    with pytest.raises(ValueError, match=f"{name} must be finite and > 0.*got"):
        ExactSimulation(CompiledNetwork([alpha_population(1, **{name: value})], []), 0.1)


def test_pynn_alpha_population_records_and_refuses_training():
    """Through PyNN: initial ``isyn_exc`` decays as ``I(0) exp(-t/tau)`` (no ``J`` yet), and
    the Trainer names the forward-only population before any work."""
    sim.setup(timestep=0.1)
    cells = sim.Population(1, sim.IF_curr_alpha(tau_syn_E=2.0, v_thresh=0.0), label="alpha")
    cells.initialize(isyn_exc=0.5)
    cells.record(["v", "isyn_exc"])
    sim.run(10.0)
    i_e = cells.get_data().segments[0].filter(name="isyn_exc")[0].magnitude[:, 0]
    t = 0.1 * np.arange(i_e.size)
    np.testing.assert_allclose(i_e, 0.5 * np.exp(-t / 2.0), atol=1e-13)
    inputs = sim.Population(2, sim.SpikeSourceArray())
    sim.Projection(inputs, cells, sim.AllToAllConnector(), EventPropSynapse(weight=0.1))
    with pytest.raises(ValueError, match=r"IF_curr_alpha populations \['alpha'\] are forward"):
        Trainer(inputs, cells, TTFSCrossEntropy(), duration=20.0, batch_size=2, progress=False)
    sim.end()


@pytest.mark.parametrize("model", ["IF_curr_alpha", "IF_cond_exp"])
def test_forward_only_population_in_a_cycle_records_its_voltage(model):
    """A recurrent component is integrated step by step; its forward-only populations are
    sampled at every step too.  Silent self-connections: ``v`` is the analytic DC response
    ``v_rest + R I (1 - exp(-t/tau_m))`` (1e-6 mV: RK4 for IF_cond_exp, exact for alpha)."""
    sim.setup(timestep=0.1)
    cells = sim.Population(2, getattr(sim, model)(i_offset=0.5))
    sim.Projection(cells, cells, sim.AllToAllConnector(allow_self_connections=False),
                   sim.StaticSynapse(weight=0.0, delay=0.5))  # fmt: skip
    cells.record("v")
    sim.run(20.0)
    v = cells.get_data().segments[0].filter(name="v")[0].magnitude
    sim.end()
    t = 0.1 * np.arange(v.shape[0])[:, None]
    expected = np.broadcast_to(-65.0 + 10.0 * (1 - np.exp(-t / 20.0)), v.shape)
    np.testing.assert_allclose(v, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"tau_syn_I": 0.0}, "tau_syn_I must be > 0"),
     ({"tau_refrac": -1.0}, "tau_refrac must be >= 0"),
     ({"v_reset": -40.0}, "v_reset must be below v_thresh")],
)  # fmt: skip
def test_bad_pynn_alpha_parameters_fail_at_creation(params, message):
    sim.setup(timestep=0.1)
    with pytest.raises(sim.errors.InvalidParameterValueError, match=f"{message}.*IF_curr_alpha"):
        sim.Population(2, sim.IF_curr_alpha(**params))
    sim.end()
