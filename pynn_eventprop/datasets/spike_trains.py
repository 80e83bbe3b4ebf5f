"""Samples with any number of spikes per input neuron: :class:`SpikeTrainDataset`.

The spikes of all samples are stored in compressed rows (CSR), as the engines take them:
sample ``i`` owns entries ``offsets[i]:offsets[i+1]`` of ``times`` (ms) and ``neurons``
(input neuron indices).  Within a sample the entries are sorted by neuron, then time, so that
equal data give equal arrays.  A batch of such samples is a :class:`SpikeTrainBatch`, which
``TrainingStep.forward``, ``Trainer.gradient`` and ``Trainer.predict`` accept in place of a
``(B, n_inputs)`` matrix of first-spike times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_integer
from .container import (
    Batching,
    SpikeDataset,
    _readonly_view,
    check_class_names,
    check_labels,
    check_window,
    sample_rows,
)


def _check_csr(times, neurons, offsets, n_inputs):
    """``(times, neurons, offsets, n_inputs)`` as float64/int64 arrays and an int, sorted by
    (sample, neuron, time); ``ValueError`` naming the parameter and value otherwise."""
    n_inputs = check_integer("n_inputs", n_inputs, minimum=1)
    times = np.asarray(times, dtype=np.float64)
    neurons, offsets = np.asarray(neurons), np.asarray(offsets)
    if times.ndim != 1 or neurons.shape != times.shape:
        raise ValueError(
            f"times and neurons must be 1-D arrays of equal length (one entry per spike), got "
            f"shapes {times.shape} and {neurons.shape}"
        )
    for name, array in (("neurons", neurons), ("offsets", offsets)):
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
    neurons, offsets = neurons.astype(np.int64), offsets.astype(np.int64)
    if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0 or offsets[-1] != times.size:
        ends = (offsets.ravel()[:1], offsets.ravel()[-1:]) if offsets.size else ([], [])
        raise ValueError(
            f"offsets must be a 1-D array (n_samples + 1,) from 0 to len(times)={times.size}, "
            f"got shape {offsets.shape}, first {list(ends[0])}, last {list(ends[1])}"
        )
    if (np.diff(offsets) < 0).any():
        at = int(np.argmax(np.diff(offsets) < 0))
        raise ValueError(
            f"offsets must be non-decreasing, got offsets[{at}]={offsets[at]} > "
            f"offsets[{at + 1}]={offsets[at + 1]}"
        )
    if not np.isfinite(times).all() or (times < 0).any():
        bad = times[~(np.isfinite(times) & (times >= 0))]
        raise ValueError(
            f"spike times must be finite and >= 0 ms (leave a silent neuron out, there is no "
            f"NaN for 'no spike'), found {bad.size} other(s), e.g. {float(bad[0])!r}"
        )
    if neurons.size and (neurons.min() < 0 or neurons.max() >= n_inputs):
        raise ValueError(
            f"neurons must lie in 0..{n_inputs - 1} (n_inputs={n_inputs}), found "
            f"{neurons.min()}..{neurons.max()}"
        )
    sample = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    if _sorted(sample, neurons, times):  # e.g. a subset of a data set: no sort needed
        return times, neurons, offsets, n_inputs
    order = np.lexsort((times, neurons, sample))
    return times[order], neurons[order], offsets, n_inputs


def _sorted(sample, neurons, times) -> bool:
    """Whether the entries are in (sample, neuron, time) order already."""
    ds, dn, dt = np.diff(sample), np.diff(neurons), np.diff(times)
    return bool(np.all((ds > 0) | ((ds == 0) & ((dn > 0) | ((dn == 0) & (dt >= 0))))))


def _as_indices(neurons) -> np.ndarray:
    """``neurons`` as a 1-D array; an empty list becomes int64 (numpy makes it float)."""
    neurons = np.atleast_1d(np.asarray(neurons))
    return neurons.astype(np.int64) if neurons.size == 0 else neurons


def _select(times, neurons, offsets, rows):
    """CSR entries of samples ``rows`` (in that order): new ``(times, neurons, offsets)``."""
    counts = np.diff(offsets)[rows]
    new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    entries = np.repeat(offsets[rows] - new_offsets[:-1], counts) + np.arange(new_offsets[-1])
    return times[entries], neurons[entries], new_offsets


def _per_neuron(times, neurons, offsets, n_inputs, i) -> list[np.ndarray]:
    """Spike times of every neuron of sample ``i`` (entries sorted by neuron, then time)."""
    lo, hi = offsets[i], offsets[i + 1]
    bounds = lo + np.searchsorted(neurons[lo:hi], np.arange(n_inputs + 1))
    return [np.array(times[bounds[j] : bounds[j + 1]]) for j in range(n_inputs)]


@dataclass(frozen=True, eq=False)
class SpikeTrainBatch:
    """The input spikes of ``B`` samples, any number per neuron, in compressed rows.

    Attributes
    ----------
    times : numpy.ndarray, float64 ``(n_spikes,)``
        Spike times (ms), finite and >= 0.
    neurons : numpy.ndarray, int64 ``(n_spikes,)``
        Input neuron of each spike, in ``0 .. n_inputs - 1``.
    offsets : numpy.ndarray, int64 ``(B + 1,)``
        Sample ``b`` owns entries ``offsets[b]:offsets[b+1]``; ``offsets[0] = 0``,
        non-decreasing, ``offsets[-1] = n_spikes``.
    n_inputs : int
        Input neurons per sample.

    Entries are sorted by sample, neuron and time on construction; the arrays are read-only.
    ``len(batch)`` is ``B``; ``batch[index]`` selects samples (int, slice, integer array or
    mask; an int gives a batch of one sample).
    """

    times: np.ndarray
    neurons: np.ndarray
    offsets: np.ndarray
    n_inputs: int

    def __post_init__(self):
        times, neurons, offsets, n_inputs = _check_csr(
            self.times, self.neurons, self.offsets, self.n_inputs
        )
        self._store(times, neurons, offsets, n_inputs)

    def _store(self, times, neurons, offsets, n_inputs):
        object.__setattr__(self, "times", _readonly_view(times))
        object.__setattr__(self, "neurons", _readonly_view(neurons))
        object.__setattr__(self, "offsets", _readonly_view(offsets))
        object.__setattr__(self, "n_inputs", n_inputs)

    @classmethod
    def _trusted(cls, times, neurons, offsets, n_inputs) -> SpikeTrainBatch:
        """Wrap arrays already checked and sorted (no copy, no check)."""
        batch = object.__new__(cls)
        batch._store(times, neurons, offsets, int(n_inputs))
        return batch

    @classmethod
    def silent(cls, n: int, n_inputs: int) -> SpikeTrainBatch:
        """``n`` samples without any spike."""
        n = check_integer("n", n, minimum=0)
        return cls(np.zeros(0), np.zeros(0, np.int64), np.zeros(n + 1, np.int64), n_inputs)

    @classmethod
    def from_samples(cls, samples, n_inputs: int) -> SpikeTrainBatch:
        """From a sequence over samples of ``(neurons, times)`` pairs of 1-D arrays."""
        samples = [(_as_indices(n), np.atleast_1d(np.asarray(t, float))) for n, t in samples]
        for i, (n, t) in enumerate(samples):
            if t.ndim != 1 or n.shape != t.shape:
                raise ValueError(
                    f"sample {i}: neurons and times must be 1-D of equal length, got shapes "
                    f"{n.shape} and {t.shape}"
                )
        neurons = np.concatenate([n for n, _ in samples] + [np.zeros(0, np.int64)])
        times = np.concatenate([t for _, t in samples] + [np.zeros(0)])
        offsets = np.concatenate([[0], np.cumsum([t.size for _, t in samples], dtype=np.int64)])
        return cls(times, neurons, offsets.astype(np.int64), n_inputs)

    @classmethod
    def from_matrix(cls, times) -> SpikeTrainBatch:
        """One spike or none per neuron: ``times`` ``(B, n_inputs)`` in ms, NaN for none."""
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 2:
            raise ValueError(f"times must have shape (n_samples, n_inputs), got {times.shape}")
        has = ~np.isnan(times)
        b, j = np.nonzero(has)  # row-major: grouped by sample, neurons ascending
        offsets = np.concatenate([[0], np.cumsum(has.sum(axis=1))]).astype(np.int64)
        return cls(times[b, j], j, offsets, times.shape[1])

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, index) -> SpikeTrainBatch:
        rows = sample_rows(index, len(self))
        return SpikeTrainBatch._trusted(
            *_select(self.times, self.neurons, self.offsets, rows), self.n_inputs
        )

    @property
    def counts(self) -> np.ndarray:
        """Spikes per sample, int64 ``(B,)``."""
        return np.diff(self.offsets)

    def spike_times(self, i: int) -> list[np.ndarray]:
        """The sorted spike times (ms) of every input neuron in sample ``i``."""
        return _per_neuron(self.times, self.neurons, self.offsets, self.n_inputs, i)


@dataclass(frozen=True, eq=False)
class SpikeTrainDataset(Batching):
    """Labelled samples with any number of spikes per input neuron, in compressed rows.

    The counterpart of :class:`~.container.SpikeDataset` (one spike per input neuron) for
    inputs such as the Spiking Heidelberg Digits, where a channel fires several times per
    sample; the Trainer, ``run_epoch``, ``evaluate`` and ``predict`` take either.

    Attributes
    ----------
    times : numpy.ndarray, float64 ``(n_spikes,)``
        Spike times (ms) of all samples, in ``[0, duration]``.
    neurons : numpy.ndarray, int64 ``(n_spikes,)``
        Input neuron of each spike, in ``0 .. n_inputs - 1``.
    offsets : numpy.ndarray, int64 ``(n_samples + 1,)``
        Sample ``i`` owns entries ``offsets[i]:offsets[i+1]`` (non-decreasing, from 0 to
        ``n_spikes``).
    labels : numpy.ndarray, int64 ``(n_samples,)``
        Class of each sample, in ``0 .. n_classes - 1``.
    n_inputs : int
        Input neurons (the size of the input population).
    n_classes : int
        Number of classes (the size of the output population).
    duration : float
        Length (ms) of the input window: every spike occurs at or before it.
    class_names : tuple of str, optional
        Names of the classes, ``n_classes`` of them.
    name : str
        Free text describing source, split and encoding.

    The arrays are stored as read-only views, each sample's entries sorted by neuron, then
    time (no copy of a float64 ``times`` that is in that order already, as for
    :class:`~.container.SpikeDataset`); :meth:`subset`, :meth:`take` and :meth:`batches`
    return copies.  Batches are
    :class:`SpikeTrainBatch` objects.

    Raises
    ------
    ValueError
        For times that are not finite or lie outside ``[0, duration]``, neurons outside
        ``0 .. n_inputs - 1``, offsets that do not delimit the entries, labels of the wrong
        shape or range; the message names the parameter and the values found.
    """

    times: np.ndarray
    neurons: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    n_inputs: int
    n_classes: int
    duration: float
    class_names: tuple[str, ...] | None = None
    name: str = ""

    def __post_init__(self):
        times, neurons, offsets, n_inputs = _check_csr(
            self.times, self.neurons, self.offsets, self.n_inputs
        )
        labels = check_labels(self.labels, offsets.size - 1, self.n_classes, "offsets")
        duration = check_window(times, self.duration)
        object.__setattr__(self, "class_names", check_class_names(self.class_names,
                                                                  int(self.n_classes)))  # fmt: skip
        for name, value in (("times", times), ("neurons", neurons), ("offsets", offsets),
                            ("labels", labels)):  # fmt: skip
            object.__setattr__(self, name, _readonly_view(value))
        object.__setattr__(self, "n_inputs", n_inputs)
        object.__setattr__(self, "n_classes", int(self.n_classes))
        object.__setattr__(self, "duration", duration)

    @classmethod
    def from_samples(cls, samples, labels, n_inputs, n_classes, duration, **kwargs):
        """From a sequence over samples of ``(neurons, times)`` pairs of 1-D arrays."""
        batch = SpikeTrainBatch.from_samples(samples, n_inputs)
        return cls(batch.times, batch.neurons, batch.offsets, labels, n_inputs, n_classes,
                   duration, **kwargs)  # fmt: skip

    @classmethod
    def from_spike_dataset(cls, data: SpikeDataset) -> SpikeTrainDataset:
        """The same samples as a :class:`~.container.SpikeDataset` (one spike per neuron)."""
        batch = SpikeTrainBatch.from_matrix(data.times)
        return cls(batch.times, batch.neurons, batch.offsets, data.labels, data.n_inputs,
                   data.n_classes, data.duration, data.class_names, data.name)  # fmt: skip

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def spikes(self) -> SpikeTrainBatch:
        """All samples' spikes as one :class:`SpikeTrainBatch` (read-only, no copy)."""
        return SpikeTrainBatch._trusted(self.times, self.neurons, self.offsets, self.n_inputs)

    @property
    def counts(self) -> np.ndarray:
        """Spikes per sample, int64 ``(n_samples,)``."""
        return np.diff(self.offsets)

    def take(self, index) -> tuple[SpikeTrainBatch, np.ndarray]:
        """``(spikes, labels)`` of the samples selected by ``index``: a
        :class:`SpikeTrainBatch` of ``B`` samples and an int64 ``(B,)`` copy."""
        rows = sample_rows(index, len(self))
        return self.spikes[rows], np.array(self.labels[rows])

    def subset(self, index) -> SpikeTrainDataset:
        """A new data set with the samples selected by ``index`` (integer array, slice or mask)."""
        spikes, labels = self.take(index)
        return SpikeTrainDataset(spikes.times, spikes.neurons, spikes.offsets, labels,
                                 self.n_inputs, self.n_classes, self.duration,
                                 self.class_names, self.name)  # fmt: skip

    def spike_times(self, i: int) -> list[np.ndarray]:
        """The sorted spike times (ms) of every input neuron in sample ``i``."""
        return _per_neuron(self.times, self.neurons, self.offsets, self.n_inputs, i)
