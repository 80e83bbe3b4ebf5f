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

import copy
import numbers
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..compile import compile_network
from ..datasets import SpikeTrainBatch
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
from ..training.distributed import Communicator, make_step
from ..training.errors import CheckpointError, SilentNetworkWarning, check_finite
from ..validation import check_current_population, check_integer, check_real, short_repr
from . import delays as learned_delays

__all__ = ["History", "Trainer"]


class Trainer:
    """Train a PyNN network of ``IF_curr_exp`` populations with EventProp.

    The network may be recurrent: a projection from a population to itself, or any cycle of
    projections, trains with exact gradients (the adjoint carries the recurrent error terms),
    because every delay is at least ``min_delay`` >= one time step, so a spike never acts within
    the step that emitted it.  A loss on a population in a cycle reads its first spike times.

    Parameters
    ----------
    inputs : Population
        Spike source whose spikes come from the data set: a ``SpikeDataset`` (one spike time
        or none per neuron and sample) or a ``SpikeTrainDataset`` (any number of spikes per
        neuron and sample).
    outputs : Population
        ``IF_curr_exp`` population on which ``loss`` is evaluated (one neuron per class); the
        network's last population (one that projects onward is refused).
    loss : Loss
        E.g. ``TTFSCrossEntropy``, ``MaxVoltageCrossEntropy``, ``AverageVoltageCrossEntropy``.
    duration : float
        Simulated time per sample (ms, at least one time step); data sets whose input spikes
        lie at or after it are refused (such spikes would never be simulated).
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

    Raises
    ------
    TypeError, ValueError, StaleObjectError
        For a bad argument, naming the parameter, the value and what is allowed.

    Warns
    -----
    SilentNetworkWarning
        Once per population, when a hidden population or (with a loss on first spike times)
        the output population fires no spike in any sample of a batch (checked on every
        forward run of :meth:`fit`,
        :meth:`evaluate` and :meth:`predict`, so before the first update): the message names
        the likely cause (initial ``v`` below ``v_rest``, small input weights) and the
        remedies (``initialize(v=v_rest)``, the weight scale, ``silent_push``,
        ``revive_dead``).

    Notes
    -----
    Only projections whose synapse type is ``EventPropSynapse`` learn (their weights, and
    their delays when the rule says ``learn_delays=True``); all neurons must be current-based
    (a clear error says otherwise).
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
            raise TypeError(f"loss must be a Loss, got {type(loss).__name__}: {loss!r}")
        self.state = _check_populations(inputs, outputs)
        self.duration = check_real("duration", duration, minimum=0.0, strict=True, where="(ms)")
        self.batch_size = check_integer("batch_size", batch_size, minimum=1)
        self.n_steps = self.state.discretisation.steps(self.duration)
        if self.n_steps < 1:
            raise ValueError(
                f"duration={duration!r} ms is shorter than one time step "
                f"(timestep={self.state.discretisation.dt} ms): no step would be simulated"
            )
        if seed is not None:
            check_integer("seed", seed, minimum=0)
        if dtype is not None and np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be numpy.float32, numpy.float64 or None, got {dtype!r}")
        if not isinstance(progress, bool | np.bool_):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        self.revive_dead = check_real("revive_dead", revive_dead, minimum=0.0, where="(1/mV)")
        self.inputs, self.outputs, self.loss = inputs, outputs, loss
        self.progress = progress
        self.dtype = dtype
        # MPI ranks (sim.num_processes()) share every global batch; one process without MPI
        self.communicator = getattr(self.state, "communicator", None) or Communicator()
        self.rng = np.random.default_rng(self.communicator.shared_seed(seed))
        self.history = History()
        self.epoch = 0
        self.optimisers: dict[int, object] = {}
        self.delay_optimisers: dict[int, object] = {}  # PyNN projection index -> optimiser
        self.gradients: dict[str, np.ndarray] = {}
        self.delay_gradients: dict[str, np.ndarray] = {}  # label -> dL/d(delay), 1/ms
        self.best: dict | None = None  # {"epoch", "accuracy", "weights": {compiled index: w}}
        self._silence_warned: set[int] = set()
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
        outputs = self.outputs._index
        hidden = tuple(
            i for i, pop in enumerate(network.populations) if not pop.is_source and i != outputs
        )
        engine = make_engine(
            getattr(self.state, "platform", "reference"),
            network,
            self.state.discretisation,
            self.communicator.local_batch(self.batch_size),
            self.dtype,
            options=getattr(self.state, "platform_options", None),
            readout_populations=self._readouts_needed(outputs, hidden),
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
        _check_output_is_last(network, self.outputs)
        _check_single_input(network, self.inputs)
        _check_whole_populations(network, self.state.projections, self.trainable)
        self.learners = {
            c: Learner(
                self.optimisers[k],
                self.state.projections[k].synapse_type.rule.clip,
                self.state.projections[k].label,
            )
            for k, c in self.trainable.items()
        }
        inputs = self.inputs._index
        regularisers = [ReviveDead(self.revive_dead, hidden)] if self.revive_dead > 0 else []
        self.step = make_step(
            self.communicator,
            engine,
            inputs,
            outputs,
            self.loss,
            self.n_steps,
            regularisers,
            monitors=[self._watch_silence],
        )
        self.delay_learners = learned_delays.delay_learners(
            self.state, self.trainable, engine, self.delay_optimisers
        )
        if self.delay_learners and getattr(self.state, "platform", "reference") != "reference":
            raise ValueError(
                f"learn_delays=True needs platform='reference' (exact delay gradients), got "
                f"platform={self.state.platform!r}"
            )
        self.step.delay_learners = self.delay_learners

    def _readouts_needed(self, outputs, hidden) -> dict:
        """The readouts the loss and the regularisers read, per compiled population (the
        engine computes only these: each costs work on every interval between events)."""
        needed = {outputs: self.loss.requires}
        if self.revive_dead > 0:
            needed.update(dict.fromkeys(hidden, ReviveDead.requires))
        return needed

    def write_weights(self):
        """Copy the engine's weights into the PyNN projections (the one synchronisation point).

        Called at the end of :meth:`fit` and by :meth:`load_checkpoint`; afterwards PyNN and
        the engine agree, so no recompilation is needed before the next batch.
        """
        for k, c in self.trainable.items():
            mask = self.engine.network.projections[c].mask
            weights = np.where(mask, self.engine.get_weights(c), np.nan)
            self.state.projections[k].set(weight=weights)
        learned_delays.write_delays(self.state, self.trainable, self.delay_learners, self.engine)
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
            engine.set_delays(c, saved.get_delays(c))
        self.step.engine = engine
        try:
            yield engine
        finally:
            self.step.engine = saved
            for c in self.trainable.values():
                saved.set_weights(c, engine.get_weights(c))
                saved.set_delays(c, engine.get_delays(c))

    def _sync(self):
        """Recompile only if the PyNN network changed since it was compiled or written."""
        if self.state.version != self._compiled_version:
            self._compile()

    # --- gradients and diagnostics ----------------------------------------------------------
    def gradient(self, times, labels) -> dict:
        """``dL/dw`` of the batch-mean loss on samples ``(times, labels)``, without learning.

        ``times`` is a ``(n, n_inputs)`` matrix of input spike times (ms, NaN = no spike) or a
        :class:`~pynn_eventprop.datasets.SpikeTrainBatch` of ``n`` samples (e.g. the first
        item of ``data.take(index)``); at most ``batch_size`` samples.  Regularisers
        (``revive_dead``) are not included.  Returns a dict projection label -> dense
        ``(n_pre, n_post)`` array; also readable as
        ``projection.get("gradient", format="array")``.  Where the engine computes them, the
        delay gradients ``dL/d(delay)`` (1/ms) of every trainable projection are kept in
        :attr:`delay_gradients` and ``projection.get("delay_gradient", format="array")``.
        """
        times = self._check_inputs(times, "times")
        self._sync()
        forward = self.step.forward(times, labels)
        gradients = self.step.gradients(forward)
        self._keep_gradients(dict(enumerate(gradients.weights)))
        if gradients.delays is not None:
            self._keep_gradients(dict(enumerate(gradients.delays)), delays=True)
        return dict(self.gradients)

    def _keep_gradients(self, per_compiled: dict, delays: bool = False):
        """Remember gradients (compiled index -> array): ``trainer.gradients`` and
        ``Projection.get("gradient")``, or with ``delays`` ``trainer.delay_gradients`` and
        ``Projection.get("delay_gradient")``."""
        kept = self.delay_gradients if delays else self.gradients
        attribute = "delay_gradient_matrix" if delays else "gradient_matrix"
        for k, c in self.trainable.items():
            if c in per_compiled:
                projection = self.state.projections[k]
                gradient = np.array(per_compiled[c], copy=True)
                kept[projection.label] = gradient
                setattr(projection, attribute, gradient)

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
            readout_populations=[
                i for i, p in enumerate(trained.network.populations) if not p.is_source
            ],
            sample_adjoints=True,
        )
        for c in range(len(trained.network.projections)):
            diagnostic.set_weights(c, trained.get_weights(c))
            diagnostic.set_delays(c, trained.get_delays(c))
        step = TrainingStep(
            diagnostic, self.step.inputs, self.step.outputs, self.loss, self.n_steps
        )
        indices = np.asarray(indices, dtype=np.int64)
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start : start + self.batch_size]
            forward = step.forward(*data.take(chunk))
            adjoints = step.gradients(forward, adjoints=True).adjoints
            for b, i in enumerate(chunk):
                spike_times = [Sequence(t) for t in data.spike_times(i)]
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
        train, validation : SpikeDataset or SpikeTrainDataset
            Their spike times must lie before the trainer's ``duration`` (a later spike
            would never be simulated) and their labels index the output neurons.
        epochs : int
            Epochs to add (>= 0; 0 only applies ``keep_best``, e.g. after a resume).
        checkpoint : path, optional
            Written atomically after every epoch (weights, optimiser state, history, RNG and
            the best epoch's weights), after the weights and optimiser state were checked.
        keep_best : bool
            With ``validation``: end with the weights of the epoch of highest validation
            accuracy over the whole run, resumed runs included (model selection on held-out
            data); its number is ``best_epoch``.

        Returns
        -------
        History

        Raises
        ------
        NonFiniteError, DivergenceError
            When a loss, gradient, weight or optimiser state is not finite, or the weights or
            the loss grew by orders of magnitude; the message names the projection, epoch and
            batch.  The last checkpoint is left as it was.
        """
        epochs = check_integer("epochs", epochs, minimum=0)
        if not isinstance(keep_best, bool | np.bool_):
            raise TypeError(f"keep_best must be True or False, got {keep_best!r}")
        self._check_data(train, "train")
        if validation is not None:
            self._check_data(validation, "validation")
        elif keep_best:
            raise ValueError("keep_best=True needs validation data to select on (validation=None)")
        if checkpoint is not None and Path(checkpoint).is_dir():
            raise IsADirectoryError(f"checkpoint={str(checkpoint)!r} is a directory, not a file")
        self._sync()
        for _ in range(epochs):
            record, used = run_epoch(
                self.step,
                train,
                self.batch_size,
                self.learners,
                self.rng,
                label=f"epoch {self.epoch + 1}",
                progress=self.progress and self.communicator.is_root,
            )
            self._keep_gradients(used)
            self._keep_gradients(self.step.delay_gradients_used, delays=True)
            self.epoch += 1
            record = {"epoch": self.epoch, **record}
            if validation is not None:
                metrics = self.evaluate(validation)
                record.update(val_loss=metrics["loss"], val_accuracy=metrics["accuracy"])
                best = -1.0 if self.best is None else self.best["accuracy"]
                if keep_best and metrics["accuracy"] > best:
                    self.best = {
                        "epoch": self.epoch,
                        "accuracy": metrics["accuracy"],
                        "weights": self._weights(),
                        "delays": self._delays(),
                    }
            self.history.records.append(record)
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
        if keep_best and self.best is not None:
            for c, weights in self.best["weights"].items():
                self.engine.set_weights(c, weights)
            for c, delays in self.best.get("delays", {}).items():
                self.engine.set_delays(c, delays)
        self.write_weights()
        return self.history

    @property
    def best_epoch(self) -> int | None:
        """Epoch of the highest validation accuracy seen with ``keep_best`` (None before)."""
        return None if self.best is None else self.best["epoch"]

    def _weights(self) -> dict:
        return {c: self.engine.get_weights(c) for c in self.trainable.values()}

    def _delays(self) -> dict:
        """Learned delays per compiled projection (only those learning delays)."""
        return {c: self.engine.get_delays(c) for c in self.delay_learners}

    def evaluate(self, data) -> dict:
        """Mean loss and accuracy on ``data`` (no learning)."""
        self._check_data(data, "data")
        self._sync()
        return evaluate(self.step, data, self.batch_size)

    def predict(self, times) -> np.ndarray:
        """Predicted class per sample of ``times``.

        ``times``: input spike times ``(n_samples, n_inputs)`` (ms, NaN = none), a
        :class:`~pynn_eventprop.datasets.SpikeTrainBatch` (any number of spikes per input
        neuron), or a data set (``SpikeDataset`` or ``SpikeTrainDataset``), whose samples are
        taken in order.  The class is the output neuron the loss ranks first (e.g. the
        earliest spike for ``TTFSCrossEntropy``); samples whose output neurons all stay silent
        get the loss's prediction for silence, ``-1`` for the TTFS loss.
        """
        if hasattr(times, "take") and hasattr(times, "n_classes"):  # a data set
            self._check_data(times, "times")
            times = times.take(slice(None))[0]
        else:
            times = self._check_inputs(times, "times")
        self._sync()
        return predict(self.step, times, self.batch_size)

    def _check_data(self, data, name: str):
        """Raise if ``data`` (a SpikeDataset or SpikeTrainDataset) does not fit the network
        and ``duration``."""
        for attribute in ("times", "labels", "n_inputs", "n_classes", "batches"):
            if not hasattr(data, attribute):
                raise TypeError(
                    f"{name} must be a SpikeDataset or SpikeTrainDataset "
                    f"(pynn_eventprop.datasets), got {type(data).__name__}: {short_repr(data)}"
                )
        if len(data) == 0:
            raise ValueError(f"{name} has no samples")
        if data.n_inputs != self.inputs.size:
            raise ValueError(
                f"{name} has n_inputs={data.n_inputs} inputs but population "
                f"'{self.inputs.label}' has {self.inputs.size} neurons"
            )
        if data.n_classes > self.outputs.size:
            raise ValueError(
                f"{name} has n_classes={data.n_classes} classes but population "
                f"'{self.outputs.label}' has {self.outputs.size} neurons (one per class)"
            )
        self._check_times(data.times, name)
        if hasattr(data, "spikes"):
            self._check_ticks(data.spikes, name)

    def _check_inputs(self, times, name: str):
        """``times`` (a matrix or a SpikeTrainBatch, see :meth:`predict`) after checking its
        width and spike times against the input population and ``duration``."""
        if isinstance(times, SpikeTrainBatch):
            width, shape = times.n_inputs, f"SpikeTrainBatch with n_inputs={times.n_inputs}"
        else:
            times = np.asarray(times, dtype=float)
            width = times.shape[1] if times.ndim == 2 else None
            shape = f"shape {times.shape}"
        if width != self.inputs.size:
            raise ValueError(
                f"{name} must have shape (n_samples, {self.inputs.size}) or be a "
                f"SpikeTrainBatch with n_inputs={self.inputs.size} for population "
                f"'{self.inputs.label}', got {shape}"
            )
        self._check_times(times.times if isinstance(times, SpikeTrainBatch) else times, name)
        if isinstance(times, SpikeTrainBatch):
            self._check_ticks(times, name)
        return times

    def _check_ticks(self, spikes, name: str):
        """Raise, on the SpiNNaker2 platform, if one input neuron spikes twice within one time
        step of a sample (a SpiNNaker2 source PE sends at most one spike per neuron and tick).

        ``spikes`` is a :class:`~pynn_eventprop.datasets.SpikeTrainBatch` (entries sorted by
        sample, neuron and time, so that such pairs are neighbours).
        """
        if getattr(self.state, "platform", "reference") != "spinnaker2" or spikes.times.size < 2:
            return
        dt = self.state.discretisation.dt
        sample = np.repeat(np.arange(len(spikes)), spikes.counts)
        tick = np.floor(spikes.times / dt).astype(np.int64)
        same = (np.diff(sample) == 0) & (np.diff(spikes.neurons) == 0) & (np.diff(tick) == 0)
        if same.any():
            k = int(np.argmax(same))
            raise ValueError(
                f"{name}: input neuron {spikes.neurons[k]} of sample {sample[k]} spikes twice "
                f"within one time step of {dt:g} ms (at {float(spikes.times[k])!r} and "
                f"{float(spikes.times[k + 1])!r} ms); on platform='spinnaker2' a source PE "
                "sends at most one spike per neuron and tick: merge such spikes, or use a "
                "smaller timestep"
            )

    def _check_times(self, times, name: str):
        """Raise if an input spike time is negative or not before the trainer's duration."""
        spiking = np.asarray(times, dtype=float)
        spiking = spiking[~np.isnan(spiking)]
        simulated = self.n_steps * self.state.discretisation.dt  # duration on the grid
        late = spiking[~(spiking < simulated)]
        if late.size:
            raise ValueError(
                f"{name}: {late.size} input spike times are at or after the Trainer's "
                f"duration={simulated:g} ms (latest {late.max()!r} ms) and would never be "
                "simulated; raise duration or encode the inputs earlier"
            )
        if spiking.size and spiking.min() < 0:
            raise ValueError(
                f"{name}: input spike times must be >= 0 ms, found {spiking.min()!r} ms"
            )

    # --- the silent-network diagnosis ------------------------------------------------------
    def _watch_silence(self, result, n, context):
        """Warn once per population that fires no spike in any sample of a batch."""
        network = self.engine.network
        outputs = self.outputs._index
        voltage_readout = "first_spike_time" not in self.loss.requires
        for index, population in enumerate(network.populations):
            if population.is_source or index in self._silence_warned:
                continue
            if index == outputs and voltage_readout:
                continue  # a voltage loss reads non-spiking outputs by design
            trains = result.spikes[index]
            silent = trains.offsets[n] == 0
            if silent:
                self._silence_warned.add(index)
                role = "output" if index == outputs else "hidden"
                warnings.warn(
                    silence_message(network, index, role, n, context, self._weights()),
                    SilentNetworkWarning,
                    stacklevel=2,
                )

    # --- checkpoints ------------------------------------------------------------------------
    def _labels(self) -> dict:
        """Trainable projection label -> (PyNN index, compiled index)."""
        return {self.state.projections[k].label: (k, c) for k, c in self.trainable.items()}

    def save_checkpoint(self, path) -> Path:
        """Weights, optimiser states, epoch, history, RNG state and the best epoch's weights.

        Everything is checked finite first (a NaN never overwrites a good checkpoint); the
        file is written atomically (:func:`pynn_eventprop.training.save_checkpoint`).  With
        several MPI ranks (which hold the same state) only rank 0 writes.
        """
        if not self.communicator.is_root:
            return Path(path)
        projections, best = {}, None
        for label, (k, c) in self._labels().items():
            weights = self.engine.get_weights(c)
            check_finite(f"weights of projection '{label}'", weights, "saving a checkpoint")
            optimiser = self.optimisers[k].state_dict()
            for slots in optimiser["state"].values():
                for slot, array in slots.items():
                    check_finite(f"optimiser state '{slot}' of projection '{label}'", array)
            projections[label] = {
                "shape": list(weights.shape),
                "weights": weights,
                "optimiser": optimiser,
            }
            if c in self.delay_learners:
                delay_optimiser = self.delay_optimisers[k]
                entry = learned_delays.checkpoint_entry(self.engine, c, delay_optimiser)
                projections[label].update(entry)
        if self.best is not None:
            best = {
                "epoch": self.best["epoch"],
                "accuracy": self.best["accuracy"],
                "weights": {
                    label: self.best["weights"][c] for label, (_, c) in self._labels().items()
                },
                "delays": {
                    label: self.best["delays"][c]
                    for label, (_, c) in self._labels().items()
                    if c in self.best.get("delays", {})
                },
            }
        state = {
            "kind": "pynn_eventprop.Trainer",
            "epoch": self.epoch,
            "history": self.history.records,
            "rng": self.rng.bit_generator.state,
            "projections": projections,
            "best": best,
        }
        return save_checkpoint(path, state)

    def load_checkpoint(self, path):
        """Resume from a checkpoint written by :meth:`save_checkpoint`.

        The whole file is validated before anything changes: readable and complete, format
        version, one entry per trainable projection with the network's weight shape and
        finite weights, optimiser state of the same optimiser kind and settings, the RNG
        state and the best epoch.

        Raises
        ------
        CheckpointError
            Naming the file and, where it applies, the projection; the trainer, its
            optimisers and the network are left as they were.
        """
        self._sync()
        state = load_checkpoint(path)
        restored = _validated_checkpoint(self, state, f"checkpoint {str(path)!r}")
        weights, optimisers, rng, best, delays = restored
        for c, w in weights.items():
            self.engine.set_weights(c, w)
        for c, (d, _) in delays.items():
            self.engine.set_delays(c, d)
        self.optimisers.update(optimisers)
        for k, c in self.trainable.items():
            if c in delays:
                self.delay_optimisers[k] = self.delay_learners[c].optimiser = delays[c][1]
        for k, c in self.trainable.items():
            self.learners[c].optimiser = self.optimisers[k]
        self.epoch = int(state["epoch"])
        self.history = History(list(state["history"]))
        self.rng = rng
        self.best = best
        self.write_weights()


def _check_populations(inputs, outputs):
    """The simulator state of ``inputs`` and ``outputs``, after checking their roles."""
    for name, population in (("inputs", inputs), ("outputs", outputs)):
        if not hasattr(population, "celltype") or not hasattr(population, "_index"):
            raise TypeError(
                f"{name} must be a Population of this backend, got "
                f"{type(population).__name__}: {short_repr(population)}"
            )
    state = inputs._simulator.state
    check_current_population(inputs, "inputs", state)
    check_current_population(outputs, "outputs", state)
    if not inputs.celltype.is_spike_source:
        raise ValueError(
            f"inputs must be a spike source population (SpikeSourceArray), got population "
            f"'{inputs.label}' of {type(inputs.celltype).__name__}"
        )
    if outputs.celltype.is_spike_source:
        raise ValueError(
            f"outputs must be a population of neurons (e.g. IF_curr_exp) with one neuron per "
            f"class, got population '{outputs.label}' of {type(outputs.celltype).__name__}"
        )
    return state


def _check_single_input(network, inputs):
    """Raise if a spike source other than ``inputs`` projects into the network: the Trainer
    feeds the data to ``inputs`` only, so that source would be silent in training (while
    ``sim.run`` and recordings would see its spikes)."""
    for projection in network.projections:
        pre = network.populations[projection.pre]
        if pre.is_source and projection.pre != inputs._index:
            post = network.populations[projection.post].label
            raise ValueError(
                f"spike source '{pre.label}' projects to '{post}', but the Trainer feeds only "
                f"its inputs population '{inputs.label}': training would run without that "
                "source's spikes; make its neurons part of the inputs population"
            )


def _check_whole_populations(network, projections, trainable):
    """Raise if a trainable projection connects a view of a population (its learned weights
    could not be written back through ``Projection.set``)."""
    for k, c in trainable.items():
        projection, dense = projections[k], network.projections[c]
        if dense.mask.shape != (projection.pre.size, projection.post.size):
            raise ValueError(
                f"trainable projection '{projection.label}' connects part of a population "
                f"({projection.pre.size} x {projection.post.size} of "
                f"{dense.mask.shape[0]} x {dense.mask.shape[1]} neurons): connect the whole "
                "Populations (a FromListConnector selects the pairs)"
            )


def _check_output_is_last(network, outputs):
    """Raise if the loss's population passes its spikes on (then it is not the output)."""
    for projection in network.projections:
        if projection.pre == outputs._index and projection.post != outputs._index:
            post = network.populations[projection.post].label
            raise ValueError(
                f"outputs population '{outputs.label}' is not the network's output: "
                f"projection '{projection.label}' carries its spikes on to '{post}'; "
                "give the Trainer the last population (one neuron per class)"
            )


def silence_message(network, index, role, n, context, trained_weights) -> str:
    """Why population ``index`` of ``network`` may be silent, and what to do about it.

    ``trained_weights`` maps compiled projection index -> current weights of the trainable
    projections (the others are read from ``network``).
    """
    population = network.populations[index]
    v_init = float(np.mean(population.initial["v"]))
    v_rest = float(np.mean(population.params["v_rest"]))
    v_thresh = float(np.mean(population.params["v_thresh"]))
    where = f" ({context})" if context else ""
    lines = [
        f"{role} population '{population.label}' ({population.size} neurons) fired no spike "
        f"in any of the {n} samples of a batch{where}. EventProp's gradients flow through "
        "spike times only, so its input weights get no gradient and training cannot start."
    ]
    if v_init < v_rest - (v_thresh - v_rest):
        lines.append(
            f"Likely cause: initial v = {v_init:g} mV lies far below v_rest = {v_rest:g} mV "
            f"(v_thresh = {v_thresh:g} mV); PyNN's default initial v is -65 mV. Call "
            f"population.initialize(v={v_rest:g})."
        )
    incoming = [
        (k, p) for k, p in enumerate(network.projections) if p.post == index and p.mask.any()
    ]
    for k, projection in incoming:
        weights = trained_weights.get(k, projection.weights)[projection.mask]
        lines.append(
            f"Input weights of projection '{projection.label}': mean {np.mean(weights):.3g} nA, "
            f"max {np.max(weights):.3g} nA (threshold {v_thresh - v_rest:g} mV above rest)."
        )
    if not incoming:
        lines.append("It has no incoming connections.")
    lines.append(
        "Remedies: initialize v at v_rest; raise the weight scale of its input projections; "
        "for output neurons TTFSCrossEntropy(silent_push=...) pushes a silent label neuron "
        "up; for hidden neurons Trainer(revive_dead=...) raises the input weights of neurons "
        "that fire for no sample (see docs/training.md)."
    )
    return " ".join(lines)


def _validated_checkpoint(trainer, state, where):
    """Check a loaded checkpoint against ``trainer``; ``(weights, optimisers, rng, best)``.

    Nothing of ``trainer`` is changed; every problem raises :class:`CheckpointError` naming
    ``where`` (the file) and the projection.
    """

    def fail(message):
        raise CheckpointError(f"{where}: {message}")

    if not isinstance(state, dict) or state.get("kind") != "pynn_eventprop.Trainer":
        fail("not a Trainer checkpoint (no kind 'pynn_eventprop.Trainer')")
    saved = state.get("projections")
    labels = trainer._labels()
    if not isinstance(saved, dict) or set(saved) != set(labels):
        found = sorted(saved) if isinstance(saved, dict) else saved
        fail(
            f"holds trainable projections {found}, the network has {sorted(labels)}: "
            "a checkpoint of another network"
        )
    weights, optimisers, delays = {}, {}, {}
    for label, (k, c) in labels.items():
        entry = saved[label]
        w = entry.get("weights") if isinstance(entry, dict) else None
        expected = trainer.engine.get_weights(c).shape
        if not isinstance(w, np.ndarray) or w.shape != expected:
            shape = getattr(w, "shape", None)
            fail(
                f"projection '{label}' has weights of shape {shape}, the network's projection "
                f"has shape {expected} (n_pre, n_post): a checkpoint of another network"
            )
        if not np.isfinite(w).all():
            fail(f"projection '{label}' has weights that are not finite")
        optimiser = copy.deepcopy(trainer.optimisers[k])
        try:
            optimiser.load_state_dict(entry["optimiser"])
        except (KeyError, TypeError, ValueError) as error:
            fail(f"projection '{label}': its optimiser state does not fit {optimiser!r}: {error}")
        for slots in optimiser._state.values():
            for slot, array in slots.items():
                if array.shape != expected or not np.isfinite(array).all():
                    fail(
                        f"projection '{label}': optimiser state '{slot}' has shape "
                        f"{array.shape} (expected {expected}) or values that are not finite"
                    )
        weights[c], optimisers[k] = w, optimiser
        if c in trainer.delay_learners:
            learner, optimiser = trainer.delay_learners[c], trainer.delay_optimisers[k]
            delays[c] = learned_delays.validated_entry(entry, label, learner, optimiser, fail)
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
        fail(f"epoch must be an integer >= 0, got {epoch!r}")
    if not isinstance(state.get("history"), list):
        fail("history must be a list of per-epoch records")
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = state["rng"]
    except (KeyError, TypeError, ValueError) as error:
        fail(f"the random generator state cannot be restored: {error}")
    best = state.get("best")
    if best is not None:
        try:
            best = {
                "epoch": int(best["epoch"]),
                "accuracy": float(best["accuracy"]),
                "weights": {
                    c: np.asarray(best["weights"][label]) for label, (_, c) in labels.items()
                },
                "delays": {
                    c: np.asarray(best.get("delays", {})[label])
                    for label, (_, c) in labels.items()
                    if c in trainer.delay_learners
                },
            }
        except (KeyError, TypeError, ValueError) as error:
            fail(f"the best epoch's record is incomplete: missing {error}")
        for label, (_, c) in labels.items():
            if best["weights"][c].shape != weights[c].shape:
                fail(f"projection '{label}': best-epoch weights have another shape")
    return weights, optimisers, rng, best, delays
