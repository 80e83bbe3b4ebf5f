"""An interval task that needs delays: the class is the time between two input spikes.

Each sample has a cue neuron (input 0) firing at a random onset ``t0`` and a probe neuron
(input 1) firing ``Delta_c`` ms later, where ``Delta_c`` is the interval of the sample's class
``c`` (plus Gaussian jitter).  Both neurons fire once in every sample and always in the same
order, so spike counts and order carry nothing; the onset is random, so the absolute time of
either spike carries nothing about the class on its own.  Only the interval does, and the
intervals (default 20 ms and more, 12 ms apart) are much longer than the membrane and synaptic
time constants of the networks it is meant for (a few ms): the effect of the cue has decayed
to nothing when the probe arrives.  A network without suitable delays sees two isolated
events whatever the class; with learned delays, a neuron can receive the cue delayed by about
``Delta_c`` (coincidence with the probe) or race a delayed cue against the probe (the output
that fires first wins).  Optional distractor neurons (inputs 2..) fire at uniformly random
times in every sample.

Classes are cycled (balanced to within one) and shuffled; everything is drawn from
``numpy.random.default_rng([seed, sample_seed])``.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_integer, check_real
from .container import SpikeDataset


def default_intervals(n_classes: int, first: float = 30.0, spacing: float = 12.0) -> np.ndarray:
    """``first, first + spacing, ...`` (ms), one interval per class."""
    return first + spacing * np.arange(n_classes)


def generate_delay_task(
    n_samples: int = 1000,
    n_classes: int = 2,
    intervals=None,
    onset: float = 10.0,
    jitter: float = 0.5,
    n_distractors: int = 0,
    seed: int = 0,
    sample_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Spike times ``(n_samples, 2 + n_distractors)`` (ms), labels and the window (ms).

    Parameters
    ----------
    n_samples, n_classes : int
    intervals : sequence of float, optional
        ``Delta_c`` (ms) per class, > 0 and distinct; default :func:`default_intervals`.
    onset : float
        The cue fires at ``t0 ~ U(0, onset)`` ms.
    jitter : float
        Standard deviation (ms) of Gaussian noise on each interval (clipped to +-3 sigma).
    n_distractors : int
        Extra inputs firing at ``U(0, window)`` ms.
    seed, sample_seed : int
        Together they seed the generator (vary ``sample_seed`` across splits).

    Returns
    -------
    times, labels, window : the window ``onset + max(Delta) + 3 jitter`` (ms) holds every spike.
    """
    n_samples = check_integer("n_samples", n_samples, minimum=1)
    n_classes = check_integer("n_classes", n_classes, minimum=2)
    intervals = default_intervals(n_classes) if intervals is None else np.asarray(intervals, float)
    valid = np.isfinite(intervals).all() and intervals.size and intervals.min() > 0
    if intervals.shape != (n_classes,) or not valid:
        raise ValueError(
            f"intervals must be {n_classes} finite numbers > 0 ms (one per class), got "
            f"{intervals!r}"
        )
    if np.unique(intervals).size != n_classes:
        raise ValueError(f"intervals must be distinct, got {intervals!r}")
    onset = check_real("onset", onset, minimum=0.0, where="(ms)")
    jitter = check_real("jitter", jitter, minimum=0.0, where="(ms)")
    n_distractors = check_integer("n_distractors", n_distractors, minimum=0)
    check_integer("seed", seed, minimum=0)
    check_integer("sample_seed", sample_seed, minimum=0)
    rng = np.random.default_rng([seed, sample_seed])
    labels = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    window = onset + float(intervals.max()) + 3.0 * jitter
    t0 = rng.uniform(0.0, onset, n_samples)
    noise = np.clip(rng.normal(0.0, jitter, n_samples), -3.0 * jitter, 3.0 * jitter)
    times = np.empty((n_samples, 2 + n_distractors))
    times[:, 0] = t0
    times[:, 1] = t0 + intervals[labels] + noise
    times[:, 2:] = rng.uniform(0.0, window, (n_samples, n_distractors))
    return times, labels, window


def delay_task_dataset(n_samples: int = 1000, sample_seed: int = 0, **task) -> SpikeDataset:
    """:func:`generate_delay_task` as a :class:`SpikeDataset` (duration: the window)."""
    times, labels, window = generate_delay_task(n_samples, sample_seed=sample_seed, **task)
    n_classes = int(task.get("n_classes", 2))
    return SpikeDataset(
        times, labels, n_classes, window, name=f"delay task {task} sample_seed={sample_seed}"
    )
