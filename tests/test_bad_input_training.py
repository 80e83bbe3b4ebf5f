"""Bad input to training, one table row per case: the Trainer, its data, checkpoints, the CLI.

Each row is a call that must fail early (before any batch is trained) with the given error
class and a message that contains the given strings: the parameter (or argument) and the
value given, and where useful what is allowed.  Command-line rows must exit with a non-zero
status and print the message on stderr.  Same style as ``test_bad_input_table.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from pynn_eventprop import cli, datasets
from pynn_eventprop.eventprop import SGD, Adam, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.neurons import WP_NEURON
from pynn_eventprop.training import CheckpointError, save_checkpoint
from pynn_eventprop.validation import StaleObjectError

nan, inf = math.nan, math.inf


@dataclass(frozen=True)
class Case:
    """One bad input: ``call(sim, tmp_path)`` raises ``error`` whose message holds ``parts``."""

    id: str
    call: Any
    error: type[BaseException]
    parts: tuple[str, ...]


# --- building blocks ------------------------------------------------------------------------------


def network(sim):
    """input (5) -> hidden (4) -> output (3), both projections trainable; dt = 1 ms."""
    sim.setup(timestep=1.0, min_delay=1.0)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(4, sim.IF_curr_exp(**WP_NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    for pre, post in ((inputs, hidden), (hidden, output)):
        sim.Projection(pre, post, sim.AllToAllConnector(), EventPropSynapse(weight=1.0))
    return inputs, hidden, output


def trainer(sim, **kwargs):
    inputs, _, output = network(sim)
    args = {"loss": TTFSCrossEntropy(), "duration": 40.0, "batch_size": 4, "progress": False}
    return Trainer(inputs, output, **{**args, **kwargs})


def with_roles(sim, inputs="input", outputs="output"):
    populations = dict(zip(("input", "hidden", "output"), network(sim), strict=True))
    pick = {name: populations.get(value, value) for name, value in (("i", inputs), ("o", outputs))}
    return Trainer(pick["i"], pick["o"], TTFSCrossEntropy(), duration=40.0, progress=False)


def stale_outputs(sim):
    _, _, old_output = network(sim)
    inputs, _, _ = network(sim)  # setup() again: old_output no longer exists
    return Trainer(inputs, old_output, TTFSCrossEntropy(), duration=40.0, progress=False)


def second_source(sim):
    """A second spike source projects into the hidden layer: the Trainer would not feed it."""
    inputs, hidden, output = network(sim)
    cue = sim.Population(1, sim.SpikeSourceArray(spike_times=[5.0]), label="cue")
    sim.Projection(cue, hidden, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    return Trainer(inputs, output, TTFSCrossEntropy(), duration=40.0, progress=False)


def from_view(sim):
    """A trainable projection from part of the inputs population."""
    sim.setup(timestep=1.0, min_delay=1.0)
    inputs = sim.Population(6, sim.SpikeSourceArray(), label="input")
    output = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    sim.Projection(inputs[:5], output, sim.AllToAllConnector(), EventPropSynapse(weight=1.0),
                   label="part")  # fmt: skip
    return Trainer(inputs, output, TTFSCrossEntropy(), duration=40.0, progress=False)


def data(n_inputs=5, n_classes=3, latest=30.0, duration=50.0):
    times = np.linspace(0.0, latest, 4 * n_inputs).reshape(4, n_inputs)
    return datasets.SpikeDataset(times, np.arange(4) % n_classes, n_classes, duration)


def fit(sim, train=None, **kwargs):
    return trainer(sim).fit(data() if train is None else train, **{"epochs": 1, **kwargs})


def load(sim, path):
    return trainer(sim).load_checkpoint(path)


def truncated(tmp_path):
    path = save_checkpoint(tmp_path / "cut.npz", {"w": np.ones((50, 50))})
    path.write_bytes(path.read_bytes()[:300])
    return path


def plain_npz(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(3))
    return tmp_path / "plain.npz"


def command(*argv):
    return cli.main(list(argv))


def yin_yang(*argv):
    return command("train", "yin-yang", "--no-progress", *argv)


# --- the table ------------------------------------------------------------------------------------

TRAINER = [
    Case(
        "second-spike-source",
        lambda s, t: second_source(s),
        ValueError,
        ("spike source 'cue'", "'hidden'", "inputs population 'input'"),
    ),
    Case(
        "trainable-projection-from-view",
        lambda s, t: from_view(s),
        ValueError,
        ("'part'", "5 x 3 of 6 x 3", "whole"),
    ),
    Case("epochs-negative", lambda s, t: fit(s, epochs=-2), ValueError, ("epochs", "-2")),
    Case("epochs-float", lambda s, t: fit(s, epochs=1.5), TypeError, ("epochs", "1.5")),
    Case("epochs-string", lambda s, t: fit(s, epochs="3"), TypeError, ("epochs", "'3'")),
    Case("batch-size-zero", lambda s, t: trainer(s, batch_size=0), ValueError, ("batch_size", "0")),
    Case(
        "batch-size-negative",
        lambda s, t: trainer(s, batch_size=-4),
        ValueError,
        ("batch_size", "-4", ">= 1"),
    ),
    Case(
        "batch-size-float",
        lambda s, t: trainer(s, batch_size=2.5),
        TypeError,
        ("batch_size", "2.5"),
    ),
    Case("duration-zero", lambda s, t: trainer(s, duration=0.0), ValueError, ("duration", "0.0")),
    Case(
        "duration-negative",
        lambda s, t: trainer(s, duration=-5.0),
        ValueError,
        ("duration", "-5.0"),
    ),
    Case("duration-nan", lambda s, t: trainer(s, duration=nan), ValueError, ("duration", "nan")),
    Case("duration-inf", lambda s, t: trainer(s, duration=inf), ValueError, ("duration", "inf")),
    Case(
        "duration-below-one-step",
        lambda s, t: trainer(s, duration=0.4),
        ValueError,
        ("duration=0.4", "timestep=1.0"),
    ),
    Case("loss-string", lambda s, t: trainer(s, loss="ttfs"), TypeError, ("loss", "'ttfs'")),
    Case(
        "loss-on-hidden-population",
        lambda s, t: with_roles(s, outputs="hidden"),
        ValueError,
        ("outputs", "'hidden'", "not the network's output"),
    ),
    Case(
        "inputs-not-a-spike-source",
        lambda s, t: with_roles(s, inputs="hidden"),
        ValueError,
        ("inputs", "'hidden'", "SpikeSourceArray"),
    ),
    Case(
        "outputs-a-spike-source",
        lambda s, t: with_roles(s, outputs="input"),
        ValueError,
        ("outputs", "'input'"),
    ),
    Case(
        "inputs-a-string",
        lambda s, t: with_roles(s, inputs="inputs"),
        TypeError,
        ("inputs", "'inputs'", "Population"),
    ),
    Case(
        "outputs-created-before-setup",
        lambda s, t: stale_outputs(s),
        StaleObjectError,
        ("outputs", "'output'", "setup()"),
    ),
    Case(
        "revive-dead-negative",
        lambda s, t: trainer(s, revive_dead=-1.0),
        ValueError,
        ("revive_dead", "-1.0"),
    ),
    Case("seed-negative", lambda s, t: trainer(s, seed=-3), ValueError, ("seed", "-3")),
    Case("seed-string", lambda s, t: trainer(s, seed="a"), TypeError, ("seed", "'a'")),
    Case("dtype-int", lambda s, t: trainer(s, dtype=np.int32), TypeError, ("dtype", "int32")),
    Case(
        "progress-string", lambda s, t: trainer(s, progress="yes"), TypeError, ("progress", "yes")
    ),
]

DATA = [
    Case(
        "train-spikes-after-duration",
        lambda s, t: trainer(s, duration=20.0).fit(data(latest=30.0), 1),
        ValueError,
        ("train", "duration=20", "30.0"),
    ),
    Case(
        "validation-spikes-after-duration",
        lambda s, t: trainer(s, duration=25.0).fit(data(latest=20.0), 1, data(latest=45.0)),
        ValueError,
        ("validation", "duration=25", "45.0"),
    ),
    Case(
        "train-wrong-input-count",
        lambda s, t: fit(s, data(n_inputs=4)),
        ValueError,
        ("n_inputs=4", "'input'", "5 neurons"),
    ),
    Case(
        "train-more-classes-than-outputs",
        lambda s, t: fit(s, data(n_classes=5)),
        ValueError,
        ("n_classes=5", "'output'", "3 neurons"),
    ),
    Case(
        "train-an-array",
        lambda s, t: fit(s, np.zeros((4, 5))),
        TypeError,
        ("train", "SpikeDataset", "ndarray"),
    ),
    Case(
        "keep-best-without-validation",
        lambda s, t: fit(s, keep_best=True),
        ValueError,
        ("keep_best", "validation=None"),
    ),
    Case("keep-best-string", lambda s, t: fit(s, keep_best="yes"), TypeError, ("keep_best", "yes")),
    Case(
        "checkpoint-is-a-directory",
        lambda s, t: fit(s, checkpoint=t),
        IsADirectoryError,
        ("checkpoint", "directory"),
    ),
    Case(
        "predict-wrong-shape",
        lambda s, t: trainer(s).predict(np.zeros((3, 4))),
        ValueError,
        ("times", "(3, 4)", "(n_samples, 5)"),
    ),
    Case(
        "predict-spikes-after-duration",
        lambda s, t: trainer(s).predict(np.full((2, 5), 45.0)),
        ValueError,
        ("times", "duration=40", "45.0"),
    ),
    Case(
        "predict-negative-spike-time",
        lambda s, t: trainer(s).predict(np.full((2, 5), -1.0)),
        ValueError,
        ("times", ">= 0", "-1.0"),
    ),
]

CHECKPOINTS = [
    Case(
        "checkpoint-missing",
        lambda s, t: load(s, t / "missing.npz"),
        CheckpointError,
        ("missing.npz", "does not exist"),
    ),
    Case(
        "checkpoint-truncated",
        lambda s, t: load(s, truncated(t)),
        CheckpointError,
        ("cut.npz", "truncated"),
    ),
    Case(
        "checkpoint-foreign-npz",
        lambda s, t: load(s, plain_npz(t)),
        CheckpointError,
        ("plain.npz", "not a checkpoint"),
    ),
    Case(
        "checkpoint-not-of-a-trainer",
        lambda s, t: load(s, save_checkpoint(t / "other.npz", {"a": 1})),
        CheckpointError,
        ("other.npz", "Trainer"),
    ),
    Case(
        "rule-max-grad-norm-zero",
        lambda s, t: EventPropRule(max_grad_norm=0.0),
        ValueError,
        ("max_grad_norm", "0.0"),
    ),
    Case(
        "rule-optimiser-string",
        lambda s, t: EventPropRule(optimiser="adam"),
        TypeError,
        ("optimiser", "str"),
    ),
    Case("adam-lr-negative", lambda s, t: Adam(lr=-1.0), ValueError, ("lr", "-1.0")),
    Case("adam-lr-nan", lambda s, t: Adam(lr=nan), ValueError, ("lr", "nan")),
    Case(
        "sgd-weight-decay-negative",
        lambda s, t: SGD(lr=0.1, weight_decay=-1.0),
        ValueError,
        ("weight_decay", "-1.0"),
    ),
]

CLI = [
    Case(
        "cli-batch-size-zero",
        lambda s, t: yin_yang("--batch-size", "0"),
        SystemExit,
        ("--batch-size", "'0'"),
    ),
    Case(
        "cli-hidden-negative",
        lambda s, t: yin_yang("--hidden", "-5"),
        SystemExit,
        ("--hidden", "'-5'"),
    ),
    Case("cli-dt-zero", lambda s, t: yin_yang("--dt", "0"), SystemExit, ("--dt", "'0'")),
    Case(
        "cli-epochs-negative",
        lambda s, t: yin_yang("--epochs", "-1"),
        SystemExit,
        ("--epochs", "'-1'"),
    ),
    Case(
        "cli-json-is-a-directory",
        lambda s, t: yin_yang("--json", str(t)),
        SystemExit,
        ("--json", "is a directory"),
    ),
    Case(
        "cli-duration-negative",
        lambda s, t: yin_yang("--duration", "-3"),
        SystemExit,
        ("--duration", "'-3'"),
    ),
    Case(
        "cli-t-late-after-duration",
        lambda s, t: yin_yang("--t-late", "50"),
        SystemExit,
        ("--t-late", "50", "--duration 40"),
    ),
    Case(
        "cli-duration-below-dt",
        lambda s, t: yin_yang("--dt", "5", "--duration", "2"),
        SystemExit,
        ("--duration 2", "--dt 5"),
    ),
    Case("cli-lr-nan", lambda s, t: yin_yang("--lr", "nan"), SystemExit, ("--lr", "'nan'")),
    Case(
        "cli-lr-decay-above-one",
        lambda s, t: yin_yang("--lr-decay", "1.5"),
        SystemExit,
        ("--lr-decay", "'1.5'", "(0, 1]"),
    ),
    Case(
        "cli-train-samples-zero",
        lambda s, t: yin_yang("--train-samples", "0"),
        SystemExit,
        ("--train-samples", "'0'"),
    ),
    Case(
        "cli-seed-negative", lambda s, t: yin_yang("--seed", "-1"), SystemExit, ("--seed", "'-1'")
    ),
    Case(
        "cli-hidden-float",
        lambda s, t: yin_yang("--hidden", "2.5"),
        SystemExit,
        ("--hidden", "'2.5'"),
    ),
    Case(
        "cli-unknown-task", lambda s, t: command("train", "cifar"), SystemExit, ("task", "'cifar'")
    ),
    Case("cli-no-command", lambda s, t: command(), SystemExit, ("COMMAND", "required")),
]

TABLE = TRAINER + DATA + CHECKPOINTS + CLI


def test_table_is_large_and_ids_are_unique():
    assert len(TABLE) >= 25
    assert len({case.id for case in TABLE}) == len(TABLE)


@pytest.mark.parametrize("case", TABLE, ids=[case.id for case in TABLE])
def test_bad_training_input_fails_early_with_a_clear_message(sim, tmp_path, capsys, case):
    with pytest.raises(case.error) as info:
        case.call(sim, tmp_path)
    message = str(info.value)
    if isinstance(info.value, SystemExit):
        assert info.value.code not in (0, None)
        message = capsys.readouterr().err
    missing = [part for part in case.parts if part not in message]
    assert not missing, f"message {message!r} lacks {missing}"


# --- not bad input: an output file's missing directory is made before any work -------------


def test_json_in_a_missing_directory_is_made_before_training(tmp_path):
    """``--json out/figures.json`` on a fresh checkout: the directory is created while the
    command line is read (a script that trained for minutes must not fail writing it)."""
    from pynn_eventprop.tasks import randman, yin_yang

    for name, parse in (("yin_yang", yin_yang.parse_args), ("randman", randman.parse_args)):
        target = tmp_path / name / "deeper" / "figures.json"
        assert parse(["--json", str(target)]).json == str(target)
        assert target.parent.is_dir() and not target.exists()


# --- not bad input: every command explains itself -----------------------------------------------


@pytest.mark.parametrize(
    "argv, parts",
    [
        ((), ("train", "validate", "COMMAND --help")),
        (("train",), ("yin-yang", "TASK --help")),
        (("train", "yin-yang"), ("--batch-size", "--preset", "default: 0.005", "twin: hidden=120")),
        (("validate",), ("--families", "default: [0.1, 0.01, 0.001]", "Brian2")),
    ],
    ids=["top", "train", "train-yin-yang", "validate"],
)
def test_help_of_every_command_describes_arguments_and_defaults(capsys, argv, parts):
    with pytest.raises(SystemExit) as info:
        command(*argv, "--help")
    assert info.value.code == 0
    text = capsys.readouterr().out
    missing = [part for part in parts if part not in text]
    assert not missing, f"help {text!r} lacks {missing}"
