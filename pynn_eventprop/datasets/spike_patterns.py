"""Spike-pattern classification: several spikes per input neuron, the class in their timing.

Each class ``c`` is one fixed random pattern: every input neuron fires a Poisson spike train of
``rate`` (Hz) over the window ``[0, duration)`` ms, drawn once per class.  A sample of class
``c`` is that pattern with every spike deleted with probability ``p_drop``, the others moved
by Gaussian jitter (standard deviation ``jitter`` ms; spikes moved out of the window are lost),
plus Poisson noise spikes of ``noise_rate`` (Hz) on every neuron.  All classes have the same
rates, so spike counts carry little about the class; the times of the spikes, most neurons
firing several times, carry it.  This is the embedded-pattern task of the tempotron
(R. Gütig, H. Sompolinsky, "The tempotron: a neuron that learns spike timing-based
decisions", Nature Neuroscience 9(3), 2006, doi:10.1038/nn1643), with one pattern per class
and the noise model above; our own implementation.

Classes are cycled (balanced to within one) and shuffled.  The patterns are drawn from
``numpy.random.default_rng(seed)`` (the task), the samples from
``numpy.random.default_rng([seed, sample_seed])`` (vary ``sample_seed`` across splits).
"""

from __future__ import annotations

import numpy as np

from ..validation import check_integer, check_real
from .spike_trains import SpikeTrainDataset


def _poisson_trains(rng, n_inputs: int, rate: float, duration: float):
    """``(neurons, times)`` of Poisson spike trains of ``rate`` Hz on ``[0, duration)`` ms."""
    counts = rng.poisson(rate * duration / 1000.0, n_inputs)
    neurons = np.repeat(np.arange(n_inputs), counts)
    return neurons, rng.uniform(0.0, duration, neurons.size)


def _sample(rng, pattern, n_inputs, duration, jitter, p_drop, noise_rate):
    """One noisy copy ``(neurons, times)`` of ``pattern`` (see the module docstring)."""
    neurons, times = pattern
    kept = rng.random(times.size) >= p_drop
    neurons, times = neurons[kept], times[kept] + rng.normal(0.0, jitter, np.count_nonzero(kept))
    inside = (times >= 0.0) & (times < duration)
    noise_neurons, noise_times = _poisson_trains(rng, n_inputs, noise_rate, duration)
    return (np.concatenate([neurons[inside], noise_neurons]),
            np.concatenate([times[inside], noise_times]))  # fmt: skip


def spike_pattern_dataset(
    n_samples: int = 500,
    n_classes: int = 5,
    n_inputs: int = 40,
    rate: float = 20.0,
    duration: float = 100.0,
    jitter: float = 2.0,
    p_drop: float = 0.1,
    noise_rate: float = 2.0,
    seed: int = 0,
    sample_seed: int = 0,
) -> SpikeTrainDataset:
    """Noisy copies of one random spike pattern per class, as a ``SpikeTrainDataset``.

    Parameters
    ----------
    n_samples, n_classes, n_inputs : int
        Samples (>= 1), classes (>= 2) and input neurons (>= 1).
    rate : float
        Firing rate (Hz) of every neuron in the patterns: ``rate * duration / 1000`` spikes
        per neuron on average.
    duration : float
        The window (ms); every spike lies in ``[0, duration)``.
    jitter : float
        Standard deviation (ms, >= 0) of the Gaussian displacement of each pattern spike.
    p_drop : float
        Probability (in ``[0, 1)``) that a pattern spike is missing from a sample.
    noise_rate : float
        Rate (Hz, >= 0) of extra Poisson spikes on every neuron of every sample.
    seed, sample_seed : int
        The patterns (the task) and the samples (the split).

    Returns
    -------
    SpikeTrainDataset
        With ``n_classes`` classes, ``n_inputs`` inputs and the window ``duration``.
    """
    n_samples = check_integer("n_samples", n_samples, minimum=1)
    n_classes = check_integer("n_classes", n_classes, minimum=2)
    n_inputs = check_integer("n_inputs", n_inputs, minimum=1)
    rate = check_real("rate", rate, minimum=0.0, strict=True, where="(Hz)")
    duration = check_real("duration", duration, minimum=0.0, strict=True, where="(ms)")
    jitter = check_real("jitter", jitter, minimum=0.0, where="(ms)")
    p_drop = check_real("p_drop", p_drop, minimum=0.0, maximum=1.0)
    if p_drop == 1.0:
        raise ValueError("p_drop must be a finite number in [0, 1), got 1.0 (no spike left)")
    noise_rate = check_real("noise_rate", noise_rate, minimum=0.0, where="(Hz)")
    seed = check_integer("seed", seed, minimum=0)
    sample_seed = check_integer("sample_seed", sample_seed, minimum=0)
    task = np.random.default_rng(seed)
    patterns = [_poisson_trains(task, n_inputs, rate, duration) for _ in range(n_classes)]
    rng = np.random.default_rng([seed, sample_seed])
    labels = rng.permutation(np.arange(n_samples) % n_classes)
    samples = [
        _sample(rng, patterns[c], n_inputs, duration, jitter, p_drop, noise_rate) for c in labels
    ]
    name = f"spike patterns (seed {seed}, sample_seed {sample_seed})"
    return SpikeTrainDataset.from_samples(samples, labels, n_inputs, n_classes, duration,
                                          name=name)  # fmt: skip
