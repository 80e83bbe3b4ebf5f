"""The vectorised path for layers whose neurons share every arrival time gives the general
path's spike times (within 1e-12 ms) and gradients (within 1e-9 relative): both are the same
closed forms, evaluated in a different order."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from test_exact_networks import neurons, projection, random_input, source

from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.exact.closed_form import POW
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork


def shared_network(rng, refractory=1.5, delay=None, power=False):
    """All-to-all layers, uniform parameters, delays that depend on the presynaptic neuron
    (``delay``: the same for every excitatory row, 0.37 ms more for the inhibitory ones).
    ``power``: both synaptic time constants a quarter of ``tau_m``, so that the membrane has
    the power form (:func:`~pynn_eventprop.engine.exact.closed_form.power_form`)."""
    params = dict(v_reset=-68.0, v_thresh=-55.0, cm=0.25, tau_syn_E=5.0,
                  tau_syn_I=5.0 if power else 3.0, tau_m=20.0 if power else 12.0,
                  tau_refrac=refractory, i_offset=0.05)  # fmt: skip
    sizes = (5, 20, 3)
    pops = [source("in", 5)] + [neurons(f"l{k}", n, **params) for k, n in enumerate(sizes[1:])]
    projs = []
    for k in range(2):
        shape = (sizes[k], sizes[k + 1])
        row_delay = np.repeat(rng.uniform(1.0, 3.0, (shape[0], 1)), shape[1], axis=1)
        if delay is not None:
            row_delay[:] = delay
        projs.append(projection(k, k + 1, rng.uniform(0.1, 0.9, shape) * 1.2 / np.sqrt(shape[0]),
                                row_delay))  # fmt: skip
        projs.append(projection(k, k + 1, -rng.uniform(0.0, 0.5, shape) / np.sqrt(shape[0]),
                                row_delay + 0.37, "inhibitory"))  # fmt: skip
    return CompiledNetwork(pops, projs)


@pytest.mark.parametrize("power", [False, True])
@pytest.mark.parametrize("refractory", [0.0, 1.5])
def test_shared_path_equals_the_general_path(refractory, power):
    """Also in the power form, where the shared path locates the crossings of all neurons
    that certainly cross in an interval at once (:func:`.shared._first_crossings`)."""
    rng = np.random.default_rng(7)
    net = shared_network(rng, refractory, power=power)
    inp = random_input(rng, 3, 5, 20.0, per_neuron=3)
    coef = rng.normal(size=(3, 3))
    out = {}
    for shared in (True, False):
        sim = ExactSimulation(net, 0.5, batch_size=3, readout_populations=[])
        sim.shared_layers = shared
        res = sim.run(80, sources={0: inp}, keep_for_backward=True)
        assert res.tape["pops"][1].get("shared", False) == shared
        assert (sim.params[1][:, POW] == (4.0 if power else 0.0)).all()
        grads = sim.backward(res, {2: {"first_spike_time": coef}})
        out[shared] = (res, grads)
    (res_s, g_s), (res_g, g_g) = out[True], out[False]
    for p in (1, 2):
        assert res_s.spikes[p].times.size == res_g.spikes[p].times.size > 5
        for b in range(3):
            for x, y in zip(res_s.spikes[p].per_neuron(b), res_g.spikes[p].per_neuron(b),
                            strict=True):  # fmt: skip
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)
    for x, y in zip(g_s.weights + g_s.delays, g_g.weights + g_g.delays, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
    for p in (0, 1):  # dL/dt of each spike, summed over the 20 and the 3 neurons it reaches
        np.testing.assert_array_equal(res_s.spikes[p].neurons, res_g.spikes[p].neurons)
        x, y = g_s.spike_times[p], g_g.spike_times[p]
        assert np.count_nonzero(y) > 5
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())


def _run_kept(seed, shared):
    """``(engine, run kept for backward, dL/d(first spike time))`` of :func:`shared_network`
    with 4 samples, both layers on the shared path or both on the general one."""
    rng = np.random.default_rng(seed)
    net = shared_network(rng)
    inp = random_input(rng, 4, 5, 20.0, per_neuron=3)
    coef = rng.normal(size=(4, 3))
    sim = ExactSimulation(net, 0.5, batch_size=4, readout_populations=[])
    sim.shared_layers = shared
    res = sim.run(80, sources={0: inp}, keep_for_backward=True)
    assert all(res.tape["pops"][p].get("shared", False) == shared for p in (1, 2))
    return sim, res, coef


@pytest.mark.parametrize("shared", [True, False], ids=["shared path", "general path"])
def test_backward_without_delay_gradients_gives_the_same_weight_gradients(shared):
    """``delays=False`` leaves out the delay gradients (None) and changes no bit of the rest."""
    sim, res, coef = _run_kept(11, shared)
    full = sim.backward(res, {2: {"first_spike_time": coef}})
    lean = sim.backward(res, {2: {"first_spike_time": coef}}, delays=False)
    assert full.delays is not None and lean.delays is None
    for x, y in zip(full.weights, lean.weights, strict=True):
        assert np.any(x != 0)
        np.testing.assert_array_equal(x, y)
    for p in (0, 1):
        np.testing.assert_array_equal(full.spike_times[p], lean.spike_times[p])


@pytest.mark.parametrize("delays", [True, False], ids=["with delays", "without delays"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared path", "general path"])
def test_backward_without_source_times_gives_the_same_gradients(shared, delays):
    """``source_times=False`` (the training step's: nothing reads ``dL/dt`` of the inputs)
    leaves the spike source out of ``spike_times`` and changes no bit of the weight and delay
    gradients or of the hidden layer's spike-time gradients, which its arrivals at the output
    layer (also on the shared path, fed by neurons) must still sum."""
    sim, res, coef = _run_kept(12, shared)
    full = sim.backward(res, {2: {"first_spike_time": coef}}, delays=delays)
    lean = sim.backward(res, {2: {"first_spike_time": coef}}, delays=delays, source_times=False)
    assert set(full.spike_times) == {0, 1, 2} and set(lean.spike_times) == {1, 2}
    assert np.count_nonzero(lean.spike_times[1]) > 5
    np.testing.assert_array_equal(full.spike_times[1], lean.spike_times[1])
    for x, y in zip(full.weights + (full.delays or []), lean.weights + (lean.delays or []),
                    strict=True):  # fmt: skip
        assert np.any(x != 0)
        np.testing.assert_array_equal(x, y)


def test_shared_path_coincident_arrivals_equal_the_general_path():
    """Input spikes at a few common times and one delay per projection, so that most arrivals
    at the hidden layer coincide with another (as an image's latency code gives): the shared
    path passes over the empty intervals between them, the general path integrates them; and
    each sample lacks a different source, so the shared path's gradient sum skips other rows
    per sample.  Spikes and gradients (weights, delays) agree as in the test above."""
    rng = np.random.default_rng(17)
    net = shared_network(rng, 1.0, delay=1.0)
    batch, size = 3, 5
    times = rng.choice([1.0, 4.0, 6.5], size=(batch, size))
    sample, neuron = np.indices((batch, size))
    fire = np.ones((batch, size), bool)
    fire[0, 1] = fire[1, 3] = fire[2, 0] = False  # each sample without one source (as images)
    inp = SpikeTrains.from_arrays(sample[fire], neuron[fire], times[fire], batch, size)
    coef = rng.normal(size=(batch, 3))
    out = {}
    for shared in (True, False):
        sim = ExactSimulation(net, 0.5, batch_size=batch, readout_populations=[])
        sim.shared_layers = shared
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        assert res.tape["pops"][1].get("shared", False) == shared
        out[shared] = (res, sim.backward(res, {2: {"first_spike_time": coef}}))
    (res_s, g_s), (res_g, g_g) = out[True], out[False]
    assert res_s.spikes[1].times.size > 10 and res_s.spikes[2].times.size > 0
    for p in (1, 2):
        np.testing.assert_array_equal(res_s.spikes[p].neurons, res_g.spikes[p].neurons)
        np.testing.assert_allclose(res_s.spikes[p].times, res_g.spikes[p].times, atol=1e-12)
    for x, y in zip(g_s.weights + g_s.delays, g_g.weights + g_g.delays, strict=True):
        assert np.any(x != 0)
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())


def test_shared_path_carries_spikes_in_flight_between_runs():
    rng = np.random.default_rng(8)
    net = shared_network(rng)
    inp = random_input(rng, 2, 5, 30.0, per_neuron=3)
    spikes = {}
    for shared, chunks in ((True, 1), (True, 8), (False, 8)):
        sim = ExactSimulation(net, 0.5, batch_size=2, readout_populations=[])
        sim.shared_layers = shared
        runs = [sim.run(80 // chunks, sources={0: inp}) for _ in range(chunks)]
        spikes[shared, chunks] = [
            np.concatenate([r.spikes[p].per_neuron(b)[j] for r in runs])
            for p in (1, 2) for b in range(2) for j in range(net.populations[p].size)
        ]  # fmt: skip
    assert sum(x.size for x in spikes[True, 1]) > 10
    for other in ((True, 8), (False, 8)):
        for x, y in zip(spikes[other], spikes[True, 1], strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


def test_shared_path_gradients_match_finite_differences():
    """Central differences (h = 1e-6) of a first-spike-time loss, tolerance as in
    test_exact_gradients, on the shared-event path itself."""
    rng = np.random.default_rng(9)
    net = shared_network(rng)
    inp = random_input(rng, 2, 5, 20.0)
    sim = ExactSimulation(net, 1.0, batch_size=2, readout_populations=[])
    coef = {p: rng.normal(size=(2, net.populations[p].size)) for p in (1, 2)}

    def loss():
        sim.reset()
        res = sim.run(40, sources={0: inp}, keep_for_backward=True)
        ro = {p: sim.readouts(res, p, ["first_spike_time"])["first_spike_time"] for p in coef}
        return sum((coef[p] * np.where(np.isfinite(ro[p]), ro[p], 0)).sum() for p in coef), res

    _, res = loss()
    assert res.tape["pops"][1]["shared"] and res.tape["pops"][2]["shared"]
    g = sim.backward(res, {p: {"first_spike_time": c} for p, c in coef.items()}).weights
    assert _compare_with_central_differences(sim, loss, res, g, range(len(net.projections)), 4) > 40


def _compare_with_central_differences(sim, loss, res, g, projections, stride):
    """Assert that every ``stride``-th weight gradient of ``projections`` equals the central
    difference (h = 1e-6) of ``loss() -> (value, result)`` where the perturbation leaves the
    event structure unchanged; return how many were compared."""
    structure, compared = sim.event_structure(res), 0
    for k in projections:
        w0, scale = sim.get_weights(k), np.abs(g[k]).max()
        for i, j in list(np.ndindex(*w0.shape))[::stride]:
            values = []
            for sign in (1, -1):
                w = w0.copy()
                w[i, j] += sign * 1e-6
                sim.set_weights(k, w)
                value, r = loss()
                values.append(value if sim.event_structure(r) == structure else None)
            sim.set_weights(k, w0)
            if None not in values:
                compared += 1
                fd = (values[0] - values[1]) / 2e-6
                assert abs(fd - g[k][i, j]) <= 1e-6 * max(abs(g[k][i, j]), 1e-2 * scale) + 2e-8
    return compared


def _vmax_runs(net, inp, coef, n_steps, dt):
    """Run and differentiate a ``v_max`` + first-spike loss on both paths."""
    out = {}
    for shared in (True, False):
        sim = ExactSimulation(net, dt, batch_size=inp.offsets.size - 1,
                              readout_populations={2: ("v_max", "v_max_time")})  # fmt: skip
        sim.shared_layers = shared
        res = sim.run(n_steps, sources={0: inp}, keep_for_backward=True)
        assert res.tape["pops"][2].get("shared", False) == shared
        ro = sim.readouts(res, 2, ("v_max", "v_max_time", "first_spike_time"))
        grads = sim.backward(res, {2: {"v_max": coef, "first_spike_time": coef}})
        out[shared] = (ro, grads)
    return out


@pytest.mark.parametrize("refractory", [0.0, 1.5])
def test_shared_path_vmax_equals_the_general_path(refractory):
    """``v_max`` on the shared path: same value, time and gradient (rounding only: 1e-9
    relative) as the general path, with silent neurons (interior maxima and maxima at an
    arrival) and neurons that spike (``theta``, no gradient) in one layer."""
    rng = np.random.default_rng(11)
    net = shared_network(rng, refractory)
    w = net.projections[2].weights
    w[:, 0] *= 0.05  # output neuron 0 stays silent: its v_max is a state value
    inp = random_input(rng, 4, 5, 20.0, per_neuron=3)
    coef = rng.normal(size=(4, 3))
    out = _vmax_runs(net, inp, coef, 60, 0.5)
    (ro_s, g_s), (ro_g, g_g) = out[True], out[False]
    silent = ~np.isfinite(ro_g["first_spike_time"])
    assert silent.any() and (~silent).any()
    for name in ("v_max", "v_max_time", "first_spike_time"):
        np.testing.assert_allclose(ro_s[name], ro_g[name], rtol=1e-12, atol=1e-12)
    for x, y in zip(g_s.weights + g_s.delays, g_g.weights + g_g.delays, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
    assert np.abs(g_s.weights[2][:, 0]).max() > 0  # the silent neuron's v_max has a gradient


@pytest.mark.parametrize("inhibition", [1.0, 0.0])
def test_shared_path_vmax_gradients_match_finite_differences(inhibition):
    """Central differences (h = 1e-6) of a ``v_max`` loss of silent output neurons on the
    shared path itself, tolerance as in the first-spike test above: with inhibition the maxima
    sit at inhibitory arrivals (kinks of V), without it inside intervals (dV/dt = 0)."""
    rng = np.random.default_rng(12)
    net = shared_network(rng, 0.0)
    net.projections[2].weights[:] *= 0.2 if inhibition else 0.05  # outputs silent
    net.projections[3].weights[:] *= inhibition
    inp = random_input(rng, 3, 5, 20.0, per_neuron=3)
    coef = rng.normal(size=(3, 3))
    sim = ExactSimulation(net, 0.5, batch_size=3, readout_populations={2: ("v_max",)})

    def loss():
        sim.reset()
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        return (coef * sim.readouts(res, 2, ["v_max"])["v_max"]).sum(), res

    _, res = loss()
    assert res.tape["pops"][2]["shared"]
    _, kind, slope, arrival = res.tape["pops"][2]["vmax"]
    kink = (arrival >= 0) & (slope > 0)
    assert ((kind == 0) & (kink if inhibition else slope == 0)).sum() >= 3
    g = sim.backward(res, {2: {"v_max": coef}}).weights
    assert _compare_with_central_differences(sim, loss, res, g, (0, 2, 3), 3) > 20


MEANS = ("v_mean_uniform", "v_mean_exponential")


@pytest.mark.parametrize("refractory", [0.0, 1.5])
def test_shared_path_voltage_means_equal_the_general_path(refractory):
    """Both voltage means (closed-form integrals over free, spiking and refractory stretches)
    and their gradients through the adjoint sources and the spike jumps: the same (rounding
    only: 1e-9 relative) on both paths, in a spiking hidden layer and the output layer."""
    rng = np.random.default_rng(13)
    net = shared_network(rng, refractory)
    inp = random_input(rng, 4, 5, 20.0, per_neuron=3)
    coef = {p: {n: rng.normal(size=(4, net.populations[p].size)) for n in MEANS} for p in (1, 2)}
    out = {}
    for shared in (True, False):
        sim = ExactSimulation(net, 0.5, batch_size=4, readout_populations={1: MEANS, 2: MEANS})
        sim.shared_layers = shared
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        assert all(res.tape["pops"][p].get("shared", False) == shared for p in (1, 2))
        ro = {p: sim.readouts(res, p, MEANS) for p in (1, 2)}
        out[shared] = (ro, sim.backward(res, coef))
    (ro_s, g_s), (ro_g, g_g) = out[True], out[False]
    assert res.spikes[1].times.size > 20  # the hidden layer spikes: private stretches
    for p in (1, 2):
        for name in MEANS:
            np.testing.assert_allclose(ro_s[p][name], ro_g[p][name], rtol=1e-12, atol=1e-12)
    for x, y in zip(g_s.weights + g_s.delays, g_g.weights + g_g.delays, strict=True):
        assert np.any(x != 0)
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())


@pytest.mark.parametrize("name", MEANS)
def test_shared_path_one_voltage_mean_equals_the_general_path(name):
    """One mean alone (the shared path then leaves out the other's integrals and adjoint
    sources): its readout and gradients as on the general path, within the tolerances of the
    test above."""
    rng = np.random.default_rng(15)
    net = shared_network(rng, 1.5)
    inp = random_input(rng, 3, 5, 20.0, per_neuron=3)
    coef = {2: {name: rng.normal(size=(3, 3))}}
    out = {}
    for shared in (True, False):
        sim = ExactSimulation(net, 0.5, batch_size=3, readout_populations={2: (name,)})
        sim.shared_layers = shared
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        assert res.tape["pops"][2].get("shared", False) == shared
        out[shared] = (sim.readouts(res, 2, (name,))[name], sim.backward(res, coef))
    (ro_s, g_s), (ro_g, g_g) = out[True], out[False]
    np.testing.assert_allclose(ro_s, ro_g, rtol=1e-12, atol=1e-12)
    for x, y in zip(g_s.weights, g_g.weights, strict=True):
        assert np.any(x != 0)
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())


def test_shared_path_voltage_mean_gradients_match_finite_differences():
    """Central differences (h = 1e-6) of a loss of both voltage means of a spiking hidden
    layer (refractory, so integrals over clamped stretches too) and of the output layer, on
    the shared path itself; tolerance as in the first-spike test above."""
    rng = np.random.default_rng(14)
    net = shared_network(rng, 1.5)
    inp = random_input(rng, 2, 5, 20.0, per_neuron=3)
    coef = {p: {n: rng.normal(size=(2, net.populations[p].size)) for n in MEANS} for p in (1, 2)}
    sim = ExactSimulation(net, 0.5, batch_size=2, readout_populations={1: MEANS, 2: MEANS})

    def loss():
        sim.reset()
        res = sim.run(60, sources={0: inp}, keep_for_backward=True)
        value = sum((c * sim.readouts(res, p, MEANS)[n]).sum()
                    for p, named in coef.items() for n, c in named.items())  # fmt: skip
        return value, res

    _, res = loss()
    assert res.tape["pops"][1]["shared"] and res.tape["pops"][2]["shared"]
    assert res.spikes[1].times.size > 5
    g = sim.backward(res, coef).weights
    assert _compare_with_central_differences(sim, loss, res, g, range(len(net.projections)), 4) > 40


@pytest.mark.parametrize("n", range(14))
def test_lane_sum_is_the_sum_to_rounding(n):
    """The shared backward sums each arrival's ``dL/dt`` over the neurons in four interleaved
    partial sums (and the last ``n % 4`` entries into the first): every entry counts once
    (against ``math.fsum``, exact, within 4 ulp of the sum of magnitudes: two additions per
    entry at most), for sizes that leave each remainder."""
    import math

    from pynn_eventprop.engine.exact.shared_adjoint import lane_sum

    @numba.njit
    def call(x):
        return lane_sum(x)

    x = np.random.default_rng(n).normal(size=n)
    assert abs(call(x) - math.fsum(x)) <= 4 * np.finfo(float).eps * np.abs(x).sum()
