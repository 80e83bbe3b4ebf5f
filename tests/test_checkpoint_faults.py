"""Training that cannot lose work: kill -9 during a checkpoint write and mid-epoch, then resume.

Each run is a separate Python process training a small Yin-Yang network for three epochs with
``keep_best``; a fault kills it with SIGKILL (no cleanup handler runs) at a chosen point, and
the same command started again resumes from the checkpoint.  The resumed run must end with
the uninterrupted run's weights, best epoch and history, bit for bit, and leave no temporary
file behind.  Also: checks after every update (NaN, divergence) and checkpoint validation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pynn_eventprop.training import CheckpointError, DivergenceError, NonFiniteError
from pynn_eventprop.training.checkpoint import (
    load_checkpoint,
    save_checkpoint,
    temporary_files,
)

WORKER = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    from pyNN.random import NumpyRNG, RandomDistribution
    import pynn_eventprop as sim
    from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
    from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
    from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
    from pynn_eventprop.eventprop.training import Trainer
    from pynn_eventprop.neurons import WP_NEURON
    from pynn_eventprop.training import step as step_module

    out, fault = sys.argv[1], sys.argv[2]
    EPOCHS, BATCH = 3, 16
    code = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
    train = yin_yang_dataset("train", code).subset(np.arange(64))
    validation = yin_yang_dataset("validation", code).subset(np.arange(48))

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if fault.startswith("write:"):  # killed inside the n-th checkpoint write, before rename
        n_write, calls, replace = int(fault[6:]), [0], os.replace
        def killing_replace(src, dst):
            calls[0] += 1
            if calls[0] == n_write:
                die()
            return replace(src, dst)
        os.replace = killing_replace
    elif fault.startswith("batch:"):  # killed after the n-th update (mid-epoch)
        n_batch, calls, train_step = int(fault[6:]), [0], step_module.TrainingStep.train
        def killing_train(self, *args, **kwargs):
            result = train_step(self, *args, **kwargs)
            calls[0] += 1
            if calls[0] == n_batch:
                die()
            return result
        step_module.TrainingStep.train = killing_train

    sim.setup(timestep=1.0, min_delay=1.0)
    rng = NumpyRNG(seed=4)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(20, sim.IF_curr_exp(**WP_NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    hidden.initialize(v=0.0)
    output.initialize(v=0.0)
    rule = EventPropRule(Adam(lr=1e-2))
    for pre, post, mean in ((inputs, hidden, 1.5), (hidden, output, 0.5)):
        weight = RandomDistribution("normal", (mean, mean), rng=rng)
        synapse = EventPropSynapse(weight=weight, rule=rule)
        label = f"{pre.label}-{post.label}"
        sim.Projection(pre, post, sim.AllToAllConnector(), synapse, label=label)
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    trainer = Trainer(inputs, output, loss, duration=40.0, batch_size=BATCH, seed=9,
                      progress=False)
    checkpoint = os.path.join(out, "ck.npz")
    if os.path.exists(checkpoint):
        trainer.load_checkpoint(checkpoint)
    trainer.fit(train, EPOCHS - trainer.epoch, validation=validation, checkpoint=checkpoint,
                keep_best=True)
    weights = {k: trainer.engine.get_weights(c) for k, c in trainer.trainable.items()}
    np.savez(os.path.join(out, "final.npz"), **{str(k): w for k, w in weights.items()})
    history = [{k: v for k, v in r.items() if k != "seconds"} for r in trainer.history.records]
    with open(os.path.join(out, "final.json"), "w") as handle:
        json.dump({"best_epoch": trainer.best_epoch, "history": history}, handle)
    """
)


def run_worker(directory, fault="none"):
    script = directory / "worker.py"
    script.write_text(WORKER)
    return subprocess.run(
        [sys.executable, str(script), str(directory), fault],
        capture_output=True,
        text=True,
        timeout=600,
    )


def finished(directory):
    with np.load(directory / "final.npz") as data:
        weights = {k: data[k] for k in data.files}
    return weights, json.loads((directory / "final.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("uninterrupted")
    done = run_worker(directory)
    assert done.returncode == 0, done.stderr
    return finished(directory)


@pytest.mark.parametrize(
    "fault",
    ["write:2", "batch:6"],  # 4 batches per epoch: the 6th update is mid-epoch 2
    ids=["kill-9-during-checkpoint-write", "kill-9-mid-epoch"],
)
def test_killed_run_resumes_bit_for_bit(tmp_path, uninterrupted, fault):
    killed = run_worker(tmp_path, fault)
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no handler ran
    assert (tmp_path / "ck.npz").exists()  # the checkpoint of epoch 1 survived
    assert not (tmp_path / "final.npz").exists()
    if fault.startswith("write"):
        assert temporary_files(tmp_path / "ck.npz")  # the interrupted write's temporary file
    resumed = run_worker(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert temporary_files(tmp_path / "ck.npz") == []  # cleaned up by the resumed run
    weights, figures = finished(tmp_path)
    expected_weights, expected_figures = uninterrupted
    assert weights.keys() == expected_weights.keys()
    for key in weights:
        assert np.array_equal(weights[key], expected_weights[key]), key
    assert figures == expected_figures  # best epoch and history, losses bit for bit


# --- checkpoint files ---------------------------------------------------------------------


def test_truncated_or_foreign_files_raise_checkpoint_error_naming_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "ck.npz", {"a": np.arange(3.0)})
    assert np.array_equal(load_checkpoint(path)["a"], np.arange(3.0))
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("not a checkpoint")
    np.savez(tmp_path / "plain.npz", a=np.arange(3))
    for name in ("cut.npz", "text.npz", "plain.npz", "missing.npz"):
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)


def test_other_format_version_is_refused(tmp_path, monkeypatch):
    from pynn_eventprop.training import checkpoint

    monkeypatch.setattr(checkpoint, "FORMAT_VERSION", 1)
    path = save_checkpoint(tmp_path / "old.npz", {"a": 1})
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"old\.npz.*format version 1"):
        load_checkpoint(path)


def test_stale_temporary_files_are_removed_by_the_next_write(tmp_path):
    stale = tmp_path / "ck.npz.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / "other.npz.abc123.tmp"  # another checkpoint's: left alone
    other.write_bytes(b"x")
    save_checkpoint(tmp_path / "ck.npz", {"a": 1})
    assert not stale.exists() and other.exists()


# --- the Trainer: guards after every update, validated loads ------------------------------


def small_network(sim, hidden=20, lr=5e-3, optimiser=None, seed=2):
    from pyNN.random import NumpyRNG, RandomDistribution

    from pynn_eventprop.eventprop import Adam
    from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
    from pynn_eventprop.neurons import WP_NEURON

    sim.setup(timestep=1.0, min_delay=1.0)
    rng = NumpyRNG(seed=seed)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hid = sim.Population(hidden, sim.IF_curr_exp(**WP_NEURON), label="hidden")
    out = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    hid.initialize(v=0.0)
    out.initialize(v=0.0)
    rule = EventPropRule(optimiser if optimiser is not None else Adam(lr=lr))
    for pre, post, mean in ((inputs, hid, 1.5), (hid, out, 0.5)):
        weight = RandomDistribution("normal", (mean, mean), rng=rng)
        synapse = EventPropSynapse(weight=weight, rule=rule)
        sim.Projection(
            pre, post, sim.AllToAllConnector(), synapse, label=f"{pre.label}-{post.label}"
        )
    return inputs, out


def small_trainer(sim, **kwargs):
    from pynn_eventprop.eventprop import TTFSCrossEntropy
    from pynn_eventprop.eventprop.training import Trainer

    inputs, out = small_network(sim, **kwargs)
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    return Trainer(inputs, out, loss, duration=40.0, batch_size=16, seed=1, progress=False)


@pytest.fixture(scope="module")
def samples():
    from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset

    code = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
    return yin_yang_dataset("train", code).subset(np.arange(32))


def test_huge_learning_rate_stops_with_divergence_error_naming_projection_epoch_batch(
    sim, samples, tmp_path
):
    trainer = small_trainer(sim, lr=1e300)
    with pytest.raises(DivergenceError, match=r"projection '.*'.*epoch 1, batch 1"):
        trainer.fit(samples, 1, checkpoint=tmp_path / "ck.npz")
    assert not (tmp_path / "ck.npz").exists()  # no diverged checkpoint
    assert np.all(np.abs(trainer.engine.get_weights(0)) < 1e3)  # the engine kept the old ones


def test_non_finite_weights_after_an_update_never_reach_engine_or_checkpoint(
    sim, samples, tmp_path
):
    trainer = small_trainer(sim)
    checkpoint = tmp_path / "ck.npz"
    trainer.fit(samples, 1, checkpoint=checkpoint)
    good, before = checkpoint.read_bytes(), trainer.engine.get_weights(1)
    learner = trainer.learners[1]
    original = learner.optimiser.step

    def poisoned(params, grads):
        original(params, grads)
        params["weights"][0, 0] = np.nan

    learner.optimiser.step = poisoned
    with pytest.raises(NonFiniteError, match=r"weights of projection 'hidden-output'.*epoch 2"):
        trainer.fit(samples, 1, checkpoint=checkpoint)
    assert checkpoint.read_bytes() == good
    assert np.array_equal(trainer.engine.get_weights(1), before)


def test_checkpoint_of_another_network_is_refused_before_anything_changes(sim, samples, tmp_path):
    small = small_trainer(sim, hidden=20)
    small.fit(samples, 1, checkpoint=tmp_path / "ck.npz")
    sim.end()
    trainer = small_trainer(sim, hidden=21)
    weights = [trainer.engine.get_weights(c) for c in (0, 1)]
    optimiser_state = [o.state_dict() for o in trainer.optimisers.values()]
    with pytest.raises(CheckpointError, match=r"ck\.npz.*projection 'input-hidden'.*shape"):
        trainer.load_checkpoint(tmp_path / "ck.npz")
    assert all(np.array_equal(trainer.engine.get_weights(c), w) for c, w in enumerate(weights))
    assert [o.state_dict() for o in trainer.optimisers.values()] == optimiser_state
    assert trainer.epoch == 0


def test_checkpoint_of_another_optimiser_is_refused_naming_file_and_projection(
    sim, samples, tmp_path
):
    from pynn_eventprop.eventprop import SGD

    small_trainer(sim).fit(samples, 1, checkpoint=tmp_path / "ck.npz")
    sim.end()
    trainer = small_trainer(sim, optimiser=SGD(lr=1e-3))
    before = trainer.engine.get_weights(0)
    with pytest.raises(CheckpointError, match=r"ck\.npz.*projection 'input-hidden'.*Adam"):
        trainer.load_checkpoint(tmp_path / "ck.npz")
    assert np.array_equal(trainer.engine.get_weights(0), before)


def test_best_epoch_state_travels_in_the_checkpoint(sim, samples, tmp_path):
    trainer = small_trainer(sim)
    trainer.fit(samples, 2, validation=samples, checkpoint=tmp_path / "ck.npz", keep_best=True)
    ended = [trainer.engine.get_weights(c) for c in (0, 1)]
    best = trainer.best
    sim.end()
    resumed = small_trainer(sim)
    resumed.load_checkpoint(tmp_path / "ck.npz")
    assert resumed.best_epoch == best["epoch"]
    assert resumed.best["accuracy"] == best["accuracy"]
    for c in (0, 1):
        assert np.array_equal(resumed.best["weights"][c], best["weights"][c])
    resumed.fit(samples, 0, validation=samples, keep_best=True)  # nothing left to train
    assert all(np.array_equal(resumed.engine.get_weights(c), ended[c]) for c in (0, 1))
