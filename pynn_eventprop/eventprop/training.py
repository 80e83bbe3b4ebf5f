"""Training loop: mini-batches of spike-time inputs through the network's EventProp projections.

:class:`Trainer` compiles the current PyNN network, runs it on the reference engine with a
batch dimension, evaluates the loss on the output population, computes the exact gradients
(:func:`pynn_eventprop.engine.adjoint.backward`) and lets each trainable projection's
:class:`~pynn_eventprop.eventprop.synapses.EventPropRule` update its weights.  Trained weights
are written back into the PyNN projections, so ``Projection.get("weight", ...)``, ``run()`` and
``get_data()`` see them.
"""

from __future__ import annotations

import csv
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..datasets.encoding import times_to_raster
from ..engine.adjoint import backward, check_trainable, initial_adjoint
from ..engine.platforms import make_engine
from ..engine.raster import Raster
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import check_finite
from .losses import Loss


@dataclass
class History:
    """Per-epoch figures of a training run: ``records`` is a list of dicts with keys
    ``epoch, loss, accuracy, seconds`` and, with validation data, ``val_loss, val_accuracy``."""

    records: list = field(default_factory=list)

    def __getitem__(self, key):
        return [r.get(key) for r in self.records]

    def to_csv(self, path) -> Path:
        path = Path(path)
        keys = list(dict.fromkeys(k for r in self.records for k in r))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.records)
        return path

    def to_json(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.records, indent=1))
        return path


class Trainer:
    """Train a feed-forward PyNN network of ``IF_curr_exp`` populations with EventProp.

    Parameters
    ----------
    inputs : Population
        Spike source whose spikes come from the data set (one spike time per neuron and sample).
    outputs : Population
        ``IF_curr_exp`` population on which ``loss`` is evaluated (one neuron per class).
    loss : Loss
        E.g. ``TTFSCrossEntropy``, ``MaxVoltageCrossEntropy``, ``AverageVoltageCrossEntropy``.
    duration : float
        Simulated time per sample (ms); input spikes later than this are dropped.
    batch_size : int
        Samples simulated in parallel and averaged per update.
    seed : int, optional
        Seeds the shuffling of the training data; with seeded weight initialisation the whole
        run is deterministic.
    dtype : ``numpy.float64`` or ``numpy.float32``; default float64, float32 on SpiNNaker2.
    progress : bool
        Show a tqdm progress bar per epoch.
    revive_dead : float
        Rule that keeps hidden neurons alive (1/mV, default 0 = off): a neuron of a hidden
        population that fires for none of the samples of a batch gets, in every sample, the
        gradient ``dL/dV = -revive_dead / B`` at its voltage maximum -- the gradient of
        ``revive_dead * mean_b (theta - max_n V[n])`` -- which raises its input weights until
        it fires.  Silent neurons otherwise receive no gradient at all (EventProp's gradients
        flow through spike times only).  The term steers learning; it is not added to the
        reported loss.

    Notes
    -----
    Only projections whose synapse type is ``EventPropSynapse`` learn; the network must be
    feed-forward and all neurons current-based (a clear error says otherwise).
    """

    def __init__(
        self,
        inputs,
        outputs,
        loss: Loss,
        duration: float,
        batch_size: int = 32,
        seed: int | None = None,
        dtype=None,
        progress: bool = True,
        revive_dead: float = 0.0,
    ):
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a Loss, got {type(loss).__name__}")
        if not duration > 0:
            raise ValueError(f"duration must be > 0 ms, got {duration!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not inputs.celltype.is_spike_source:
            raise ValueError(f"inputs must be a spike source population, got {inputs.celltype}")
        self.state = inputs._simulator.state
        self.inputs, self.outputs, self.loss = inputs, outputs, loss
        self.duration, self.batch_size = float(duration), int(batch_size)
        self.n_steps = self.state.discretisation.steps(duration)
        self.progress = progress
        self.dtype = dtype
        if not revive_dead >= 0:
            raise ValueError(f"revive_dead must be >= 0 (1/mV), got {revive_dead!r}")
        self.revive_dead = float(revive_dead)
        self.rng = np.random.default_rng(seed)
        self.history = History()
        self.epoch = 0
        self.optimisers: dict[int, object] = {}
        self.gradients: dict[str, np.ndarray] = {}
        self.best_epoch: int | None = None
        self._compile()

    # --- network ----------------------------------------------------------------------------
    def _compile(self):
        """Compile the PyNN network as it is now (weights included) for batched training."""
        from ..compile import compile_network

        self._compiled_version = self.state.version
        network, projection_map = compile_network(self.state)
        self.sim = make_engine(
            getattr(self.state, "platform", "reference"),
            network,
            self.state.discretisation,
            self.batch_size,
            self.dtype,
            options=getattr(self.state, "platform_options", None),
            reuse_buffers=True,
        )
        check_trainable(self.sim)
        self.trainable = {}  # PyNN projection index -> compiled projection index
        for k, projection in enumerate(self.state.projections):
            if getattr(projection.synapse_type, "trainable", False):
                if len(projection_map[k]) != 1:
                    raise ValueError(
                        f"trainable projection '{projection.label}' must connect two "
                        "Populations with one delay per connection pair (it compiles into "
                        f"{len(projection_map[k])} dense projections)"
                    )
                self.trainable[k] = projection_map[k][0]
                if k not in self.optimisers:
                    self.optimisers[k] = projection.synapse_type.rule.new_optimiser()
        if not self.trainable:
            raise ValueError("no projection has an EventPropSynapse: nothing to train")
        self.input_index, self.output_index = self.inputs._index, self.outputs._index

    def write_weights(self):
        """Copy the trained weights into the PyNN projections."""
        for k, c in self.trainable.items():
            compiled = self.sim.network.projections[c]
            self.state.projections[k].set(weight=np.where(compiled.mask, compiled.weights, np.nan))
        self._compiled_version = self.state.version  # PyNN now holds what we compiled

    @contextmanager
    def using(self, engine):
        """Run this trainer's batches on ``engine`` inside the ``with`` block.

        ``engine`` must be built for the trainer's compiled network (``trainer.sim.network``),
        e.g. a :class:`~pynn_eventprop.spinnaker2.Spinnaker2Simulation` to cost a training step
        on the SpiNNaker2 model.  The network is synchronised with PyNN first; changing PyNN
        inside the block is not supported.
        """
        self._sync()
        saved, self.sim = self.sim, engine
        try:
            yield engine
        finally:
            self.sim = saved

    def _sync(self):
        """Recompile only if the PyNN network changed since it was compiled or written."""
        if self.state.version != self._compiled_version:
            self._compile()

    # --- one batch --------------------------------------------------------------------------
    def _run_batch(self, times, labels, learn: bool, context: str = ""):
        out, result = self._forward(times, labels, context)
        if learn:
            self._learn(out, result, len(labels), context)
        return result

    def _forward(self, times, labels, context: str = ""):
        """Run one (padded) batch and evaluate the loss on its real samples."""
        n = len(labels)
        padded = np.full((self.batch_size, times.shape[1]), np.nan)
        padded[:n] = times
        spikes, phase = times_to_raster(
            padded, self.state.discretisation, self.n_steps, dtype=self.sim.dtype, outside="drop"
        )
        self.sim.reset()
        out = self.sim.run(
            self.n_steps, sources={self.input_index: Raster(spikes, phase)}, keep_trajectory=True
        )
        traj = out["trajectory"][self.output_index]
        result = self.loss.evaluate(
            traj.spikes.spikes[:, :n],
            traj.spikes.phase[:, :n],
            traj.v[:, :n],
            labels,
            self.state.dt,
        )
        check_finite("loss", np.asarray(result.loss), context)
        return out, result

    def _backward(self, out, result, n, account=True):
        """Exact gradients (per compiled projection) and adjoints of the batch just run.

        ``account=False`` computes them without the engine's own bookkeeping (the SpiNNaker2
        model counts every backward pass it runs as training traffic; diagnostics are not).
        """
        grads = {}
        for name, value in (("phase", result.dL_dphase), ("v", result.dL_dv)):
            if value is not None:
                full = np.zeros((self.n_steps, self.batch_size, value.shape[2]), self.sim.dtype)
                full[:, :n] = value
                grads[name] = full
        loss_grads = {self.output_index: grads}
        if self.revive_dead > 0:
            loss_grads.update(self._revival(out["trajectory"], n))
        if not account:
            return backward(self.sim, out["trajectory"], out["rasters"], loss_grads)
        return self.sim.backward(out["trajectory"], out["rasters"], loss_grads)

    def _revival(self, trajectory, n) -> dict:
        """``dL/dV`` of the dead-neuron rule (see ``revive_dead``) for each hidden population."""
        grads = {}
        for index, traj in trajectory.items():
            if index == self.output_index:
                continue
            dead = ~traj.spikes.spikes[:, :n].any(axis=(0, 1))
            if not dead.any():
                continue
            dl_dv = np.zeros(traj.v.shape, self.sim.dtype)
            peak = traj.v[:, :n].argmax(axis=0)  # (n, size): step of each sample's maximum
            b, j = np.nonzero(np.broadcast_to(dead, (n, dead.size)))
            dl_dv[peak[b, j], b, j] = -self.revive_dead / n
            grads[index] = {"v": dl_dv}
        return grads

    def _learn(self, out, result, n, context):
        gradients, _ = self._backward(out, result, n)
        for k, c in self.trainable.items():
            label = self.state.projections[k].label
            check_finite(f"gradient of projection '{label}'", gradients[c], context)
            gradient = self.state.projections[k].synapse_type.rule.clip(gradients[c])
            self._keep_gradient(k, gradient)
            weights = self.sim.network.projections[c].weights
            self.optimisers[k].step({"weights": weights}, {"weights": gradient.astype(float)})
            self.sim.set_weights(c, weights)

    def gradient(self, times, labels) -> dict:
        """``dL/dw`` of the batch-mean loss on samples ``(times, labels)``, without learning.

        Returns a dict projection label -> dense ``(n_pre, n_post)`` array; also readable as
        ``projection.get("gradient", format="array")``.
        """
        labels = np.asarray(labels)
        if len(labels) > self.batch_size:
            raise ValueError(f"at most batch_size={self.batch_size} samples, got {len(labels)}")
        times = np.asarray(times, float)
        self._sync()
        out, result = self._forward(times, labels)
        gradients, _ = self._backward(out, result, len(labels))
        for k, c in self.trainable.items():
            self._keep_gradient(k, gradients[c])
        return dict(self.gradients)

    def _keep_gradient(self, k, gradient):
        """Remember a projection's gradient: ``trainer.gradients`` and ``Projection.get``."""
        projection = self.state.projections[k]
        self.gradients[projection.label] = projection.gradient_matrix = gradient.copy()

    def record_samples(self, data, indices, annotations=None):
        """Run samples through the PyNN simulation, one Neo Segment each, with adjoints.

        For every sample the input population's spike times are set, ``sim.run(duration)``
        records what each population records (spikes, ``v``, ...), and the exact adjoint
        variables ``lambda_v`` (1/mV) and ``lambda_i`` (1/nA, excitatory current) of the sample's
        loss are added for populations that record them.  The Segment is closed with
        ``sim.reset()`` and annotated with the sample index and label.
        """
        from pyNN.parameters import Sequence

        from .. import control

        indices = np.asarray(indices, dtype=np.int64)
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start : start + self.batch_size]
            out, result = self._forward(data.times[chunk], data.labels[chunk])
            _, adjoints = self._backward(out, result, len(chunk), account=False)
            for b, i in enumerate(chunk):
                spike_times = [Sequence([t] if np.isfinite(t) else []) for t in data.times[i]]
                self.inputs.set(spike_times=spike_times)
                control.run(self.duration)
                self._store_adjoints(out["trajectory"], adjoints, b)
                notes = {"sample": int(i), "label": int(data.labels[i]), **(annotations or {})}
                control.reset(annotations=notes)

    def _store_adjoints(self, trajectory, adjoints, b):
        for index, adjoint in adjoints.items():
            recorder = self.state.populations[index].recorder
            wanted = set(recorder._recorded_variables())
            model = self.sim.models[index]
            initial = initial_adjoint(model, trajectory[index], adjoint, b)
            for name, series in (
                ("lambda_v", adjoint.lambda_v),
                ("lambda_i", adjoint.lambda_i["E"]),
            ):
                if name in wanted:
                    values = np.concatenate([initial[name][None], series[:, b]])
                    recorder.store_signal(name, 0, values)

    # --- epochs -----------------------------------------------------------------------------
    def fit(self, train, epochs: int, validation=None, checkpoint=None, keep_best=False):
        """Train for ``epochs`` more epochs.

        Parameters
        ----------
        train, validation : SpikeDataset
        checkpoint : path, optional
            Written atomically after every epoch (weights, optimiser state, history, RNG).
        keep_best : bool
            With ``validation``: end with the weights of the epoch of highest validation
            accuracy (model selection on held-out data); its number is ``best_epoch``.

        Returns
        -------
        History
        """
        self._check_data(train)
        if keep_best and validation is None:
            raise ValueError("keep_best=True needs validation data to select on")
        self._sync()
        best = (-1.0, None)
        for _ in range(int(epochs)):
            start = time.perf_counter()
            losses, correct, count = [], 0, 0
            batches = train.batches(self.batch_size, shuffle=True, rng=self.rng)
            bar = tqdm(
                batches,
                total=train.n_batches(self.batch_size),
                desc=f"epoch {self.epoch + 1}",
                disable=not self.progress,
                leave=False,
            )
            for b, (times, labels) in enumerate(bar):
                context = f"epoch {self.epoch + 1}, batch {b + 1}"
                result = self._run_batch(times, labels, learn=True, context=context)
                losses.append(result.loss * len(labels))
                correct += int(result.correct.sum())
                count += len(labels)
                bar.set_postfix(loss=f"{result.loss:.3f}")
            self.epoch += 1
            record = {
                "epoch": self.epoch,
                "loss": float(np.sum(losses) / count),
                "accuracy": correct / count,
                "seconds": time.perf_counter() - start,
            }
            if validation is not None:
                metrics = self.evaluate(validation)
                record.update(val_loss=metrics["loss"], val_accuracy=metrics["accuracy"])
                if keep_best and metrics["accuracy"] > best[0]:
                    best = (metrics["accuracy"], self._weights())
                    self.best_epoch = self.epoch
            self.history.records.append(record)
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
        if keep_best and best[1] is not None:
            for c, weights in best[1].items():
                self.sim.set_weights(c, weights)
        self.write_weights()
        return self.history

    def _weights(self) -> dict:
        return {c: self.sim.network.projections[c].weights.copy() for c in self.trainable.values()}

    def evaluate(self, data) -> dict:
        """Mean loss and accuracy on ``data`` (no learning)."""
        self._check_data(data)
        self._sync()
        losses, correct = 0.0, 0
        for times, labels in data.batches(self.batch_size, shuffle=False):
            result = self._run_batch(times, labels, learn=False)
            losses += result.loss * len(labels)
            correct += int(result.correct.sum())
        return {"loss": losses / len(data), "accuracy": correct / len(data), "n": len(data)}

    def predict(self, times) -> np.ndarray:
        """Predicted class per sample of an array of input spike times ``(n, n_inputs)``."""
        self._sync()
        times = np.asarray(times, float)
        out = []
        for start in range(0, len(times), self.batch_size):
            chunk = times[start : start + self.batch_size]
            result = self._run_batch(chunk, np.zeros(len(chunk), np.int64), learn=False)
            out.append(result.predictions)
        return np.concatenate(out)

    def _check_data(self, data):
        if data.n_inputs != self.inputs.size:
            raise ValueError(
                f"data has {data.n_inputs} inputs but population '{self.inputs.label}' has "
                f"{self.inputs.size} neurons"
            )
        if data.n_classes > self.outputs.size:
            raise ValueError(
                f"data has {data.n_classes} classes but population '{self.outputs.label}' has "
                f"{self.outputs.size} neurons"
            )

    # --- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path) -> Path:
        """Weights, optimiser states, epoch, history and RNG state, written atomically."""
        projections = {}
        for k, c in self.trainable.items():
            projections[self.state.projections[k].label] = {
                "weights": self.sim.network.projections[c].weights.copy(),
                "optimiser": self.optimisers[k].state_dict(),
            }
        state = {
            "epoch": self.epoch,
            "history": self.history.records,
            "rng": self.rng.bit_generator.state,
            "projections": projections,
        }
        return save_checkpoint(path, state)

    def load_checkpoint(self, path):
        """Resume from a checkpoint written by :meth:`save_checkpoint`."""
        state = load_checkpoint(path)
        for k, c in self.trainable.items():
            label = self.state.projections[k].label
            if label not in state["projections"]:
                raise KeyError(f"checkpoint {path} has no projection '{label}'")
            saved = state["projections"][label]
            self.sim.set_weights(c, saved["weights"])
            self.optimisers[k].load_state_dict(saved["optimiser"])
        self.epoch = int(state["epoch"])
        self.history = History(list(state["history"]))
        self.rng.bit_generator.state = state["rng"]
        self.write_weights()
