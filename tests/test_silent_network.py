"""A silent network is diagnosed, not trained in silence.

If the output population or a hidden population fires no spike in any sample of a batch,
EventProp has no gradient; the Trainer warns once per population with the cause (initial v
against v_rest and v_thresh, the input weights) and the remedies.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pyNN.random import NumpyRNG, RandomDistribution

from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.neurons import WP_NEURON
from pynn_eventprop.training import SilentNetworkWarning


@pytest.fixture(scope="module")
def samples():
    code = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
    return yin_yang_dataset("train", code).subset(np.arange(32))


def trainer(sim, initial_v=0.0, scale=1.0, hidden_initial_v=None):
    """5-20-3 network; ``initial_v=None`` keeps PyNN's default initial v (-65 mV)."""
    sim.setup(timestep=1.0, min_delay=1.0)
    rng = NumpyRNG(seed=3)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(20, sim.IF_curr_exp(**WP_NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    hidden_v = initial_v if hidden_initial_v is None else hidden_initial_v
    if hidden_v is not None:
        hidden.initialize(v=hidden_v)
    if initial_v is not None:
        output.initialize(v=initial_v)
    rule = EventPropRule(Adam(lr=1e-3))
    for pre, post, mean in ((inputs, hidden, 1.5), (hidden, output, 0.5)):
        weight = RandomDistribution("normal", (scale * mean, scale * mean), rng=rng)
        synapse = EventPropSynapse(weight=weight, rule=rule)
        sim.Projection(
            pre, post, sim.AllToAllConnector(), synapse, label=f"{pre.label}-{post.label}"
        )
    loss = TTFSCrossEntropy(xi=0.5)
    return Trainer(inputs, output, loss, duration=40.0, batch_size=16, seed=1, progress=False)


def silence_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, SilentNetworkWarning)]


def test_pynn_default_initial_v_is_diagnosed_once_with_cause_and_remedies(sim, samples):
    with pytest.warns(SilentNetworkWarning) as record:
        trainer(sim, initial_v=None).fit(samples, epochs=2)
    messages = silence_warnings(record)
    assert len(messages) == 2  # hidden and output, once each over 4 batches
    hidden = next(m for m in messages if "hidden population 'hidden'" in m)
    for part in ("initial v = -65 mV", "v_rest = 0 mV", "v_thresh = 1 mV", "initialize(v=0)"):
        assert part in hidden
    for part in ("silent_push", "revive_dead", "weight scale", "epoch 1, batch 1"):
        assert part in hidden


def test_too_small_weights_are_diagnosed_naming_the_weights(sim, samples):
    with pytest.warns(SilentNetworkWarning) as record:
        trainer(sim, scale=0.01).fit(samples, epochs=1)
    messages = silence_warnings(record)
    assert any("projection 'input-hidden': mean 0.01" in m for m in messages)
    assert not any("initial v" in m for m in messages)  # v starts at rest: not the cause


def test_silence_is_diagnosed_before_training_by_evaluate(sim, samples):
    with pytest.warns(SilentNetworkWarning, match="output population 'output'"):
        trainer(sim, initial_v=None).evaluate(samples)


def test_a_spiking_network_trains_without_a_warning(sim, samples):
    with warnings.catch_warnings():
        warnings.simplefilter("error", SilentNetworkWarning)
        trainer(sim, scale=2.0).fit(samples, epochs=1)
