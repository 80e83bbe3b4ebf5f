"""``SpikeDataset``: labelled one-spike-per-input samples, as consumed by training."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..validation import check_integer


def _readonly_view(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.setflags(write=False)
    return view


@dataclass(frozen=True, eq=False)
class SpikeDataset:
    """Input spike times with integer labels and the metadata a training loop needs.

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
    receives a data set cannot alter it; :meth:`subset` and :meth:`batches` return copies.
    """

    times: np.ndarray
    labels: np.ndarray
    n_classes: int
    duration: float
    class_names: tuple[str, ...] | None = None
    name: str = ""

    def __post_init__(self):
        times = np.asarray(self.times, dtype=np.float64)
        labels = np.asarray(self.labels)
        if times.ndim != 2:
            raise ValueError(f"times must have shape (n_samples, n_inputs), got {times.shape}")
        if labels.shape != (times.shape[0],):
            raise ValueError(
                f"labels must have shape ({times.shape[0]},) to match times, got {labels.shape}"
            )
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        if int(self.n_classes) != self.n_classes or self.n_classes < 1:
            raise ValueError(f"n_classes must be a positive integer, got {self.n_classes!r}")
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ValueError(
                f"labels must lie in 0..{self.n_classes - 1}, found {labels.min()}..{labels.max()}"
            )
        if not (np.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"duration must be finite and > 0 ms, got {self.duration!r}")
        spiking = times[~np.isnan(times)]
        if spiking.size and (spiking.min() < 0 or spiking.max() > self.duration):
            raise ValueError(
                f"spike times must lie in [0, duration={self.duration!r}] ms, found "
                f"{spiking.min()!r}..{spiking.max()!r}"
            )
        if self.class_names is not None and len(self.class_names) != self.n_classes:
            raise ValueError(
                f"class_names must have n_classes={self.n_classes} entries, got "
                f"{len(self.class_names)}"
            )
        object.__setattr__(self, "times", _readonly_view(times))
        object.__setattr__(self, "labels", _readonly_view(labels.astype(np.int64)))
        object.__setattr__(self, "n_classes", int(self.n_classes))
        object.__setattr__(self, "duration", float(self.duration))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))

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

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        rng: np.random.Generator | int | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over mini-batches ``(times, labels)`` of shapes ``(B, n_inputs)`` and ``(B,)``.

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
        (times, labels) : copies, so the caller may modify them.
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
            idx = order[start : start + batch_size]
            yield self.times[idx], self.labels[idx]

    def n_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches :meth:`batches` yields (for progress bars)."""
        full, rest = divmod(len(self), check_integer("batch_size", batch_size, minimum=1))
        return full + (1 if rest and not drop_last else 0)
