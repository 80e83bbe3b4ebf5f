"""``TsodyksMarkramSynapse``: short-term plasticity in the exact engine (forward only).

References, independent of :mod:`pynn_eventprop.engine.exact.short_term`:

* a regular presynaptic train converges to the closed-form steady state: ``u* = U/(1 - (1 - U)
  exp(-T/tau_facil))`` and the fixed point of the linear map of ``(y, z)`` over one period,
  written from the solution of ``dy/dt = -y/tau_psc``, ``dz/dt = y/tau_psc - z/tau_rec``;
  tolerance 1e-12 (rounding; the transient has decayed to below 1e-14 after 60 spikes);
* the membrane of an ``IF_curr_exp`` target driven by an irregular train equals the sum of
  its analytic PSPs with the efficacies from ``solve_ivp`` (rtol 1e-12) of the synapse
  ODEs between spikes: tolerance 1e-9 mV (the ODE solver's error).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyNN import errors
from scipy.integrate import solve_ivp
from test_exact_networks import projection, random_input, random_network, source

import pynn_eventprop as sim
from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.exact.short_term import NEAR_EQUAL, p_xy
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation

CURR = dict(v_rest=-65.0, cm=1.0, tau_m=20.0, tau_refrac=0.0, tau_syn_E=3.0, tau_syn_I=3.0,
            i_offset=0.0, v_reset=-70.0, v_thresh=100.0)  # fmt: skip


def _target(**params):
    p = {**CURR, **params}
    values = {k: np.full(1, float(v)) for k, v in p.items()}
    return CompiledPopulation("post", 1, "IF_curr_exp", values, {"v": np.full(1, -65.0)})


def _steady_state(big_u, tau_rec, tau_facil, tau_psc, period):
    """Efficacy ``u x`` of a spike of a regular train in the steady state (closed form)."""
    u = big_u / (1 - (1 - big_u) * math.exp(-period / tau_facil))
    py, pz = math.exp(-period / tau_psc), math.exp(-period / tau_rec)
    q = tau_rec * (pz - py) / (tau_rec - tau_psc)  # z(T) = pz z(0) + q y(0)
    # (y, z) just before a spike -> just before the next: y+ = y + u (1 - y - z)
    a = np.array([[py * (1 - u), -py * u], [q * (1 - u), pz - q * u]])
    y, z = np.linalg.solve(np.eye(2) - a, [py * u, q * u])
    return u * (1 - y - z)


@pytest.mark.parametrize(
    ("big_u", "tau_rec", "tau_facil"), [(0.5, 100.0, 0.0), (0.2, 50.0, 60.0)]
)  # fmt: skip
def test_regular_train_reaches_the_closed_form_steady_state(big_u, tau_rec, tau_facil):
    period, w = 20.0, 0.7
    times = 1.0 + period * np.arange(60)
    stp = {key: np.array([[value]]) for key, value in
           (("U", big_u), ("tau_rec", tau_rec), ("tau_facil", tau_facil))}  # fmt: skip
    proj = projection(0, 1, [[w]], 5000.0)  # every arrival still in flight at the end
    proj.short_term, proj.trainable = stp, False
    engine = ExactSimulation(CompiledNetwork([source("s", 1), _target()], [proj]), 0.1)
    inp = SpikeTrains.from_lists([[times]])
    engine.run(6000, sources={0: inp})  # two chunks: the synapse state carries over
    engine.run(6000, sources={0: inp})
    flight = engine.get_state().in_flight[1]
    sent = flight.weight[np.argsort(flight.arrival)] / w
    assert sent.size == 60 and sent[0] == pytest.approx(big_u, abs=1e-15)
    tau_f = tau_facil if tau_facil > 0 else 1e-300  # u resets to U at every spike
    expected = _steady_state(big_u, tau_rec, tau_f, CURR["tau_syn_E"], period)
    assert sent[-1] == pytest.approx(expected, abs=1e-12)
    assert abs(sent[-1] / sent[0] - 1) > 0.1  # depression or facilitation did act


@pytest.mark.parametrize("ratio", [1.0, 1 + 0.5 * NEAR_EQUAL, 1 + 1.1 * NEAR_EQUAL, 0.3])
def test_p_xy_matches_the_ode_on_both_sides_of_its_switch(ratio):
    """``P_xy`` is ``x(h)`` from ``(x, y, z) = (0, 1, 0)``; solve_ivp to 1e-13, tolerance 1e-11."""
    tau_rec, h = 40.0, 7.0
    tau_psc = tau_rec * ratio

    def rhs(_, s):
        return [-s[0] / tau_psc, s[0] / tau_psc - s[1] / tau_rec]

    sol = solve_ivp(rhs, (0.0, h), [1.0, 0.0], method="DOP853", rtol=1e-13, atol=1e-15)
    expected = 1.0 - sol.y[0, -1] - sol.y[1, -1]
    assert p_xy(tau_psc, tau_rec, h) == pytest.approx(expected, abs=1e-11)


def _efficacies(times, big_u, tau_rec, tau_facil, tau_psc):
    """``u x`` at each spike by integrating the synapse ODEs with solve_ivp."""

    def rhs(_, s):
        u, y, z = s
        return [-u / tau_facil, -y / tau_psc, y / tau_psc - z / tau_rec]

    state, t, out = np.array([0.0, 0.0, 0.0]), 0.0, []
    for ts in times:
        if ts > t:
            sol = solve_ivp(rhs, (t, ts), state, method="DOP853", rtol=1e-12, atol=1e-14)
            state = sol.y[:, -1].copy()
        u, y, z = state
        u += big_u * (1 - u)
        release = u * (1 - y - z)
        state, t = np.array([u, y + release, z]), ts
        out.append(release)
    return np.array(out)


def test_voltage_trace_matches_psps_with_reference_efficacies():
    big_u, tau_rec, tau_facil, w, delay = 0.3, 60.0, 150.0, 0.9, 1.3
    times = np.array([2.0, 5.5, 7.0, 12.25, 13.0, 30.0, 31.5, 33.0, 60.0])
    sim.setup(timestep=0.1)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=times))
    post = sim.Population(1, sim.IF_curr_exp(**CURR))
    syn = sim.TsodyksMarkramSynapse(weight=w, delay=delay, U=big_u, tau_rec=tau_rec,
                                    tau_facil=tau_facil)  # fmt: skip
    sim.Projection(src, post, sim.AllToAllConnector(), syn)
    post.record("v")
    sim.run(80.0)
    v = post.get_data().segments[0].filter(name="v")[0].magnitude[:, 0]
    sim.end()
    eff = _efficacies(times, big_u, tau_rec, tau_facil, CURR["tau_syn_E"])
    t = 0.1 * np.arange(v.size)[:, None]
    s = t - (times + delay)[None, :]
    tm, ts = CURR["tau_m"], CURR["tau_syn_E"]
    psp = np.where(s > 0, (np.exp(-s / tm) - np.exp(-s / ts)) / (1 / ts - 1 / tm), 0.0)
    expected = -65.0 + (psp * w * eff).sum(axis=1) / CURR["cm"]
    np.testing.assert_allclose(v, expected, atol=1e-9)
    assert eff.min() < 0.9 * eff.max()  # the efficacies did change


def test_multapses_with_different_parameters_stay_apart():
    sim.setup(timestep=0.1)
    pre, post = sim.Population(1, sim.SpikeSourceArray()), sim.Population(1, sim.IF_curr_exp())
    conns = [(0, 0, 0.5, 1.0, 0.2, 100.0, 0.0), (0, 0, 0.5, 1.0, 0.2, 100.0, 0.0),
             (0, 0, 0.5, 1.0, 0.7, 100.0, 0.0)]  # fmt: skip
    connector = sim.FromListConnector(conns, column_names=["weight", "delay", "U", "tau_rec",
                                                           "tau_facil"])  # fmt: skip
    sim.Projection(pre, post, connector, sim.TsodyksMarkramSynapse())
    sim.run(1.0)
    compiled = sim.simulator.state.network.projections
    sim.end()
    assert sorted((p.weights[0, 0], p.short_term["U"][0, 0]) for p in compiled) == [
        (0.5, 0.7),
        (1.0, 0.2),
    ]


@pytest.mark.parametrize(
    ("name", "value"), [("U", 1.5), ("U", -0.1), ("tau_rec", 0.0), ("tau_facil", -1.0),
                        ("U", float("nan"))]
)  # fmt: skip
def test_bad_short_term_parameters_are_named(name, value):
    sim.setup(timestep=0.1)
    pre, post = sim.Population(2, sim.SpikeSourceArray()), sim.Population(2, sim.IF_curr_exp())
    with pytest.raises(errors.InvalidParameterValueError, match=f"{name} must be in .*got"):
        sim.Projection(pre, post, sim.AllToAllConnector(),
                       sim.TsodyksMarkramSynapse(**{name: value}))  # fmt: skip
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.TsodyksMarkramSynapse())
    with pytest.raises(errors.InvalidParameterValueError, match=f"{name} must be in"):
        prj.set(**{name: value})
    sim.end()


def test_short_term_projection_after_a_trained_one_is_not_trainable():
    hidden, out = _target(), _target()
    hidden.label, out.label = "hidden", "out"
    trained = projection(0, 1, [[1.0]], 1.0)
    plastic = projection(1, 2, [[1.0]], 1.0)
    plastic.short_term = {k: np.array([[v]]) for k, v in (("U", 0.5), ("tau_rec", 100.0),
                                                            ("tau_facil", 0.0))}  # fmt: skip
    plastic.trainable = False
    engine = ExactSimulation(
        CompiledNetwork([source("s", 1), hidden, out], [trained, plastic]), 0.1
    )
    with pytest.raises(
        ValueError, match="projection '1->2' .*TsodyksMarkramSynapse.* forward-only"
    ):
        engine.check_trainable()
    trained.trainable = False  # nothing trained upstream: fine
    network = CompiledNetwork([source("s", 1), hidden, out], [trained, plastic])
    ExactSimulation(network, 0.1).check_trainable()


def test_gradients_downstream_of_a_short_term_projection_match_finite_differences():
    """Input -> (Tsodyks-Markram, static) hidden -> (trained) output: the short-term plastic
    arrivals are constants of the backward pass, so the trained weights' gradients must still
    match central differences (h = 1e-6 nA; tolerance as in tests/test_exact_gradients.py:
    1e-6 relative with a floor of 1e-2 of the largest gradient, plus 2e-8)."""
    rng = np.random.default_rng(5)
    net = random_network(rng, hidden=(6,), gain=2.0)
    stp = net.projections[0]  # input -> hidden, excitatory
    stp.trainable = False
    stp.short_term = {"U": np.full(stp.mask.shape, 0.6), "tau_rec": np.full(stp.mask.shape, 40.0),
                      "tau_facil": np.full(stp.mask.shape, 20.0)}  # fmt: skip
    inp = random_input(rng, 2, 5, 20.0)
    sim = ExactSimulation(net, 0.1, batch_size=2)
    sim.check_trainable()
    coef = rng.normal(size=(2, 3))

    def loss():
        sim.reset()
        result = sim.run(400, sources={0: inp}, keep_for_backward=True)
        first = sim.readouts(result, 2, ["first_spike_time"])["first_spike_time"]
        return float((coef * np.where(np.isfinite(first), first, 0.0)).sum()), result

    value, result = loss()
    assert result.spikes[1].times.size > 5 and result.spikes[2].times.size > 2
    grads = sim.backward(result, {2: {"first_spike_time": coef}}).weights
    assert not np.any(grads[0])  # the short-term plastic projection is not differentiated
    structure = ExactSimulation.event_structure(result)
    scale = max(np.abs(g).max() for g in grads)
    checked = 0
    for k in (2, 3):  # hidden -> output, excitatory and inhibitory
        w0 = sim.get_weights(k)
        for i, j in zip(*np.nonzero(net.projections[k].mask), strict=True):
            values = []
            for sign in (1, -1):
                w = w0.copy()
                w[i, j] += sign * 1e-6
                sim.set_weights(k, w)
                v, res = loss()
                values.append(v if ExactSimulation.event_structure(res) == structure else None)
            sim.set_weights(k, w0)
            if None in values:
                continue
            fd = (values[0] - values[1]) / 2e-6
            assert abs(fd - grads[k][i, j]) <= 1e-6 * max(abs(grads[k][i, j]), 1e-2 * scale) + 2e-8
            checked += 1
    assert checked >= 30


def _alpha_with_short_term(split):
    """``v`` of two IF_curr_alpha neurons driven through TsodyksMarkramSynapse; with ``split``,
    a ``set()`` between two runs recompiles the network in the middle of the segment."""
    sim.setup(timestep=0.1)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=np.arange(1.0, 200.0, 7.0)))
    post = sim.Population(2, sim.IF_curr_alpha(v_thresh=-60.0, tau_syn_E=2.0, i_offset=0.2))
    syn = sim.TsodyksMarkramSynapse(weight=1.5, delay=1.0, U=0.5, tau_rec=100.0, tau_facil=10.0)
    prj = sim.Projection(src, post, sim.AllToAllConnector(), syn)
    post.record("v")
    if split:
        sim.run(100.0)
        prj.set(weight=1.5)
    sim.run(200.0 - sim.get_current_time())
    v = post.get_data().segments[0].filter(name="v")[0].magnitude
    sim.end()
    return v


def test_recompiling_mid_segment_keeps_the_synapse_and_alpha_state():
    """The synapses' ``u, x, y`` and the alpha currents' ``J`` carry over (without them the
    final voltage differs by about 3 mV)."""
    np.testing.assert_allclose(_alpha_with_short_term(True), _alpha_with_short_term(False),
                               atol=1e-12)  # fmt: skip
