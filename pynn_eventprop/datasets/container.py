"""Labelled spike data sets as consumed by training, and their shared batching protocol.

:class:`SpikeDataset` holds one spike time (or none) per input neuron and sample, a matrix;
:class:`~.spike_trains.SpikeTrainDataset` any number of spikes per input neuron, in compressed
rows.  Both offer the same protocol, so that a training loop handles either without
branching: ``len(data)``, ``data.n_inputs``, ``data.n_classes``, ``data.duration``,
``data.labels``, ``data.take(index) -> (inputs, labels)``, ``data.batches(...)``,
``data.n_batches(...)``, ``data.subset(index)`` and ``data.spike_times(i)``.  ``inputs`` of a
batch is a ``(B, n_inputs)`` float array (NaN = no spike) for a :class:`SpikeDataset` and a
:class:`~.spike_trains.SpikeTrainBatch` for a :class:`~.spike_trains.SpikeTrainDataset`; the
training step turns either into the engine's spike trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..validation import check_integer


def _readonly_view(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


def sample_rows(index, n: int) -> np.ndarray:
    """Sample indices selected by ``index`` (int, slice, integer array or boolean mask) among
    ``n`` samples, as an int array (indexing with it copies)."""
    return np.atleast_1d(np.arange(n)[index])


def check_labels(labels, n_samples: int, n_classes, what: str = "times") -> np.ndarray:
    """``labels`` as int64 ``(n_samples,)`` in ``0 .. n_classes - 1``, else ``ValueError``."""
    labels = np.asarray(labels)
    if labels.shape != (n_samples,):
        raise ValueError(
            f"labels must have shape ({n_samples},) to match {what}, got {labels.shape}"
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1}, found {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def check_window(spiking: np.ndarray, duration) -> float:
    """``duration`` (ms) as a float after checking that every time of ``spiking`` lies in
    ``[0, duration]``; ``ValueError`` naming the offending range otherwise."""
    if not (np.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be finite and > 0 ms, got {duration!r}")
    if spiking.size and (spiking.min() < 0 or spiking.max() > duration):
        raise ValueError(
            f"spike times must lie in [0, duration={duration!r}] ms, found "
            f"{float(spiking.min())!r}..{float(spiking.max())!r}"
        )
    return float(duration)


def check_class_names(class_names, n_classes: int):
    """``class_names`` as a tuple of ``n_classes`` entries (or None)."""
    if class_names is None:
        return None
    if len(class_names) != n_classes:
        raise ValueError(
            f"class_names must have n_classes={n_classes} entries, got {len(class_names)}"
        )
    return tuple(class_names)


class Batching:
    """Mini-batch iteration shared by the data set types (needs ``__len__`` and ``take``)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def take(self, index):
        """``(inputs, labels)`` of the samples selected by ``index``, copies."""
        raise NotImplementedError

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        rng: np.random.Generator | int | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[object, np.ndarray]]:
        """Iterate over mini-batches ``(inputs, labels)`` of ``B`` samples (see :meth:`take`).

        Parameters
        ----------
        batch_size : int
            Samples per batch (>= 1).  The last batch is smaller when ``len(self)`` is not a
            multiple of it, unless ``drop_last``.
        shuffle : bool
            Visit the samples in a random permutation (one per call) instead of in order.
        rng : numpy.random.Generator or int
            Source of the permutation, required when ``shuffle`` so that runs are reproducible;
            an int is used as the seed of ``numpy.random.default_rng``.
        drop_last : bool
            Skip a final incomplete batch.

        Yields
        ------
        (inputs, labels) : copies, so the caller may modify them.
        """
        batch_size = check_integer("batch_size", batch_size, minimum=1)
        if shuffle:
            if rng is None:
                raise ValueError(
                    "shuffle=True needs rng (a numpy.random.Generator or an int seed) so that "
                    "the batch order is reproducible"
                )
            order = np.random.default_rng(rng).permutation(len(self))
        else:
            order = np.arange(len(self))
        stop = len(self) - len(self) % batch_size if drop_last else len(self)
        for start in range(0, stop, batch_size):
            yield self.take(order[start : start + batch_size])

    def n_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields (for progress bars)."""
        full, rest = divmod(len(self), check_integer("batch_size", batch_size, minimum=1))
        return full + (1 if rest and not drop_last else 0)


@dataclass(frozen=True, eq=False)
class SpikeDataset(Batching):
    """Input spike times with integer labels and the metadata a training loop needs.

    One spike (or none) per input neuron and sample; for several, see
    :class:`~.spike_trains.SpikeTrainDataset`.

    Attributes
    ----------
    times : numpy.ndarray, float64, shape ``(n_samples, n_inputs)``
        Spike time (ms) of each input neuron in each sample; ``NaN`` means no spike.  Every
        time lies in ``[0, duration]``.
    labels : numpy.ndarray, int64, shape ``(n_samples,)``
        Class of each sample, in ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes (the size of the output population).
    duration : float
        Length (ms) of the input window: all input spikes occur at or before it.  A network must
        be simulated at least this long (plus whatever its readout needs).
    class_names : tuple of str, optional
        Names of the classes, ``n_classes`` of them.
    name : str
        Free text describing source, split and encoding (for logs and plots).

    The arrays are stored as read-only views (no copy of a float64 ``times``), so code that
    receives a data set cannot alter it; :meth:`subset`, :meth:`take` and :meth:`batches`
    return copies.
    """

    times: np.ndarray
    labels: np.ndarray
    n_classes: int
    duration: float
    class_names: tuple[str, ...] | None = None
    name: str = ""

    def __post_init__(self):
        times = np.asarray(self.times, dtype=np.float64)
        if times.ndim != 2:
            raise ValueError(f"times must have shape (n_samples, n_inputs), got {times.shape}")
        labels = check_labels(self.labels, times.shape[0], self.n_classes)
        duration = check_window(times[~np.isnan(times)], self.duration)
        class_names = check_class_names(self.class_names, int(self.n_classes))
        object.__setattr__(self, "times", _readonly_view(times))
        object.__setattr__(self, "labels", _readonly_view(labels))
        object.__setattr__(self, "n_classes", int(self.n_classes))
        object.__setattr__(self, "duration", duration)
        object.__setattr__(self, "class_names", class_names)

    def __len__(self) -> int:
        return self.times.shape[0]

    @property
    def n_inputs(self) -> int:
        """Number of input neurons (columns of ``times``)."""
        return self.times.shape[1]

    def subset(self, index) -> SpikeDataset:
        """A new data set with the samples selected by ``index`` (integer array, slice or mask)."""
        return SpikeDataset(
            self.times[index],
            self.labels[index],
            self.n_classes,
            self.duration,
            self.class_names,
            self.name,
        )

    def take(self, index) -> tuple[np.ndarray, np.ndarray]:
        """``(times, labels)`` of the samples selected by ``index``: copies of shapes
        ``(B, n_inputs)`` and ``(B,)``."""
        rows = sample_rows(index, len(self))
        return self.times[rows], self.labels[rows]

    def spike_times(self, i: int) -> list[np.ndarray]:
        """The spike times (ms) of every input neuron in sample ``i``: arrays of 0 or 1."""
        return [np.array([t]) if np.isfinite(t) else np.zeros(0) for t in self.times[i]]
