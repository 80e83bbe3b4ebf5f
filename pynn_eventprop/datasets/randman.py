"""Random-manifold spike-timing task (Randman) of Zenke & Vogels (2021), generated from a seed.

Reference: F. Zenke, T. P. Vogels, "The remarkable robustness of surrogate gradient learning for
instilling complex function in spiking neural networks", Neural Computation 33(4), 2021,
doi:10.1162/neco_a_01367.  This is an independent implementation from the paper's description:
every class is a smooth random manifold of intrinsic dimension ``D`` embedded in the
``n_units``-dimensional space of firing times; a sample is a point of its class's manifold, and
input neuron ``i`` fires exactly once, at the time given by coordinate ``i`` of that point.
The random draws differ from the authors' code, so the tasks are alike but not identical.

Construction, for class ``c``, unit ``i`` and intrinsic dimension ``d`` (all parameters drawn
from ``numpy.random.default_rng(seed)``):

* a smooth random function on ``[0, 1]`` from ``K = n_basis`` Fourier modes::

      g_cid(x) = sum_{k=1..K} a_k k^(-alpha) sin(2 pi (k x b_k + phi_k)),
      a_k ~ U(0, 1), b_k ~ U(0, 1), phi_k ~ U(0, 1);

  ``alpha`` sets the smoothness (larger: smoother, the high modes weigh less);
* rescaled to ``[0, 1]`` with its minimum and maximum on a grid of 1001 points of ``[0, 1]``;
* the manifold point of intrinsic coordinates ``x in [0, 1]^D`` is
  ``f_ci(x) = prod_d g_cid(x_d)`` in ``[0, 1]`` (Zenke & Vogels combine the dimensions
  multiplicatively as well);
* spike time ``t_i = t_min + (t_max - t_min) f_ci(x)`` (ms), plus Gaussian jitter of standard
  deviation ``jitter`` ms (clipped to ``[t_min, t_max]``).

Several spikes per unit (``n_spikes = S > 1``), as in the authors' generator (their
``randman`` package's ``make_spiking_dataset``, argument ``nb_spikes``): the manifold then has
``n_units * S`` coordinates, each an independent smooth function of the same intrinsic point
``x`` built as above, and coordinate ``(i, s)`` is the time of spike ``s`` of unit ``i``.  Every
unit fires exactly ``S`` times anywhere in ``[t_min, t_max]`` (the spikes of a unit are not
ordered by ``s``; two may coincide), so spike counts carry nothing and the class is in the
timing pattern.  The Fourier coefficients of coordinate ``(i, s)`` are entry ``i S + s`` of the
draws for ``n_units * S`` coordinates; for ``S = 1`` the draws, and hence the task, are those
of the one-spike generator.

Samples: ``x ~ U([0, 1]^D)`` from ``numpy.random.default_rng([seed, sample_seed])``, classes
cycled so that every class has ``n_samples // n_classes`` or one more; the manifolds depend on
``seed`` only, so splits drawn with different ``sample_seed`` are samples of the same task.
The task gets harder with more classes, higher ``D``, smaller ``alpha`` and fewer units.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_integer, check_real
from .container import SpikeDataset
from .spike_trains import SpikeTrainDataset

_GRID = np.linspace(0.0, 1.0, 1001)


def _manifold_parameters(rng, n_classes, n_units, dim, n_basis):
    """Fourier coefficients ``a, b, phi`` of every ``g_cid``: arrays (C, N, D, K)."""
    shape = (n_classes, n_units, dim, n_basis)
    return rng.uniform(size=shape), rng.uniform(size=shape), rng.uniform(size=shape)


def _smooth_functions(x, a, b, phi, alpha):
    """``g(x)`` before rescaling for one class: ``x`` (S, D) -> (S, N, D)."""
    k = np.arange(1, a.shape[-1] + 1)
    # (S, 1, D, 1) * (N, D, K) -> (S, N, D, K)
    arg = 2.0 * np.pi * (k * x[:, None, :, None] * b + phi)
    return np.sum(a * k ** (-alpha) * np.sin(arg), axis=-1)


def randman_points(x, labels, seed, n_classes, n_units, dim, alpha=2.0, n_basis=3):
    """Manifold coordinates ``f_c(x)`` in ``[0, 1]``, shape (n_samples, n_units).

    ``x`` (n_samples, dim) intrinsic coordinates in ``[0, 1]``, ``labels`` the class of each.
    """
    rng = np.random.default_rng(seed)
    a, b, phi = _manifold_parameters(rng, n_classes, n_units, dim, n_basis)
    grid = _GRID[:, None].repeat(dim, axis=1)
    out = np.empty((len(x), n_units))
    for c in range(n_classes):
        on_grid = _smooth_functions(grid, a[c], b[c], phi[c], alpha)
        low, high = on_grid.min(axis=0), on_grid.max(axis=0)  # (N, D)
        mine = labels == c
        g = (_smooth_functions(x[mine], a[c], b[c], phi[c], alpha) - low) / (high - low)
        out[mine] = np.prod(np.clip(g, 0.0, 1.0), axis=-1)
    return out


def generate_randman(
    n_classes: int = 10,
    n_units: int = 20,
    dim: int = 1,
    n_samples: int = 1000,
    seed: int = 0,
    sample_seed: int = 0,
    alpha: float = 2.0,
    n_basis: int = 3,
    t_min: float = 0.0,
    t_max: float = 50.0,
    jitter: float = 0.0,
    n_spikes: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (ms) and labels ``(n_samples,)`` of a Randman task.

    The times have shape ``(n_samples, n_units)`` for ``n_spikes = 1`` and ``(n_samples,
    n_units, n_spikes)`` otherwise (``times[n, i, s]``: spike ``s`` of unit ``i``, unsorted).

    Parameters
    ----------
    n_classes, n_units, dim : int
        Classes (manifolds), input neurons (embedding dimension), intrinsic dimension ``D``.
    n_samples : int
        Samples, classes cycled (balanced to within one).
    seed : int
        Seed of the manifolds (the task).
    sample_seed : int
        Seed of the points drawn on them (the split).
    alpha : float
        Smoothness exponent (> 0).
    n_basis : int
        Fourier modes per function.
    t_min, t_max : float
        Window of the spike times (ms), ``0 <= t_min < t_max``.
    jitter : float
        Standard deviation (ms) of Gaussian noise added to every spike time (>= 0).
    n_spikes : int
        Spikes per unit (>= 1), each the coordinate of its own manifold dimension (see the
        module docstring).
    """
    n_classes = check_integer("n_classes", n_classes, minimum=2)
    n_units = check_integer("n_units", n_units, minimum=1)
    dim = check_integer("dim", dim, minimum=1)
    n_samples = check_integer("n_samples", n_samples, minimum=1)
    check_integer("seed", seed, minimum=0)
    check_integer("sample_seed", sample_seed, minimum=0)
    alpha = check_real("alpha", alpha, minimum=0.0, strict=True)
    n_basis = check_integer("n_basis", n_basis, minimum=1)
    t_min = check_real("t_min", t_min, minimum=0.0, where="(ms)")
    t_max = check_real("t_max", t_max, minimum=t_min, strict=True, where="(ms)")
    jitter = check_real("jitter", jitter, minimum=0.0, where="(ms)")
    n_spikes = check_integer("n_spikes", n_spikes, minimum=1)
    rng = np.random.default_rng([seed, sample_seed])
    labels = rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)
    x = rng.uniform(size=(n_samples, dim))
    f = randman_points(x, labels, seed, n_classes, n_units * n_spikes, dim, alpha, n_basis)
    times = t_min + (t_max - t_min) * f
    if jitter > 0:
        times = np.clip(times + rng.normal(0.0, jitter, times.shape), t_min, t_max)
    if n_spikes > 1:
        times = times.reshape(n_samples, n_units, n_spikes)
    return times, labels


def randman_dataset(
    n_samples: int = 1000, sample_seed: int = 0, **task
) -> SpikeDataset | SpikeTrainDataset:
    """:func:`generate_randman` as a data set of duration ``t_max``: a :class:`SpikeDataset`
    for one spike per unit (``n_spikes = 1``, the default), a
    :class:`~.spike_trains.SpikeTrainDataset` with ``n_spikes`` spikes per unit otherwise.

    ``task`` holds the other arguments of :func:`generate_randman`; keep them (and ``seed``)
    equal across splits and vary ``sample_seed``.
    """
    times, labels = generate_randman(n_samples=n_samples, sample_seed=sample_seed, **task)
    parameters = {k: v for k, v in task.items()}
    n_classes, duration = int(task.get("n_classes", 10)), float(task.get("t_max", 50.0))
    name = f"Randman {parameters} sample_seed={sample_seed}"
    if times.ndim == 2:
        return SpikeDataset(times, labels, n_classes, duration, name=name)
    n, n_units, n_spikes = times.shape
    neurons = np.tile(np.repeat(np.arange(n_units), n_spikes), n)
    offsets = np.arange(n + 1, dtype=np.int64) * n_units * n_spikes
    return SpikeTrainDataset(times.ravel(), neurons, offsets, labels, n_units, n_classes,
                             duration, name=name)  # fmt: skip
