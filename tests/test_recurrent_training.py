"""Recurrent EventProp projections through the PyNN Trainer: exact gradients and bad input.

The gradients ``Trainer.gradient`` returns are compared with central finite differences of the
loss the Trainer evaluates, with the weights perturbed through PyNN (``Projection.set``), only
where the perturbation leaves every neuron's spike count unchanged (the loss is smooth in the
weights only while no spike appears or vanishes).

Tolerance: ``|fd - g| <= 1e-6 max(|g|, 1e-2 max|g|) + 2e-8``.  Central differences with
``h = 1e-6`` nA have a truncation error ``O(h^2)`` (~1e-12 relative here) and a rounding error
of about ``eps |L| / h ~ 1e-10``; the relative 1e-6 is the target, the floor keeps entries
whose gradient is many orders below the largest one (where rounding dominates) from failing.
"""

from __future__ import annotations

import numpy as np
import pytest

from pynn_eventprop.datasets import SpikeDataset
from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer

#: Fast-firing LIF (mV, ms, nF, nA): ``tau_m = 10`` ms, threshold 10 mV above rest, 1 ms
#: refractory period, so that recurrent neurons fire several times in 40 ms.
NEURON = dict(v_rest=0.0, v_reset=0.0, v_thresh=10.0, cm=1.0, tau_m=10.0, tau_syn_E=4.0,
              tau_syn_I=6.0, tau_refrac=1.0, i_offset=0.0)  # fmt: skip
H = 1e-6


def recurrent_network(sim, rng, output_recurrent=False):
    """Input (4) -> hidden (6, all-to-all recurrent with self-connections, mixed delays)
    -> output (2); optionally the output excites itself and inhibits its neighbour."""
    sim.setup(timestep=0.5, min_delay=0.5)
    inputs = sim.Population(4, sim.SpikeSourceArray(), label="in")
    hidden = sim.Population(6, sim.IF_curr_exp(**NEURON), label="hidden")
    out = sim.Population(2, sim.IF_curr_exp(**NEURON), label="out")
    hidden.initialize(v=0.0)
    out.initialize(v=0.0)
    rule = EventPropRule(Adam(lr=1e-3))
    all_to_all = sim.AllToAllConnector(allow_self_connections=True)

    def connect(pre, post, w, d, label):
        synapse = EventPropSynapse(weight=w, delay=d, rule=rule)
        return sim.Projection(pre, post, all_to_all, synapse, label=label)

    projections = [
        connect(inputs, hidden, rng.uniform(3.0, 9.0, (4, 6)), rng.uniform(0.5, 2.0, (4, 6)),
                "in-hidden"),
        connect(hidden, hidden, rng.uniform(-2.0, 2.5, (6, 6)), rng.uniform(0.5, 4.0, (6, 6)),
                "hidden-hidden"),
        connect(hidden, out, rng.uniform(0.3, 1.0, (6, 2)), rng.uniform(0.5, 3.0, (6, 2)),
                "hidden-out"),
    ]  # fmt: skip
    if output_recurrent:
        w = np.array([[1.0, -2.0], [-2.0, 1.0]])
        projections.append(connect(out, out, w, [[0.5, 1.5], [1.0, 2.5]], "out-out"))
    return inputs, out, projections


def spike_counts(trainer, times, labels):
    """Loss of the batch (``Trainer.evaluate``, which first picks up changes made through
    PyNN) and the spike count of every neuron of every sample."""
    data = SpikeDataset(times, labels, trainer.outputs.size, trainer.duration)
    loss = trainer.evaluate(data)["loss"]
    forward = trainer.step.forward(times, labels)
    assert forward.loss.loss == pytest.approx(loss, rel=1e-12, abs=0)
    counts = []
    for index, trains in sorted(forward.result.spikes.items()):
        if not trainer.engine.network.populations[index].is_source:
            key = trains.sample_index * trains.size + trains.neurons
            counts.append(np.bincount(key, minlength=trains.batch * trains.size))
    return loss, np.concatenate(counts)


def finite_difference_check(trainer, projection, attribute, gradient, times, labels, rng, n):
    """Compare ``gradient`` with central differences of the loss in ``attribute`` (weight or
    delay) of ``n`` random connections of ``projection``; returns how many were compared.
    Delays at ``min_delay`` (which cannot be lowered) are left out."""
    _, counts = spike_counts(trainer, times, labels)
    x0 = projection.get(attribute, format="array")
    scale = np.abs(gradient).max()
    lowest = trainer.state.min_delay + H if attribute == "delay" else -np.inf
    pairs = np.argwhere(np.isfinite(x0) & (x0 >= lowest))
    compared = 0
    for i, j in pairs[rng.permutation(len(pairs))[:n]]:
        values = []
        for sign in (1, -1):
            x = x0.copy()
            x[i, j] += sign * H
            projection.set(**{attribute: x})
            value, c = spike_counts(trainer, times, labels)
            values.append(value if np.array_equal(c, counts) else None)
        projection.set(**{attribute: x0})
        if None in values:
            continue
        fd = (values[0] - values[1]) / (2 * H)
        g = gradient[i, j]
        assert abs(fd - g) <= 1e-6 * max(abs(g), 1e-2 * scale) + 2e-8, (i, j, fd, g)
        compared += 1
    return compared


@pytest.mark.parametrize("output_recurrent", [False, True])
def test_recurrent_weight_gradients_match_finite_differences(sim, output_recurrent):
    rng = np.random.default_rng(11)
    inputs, out, projections = recurrent_network(sim, rng, output_recurrent)
    loss = TTFSCrossEntropy(xi=2.0, alpha=0.0)
    trainer = Trainer(inputs, out, loss, duration=40.0, batch_size=3, progress=False)
    times = rng.uniform(0.0, 12.0, (3, 4))
    labels = np.array([0, 1, 1])
    _, counts = spike_counts(trainer, times, labels)
    hidden_counts = counts[: 3 * 6]
    assert hidden_counts.max() >= 3  # neurons firing several times
    gradients = trainer.gradient(times, labels)
    assert np.count_nonzero(gradients["hidden-hidden"]) > 10  # the recurrent error terms
    compared = 0
    for projection in projections:
        gradient = projection.get("gradient", format="array")
        np.testing.assert_array_equal(gradient, gradients[projection.label])
        compared += finite_difference_check(
            trainer, projection, "weight", gradient, times, labels, rng, n=8
        )
    assert compared >= 20


def test_trained_recurrent_network_learns_and_writes_weights_back(sim):
    rng = np.random.default_rng(3)
    inputs, out, projections = recurrent_network(sim, rng)
    recurrent = projections[1]
    before = recurrent.get("weight", format="array")
    trainer = Trainer(inputs, out, TTFSCrossEntropy(xi=2.0), duration=40.0, batch_size=4,
                      seed=0, progress=False)  # fmt: skip
    data = SpikeDataset(rng.uniform(0, 12, (8, 4)), np.arange(8) % 2, 2, 40.0)
    first = trainer.evaluate(data)["loss"]
    trainer.fit(data, epochs=5)
    assert trainer.evaluate(data)["loss"] < first
    after = recurrent.get("weight", format="array")
    assert not np.allclose(after, before)
    np.testing.assert_array_equal(after, trainer.engine.get_weights(trainer.trainable[1]))


def test_recurrent_projection_with_zero_delay_is_refused_on_creation(sim):
    sim.setup(timestep=0.5, min_delay=0.5)
    hidden = sim.Population(3, sim.IF_curr_exp(**NEURON), label="hidden")
    with pytest.raises(ValueError, match=r"delay must lie in \[0.5, inf\] ms.*got 0.0 ms"):
        sim.Projection(hidden, hidden, sim.AllToAllConnector(), EventPropSynapse(weight=1.0,
                       delay=0.0), label="rec")  # fmt: skip


def test_min_delay_below_the_step_is_refused_at_setup(sim):
    with pytest.raises(ValueError, match="min_delay must be >= the timestep 1.0 ms, got 0.0"):
        sim.setup(timestep=1.0, min_delay=0.0)
