"""A layer that cannot reach threshold (a leaky-integrator readout) runs by superposition
(:mod:`pynn_eventprop.engine.exact.linear`): one closed-form response per arrival instead of
integrating interval by interval.  Its voltage means, its state at the end of the run and every
gradient that passes through it (weights and delays of both layers, through the hidden
spikes' ``dL/dt``) equal those of the event-by-event paths, which integrate and sweep the
adjoint instead: to rounding (1e-12 of the largest value for readouts and states, 1e-9
relative for gradients, as the shared path's tests); the finite differences check the path
on its own."""

from __future__ import annotations

import numpy as np
import pytest
from test_exact_networks import random_input
from test_exact_shared import MEANS, _compare_with_central_differences, shared_network

from pynn_eventprop.engine import threads
from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.exact.closed_form import propagate
from pynn_eventprop.engine.exact.forward import param_tuple
from pynn_eventprop.engine.exact.linear import psc_peak
from pynn_eventprop.engine.threads import max_threads, set_threads

PATHS = ("linear", "shared", "general")


def readout_network(rng, refractory=1.5, theta=1e9, start=None):
    """:func:`shared_network` whose output layer has threshold ``theta`` (mV) and, when
    ``start`` is given, the initial state ``(v, isyn_exc, isyn_inh)``."""
    net = shared_network(rng, refractory)
    out = net.populations[2]
    out.params["v_thresh"][:] = theta
    if start is not None:
        for name, value in zip(("v", "isyn_exc", "isyn_inh"), start, strict=True):
            out.initial[name][:] = value
    return net


def run_path(path, net, inp, readouts, coef, n_steps=60):
    """Run and differentiate on ``path``; ``(readouts of layer 2, gradients, state of layer 2
    at the end, the run)``."""
    sim = ExactSimulation(net, 0.5, batch_size=inp.batch, readout_populations={2: readouts})
    sim.shared_layers = path != "general"
    sim.linear_layers = path == "linear"
    res = sim.run(n_steps, sources={0: inp}, keep_for_backward=True)
    assert bool(res.tape["pops"][2].get("linear")) == (path == "linear")
    ro = sim.readouts(res, 2, readouts)
    grads = sim.backward(res, {2: {name: coef[name] for name in readouts}})
    return ro, grads, [x.copy() for x in sim._state[2][:3]], res


def assert_paths_agree(out, readouts):
    (ro_l, g_l, st_l, _), *others = (out[p] for p in PATHS)
    for ro, g, st, _ in others:
        for name in readouts:
            scale = np.abs(ro[name]).max()
            np.testing.assert_allclose(ro_l[name], ro[name], rtol=0, atol=1e-12 * scale)
        for x, y in zip(st_l, st, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-12 * np.abs(y).max())
        for x, y in zip(g_l.weights + g_l.delays, g.weights + g.delays, strict=True):
            assert np.any(x != 0)
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
        np.testing.assert_allclose(g_l.spike_times[1], g.spike_times[1], rtol=1e-9,
                                   atol=1e-12 * np.abs(g.spike_times[1]).max())  # fmt: skip


@pytest.mark.parametrize("readouts", [MEANS, MEANS[:1], MEANS[1:]], ids=["both", "u", "e"])
@pytest.mark.parametrize("refractory", [0.0, 1.5])
def test_linear_path_equals_the_event_paths(readouts, refractory):
    """Excitatory and inhibitory arrivals with mixed delays from a spiking hidden layer (which
    fires several times per neuron, refractory or not), an external current, and an initial
    state away from rest."""
    rng = np.random.default_rng(21)
    net = readout_network(rng, refractory, start=(-60.0, 0.3, -0.2))
    inp = random_input(rng, 4, 5, 20.0, per_neuron=3)
    coef = {name: rng.normal(size=(4, 3)) for name in MEANS}
    out = {path: run_path(path, net, inp, readouts, coef) for path in PATHS}
    res = out["linear"][3]
    hidden = res.spikes[1]
    repeats = max(len(x) for b in range(hidden.batch) for x in hidden.per_neuron(b))
    assert hidden.times.size > 20 and repeats > 1  # neurons that fire several times
    assert res.spikes[2].times.size == 0
    assert_paths_agree(out, readouts)


def test_linear_path_gradients_match_finite_differences():
    """Central differences (h = 1e-6) of a loss of both voltage means of the readout layer
    with respect to every weight of both layers (hidden spike times move with the hidden
    weights), on the linear path itself; tolerance as in the shared path's tests."""
    rng = np.random.default_rng(22)
    net = readout_network(rng)
    inp = random_input(rng, 2, 5, 20.0, per_neuron=3)
    coef = {name: rng.normal(size=(2, 3)) for name in MEANS}
    sim = ExactSimulation(net, 0.5, batch_size=2, readout_populations={2: MEANS})

    def loss():
        sim.reset()
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        ro = sim.readouts(res, 2, MEANS)
        return sum((c * ro[name]).sum() for name, c in coef.items()), res

    _, res = loss()
    assert res.tape["pops"][2]["linear"] and res.spikes[1].times.size > 5
    g = sim.backward(res, {2: coef}).weights
    assert _compare_with_central_differences(sim, loss, res, g, range(len(net.projections)), 4) > 40


@pytest.mark.parametrize(
    "case", ["reachable threshold", "refractory at the start", "v_max read out", "no mean"]
)
def test_linear_path_is_taken_only_where_it_is_exact(case):
    """The event path runs a layer that may reach threshold (the case here spikes), one that is
    refractory when the run starts and one whose ``v_max`` is read out; and a layer without
    voltage means read out (where the bound's check would cost more than it saves).  A layer
    that tried superposition took its arrivals unsorted; the event path then sorts them:
    every spike, readout and gradient equals, bit for bit, that of an engine that never tries
    superposition."""
    rng = np.random.default_rng(23)
    net = readout_network(rng, theta=-55.0 if case == "reachable threshold" else 1e9)
    inp = random_input(rng, 3, 5, 20.0, per_neuron=3)
    readouts = {"v_max read out": ("v_max",) + MEANS, "no mean": ()}.get(case, MEANS)
    coef = {name: rng.normal(size=(3, 3)) for name in readouts + ("first_spike_time",)}
    out = []
    for linear in (True, False):
        sim = ExactSimulation(net, 0.5, batch_size=3, readout_populations={2: readouts})
        sim.linear_layers = linear
        if case == "refractory at the start":
            sim._state[2][3][1, 2] = 0.25  # neuron 2 of sample 1: refractory until 0.25 ms
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        assert res.tape["pops"][2].get("shared") and not res.tape["pops"][2].get("linear")
        ro = sim.readouts(res, 2, tuple(coef))
        out.append((res, ro, sim.backward(res, {2: coef})))
    (res, ro, grads), (res_e, ro_e, grads_e) = out
    if case == "reachable threshold":
        assert res.spikes[2].times.size > 0
    for p in (1, 2):
        np.testing.assert_array_equal(res.spikes[p].times, res_e.spikes[p].times)
    for name in coef:
        np.testing.assert_array_equal(ro[name], ro_e[name])
    for x, y in zip(grads.weights + grads.delays, grads_e.weights + grads_e.delays, strict=True):
        np.testing.assert_array_equal(x, y)
    if case != "no mean":  # there nothing is read that the silent layer's weights move
        assert any(np.any(x != 0) for x in grads.weights)


@pytest.mark.parametrize("taus", [(20.0, 5.0), (12.0, 3.0), (10.0, 10.0), (5.0, 8.0)])
def test_psc_peak_is_the_maximum_of_the_unit_response(taus):
    """The peak of ``q_x`` (the bound's unit) against a dense sampling of ``q_x`` itself:
    never below any sample, and within 1e-9 of the largest (sampled around the peak)."""
    tau_m, tau_s = taus
    rng = np.random.default_rng(0)
    net = shared_network(rng)
    out = net.populations[2]
    out.params.update(tau_m=np.full(3, tau_m), tau_syn_E=np.full(3, tau_s),
                      tau_syn_I=np.full(3, tau_s))  # fmt: skip
    p = param_tuple(ExactSimulation(net, 0.5, batch_size=1).params[2], 0)
    peak = psc_peak(p, p[2], p[4], 0)
    s = np.linspace(0.0, 10 * max(tau_m, tau_s), 200_001)
    q = np.array([propagate(p, 0.0, 1.0, 0.0, 0.0, x)[0] for x in s])
    assert peak >= q.max() > 0
    assert peak - q.max() <= 1e-9 * peak


@pytest.mark.skipif(max_threads() < 2, reason="numba sees a single core")
def test_linear_path_gives_the_same_bits_on_one_and_two_threads(monkeypatch):
    monkeypatch.setattr(threads, "SERIAL_WORK", 0)  # the small network would run on one
    rng = np.random.default_rng(24)
    net = readout_network(rng)
    inp = random_input(rng, 9, 5, 20.0, per_neuron=3)
    coef = {name: rng.normal(size=(9, 3)) for name in MEANS}
    runs = []
    try:
        for n in (1, 2):
            set_threads(n)
            runs.append(run_path("linear", net, inp, MEANS, coef))
    finally:
        set_threads(None)
    (ro1, g1, st1, _), (ro2, g2, st2, _) = runs
    for x, y in zip([*ro1.values(), *st1, *g1.weights, *g1.delays],
                    [*ro2.values(), *st2, *g2.weights, *g2.delays], strict=True):  # fmt: skip
        np.testing.assert_array_equal(x, y)
