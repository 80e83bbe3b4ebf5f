"""The one training step and loop, on any engine (no PyNN).

A batch of samples (the input population's spikes, labels) goes through
``forward`` (engine run from its initial state, readouts of the output population, loss),
``gradients`` (the engine's backward pass from ``dL/dreadout``, optionally with regularisers'
terms) and ``update`` (each trainable projection's optimiser steps on the engine's weights).
The PyNN :class:`~pynn_eventprop.eventprop.training.Trainer`, the benchmarks, the validation
code and the tests all train through :class:`TrainingStep`.

A batch's inputs are either a ``(B, n_inputs)`` matrix of spike times (ms, NaN = no spike;
one spike per input neuron, a :class:`~pynn_eventprop.datasets.SpikeDataset`'s batches) or a
:class:`~pynn_eventprop.datasets.SpikeTrainBatch` (any number of spikes per input neuron, a
:class:`~pynn_eventprop.datasets.SpikeTrainDataset`'s batches); :func:`input_spike_trains` turns
either into the engine's :class:`~pynn_eventprop.engine.interface.SpikeTrains`.  Batches
shorter than the engine's batch size are padded with silent samples, which the loss never sees
and whose gradients are zero.

Nothing that is not finite, or that diverged, reaches the engine: ``update`` checks every
gradient before the optimiser step, and the new weights and the optimiser's state after it
(finite, within the optimiser's ``w_min``/``w_max``, weight norm not grown by orders of
magnitude), before the weights are written back.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..datasets.spike_trains import SpikeTrainBatch
from ..engine.interface import RunResult, SpikeTrains
from ..engine.threads import blas_on_one_thread
from .errors import check_divergence, check_finite
from .losses import Loss, LossResult
from .rule import update_delays


@dataclass
class Forward:
    """One batch run forward: the engine's result, the loss on its ``n`` real samples."""

    result: RunResult
    loss: LossResult
    n: int


@dataclass
class Learner:
    """How one compiled projection learns: its optimiser and gradient clipping (a callable).

    ``divergence_factor``: an update that makes the Frobenius norm of the weights exceed this
    many times their norm before the first update (at least ``1e-3`` nA per weight) raises
    :class:`~.errors.DivergenceError`; ``reference_norm`` is that first norm, set by
    :meth:`TrainingStep.update`.
    """

    optimiser: object
    clip: object = None
    label: str = ""
    divergence_factor: float = 1e6
    reference_norm: float | None = None


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
    monitors : sequence
        Callables ``(result, n, context)`` called after every forward run (e.g. the
        Trainer's silent-network diagnosis); they may warn but must not change anything.
        When the loss reads first spike times and ``v_max`` only, the output population
        projects nowhere and no regulariser reads it, the runs pass it as ``readouts_only``
        (see :class:`~pynn_eventprop.engine.interface.Engine`): a monitor then sees its spikes
        only until every output neuron has fired.
    divergence_factor : float
        :meth:`train` raises :class:`~.errors.DivergenceError` when the batch loss exceeds this
        many times the first batch's loss (at least 1).
    """

    def __init__(
        self,
        engine,
        inputs: int,
        outputs: int,
        loss: Loss,
        n_steps: int,
        regularisers=(),
        monitors=(),
        divergence_factor: float = 1e6,
    ):
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a Loss, got {type(loss).__name__}")
        self.engine = engine
        self.inputs, self.outputs = int(inputs), int(outputs)
        self.loss = loss
        self.n_steps = int(n_steps)
        self.regularisers = tuple(regularisers)
        self.monitors = tuple(monitors)
        self.divergence_factor = float(divergence_factor)
        self.reference_loss: float | None = None
        #: populations the runs need only the readouts of (``Engine.run(readouts_only=...)``)
        self.readouts_only = readouts_only(engine.network, self.outputs, loss, self.regularisers)
        #: compiled projection -> :class:`~.rule.DelayLearner`; their delays learn in train()
        self.delay_learners: dict = {}
        #: delay gradients the last train() used, per compiled projection
        self.delay_gradients_used: dict = {}

    @property
    def duration(self) -> float:
        return self.n_steps * self.engine.dt

    def forward(self, times, labels, context: str = "") -> Forward:
        """Run a batch and evaluate the loss.

        ``times``: the inputs of ``n = len(labels)`` samples, a ``(n, n_inputs)`` matrix (ms,
        NaN = no spike) or a :class:`~pynn_eventprop.datasets.SpikeTrainBatch` of ``n``
        samples (see :func:`input_spike_trains`).
        """
        labels = np.asarray(labels)
        n, batch = len(labels), self.engine.batch
        if n > batch:
            raise ValueError(f"at most batch_size={batch} samples, got {n}")
        self.engine.reset()
        result = self.engine.run(
            self.n_steps,
            sources={self.inputs: input_spike_trains(times, batch, n)},
            keep_for_backward=True,
            readouts_only=self.readouts_only,
        )
        on_engine = getattr(self.engine, "evaluate_loss", None)  # e.g. the SpiNNaker2 model's PEs
        if on_engine is not None:
            loss = on_engine(result, self.outputs, self.loss, labels, self.duration)
        else:
            readouts = self.engine.readouts(result, self.outputs, self.loss.requires)
            real = {name: value[:n] for name, value in readouts.items()}
            loss = self.loss.evaluate(real, labels, self.duration)
        check_finite("loss", np.asarray(loss.loss), context)
        for monitor in self.monitors:
            monitor(result, n, context)
        return Forward(result, loss, n)

    def gradients(
        self,
        forward: Forward,
        regularise: bool = False,
        adjoints: bool = False,
        delays: bool = True,
    ):
        """The engine's :class:`~pynn_eventprop.engine.interface.Gradients` of the batch.

        ``regularise=False``: ``dL/dw`` of the loss; ``True``: ``dL/dw + dR/dw`` with the
        regularisers' terms (the direction :meth:`train` follows).  ``delays=False`` says
        that the delay gradients will not be read (:meth:`train` without delay learners): the
        engine may leave them out (``delays`` None), and so does a step across MPI ranks.
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
            forward.result,
            {self.outputs: grads},
            extra or None,
            adjoints=adjoints,
            delays=delays,
            source_times=False,  # nothing here reads dL/dt of the inputs' spikes
        )

    def update(self, gradients, learners: dict, context: str = "") -> dict:
        """Apply each learner's optimiser to its projection; returns the gradients it used.

        Every projection's new weights are computed and checked (:func:`check_update`) before
        any is written to the engine, so a failed check leaves the engine's weights as they
        were before this update.  An engine with ``optimiser_step`` (the SpiNNaker2 model) runs
        the clip and the optimiser step itself, where its weights are, staging the new weights
        until ``commit_weights``; it returns None when it cannot, and the step runs here.
        """
        on_engine = getattr(self.engine, "optimiser_step", None)
        used, updated = {}, {}
        for c, learner in learners.items():
            gradient = gradients.weights[c]
            check_finite(f"gradient of projection '{learner.label}'", gradient, context)
            weights = self.engine.get_weights(c)
            if learner.reference_norm is None:
                floor = 1e-3 * np.sqrt(weights.size)
                learner.reference_norm = max(float(np.linalg.norm(weights)), floor)
            staged = None
            if on_engine is not None:
                staged = on_engine(c, learner.optimiser, learner.clip, gradients)
            if staged is None:
                if learner.clip is not None:
                    gradient = learner.clip(gradient)
                learner.optimiser.step(
                    {"weights": weights}, {"weights": np.asarray(gradient, weights.dtype)}
                )
            else:
                weights, gradient = staged
            check_update(learner, weights, context)
            updated[c] = None if staged is not None else weights
            used[c] = gradient
        for c, weights in updated.items():
            if weights is None:
                self.engine.commit_weights(c)
            else:
                self.engine.set_weights(c, weights, take=True)  # from get_weights, ours
        return used

    def train(self, times, labels, learners: dict, context: str = ""):
        """Forward, regularised backward and update: returns ``(Forward, gradients used)``."""
        forward = self.forward(times, labels, context)
        loss = float(forward.loss.loss)
        if self.reference_loss is None:
            self.reference_loss = max(loss, 1.0)
        check_divergence("loss", loss, self.reference_loss, self.divergence_factor, context)
        gradients = self.gradients(forward, regularise=True, delays=bool(self.delay_learners))
        used = self.update(gradients, learners, context)
        self.delay_gradients_used = update_delays(
            self.engine, gradients, self.delay_learners, context
        )
        return forward, used


#: Readouts that are final once a neuron has spiked (``v_max`` is searched until then).
_FINAL_AT_FIRST_SPIKE = frozenset(("first_spike_time", "v_max", "v_max_time"))


def readouts_only(network, outputs: int, loss: Loss, regularisers=()) -> tuple:
    """``(outputs,)`` when a run may stop integrating the output population once every
    neuron has spiked: the loss reads only readouts that are final then, the population
    projects nowhere and no regulariser watches it; else ``()``."""
    watched = any(outputs in getattr(r, "populations", (outputs,)) for r in regularisers)
    projects = any(p.pre == outputs for p in network.projections)
    final = set(loss.requires) <= _FINAL_AT_FIRST_SPIKE
    return (outputs,) if final and not projects and not watched else ()


def check_update(learner: Learner, weights: np.ndarray, context: str = "") -> None:
    """Check a projection's weights and optimiser state right after an optimiser step.

    Raises
    ------
    NonFiniteError
        If a weight or an optimiser state array (e.g. Adam's moments) is NaN or infinite.
    ValueError
        If a weight lies outside the optimiser's ``[w_min, w_max]``.
    DivergenceError
        If the weights' norm exceeds ``learner.divergence_factor`` times its reference.
    """
    name = f"projection '{learner.label}'"
    with np.errstate(over="ignore"):
        norm = float(np.linalg.norm(weights))
    if not math.isfinite(norm):  # a finite norm proves every weight finite
        check_finite(f"weights of {name}", weights, context)
    for slots in getattr(learner.optimiser, "_state", {}).values():
        for slot, array in slots.items():
            check_finite(f"optimiser state '{slot}' of {name}", array, context)
    w_min = getattr(learner.optimiser, "w_min", None)
    w_max = getattr(learner.optimiser, "w_max", None)
    if (w_min is not None or w_max is not None) and weights.size:
        low, high = float(weights.min()), float(weights.max())
        if (w_min is not None and low < w_min) or (w_max is not None and high > w_max):
            raise ValueError(
                f"weights of {name} left the rule's bounds [{w_min}, {w_max}] ({context}): "
                f"min {low!r}, max {high!r}"
            )
    if learner.reference_norm is not None:
        check_divergence(
            f"weight norm of {name}",
            norm,
            learner.reference_norm,
            learner.divergence_factor,
            context,
        )


def run_epoch(step: TrainingStep, data, batch_size, learners, rng, label="", progress=False):
    """Train one epoch of ``data`` (a SpikeDataset or SpikeTrainDataset) in shuffled batches.

    Returns ``(record, last_gradients)``: ``record`` has ``loss``, ``accuracy`` and
    ``seconds``; ``last_gradients`` the gradients of the last batch (per compiled projection).
    """
    with _objects_frozen(), blas_on_one_thread():
        return _run_epoch(step, data, batch_size, learners, rng, label, progress)


@contextlib.contextmanager
def _objects_frozen():
    """Keep the objects alive at the start (network, data, imported modules) out of the cyclic
    garbage collector's full collections while the epoch runs (:func:`gc.freeze`); they are
    handed back afterwards, unless the caller had frozen objects of its own."""
    mine = gc.get_freeze_count() == 0
    if mine:
        gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def _run_epoch(step, data, batch_size, learners, rng, label, progress):
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
        if progress:
            bar.set_postfix(loss=f"{result.loss:.3f}")
    record = {
        "loss": float(np.sum(losses) / count),
        "accuracy": correct / count,
        "seconds": time.perf_counter() - start,
    }
    return record, used


def evaluate(step: TrainingStep, data, batch_size) -> dict:
    """Mean loss and accuracy on ``data`` (a SpikeDataset or SpikeTrainDataset; no learning)."""
    losses, correct = 0.0, 0
    with blas_on_one_thread():
        for times, labels in data.batches(batch_size, shuffle=False):
            result = step.forward(times, labels).loss
            losses += result.loss * len(labels)
            correct += int(result.correct.sum())
    return {"loss": losses / len(data), "accuracy": correct / len(data), "n": len(data)}


def predict(step: TrainingStep, times, batch_size) -> np.ndarray:
    """Predicted class per sample of ``times``: a ``(n, n_inputs)`` matrix of input spike
    times (ms, NaN = no spike) or a :class:`~pynn_eventprop.datasets.SpikeTrainBatch`."""
    times = batch_inputs(times)
    out = []
    with blas_on_one_thread():
        for start in range(0, len(times), batch_size):
            chunk = times[start : start + batch_size]
            out.append(step.forward(chunk, np.zeros(len(chunk), np.int64)).loss.predictions)
    return np.concatenate(out)


def batch_inputs(times):
    """The inputs of a batch as :meth:`TrainingStep.forward` uses them: a
    :class:`~pynn_eventprop.datasets.SpikeTrainBatch` unchanged, anything else as a float64
    matrix ``(n, n_inputs)`` (ms, NaN = no spike).  Both have ``len`` and select samples by
    ``[index]``."""
    if isinstance(times, SpikeTrainBatch):
        return times
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 2:
        raise ValueError(
            f"input spike times must be a matrix (n_samples, n_inputs) (ms, NaN = no spike) or "
            f"a SpikeTrainBatch, got an array of shape {times.shape}"
        )
    return times


def silent_inputs(times, n: int):
    """``n`` samples without any input spike, of the same kind and width as ``times``."""
    times = batch_inputs(times)
    if isinstance(times, SpikeTrainBatch):
        return SpikeTrainBatch.silent(n, times.n_inputs)
    return np.full((n, times.shape[1]), np.nan)


def input_spike_trains(times, batch: int, n: int) -> SpikeTrains:
    """The engine's spike trains of ``n`` samples' inputs, padded with silent samples to
    ``batch``.

    ``times`` is a ``(n, n_inputs)`` matrix (one spike or none per input neuron, ms, NaN =
    none) or a :class:`~pynn_eventprop.datasets.SpikeTrainBatch` of ``n`` samples (any number
    of spikes per input neuron).  The entries keep the batch's order (sample, neuron, time),
    so one-spike data give the same spike trains in either form.

    Raises
    ------
    ValueError
        When ``times`` does not hold ``n`` samples, or a matrix holds an infinite or negative
        time.
    """
    times = batch_inputs(times)
    if len(times) != n:
        raise ValueError(f"the inputs hold {len(times)} samples but labels has {n} entries")
    if isinstance(times, SpikeTrainBatch):
        pad = np.full(batch - n, times.offsets[-1], np.int64)
        offsets = np.concatenate([times.offsets, pad])
        return SpikeTrains(times.times, times.neurons, offsets, times.n_inputs)
    return SpikeTrains.from_matrix(times, batch)
