"""Random compiled networks for the exact-engine tests, and checks of the builders themselves.

Networks are built directly as :class:`CompiledNetwork` objects (no PyNN layer) so that the
engine tests depend on nothing but the engine.
"""

from __future__ import annotations

import numpy as np

from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation, CompiledProjection

#: PyNN IF_curr_exp defaults.
PYNN_DEFAULTS = dict(
    v_rest=-65.0,
    cm=1.0,
    tau_m=20.0,
    tau_refrac=0.1,
    tau_syn_E=5.0,
    tau_syn_I=5.0,
    i_offset=0.0,
    v_reset=-65.0,
    v_thresh=-50.0,
)


def neurons(label, size, **params):
    """An IF_curr_exp population; parameters are scalars or per-neuron arrays."""
    p = {**PYNN_DEFAULTS, **params}
    values = {k: np.broadcast_to(np.asarray(v, float), (size,)).copy() for k, v in p.items()}
    initial = {"v": values["v_rest"].copy(), "isyn_exc": np.zeros(size), "isyn_inh": np.zeros(size)}
    return CompiledPopulation(label, size, "IF_curr_exp", values, initial)


def source(label, size):
    return CompiledPopulation(label, size, "spike_source")


def projection(pre, post, weights, delays, receptor="excitatory", mask=None):
    """A dense projection; ``delays`` in ms (float array or scalar)."""
    weights = np.asarray(weights, float)
    mask = np.ones(weights.shape, bool) if mask is None else mask
    delays = np.broadcast_to(np.asarray(delays, float), weights.shape).copy()
    return CompiledProjection(f"{pre}->{post}", pre, post, receptor, weights, delays, mask, True)


def random_network(
    rng, n_in=5, hidden=(6,), n_out=3, inhibition=True, gain=1.2, out_params=None, **params
):
    """Feed-forward network with per-neuron parameters, refractoriness, ``v_reset != v_rest``,
    real-valued mixed delays in [1, 3] ms and an inhibitory projection into every layer."""
    sizes = [n_in, *hidden, n_out]
    pops = [source("in", n_in)]
    for k, size in enumerate(sizes[1:]):
        base = dict(
            v_rest=-65.0,
            v_reset=-68.0,
            v_thresh=-55.0,
            cm=0.25,
            tau_m=rng.uniform(8.0, 20.0, size),
            tau_syn_E=5.0,
            tau_syn_I=rng.uniform(2.0, 4.0, size),
            tau_refrac=rng.uniform(0.5, 2.0, size),
            i_offset=rng.uniform(0.0, 0.1, size),
        )
        last = k == len(sizes) - 2
        pops.append(
            neurons(f"l{k}", size, **{**base, **params, **((out_params or {}) if last else {})})
        )
    projs = []
    for k in range(len(sizes) - 1):
        shape = (sizes[k], sizes[k + 1])
        scale = gain / np.sqrt(sizes[k])
        projs.append(projection(k, k + 1, rng.uniform(0.2, 1.0, shape) * scale,
                                rng.uniform(1.0, 3.0, shape)))  # fmt: skip
        if inhibition:
            projs.append(projection(k, k + 1, -rng.uniform(0.0, 0.6, shape) * scale,
                                    rng.uniform(1.0, 3.0, shape), "inhibitory"))  # fmt: skip
    return CompiledNetwork(pops, projs)


def random_input(rng, batch, size, duration, per_neuron=3):
    """Source spikes at real times, several per neuron (some within one step)."""
    n = rng.integers(1, per_neuron + 1, size=(batch, size))
    sample, neuron, times = [], [], []
    for b in range(batch):
        for i in range(size):
            sample += [b] * n[b, i]
            neuron += [i] * n[b, i]
            times += list(rng.uniform(0.0, duration, n[b, i]))
    return SpikeTrains.from_arrays(sample, neuron, times, batch, size)


def test_random_network_is_feed_forward():
    net = random_network(np.random.default_rng(0), hidden=(4, 4))
    assert all(p.pre < p.post for p in net.projections)
    assert len(net.populations) == 4


def test_random_input_has_several_spikes_per_neuron():
    trains = random_input(np.random.default_rng(0), 2, 3, 10.0, per_neuron=4)
    assert trains.batch == 2 and trains.times.size >= 6
