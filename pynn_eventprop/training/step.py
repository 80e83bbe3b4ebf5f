"""The one training step and loop, on any engine (no PyNN).

A batch of samples (first-spike times of the input population, labels) goes through
``forward`` (engine run from its initial state, readouts of the output population, loss),
``gradients`` (the engine's backward pass from ``dL/dreadout``, optionally with regularisers'
terms) and ``update`` (each trainable projection's optimiser steps on the engine's weights).
The PyNN :class:`~pynn_eventprop.eventprop.training.Trainer`, the benchmarks, the validation
code and the tests all train through :class:`TrainingStep`.

Batches shorter than the engine's batch size are padded with silent samples, which the loss
never sees and whose gradients are zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..engine.interface import RunResult, SpikeTrains
from .errors import check_finite
from .losses import Loss, LossResult


@dataclass
class Forward:
    """One batch run forward: the engine's result, the loss on its ``n`` real samples."""

    result: RunResult
    loss: LossResult
    n: int


@dataclass
class Learner:
    """How one compiled projection learns: its optimiser and gradient clipping (a callable)."""

    optimiser: object
    clip: object = None
    label: str = ""


class TrainingStep:
    """Forward, loss, backward and update of one batch on an engine.

    Parameters
    ----------
    engine : Engine
        Built for the network with a batch size; this object resets and runs it.
    inputs, outputs : int
        Compiled population indices of the input spike source and of the loss's population.
    loss : Loss
    n_steps : int
        Steps per sample; the run lasts ``T = n_steps * engine.dt`` ms.
    regularisers : sequence
        Callables ``(engine, result, n) -> extra_grads`` (see :mod:`.regularisers`), used by
        :meth:`gradients` with ``regularise=True``.
    """

    def __init__(
        self, engine, inputs: int, outputs: int, loss: Loss, n_steps: int, regularisers=()
    ):
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a Loss, got {type(loss).__name__}")
        self.engine = engine
        self.inputs, self.outputs = int(inputs), int(outputs)
        self.loss = loss
        self.n_steps = int(n_steps)
        self.regularisers = tuple(regularisers)

    @property
    def duration(self) -> float:
        return self.n_steps * self.engine.dt

    def forward(self, times, labels, context: str = "") -> Forward:
        """Run ``times`` ``(n, n_inputs)`` (ms, NaN = no spike) and evaluate the loss."""
        labels = np.asarray(labels)
        n, batch = len(labels), self.engine.batch
        if n > batch:
            raise ValueError(f"at most batch_size={batch} samples, got {n}")
        times = np.asarray(times, float)
        padded = np.full((batch, times.shape[1]), np.nan)
        padded[:n] = times
        self.engine.reset()
        result = self.engine.run(
            self.n_steps,
            sources={self.inputs: SpikeTrains.from_matrix(padded)},
            keep_for_backward=True,
        )
        readouts = self.engine.readouts(result, self.outputs, self.loss.requires)
        real = {name: value[:n] for name, value in readouts.items()}
        loss = self.loss.evaluate(real, labels, self.duration)
        check_finite("loss", np.asarray(loss.loss), context)
        return Forward(result, loss, n)

    def gradients(self, forward: Forward, regularise: bool = False, adjoints: bool = False):
        """The engine's :class:`~pynn_eventprop.engine.interface.Gradients` of the batch.

        ``regularise=False``: ``dL/dw`` of the loss; ``True``: ``dL/dw + dR/dw`` with the
        regularisers' terms (the direction :meth:`train` follows).
        """
        batch = self.engine.batch
        grads = {}
        for name, g in forward.loss.readout_grads.items():
            full = np.zeros((batch, g.shape[1]), self.engine.dtype)
            full[: forward.n] = g
            grads[name] = full
        extra = {}
        if regularise:
            for regulariser in self.regularisers:
                for pop, per_name in regulariser(self.engine, forward.result, forward.n).items():
                    extra.setdefault(pop, {}).update(per_name)
        return self.engine.backward(
            forward.result, {self.outputs: grads}, extra or None, adjoints=adjoints
        )

    def update(self, gradients, learners: dict, context: str = "") -> dict:
        """Apply each learner's optimiser to its projection; returns the gradients it used."""
        used = {}
        for c, learner in learners.items():
            gradient = gradients.weights[c]
            check_finite(f"gradient of projection '{learner.label}'", gradient, context)
            if learner.clip is not None:
                gradient = learner.clip(gradient)
            weights = self.engine.get_weights(c)
            learner.optimiser.step({"weights": weights}, {"weights": np.asarray(gradient, float)})
            self.engine.set_weights(c, weights)
            used[c] = gradient
        return used

    def train(self, times, labels, learners: dict, context: str = ""):
        """Forward, regularised backward and update: returns ``(Forward, gradients used)``."""
        forward = self.forward(times, labels, context)
        used = self.update(self.gradients(forward, regularise=True), learners, context)
        return forward, used


def run_epoch(step: TrainingStep, data, batch_size, learners, rng, label="", progress=False):
    """Train one epoch of ``data`` (a SpikeDataset) in shuffled batches.

    Returns ``(record, last_gradients)``: ``record`` has ``loss``, ``accuracy`` and
    ``seconds``; ``last_gradients`` the gradients of the last batch (per compiled projection).
    """
    start = time.perf_counter()
    losses, correct, count, used = [], 0, 0, {}
    batches = data.batches(batch_size, shuffle=True, rng=rng)
    bar = tqdm(
        batches,
        total=data.n_batches(batch_size),
        desc=label,
        disable=not progress,
        leave=False,
    )
    for b, (times, labels) in enumerate(bar):
        context = f"{label}, batch {b + 1}" if label else f"batch {b + 1}"
        forward, used = step.train(times, labels, learners, context)
        result = forward.loss
        losses.append(result.loss * len(labels))
        correct += int(result.correct.sum())
        count += len(labels)
        bar.set_postfix(loss=f"{result.loss:.3f}")
    record = {
        "loss": float(np.sum(losses) / count),
        "accuracy": correct / count,
        "seconds": time.perf_counter() - start,
    }
    return record, used


def evaluate(step: TrainingStep, data, batch_size) -> dict:
    """Mean loss and accuracy on ``data`` (no learning)."""
    losses, correct = 0.0, 0
    for times, labels in data.batches(batch_size, shuffle=False):
        result = step.forward(times, labels).loss
        losses += result.loss * len(labels)
        correct += int(result.correct.sum())
    return {"loss": losses / len(data), "accuracy": correct / len(data), "n": len(data)}


def predict(step: TrainingStep, times, batch_size) -> np.ndarray:
    """Predicted class per sample of input spike times ``(n, n_inputs)``."""
    times = np.asarray(times, float)
    out = []
    for start in range(0, len(times), batch_size):
        chunk = times[start : start + batch_size]
        out.append(step.forward(chunk, np.zeros(len(chunk), np.int64)).loss.predictions)
    return np.concatenate(out)
