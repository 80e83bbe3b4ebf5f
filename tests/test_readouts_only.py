"""``run(readouts_only=...)``: on the shared-event path a sample of an output population stops
once every neuron has spiked; what a first-spike loss reads of the run (first spike times,
``v_max``) and every gradient are those of the whole run, bit for bit, and the engine refuses
to continue from the state it did not compute."""

from __future__ import annotations

import numpy as np
import pytest
from test_exact_networks import random_input
from test_exact_shared import shared_network

from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.training.losses import AverageVoltageCrossEntropy, TTFSCrossEntropy
from pynn_eventprop.training.regularisers import ReviveDead
from pynn_eventprop.training.step import readouts_only

READ = ("first_spike_time", "v_max", "v_max_time")


def _run(net, inp, grads, only):
    sim = ExactSimulation(net, 0.5, batch_size=inp.offsets.size - 1,
                          readout_populations={2: READ[1:]})  # fmt: skip
    res = sim.run(80, sources={0: inp}, keep_for_backward=True, readouts_only=only)
    assert res.tape["pops"][2]["shared"]
    return sim, res, sim.readouts(res, 2, READ), sim.backward(res, {2: grads})


@pytest.mark.parametrize("power", [False, True])
@pytest.mark.parametrize("refractory", [0.0, 1.5])
def test_a_stopped_run_reads_and_differentiates_as_the_whole_run(refractory, power):
    """Outputs that fire several times, refractoriness, inhibitory and excitatory rows with
    different delays; one sample in which an output neuron stays silent (not stopped)."""
    rng = np.random.default_rng(21)
    net = shared_network(rng, refractory, power=power)
    batch = 5
    inp = random_input(rng, batch, 5, 20.0, per_neuron=3)
    grads = {"first_spike_time": rng.normal(size=(batch, 3)), "v_max": rng.normal(size=(batch, 3))}
    _, full, ro_full, g_full = _run(net, inp, grads, ())
    _, stop, ro_stop, g_stop = _run(net, inp, grads, (2,))
    fired = np.isfinite(ro_full["first_spike_time"]).all(axis=1)
    assert fired.sum() >= 2, "the test needs samples in which every output neuron fires"
    assert stop.spikes[2].times.size < full.spikes[2].times.size  # it did stop
    for b in range(batch):
        kept = stop.spikes[2].per_neuron(b)
        for x, y in zip(kept, full.spikes[2].per_neuron(b), strict=True):
            assert x.size >= 1 or y.size == 0
            np.testing.assert_array_equal(x, y[: x.size])  # a prefix of the whole run's
            if not fired[b]:
                np.testing.assert_array_equal(x, y)
    for p in (0, 1):  # the layers before it are not stopped
        np.testing.assert_array_equal(stop.spikes[p].times, full.spikes[p].times)
    for name in READ:
        np.testing.assert_array_equal(ro_stop[name], ro_full[name])
    assert any(np.any(g != 0) for g in g_full.weights)
    for x, y in zip(g_stop.weights + g_stop.delays, g_full.weights + g_full.delays, strict=True):
        np.testing.assert_array_equal(x, y)
    for p in (0, 1):
        np.testing.assert_array_equal(g_stop.spike_times[p], g_full.spike_times[p])


def test_a_stopped_run_must_be_followed_by_reset():
    rng = np.random.default_rng(22)
    net = shared_network(rng)
    inp = random_input(rng, 2, 5, 20.0, per_neuron=3)
    grads = {"first_spike_time": np.ones((2, 3))}
    sim, *_ = _run(net, inp, grads, (2,))
    with pytest.raises(RuntimeError, match="reset"):
        sim.run(10, sources={0: inp})
    with pytest.raises(RuntimeError, match="readouts_only"):
        sim.get_state()
    sim.reset()
    sim.run(10)
    sim.get_state()


@pytest.mark.parametrize(
    "only, record, message",
    [((1,), None, "population 1"), ((0,), None, "population 0"), ((2,), {2: ("spikes",)}, "2"),
     ((3,), None, r"\[0, 3\)"), ((True,), None, "True")],
)  # fmt: skip
def test_readouts_only_refuses_populations_read_beyond_their_readouts(only, record, message):
    """A hidden population (its spikes feed the next), a spike source, a recorded population,
    an index out of range or not an integer."""
    net = shared_network(np.random.default_rng(23))
    sim = ExactSimulation(net, 0.5, batch_size=1)
    with pytest.raises(ValueError, match=f"readouts_only.*{message}"):
        sim.run(10, record=record, readouts_only=only)


def test_the_training_step_stops_only_what_the_loss_alone_reads():
    net = shared_network(np.random.default_rng(24))
    ttfs = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    assert readouts_only(net, 2, ttfs) == (2,)
    assert readouts_only(net, 2, AverageVoltageCrossEntropy()) == ()  # a mean: the whole run
    assert readouts_only(net, 1, ttfs) == ()  # projects to population 2
    assert readouts_only(net, 2, ttfs, [ReviveDead(1.0, (1,))]) == (2,)
    assert readouts_only(net, 2, ttfs, [ReviveDead(1.0, (2,))]) == ()  # watched
