"""The PyNN-facing Trainer: a thin adapter from PyNN objects to the training core.

:class:`Trainer` compiles the current PyNN network, builds the platform's engine with a batch
dimension, maps the input and output Populations to compiled indices and hands batches to
:class:`pynn_eventprop.training.TrainingStep` (forward, loss, exact EventProp gradients,
optimiser update).  During training the engine owns the weights; :meth:`Trainer.write_weights`
is the one place where they are copied back into the PyNN Projections (at the end of
:meth:`~Trainer.fit` and after loading a checkpoint), so that ``Projection.get("weight")``,
``run()`` and ``get_data()`` see them.  A change made through PyNN (``Projection.set``, new
populations) is picked up by recompiling before the next batch.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..compile import compile_network
from ..engine.platforms import make_engine
from ..training import (
    History,
    Learner,
    Loss,
    ReviveDead,
    TrainingStep,
    evaluate,
    load_checkpoint,
    predict,
    run_epoch,
    save_checkpoint,
)

__all__ = ["History", "Trainer"]


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
        Strength of the :class:`~pynn_eventprop.training.ReviveDead` regulariser (1/mV,
        default 0 = off): a neuron of a hidden population that fires for none of the samples
        of a batch gets, in every sample, ``dR/dV_max = -revive_dead / B``, which raises its
        input weights until it fires.  Silent neurons otherwise receive no gradient at all
        (EventProp's gradients flow through spike times only).  The term steers the updates;
        it is neither part of the reported loss nor of :meth:`gradient`.

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
        if not revive_dead >= 0:
            raise ValueError(f"revive_dead must be >= 0 (1/mV), got {revive_dead!r}")
        self.state = inputs._simulator.state
        self.inputs, self.outputs, self.loss = inputs, outputs, loss
        self.duration, self.batch_size = float(duration), int(batch_size)
        self.n_steps = self.state.discretisation.steps(duration)
        self.progress = progress
        self.dtype = dtype
        self.revive_dead = float(revive_dead)
        self.rng = np.random.default_rng(seed)
        self.history = History()
        self.epoch = 0
        self.optimisers: dict[int, object] = {}
        self.gradients: dict[str, np.ndarray] = {}
        self.best_epoch: int | None = None
        self._compile()

    # --- network ----------------------------------------------------------------------------
    @property
    def engine(self):
        """The engine batches run on (owns the weights while training)."""
        return self.step.engine

    def _compile(self):
        """Compile the PyNN network as it is now (weights included) for batched training."""
        self._compiled_version = self.state.version
        network, projection_map = compile_network(self.state)
        engine = make_engine(
            getattr(self.state, "platform", "reference"),
            network,
            self.state.discretisation,
            self.batch_size,
            self.dtype,
            options=getattr(self.state, "platform_options", None),
            reuse_buffers=True,
        )
        engine.check_trainable()
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
        self.learners = {
            c: Learner(
                self.optimisers[k],
                self.state.projections[k].synapse_type.rule.clip,
                self.state.projections[k].label,
            )
            for k, c in self.trainable.items()
        }
        inputs, outputs = self.inputs._index, self.outputs._index
        hidden = tuple(
            i for i, pop in enumerate(network.populations) if not pop.is_source and i != outputs
        )
        regularisers = [ReviveDead(self.revive_dead, hidden)] if self.revive_dead > 0 else []
        self.step = TrainingStep(engine, inputs, outputs, self.loss, self.n_steps, regularisers)

    def write_weights(self):
        """Copy the engine's weights into the PyNN projections (the one synchronisation point).

        Called at the end of :meth:`fit` and by :meth:`load_checkpoint`; afterwards PyNN and
        the engine agree, so no recompilation is needed before the next batch.
        """
        for k, c in self.trainable.items():
            mask = self.engine.network.projections[c].mask
            weights = np.where(mask, self.engine.get_weights(c), np.nan)
            self.state.projections[k].set(weight=weights)
        self._compiled_version = self.state.version  # PyNN now holds what we compiled

    @contextmanager
    def using(self, engine):
        """Run this trainer's batches on ``engine`` inside the ``with`` block.

        ``engine`` must be built for the trainer's compiled network (``trainer.engine.network``),
        e.g. a :class:`~pynn_eventprop.spinnaker2.Spinnaker2Engine` to cost a training step on
        the SpiNNaker2 model.  The network is synchronised with PyNN first and the trained
        weights are copied into ``engine`` on entry and back on exit; changing PyNN inside the
        block is not supported.
        """
        self._sync()
        saved = self.step.engine
        for c in self.trainable.values():
            engine.set_weights(c, saved.get_weights(c))
        self.step.engine = engine
        try:
            yield engine
        finally:
            self.step.engine = saved
            for c in self.trainable.values():
                saved.set_weights(c, engine.get_weights(c))

    def _sync(self):
        """Recompile only if the PyNN network changed since it was compiled or written."""
        if self.state.version != self._compiled_version:
            self._compile()

    # --- gradients and diagnostics ----------------------------------------------------------
    def gradient(self, times, labels) -> dict:
        """``dL/dw`` of the batch-mean loss on samples ``(times, labels)``, without learning.

        Regularisers (``revive_dead``) are not included.  Returns a dict projection label ->
        dense ``(n_pre, n_post)`` array; also readable as
        ``projection.get("gradient", format="array")``.
        """
        self._sync()
        forward = self.step.forward(times, labels)
        gradients = self.step.gradients(forward)
        self._keep_gradients(dict(enumerate(gradients.weights)))
        return dict(self.gradients)

    def _keep_gradients(self, per_compiled: dict):
        """Remember gradients (compiled index -> array): ``trainer.gradients`` and
        ``Projection.get("gradient")``."""
        for k, c in self.trainable.items():
            if c in per_compiled:
                projection = self.state.projections[k]
                gradient = np.array(per_compiled[c], copy=True)
                self.gradients[projection.label] = projection.gradient_matrix = gradient

    def record_samples(self, data, indices, annotations=None):
        """Run samples through the PyNN simulation, one Neo Segment each, with adjoints.

        For every sample the input population's spike times are set, ``sim.run(duration)``
        records what each population records (spikes, ``v``, ...), and the exact adjoint
        variables ``lambda_v`` (1/mV) and ``lambda_i`` (1/nA, excitatory current) of the sample's
        loss are added for populations that record them.  The Segment is closed with
        ``sim.reset()`` and annotated with the sample index and label.  The adjoints are
        computed on a reference engine with the trainer's weights, so that diagnostics never
        count as training traffic of a platform model.
        """
        from pyNN.parameters import Sequence

        from .. import control

        self._sync()
        trained = self.engine
        diagnostic = make_engine(
            "reference",
            trained.network,
            self.state.discretisation,
            self.batch_size,
            trained.dtype,
        )
        for c in range(len(trained.network.projections)):
            diagnostic.set_weights(c, trained.get_weights(c))
        step = TrainingStep(
            diagnostic, self.step.inputs, self.step.outputs, self.loss, self.n_steps
        )
        indices = np.asarray(indices, dtype=np.int64)
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start : start + self.batch_size]
            forward = step.forward(data.times[chunk], data.labels[chunk])
            adjoints = step.gradients(forward, adjoints=True).adjoints
            for b, i in enumerate(chunk):
                spike_times = [Sequence([t] if np.isfinite(t) else []) for t in data.times[i]]
                self.inputs.set(spike_times=spike_times)
                control.run(self.duration)
                self._store_adjoints(adjoints, b)
                notes = {"sample": int(i), "label": int(data.labels[i]), **(annotations or {})}
                control.reset(annotations=notes)

    def _store_adjoints(self, adjoints, b):
        for index, signals in adjoints.items():
            recorder = self.state.populations[index].recorder
            wanted = set(recorder._recorded_variables())
            for name, series in signals.items():
                if name in wanted:
                    recorder.store_signal(name, 0, series[:, b])

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
            record, used = run_epoch(
                self.step,
                train,
                self.batch_size,
                self.learners,
                self.rng,
                label=f"epoch {self.epoch + 1}",
                progress=self.progress,
            )
            self._keep_gradients(used)
            self.epoch += 1
            record = {"epoch": self.epoch, **record}
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
                self.engine.set_weights(c, weights)
        self.write_weights()
        return self.history

    def _weights(self) -> dict:
        return {c: self.engine.get_weights(c) for c in self.trainable.values()}

    def evaluate(self, data) -> dict:
        """Mean loss and accuracy on ``data`` (no learning)."""
        self._check_data(data)
        self._sync()
        return evaluate(self.step, data, self.batch_size)

    def predict(self, times) -> np.ndarray:
        """Predicted class per sample of an array of input spike times ``(n, n_inputs)``."""
        self._sync()
        return predict(self.step, times, self.batch_size)

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
                "weights": self.engine.get_weights(c),
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
            self.engine.set_weights(c, saved["weights"])
            self.optimisers[k].load_state_dict(saved["optimiser"])
        self.epoch = int(state["epoch"])
        self.history = History(list(state["history"]))
        self.rng.bit_generator.state = state["rng"]
        self.write_weights()
