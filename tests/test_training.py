"""Training API: synapse type, trainer, checkpoints, determinism and failure modes."""

import numpy as np
import pytest
from pyNN.random import NumpyRNG, RandomDistribution

from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
from pynn_eventprop.engine import SpikeTrains, make_engine
from pynn_eventprop.eventprop import SGD, Adam, NonFiniteError, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.neurons import WP_NEURON as NEURON
from pynn_eventprop.training import TrainingStep

CODE = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)


@pytest.fixture(scope="module")
def data():
    train = yin_yang_dataset("train", CODE).subset(np.arange(1500))
    test = yin_yang_dataset("test", CODE).subset(np.arange(300))
    return train, test


def build(sim, hidden=60, lr=5e-3, frozen_output=False, seed=3):
    sim.setup(timestep=1.0, min_delay=1.0)
    rng = NumpyRNG(seed=seed)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hid = sim.Population(hidden, sim.IF_curr_exp(**NEURON), label="hidden")
    out = sim.Population(3, sim.IF_curr_exp(**NEURON), label="output")
    hid.initialize(v=0.0)
    out.initialize(v=0.0)
    rule = EventPropRule(Adam(lr=lr))
    p1 = sim.Projection(
        inputs,
        hid,
        sim.AllToAllConnector(),
        EventPropSynapse(weight=RandomDistribution("normal", (1.5, 1.5), rng=rng), rule=rule),
        label="in-hid",
    )
    if frozen_output:
        synapse = sim.StaticSynapse(weight=RandomDistribution("uniform", (0.2, 0.8), rng=rng))
    else:
        synapse = EventPropSynapse(
            weight=RandomDistribution("normal", (0.5, 0.5), rng=rng), rule=rule
        )
    p2 = sim.Projection(hid, out, sim.AllToAllConnector(), synapse, label="hid-out")
    return inputs, out, p1, p2


def trainer_for(inputs, out, seed=0):
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    return Trainer(inputs, out, loss, duration=40.0, batch_size=32, seed=seed, progress=False)


def test_short_training_beats_chance_by_a_wide_margin(sim, data):
    train, test = data
    inputs, out, p1, p2 = build(sim)
    trainer = trainer_for(inputs, out)
    before = trainer.evaluate(test)["accuracy"]
    history = trainer.fit(train, epochs=4, validation=test)
    after = trainer.evaluate(test)["accuracy"]
    assert after > 0.75  # three classes: chance is 1/3; 4 epochs of 1500 samples give ~88 %
    assert after > before + 0.1
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["val_accuracy"][-1] == pytest.approx(after)
    # trained weights are written back into the PyNN projection, signs mixed
    w = p2.get("weight", format="array")
    compiled = trainer.engine.get_weights(trainer.trainable[1])
    assert np.allclose(w, compiled)
    assert (w < 0).any() and (w > 0).any()


def test_static_synapses_stay_frozen(sim, data):
    train, _ = data
    inputs, out, p1, p2 = build(sim, frozen_output=True)
    w1, w2 = p1.get("weight", format="array"), p2.get("weight", format="array")
    trainer = trainer_for(inputs, out)
    trainer.fit(train.subset(np.arange(64)), epochs=1)
    assert np.array_equal(p2.get("weight", format="array"), w2)
    assert not np.allclose(p1.get("weight", format="array"), w1)
    assert set(trainer.gradients) == {"in-hid"}


def test_training_is_deterministic_for_a_seed(sim, data):
    train, _ = data
    weights = []
    for _ in range(2):
        inputs, out, p1, p2 = build(sim)
        trainer_for(inputs, out, seed=5).fit(train.subset(np.arange(128)), epochs=2)
        weights.append(p2.get("weight", format="array"))
        sim.end()
    assert np.array_equal(weights[0], weights[1])


def test_resuming_from_a_checkpoint_equals_uninterrupted_training(sim, data, tmp_path):
    train = data[0].subset(np.arange(128))
    inputs, out, p1, p2 = build(sim)
    trainer_for(inputs, out, seed=7).fit(train, epochs=3)
    uninterrupted = p2.get("weight", format="array")
    sim.end()

    inputs, out, p1, p2 = build(sim)
    first = trainer_for(inputs, out, seed=7)
    first.fit(train, epochs=1, checkpoint=tmp_path / "ck.npz")
    sim.end()
    inputs, out, p1, p2 = build(sim)  # a fresh process would rebuild the same network
    resumed = trainer_for(inputs, out, seed=123)  # the RNG state comes from the checkpoint
    resumed.load_checkpoint(tmp_path / "ck.npz")
    assert resumed.epoch == 1
    resumed.fit(train, epochs=2)
    assert np.array_equal(p2.get("weight", format="array"), uninterrupted)
    assert resumed.history["epoch"] == [1, 2, 3]


def test_non_finite_gradient_stops_training_naming_projection_and_epoch(sim, data, tmp_path):
    train = data[0].subset(np.arange(96))
    inputs, out, p1, p2 = build(sim)
    trainer = trainer_for(inputs, out)
    checkpoint = tmp_path / "ck.npz"
    trainer.fit(train, epochs=1, checkpoint=checkpoint)
    good = checkpoint.read_bytes()
    original_backward = trainer.engine.backward

    def poisoned(*args, **kwargs):
        gradients = original_backward(*args, **kwargs)
        gradients.weights[trainer.trainable[0]][0, 0] = np.nan
        return gradients

    trainer._compile = lambda: None  # keep the engine we poison
    trainer.engine.backward = poisoned
    with pytest.raises(NonFiniteError, match=r"projection 'in-hid'.*epoch 2"):
        trainer.fit(train, epochs=1, checkpoint=checkpoint)
    assert checkpoint.read_bytes() == good  # the last good checkpoint is intact


def test_history_is_saved_as_csv_and_json(sim, data, tmp_path):
    import csv
    import json

    inputs, out, p1, p2 = build(sim)
    history = trainer_for(inputs, out).fit(data[0].subset(np.arange(64)), epochs=2)
    with history.to_csv(tmp_path / "h.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["loss"]) == pytest.approx(history["loss"][1])
    assert json.loads(history.to_json(tmp_path / "h.json").read_text()) == history.records


def test_trainer_rejects_conductance_based_neurons_and_takes_recurrent_ones(sim):
    sim.setup(timestep=1.0)
    inputs = sim.Population(2, sim.SpikeSourceArray())
    cond = sim.Population(3, sim.IF_cond_exp())
    sim.Projection(inputs, cond, sim.AllToAllConnector(), EventPropSynapse(weight=0.1))
    with pytest.raises(ValueError, match="IF_cond_exp populations .* are forward-only"):
        trainer_for(inputs, cond)
    sim.end()

    # the reference engine differentiates recurrent loops (first spike times read out)
    sim.setup(timestep=1.0)
    inputs = sim.Population(2, sim.SpikeSourceArray())
    a = sim.Population(3, sim.IF_curr_exp())
    sim.Projection(inputs, a, sim.AllToAllConnector(), EventPropSynapse(weight=0.1))
    sim.Projection(a, a, sim.AllToAllConnector(), EventPropSynapse(weight=0.1))
    assert trainer_for(inputs, a).trainable
    sim.end()

    # the SpiNNaker2 model's tick-based adjoint is feed-forward only
    sim.setup(timestep=1.0, platform="spinnaker2")
    inputs = sim.Population(2, sim.SpikeSourceArray())
    a = sim.Population(3, sim.IF_curr_exp())
    sim.Projection(inputs, a, sim.AllToAllConnector(), EventPropSynapse(weight=0.1))
    sim.Projection(a, a, sim.AllToAllConnector(), EventPropSynapse(weight=0.1))
    with pytest.raises(ValueError, match="feed-forward networks only"):
        trainer_for(inputs, a)


def test_eventprop_synapse_accepts_signed_weights_and_rejects_nan(sim):
    sim.setup(timestep=1.0)
    inputs = sim.Population(2, sim.SpikeSourceArray())
    a = sim.Population(2, sim.IF_curr_exp())
    signed = np.array([[0.5, -0.5], [-1.0, 2.0]])
    proj = sim.Projection(inputs, a, sim.AllToAllConnector(), EventPropSynapse(weight=signed))
    assert np.array_equal(proj.get("weight", format="array"), signed)
    with pytest.raises(ValueError, match="weight must be finite"):
        sim.Projection(inputs, a, sim.AllToAllConnector(), EventPropSynapse(weight=np.nan))
    with pytest.raises(TypeError, match="optimiser must be an Optimiser"):
        EventPropRule(optimiser="adam")
    assert "SGD" in repr(EventPropRule(SGD(lr=0.1, momentum=0.9)))


def test_keep_best_restores_the_weights_of_the_best_validation_epoch(sim, data):
    train, test = data
    inputs, out, p1, p2 = build(sim, lr=2e-2)  # a large rate makes later epochs differ
    trainer = trainer_for(inputs, out)
    history = trainer.fit(train.subset(np.arange(400)), epochs=4, validation=test, keep_best=True)
    best = int(np.argmax(history["val_accuracy"]))
    assert trainer.best_epoch == best + 1
    assert trainer.evaluate(test)["accuracy"] == pytest.approx(history["val_accuracy"][best])
    with pytest.raises(ValueError, match="keep_best=True needs validation"):
        trainer.fit(train, epochs=1, keep_best=True)


def test_gradient_is_readable_through_projection_get(sim, data):
    train, _ = data
    inputs, out, p1, p2 = build(sim)
    trainer = trainer_for(inputs, out)
    assert np.all(p2.get("gradient", format="array") == 0)  # nothing computed yet
    times, labels = train.times[:8], train.labels[:8]
    weights = p2.get("weight", format="array")
    gradients = trainer.gradient(times, labels)
    dense = p2.get("gradient", format="array")
    assert np.array_equal(dense, gradients["hid-out"])  # all-to-all: every entry connected
    assert np.abs(dense).max() > 0
    rows = p2.get(["gradient"], format="list")
    i, j = 7, 2
    assert dict(((r[0], r[1]), r[2]) for r in rows)[(i, j)] == pytest.approx(dense[i, j])
    assert np.array_equal(weights, p2.get("weight", format="array"))  # gradient() did not learn
    with pytest.raises(Exception, match="gradient"):
        sim.Projection(inputs, out, sim.AllToAllConnector(), sim.StaticSynapse()).get(
            "gradient", format="array"
        )


def test_adjoints_are_recorded_into_neo_like_any_state_variable(sim, data):
    _, test = data
    inputs, out, p1, p2 = build(sim)
    trainer = trainer_for(inputs, out)
    out.record(["spikes", "v", "lambda_v", "lambda_i"])
    trainer.record_samples(test, [0, 1])
    block = out.get_data()
    assert [s.annotations["sample"] for s in block.segments] == [0, 1]
    assert block.segments[1].annotations["label"] == int(test.labels[1])
    n_steps = trainer.n_steps

    # a reference engine's own batched forward and backward for the same two samples (every
    # population on the path that samples adjoints on the grid)
    index = out._index
    network = trainer.engine.network
    engine = make_engine("reference", network, trainer.state.discretisation, 2,
                         readout_populations=[1, 2], sample_adjoints=True)  # fmt: skip
    for c in range(len(network.projections)):
        engine.set_weights(c, trainer.engine.get_weights(c))
    step = TrainingStep(engine, inputs._index, index, trainer.loss, n_steps)
    adjoints = step.gradients(step.forward(test.times[:2], test.labels[:2]), adjoints=True).adjoints
    engine.reset()
    sources = {inputs._index: SpikeTrains.from_matrix(test.times[:2])}
    v_batched = engine.run(n_steps, sources=sources, record={index: ("v",)}).signals[index]["v"]
    for b, segment in enumerate(block.segments):
        signals = {sig.name: sig for sig in segment.analogsignals}
        assert str(signals["lambda_v"].units.dimensionality) == "1/mV"
        assert str(signals["lambda_i"].units.dimensionality) == "1/nA"
        assert signals["lambda_v"].shape == (n_steps + 1, 3)  # t = 0 included, as for v
        # v from the PyNN run equals the trainer's batched run: the adjoints belong to it
        v_engine = v_batched[:, b]  # v_rest = 0 here
        assert np.allclose(signals["v"].magnitude[1:], v_engine, atol=1e-12)
        assert np.allclose(signals["lambda_v"].magnitude, adjoints[index]["lambda_v"][:, b])
        assert np.allclose(signals["lambda_i"].magnitude, adjoints[index]["lambda_i"][:, b])
        assert np.abs(signals["lambda_v"].magnitude).max() > 0


def test_describe_names_the_learning_rule(sim):
    sim.setup(timestep=1.0)
    a = sim.Population(2, sim.SpikeSourceArray())
    b = sim.Population(2, sim.IF_curr_exp())
    rule = EventPropRule(SGD(lr=0.1, momentum=0.9))
    proj = sim.Projection(a, b, sim.AllToAllConnector(), EventPropSynapse(weight=0.5, rule=rule))
    text = proj.describe()
    assert "EventPropSynapse" in text and "SGD" in text and "momentum" in text
    assert proj.synapse_type.describe(template=None)["learning_rule"] == rule.describe()


def test_trainer_recompiles_only_when_the_pynn_network_changed(sim, data):
    train, test = data
    inputs, out, p1, p2 = build(sim)
    trainer = trainer_for(inputs, out)
    trainer.fit(train.subset(np.arange(64)), epochs=1)
    engine = trainer.engine
    trainer.fit(train.subset(np.arange(64)), epochs=1)
    assert trainer.engine is engine  # nothing changed in PyNN: no recompile
    p2.set(weight=0.0)  # silence the output through PyNN
    assert trainer.evaluate(test)["accuracy"] == 0.0  # the trainer sees the change
    assert trainer.engine is not engine


def test_using_runs_batches_on_another_engine_and_restores(sim, data):
    from pynn_eventprop.spinnaker2 import Spinnaker2Engine

    _, test = data
    inputs, out, p1, p2 = build(sim)
    trainer = trainer_for(inputs, out)
    inputs.set(spike_times=[sim.Sequence([1.0])] * 5)  # a PyNN change: synced before the swap
    reference = trainer.engine
    model = Spinnaker2Engine(reference.network, trainer.state.discretisation, trainer.batch_size)
    with trainer.using(model):
        trainer.gradient(test.times[:8], test.labels[:8])
    assert trainer.engine is not model
    assert model.training_traffic.batches == 1  # the backward pass ran on the model


def test_gradient_is_the_loss_gradient_and_revive_dead_only_steers_updates(sim, data):
    """With dead hidden neurons, ``Trainer.gradient`` is dL/dw whatever ``revive_dead`` is;
    the regulariser adds to the update direction only (here: the dead neurons' input weights)."""
    train, _ = data
    times, labels = train.times[:32], train.labels[:32]
    results = {}
    for strength in (0.0, 1.0):
        inputs, out, p1, p2 = build(sim)
        w = p1.get("weight", format="array")
        w[:, :10] = 0.05  # hidden neurons 0-9 stay below threshold: never fire
        p1.set(weight=w)
        loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
        trainer = Trainer(
            inputs, out, loss, duration=40.0, batch_size=32, progress=False, revive_dead=strength
        )
        gradient = trainer.gradient(times, labels)
        forward = trainer.step.forward(times, labels)
        direction = trainer.step.gradients(forward, regularise=True).weights
        first = trainer.engine.readouts(forward.result, 1, ["first_spike_time"])
        dead = ~np.isfinite(first["first_spike_time"]).any(axis=0)
        results[strength] = (gradient, direction[trainer.trainable[0]], dead)
    (g0, d0, dead), (g1, d1, _) = results[0.0], results[1.0]
    assert dead[:10].all()
    for label in g0:  # equal up to rounding (the engine integrates watched populations apart)
        np.testing.assert_allclose(g1[label], g0[label], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(d0, g0["in-hid"])  # no regulariser: the direction is dL/dw
    # dR/dw = -(strength/B) sum_b dV_max/dw < 0 raises the dead neurons' input weights
    assert np.all(d1[:, dead] <= d0[:, dead]) and np.all((d1 - d0)[:, :10].sum(axis=0) < 0)
    np.testing.assert_allclose(d1[:, ~dead], d0[:, ~dead], rtol=0, atol=1e-12)


def test_finiteness_checks_survive_an_overflowing_sum():
    """The checks' fast path is a sum (a NaN or an infinity anywhere makes it non-finite);
    finite entries whose sum overflows must still pass, and one bad entry among them must
    still be found."""
    from pynn_eventprop.training.errors import check_finite

    huge = np.full(4, np.finfo(float).max)  # finite, but the sum overflows to +inf
    check_finite("weights", huge)
    check_finite("weights", -huge)
    huge[2] = np.nan
    with pytest.raises(NonFiniteError, match=r"1 NaN of 4 entries, first at index \(2,\)"):
        check_finite("weights", huge)
