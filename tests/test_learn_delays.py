"""Learned delays: exact delay gradients through the Trainer, updates within the bounds,
checkpoints, PyNN read-back and bad input.

Delay gradients are compared with central finite differences of the Trainer's loss, with the
delays perturbed through PyNN (``Projection.set(delay=...)``) by ``h = 1e-6`` ms, where the
perturbation changes no spike count; tolerance as in ``test_recurrent_training`` (relative
1e-6, floor ``1e-8 + 1e-8 max|g|`` for entries far below the largest, where rounding of the loss,
``eps |L| / h ~ 1e-10``, dominates).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_recurrent_training import NEURON, finite_difference_check, recurrent_network

from pynn_eventprop.datasets import SpikeDataset
from pynn_eventprop.eventprop import SGD, Adam, CheckpointError, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer


def delay_network(sim, rng, bounds=(0.5, 8.0), lr=0.2, optimiser=None):
    """Input (4) -> hidden (5) -> output (2), every projection learning weights and delays."""
    sim.setup(timestep=0.5, min_delay=0.5)
    inputs = sim.Population(4, sim.SpikeSourceArray(), label="in")
    hidden = sim.Population(5, sim.IF_curr_exp(**NEURON), label="hidden")
    out = sim.Population(2, sim.IF_curr_exp(**NEURON), label="out")
    hidden.initialize(v=0.0)
    out.initialize(v=0.0)
    rule = EventPropRule(optimiser or Adam(lr=1e-3), learn_delays=True, delay_bounds=bounds,
                         delay_lr=lr)  # fmt: skip
    p1 = sim.Projection(inputs, hidden, sim.AllToAllConnector(),
                        EventPropSynapse(weight=rng.uniform(4.0, 9.0, (4, 5)),
                                         delay=rng.uniform(0.5, 4.0, (4, 5)), rule=rule),
                        label="in-hidden")  # fmt: skip
    p2 = sim.Projection(hidden, out, sim.AllToAllConnector(),
                        EventPropSynapse(weight=rng.uniform(2.0, 6.0, (5, 2)),
                                         delay=rng.uniform(0.5, 4.0, (5, 2)), rule=rule),
                        label="hidden-out")  # fmt: skip
    return inputs, out, [p1, p2]


def trainer_for(inputs, out, seed=0):
    return Trainer(inputs, out, TTFSCrossEntropy(xi=2.0, alpha=0.0), duration=30.0,
                   batch_size=4, seed=seed, progress=False)  # fmt: skip


def test_delay_gradients_match_finite_differences_feed_forward(sim):
    rng = np.random.default_rng(2)
    inputs, out, projections = delay_network(sim, rng)
    trainer = trainer_for(inputs, out)
    times, labels = rng.uniform(0.0, 8.0, (4, 4)), np.array([0, 1, 0, 1])
    trainer.gradient(times, labels)
    compared = 0
    for projection in projections:
        g = projection.get("delay_gradient", format="array")
        np.testing.assert_array_equal(g, trainer.delay_gradients[projection.label])
        assert np.count_nonzero(g) > 3
        compared += finite_difference_check(
            trainer, projection, "delay", g, times, labels, rng, n=10
        )
    assert compared >= 12


def test_delay_gradients_match_finite_differences_recurrent(sim):
    """Self-connections, all-to-all recurrence, mixed delays, neurons firing several times."""
    rng = np.random.default_rng(11)
    inputs, out, projections = recurrent_network(sim, rng, output_recurrent=True)
    trainer = Trainer(inputs, out, TTFSCrossEntropy(xi=2.0, alpha=0.0), duration=40.0,
                      batch_size=3, progress=False)  # fmt: skip
    times, labels = rng.uniform(0.0, 12.0, (3, 4)), np.array([0, 1, 1])
    trainer.gradient(times, labels)
    recurrent = projections[1]
    g = recurrent.get("delay_gradient", format="array")
    assert np.count_nonzero(g) > 10
    compared = finite_difference_check(trainer, recurrent, "delay", g, times, labels, rng, n=14)
    compared += finite_difference_check(
        trainer, projections[3], "delay", projections[3].get("delay_gradient", format="array"),
        times, labels, rng, n=4,
    )  # fmt: skip
    assert compared >= 10


def _data(rng, n=8):
    return SpikeDataset(rng.uniform(0, 8, (n, 4)), np.arange(n) % 2, 2, 30.0)


def test_training_moves_delays_within_bounds_and_writes_them_back(sim):
    rng = np.random.default_rng(4)
    bounds = (1.0, 3.0)
    inputs, out, projections = delay_network(sim, rng, bounds=bounds, lr=0.5)
    for p in projections:
        p.set(delay=np.clip(p.get("delay", format="array"), *bounds))
    before = [p.get("delay", format="array") for p in projections]
    trainer = trainer_for(inputs, out)
    data = _data(rng)
    first = trainer.evaluate(data)["loss"]
    trainer.fit(data, epochs=6)
    assert trainer.evaluate(data)["loss"] < first
    for k, (p, d0) in enumerate(zip(projections, before, strict=True)):
        d = p.get("delay", format="array")
        assert not np.allclose(d, d0)
        assert d.min() >= bounds[0] and d.max() <= bounds[1]
        assert np.any(d == bounds[0]) or np.any(d == bounds[1])  # lr 0.5 ms: some hit a bound
        c = trainer.trainable[k]
        np.testing.assert_array_equal(d, trainer.engine.get_delays(c))
        assert np.isfinite(p.get("delay_gradient", format="array")).all()


def test_delay_optimiser_has_own_state_and_rate(sim):
    rng = np.random.default_rng(4)
    inputs, out, projections = delay_network(sim, rng, lr=0.05, optimiser=SGD(lr=1e-3))
    trainer = trainer_for(inputs, out)
    rule = projections[0].synapse_type.rule
    weights_opt, delay_opt = trainer.optimisers[0], trainer.delay_optimisers[0]
    assert type(delay_opt) is SGD and delay_opt is not weights_opt
    assert delay_opt.learning_rate == 0.05 and weights_opt.learning_rate == 1e-3
    # plain SGD: one update moves each delay by exactly -lr * gradient (inside the bounds)
    times, labels = rng.uniform(0, 8, (4, 4)), np.array([0, 1, 0, 1])
    trainer.gradient(times, labels)
    g = trainer.delay_gradients["in-hidden"]
    d0 = trainer.engine.get_delays(0)
    trainer.step.train(times, labels, trainer.learners)
    expected = np.clip(d0 - 0.05 * g, *rule.delay_bounds)
    mask = trainer.engine.network.projections[0].mask
    np.testing.assert_allclose(trainer.engine.get_delays(0)[mask], expected[mask], rtol=1e-12)


def test_resuming_learned_delays_from_a_checkpoint_equals_uninterrupted(sim, tmp_path):
    rng = np.random.default_rng(6)
    data = _data(rng)

    def run(epochs, load=None, save=None):
        inputs, out, projections = delay_network(sim, np.random.default_rng(1))
        trainer = trainer_for(inputs, out, seed=3)
        if load:
            trainer.load_checkpoint(load)
        trainer.fit(data, epochs=epochs, checkpoint=save)
        delays = [p.get("delay", format="array") for p in projections]
        sim.end()
        return delays

    uninterrupted = run(3)
    run(1, save=tmp_path / "ck.npz")
    resumed = run(2, load=tmp_path / "ck.npz")
    for a, b in zip(uninterrupted, resumed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_without_learned_delays_is_refused(sim, tmp_path):
    rng = np.random.default_rng(6)
    sim.setup(timestep=0.5, min_delay=0.5)
    inputs, out, _ = delay_network(sim, rng)
    trainer = trainer_for(inputs, out)
    trainer.save_checkpoint(tmp_path / "ck.npz")
    from pynn_eventprop.training import load_checkpoint, save_checkpoint

    state = load_checkpoint(tmp_path / "ck.npz")
    del state["projections"]["in-hidden"]["delays"]
    save_checkpoint(tmp_path / "bad.npz", state)
    with pytest.raises(CheckpointError, match="projection 'in-hidden' learns delays"):
        trainer.load_checkpoint(tmp_path / "bad.npz")


# --- bad input --------------------------------------------------------------------------------
def test_delay_bounds_below_min_delay_are_refused(sim):
    rng = np.random.default_rng(0)
    inputs, out, _ = delay_network(sim, rng, bounds=(0.2, 5.0))
    with pytest.raises(ValueError, match=r"delay_bounds=\(0.2, 5.0\): low=0.2 ms is below "
                                         r"min_delay=0.5 ms"):  # fmt: skip
        trainer_for(inputs, out)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(learn_delays=True, delay_bounds=(3.0, 1.0)), "0 < low < high"),
        (dict(learn_delays=True, delay_bounds=5.0), r"pair \(low, high\)"),
        (dict(delay_bounds=(1.0, 2.0)), "without learn_delays=True"),
        (dict(learn_delays="yes"), "learn_delays must be True or False"),
        (dict(learn_delays=True, delay_max_grad_norm=0.0), "delay_max_grad_norm must be > 0"),
    ],
)
def test_bad_rule_arguments(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        EventPropRule(**kwargs)


def test_initial_delays_outside_the_bounds_are_refused(sim):
    rng = np.random.default_rng(0)
    inputs, out, projections = delay_network(sim, rng, bounds=(1.0, 2.0))
    with pytest.raises(ValueError, match="projection 'in-hidden' has delay .* outside its "
                                         r"delay_bounds \(1.0, 2.0\)"):  # fmt: skip
        trainer_for(inputs, out)


def test_learn_delays_on_a_static_synapse_is_refused(sim):
    sim.setup(timestep=0.5, min_delay=0.5)
    inputs = sim.Population(2, sim.SpikeSourceArray(), label="in")
    out = sim.Population(2, sim.IF_curr_exp(**NEURON), label="out")
    rule = EventPropRule(learn_delays=True)
    with pytest.raises(Exception, match="rule"):  # PyNN: StaticSynapse has no parameter 'rule'
        sim.StaticSynapse(weight=1.0, rule=rule)
    static = sim.StaticSynapse(weight=1.0, delay=1.0)
    static.rule = rule  # attached by hand: refused when the Trainer is built
    sim.Projection(inputs, out, sim.AllToAllConnector(), static, label="static")
    sim.Projection(inputs, out, sim.AllToAllConnector(), EventPropSynapse(weight=1.0),
                   label="learning")  # fmt: skip
    with pytest.raises(ValueError, match="projection 'static' has learn_delays=True but "
                                         "synapse type StaticSynapse"):  # fmt: skip
        Trainer(inputs, out, TTFSCrossEntropy(), duration=10.0, progress=False)


def test_loss_on_a_population_that_is_not_the_output_is_refused(sim):
    rng = np.random.default_rng(0)
    inputs, out, projections = delay_network(sim, rng)
    hidden = projections[0].post
    with pytest.raises(ValueError, match="outputs population 'hidden' is not the network's "
                                         "output.*'hidden-out'"):  # fmt: skip
        Trainer(inputs, hidden, TTFSCrossEntropy(), duration=30.0, progress=False)
