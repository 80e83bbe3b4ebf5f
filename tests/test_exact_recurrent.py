"""Recurrent networks in the exact engine: populations in a cycle of projections
advance one grid step at a time and exchange that step's spikes, which is exact because every
delay inside the cycle is at least one step.  Spike times therefore must not depend on dt
(tolerance 1e-9 ms, as for feed-forward networks)."""

from __future__ import annotations

import numpy as np
import pytest
from test_exact_networks import neurons, projection, random_input, source

from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.network import CompiledNetwork


def recurrent_network(rng, recurrent_gain=1.0):
    params = dict(v_reset=-68.0, v_thresh=-55.0, cm=0.25, tau_syn_I=3.0, tau_refrac=1.0,
                  i_offset=0.05)  # fmt: skip
    pops = [source("in", 4), neurons("a", 6, tau_m=rng.uniform(8, 20, 6), **params),
            neurons("b", 3, tau_m=12.0, **params)]  # fmt: skip
    projs = [
        projection(0, 1, rng.uniform(0.2, 0.8, (4, 6)), rng.uniform(1.0, 2.0, (4, 6))),
        projection(1, 1, recurrent_gain * rng.uniform(-0.5, 0.5, (6, 6)),
                   rng.uniform(1.0, 3.0, (6, 6))),
        projection(1, 2, rng.uniform(0.2, 0.6, (6, 3)), rng.uniform(1.0, 2.0, (6, 3))),
        projection(2, 1, recurrent_gain * -rng.uniform(0.0, 0.4, (3, 6)),
                   rng.uniform(1.0, 2.5, (3, 6)), "inhibitory"),
    ]  # fmt: skip
    return CompiledNetwork(pops, projs)


def _spikes(net, inp, dt, duration=40.0, chunks=1):
    sim = ExactSimulation(net, dt, batch_size=inp.batch)
    n = int(round(duration / dt))
    runs = [sim.run(n // chunks, sources={0: inp}) for _ in range(chunks)]
    return {
        (p, b): [np.concatenate([r.spikes[p].per_neuron(b)[j] for r in runs])
                 for j in range(net.populations[p].size)]
        for p in (1, 2) for b in range(inp.batch)
    }  # fmt: skip


def _assert_same(got, want):
    for key in want:
        for g, w in zip(got[key], want[key], strict=True):
            assert g.size == w.size, key
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)


def test_recurrent_spike_times_do_not_depend_on_dt():
    rng = np.random.default_rng(5)
    net = recurrent_network(rng)
    inp = random_input(rng, 2, 4, 25.0)
    ref = _spikes(net, inp, 0.05)
    assert sum(t.size for ts in ref.values() for t in ts) > 20
    for dt in (1.0, 0.5, 0.1):
        _assert_same(_spikes(net, inp, dt), ref)
    _assert_same(_spikes(net, inp, 0.5, chunks=4), ref)


def test_silent_recurrence_equals_the_feed_forward_engine():
    rng = np.random.default_rng(6)
    net = recurrent_network(rng, recurrent_gain=0.0)
    inp = random_input(rng, 2, 4, 25.0)
    forward = CompiledNetwork(net.populations, [net.projections[0], net.projections[2]])
    _assert_same(_spikes(net, inp, 0.5), _spikes(forward, inp, 0.5))


def test_recurrent_delays_below_the_step_are_refused():
    net = recurrent_network(np.random.default_rng(0))
    with pytest.raises(ValueError, match="recurrent"):
        ExactSimulation(net, 1.5)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_recurrent_gradients_match_finite_differences(dt):
    """Step-by-step reverse sweep: every weight and delay gradient of a recurrent network
    against central differences (tolerances as in test_exact_gradients)."""
    rng = np.random.default_rng(5)
    net = recurrent_network(rng)
    inp = random_input(rng, 2, 4, 25.0)
    sim = ExactSimulation(net, dt, batch_size=2)
    n = int(round(40.0 / dt))
    coef = {p: rng.normal(size=(2, net.populations[p].size)) for p in (1, 2)}

    def loss():
        sim.reset()
        res = sim.run(n, sources={0: inp}, keep_for_backward=True)
        first = {p: sim.readouts(res, p, ["first_spike_time"])["first_spike_time"] for p in coef}
        value = sum((coef[p] * np.where(np.isfinite(first[p]), first[p], 0.0)).sum() for p in coef)
        return value, res

    _, res = loss()
    structure = sim.event_structure(res)
    grads = sim.backward(res, {p: {"first_spike_time": c} for p, c in coef.items()})
    assert np.count_nonzero(grads.weights[1]) > 3  # through the recurrent projection
    h, compared = 1e-6, 0
    for k, proj in enumerate(net.projections):
        for get, put, g in ((sim.get_weights, sim.set_weights, grads.weights[k]),
                            (sim.get_delays, sim.set_delays, grads.delays[k])):  # fmt: skip
            x0 = get(k)
            scale = np.abs(g).max()
            for i, j in zip(*np.nonzero(proj.mask), strict=True):
                values = []
                for sign in (1, -1):
                    x = x0.copy()
                    x[i, j] += sign * h
                    put(k, x)
                    value, r = loss()
                    values.append(value if sim.event_structure(r) == structure else None)
                put(k, x0)
                if None in values:
                    continue
                compared += 1
                fd = (values[0] - values[1]) / (2 * h)
                assert abs(fd - g[i, j]) <= 1e-6 * max(abs(g[i, j]), 1e-2 * scale) + 2e-8, (
                    k, i, j, fd, g[i, j])  # fmt: skip
    assert compared > 150
