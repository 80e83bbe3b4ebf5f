"""Recurrent networks in the exact engine (forward): populations in a cycle of projections
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
