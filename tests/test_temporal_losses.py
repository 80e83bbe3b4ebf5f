"""SumVoltageCrossEntropy: its readout gradient, its relation to the average loss, and the
weight gradients it yields through the Trainer, against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from pynn_eventprop.datasets import SpikeDataset
from pynn_eventprop.eventprop import (
    Adam,
    AverageVoltageCrossEntropy,
    SumVoltageCrossEntropy,
)
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer


@pytest.mark.parametrize("weighting", ["uniform", "exponential"])
def test_readout_gradient_matches_finite_differences(weighting):
    """Pure numpy: dL/dvbar against central differences (h = 1e-6 mV; the loss is a smooth
    log-sum-exp, so truncation is ~1e-12 and rounding ~1e-10: tolerance 1e-7 absolute)."""
    rng = np.random.default_rng(0)
    loss = SumVoltageCrossEntropy(weighting, tau=0.5)
    name = f"v_mean_{weighting}"
    vbar, labels, duration = rng.normal(0, 0.2, (4, 3)), np.array([0, 2, 1, 2]), 30.0
    grad = loss.evaluate({name: vbar}, labels, duration).readout_grads[name]
    h = 1e-6
    for b, i in np.ndindex(vbar.shape):
        up, down = vbar.copy(), vbar.copy()
        up[b, i] += h
        down[b, i] -= h
        fd = (loss.evaluate({name: up}, labels, duration).loss
              - loss.evaluate({name: down}, labels, duration).loss) / (2 * h)  # fmt: skip
        assert fd == pytest.approx(grad[b, i], abs=1e-7)


def test_sum_is_the_average_scaled_by_duration_over_tau():
    rng = np.random.default_rng(1)
    vbar, labels = rng.normal(0, 0.1, (5, 4)), np.array([0, 1, 2, 3, 0])
    summed = SumVoltageCrossEntropy("exponential", tau=2.0)
    average = AverageVoltageCrossEntropy("exponential")
    r_sum = summed.evaluate({"v_mean_exponential": vbar}, labels, 40.0)
    r_avg = average.evaluate({"v_mean_exponential": 20.0 * vbar}, labels, 40.0)
    np.testing.assert_allclose(r_sum.readout, 20.0 * vbar)
    assert r_sum.loss == pytest.approx(r_avg.loss, rel=1e-14)
    np.testing.assert_allclose(
        r_sum.readout_grads["v_mean_exponential"], 20.0 * r_avg.readout_grads["v_mean_exponential"]
    )
    # tau = T: exactly the average loss
    same = SumVoltageCrossEntropy("exponential", tau=40.0)
    r = same.evaluate({"v_mean_exponential": vbar}, labels, 40.0)
    assert r.loss == average.evaluate({"v_mean_exponential": vbar}, labels, 40.0).loss


def test_weight_gradients_through_the_trainer_match_finite_differences(sim):
    """Input -> 6 hidden -> 3 non-spiking outputs, every weight compared (h = 1e-6 nA; the
    tolerance 1e-6 relative with a floor 1e-8 + 1e-8 max|g| for tiny entries, as in
    test_recurrent_training), where no spike count changes."""
    sim.setup(timestep=0.5, min_delay=0.5)
    rng = np.random.default_rng(3)
    neuron = dict(v_rest=0.0, v_reset=0.0, v_thresh=1.0, cm=1.0, tau_m=8.0, tau_syn_E=4.0,
                  tau_syn_I=4.0, tau_refrac=1.0, i_offset=0.0)  # fmt: skip
    inputs = sim.Population(4, sim.SpikeSourceArray(), label="in")
    hidden = sim.Population(6, sim.IF_curr_exp(**neuron), label="hidden")
    out = sim.Population(3, sim.IF_curr_exp(**{**neuron, "v_thresh": 1e9}), label="out")
    hidden.initialize(v=0.0)
    out.initialize(v=0.0)
    rule = EventPropRule(Adam())
    projections = [
        sim.Projection(inputs, hidden, sim.AllToAllConnector(),
                       EventPropSynapse(weight=rng.uniform(0.3, 1.0, (4, 6)),
                                        delay=rng.uniform(0.5, 3, (4, 6)), rule=rule), label="a"),
        sim.Projection(hidden, out, sim.AllToAllConnector(),
                       EventPropSynapse(weight=rng.normal(0, 0.5, (6, 3)),
                                        delay=rng.uniform(0.5, 3, (6, 3)), rule=rule), label="b"),
    ]  # fmt: skip
    loss = SumVoltageCrossEntropy("exponential")
    trainer = Trainer(inputs, out, loss, duration=30.0, batch_size=4, progress=False)
    data = SpikeDataset(rng.uniform(0, 10, (4, 4)), np.array([0, 1, 2, 1]), 3, 30.0)
    gradients = trainer.gradient(data.times, data.labels)

    def loss_and_counts():
        value = trainer.evaluate(data)["loss"]
        spikes = trainer.step.forward(data.times, data.labels).result.spikes[hidden._index]
        return value, np.bincount(spikes.sample_index * 6 + spikes.neurons, minlength=24)

    _, counts = loss_and_counts()
    assert counts.sum() > 10
    h, compared = 1e-6, 0
    for projection in projections:
        g, w0 = gradients[projection.label], projection.get("weight", format="array")
        scale = np.abs(g).max()
        for i, j in np.ndindex(w0.shape):
            values = []
            for sign in (1, -1):
                w = w0.copy()
                w[i, j] += sign * h
                projection.set(weight=w)
                value, c = loss_and_counts()
                values.append(value if np.array_equal(c, counts) else None)
            projection.set(weight=w0)
            if None in values:
                continue
            fd = (values[0] - values[1]) / (2 * h)
            assert abs(fd - g[i, j]) <= 1e-6 * abs(g[i, j]) + 1e-8 * (1 + scale), (i, j, fd)
            compared += 1
    assert compared >= 30


def test_bad_parameters():
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        SumVoltageCrossEntropy(tau=0.0)
    with pytest.raises(ValueError, match="weighting must be one of"):
        SumVoltageCrossEntropy("linear")
