"""The Yin-Yang data set of Kriener, Göltz & Petrovici (2022), generated sample for sample.

Reference: L. Kriener, J. Göltz, M. A. Petrovici, "The Yin-Yang dataset", NICE 2022,
doi:10.1145/3517343.3517380; reference generator ``dataset.py`` (class ``YinYangDataset``) in
github.com/lkriener/yin_yang_data_set.  This module is an independent implementation of the same
algorithm that draws exactly the same random numbers in the same order, so the canonical splits
below are identical, value for value, to the reference's (and to its ``publication_data``).

Geometry (``R = r_big``, ``r = r_small``; points ``(x, y)`` in ``[0, 2R)^2``): the big disc has
centre ``(R, R)`` and radius ``R``; the two dots have centres ``(R/2, R)`` (left) and ``(3R/2, R)``
(right) and radius ``r``.  With ``d_l``, ``d_r`` the distances to the dot centres:

* label 2 (``"dot"``): ``d_l < r`` or ``d_r < r``;
* label 1 (``"yang"``): ``d_r <= r``, or ``r < d_l <= R/2``, or ``y > R`` and ``d_r > R/2``;
* label 0 (``"yin"``): every other point of the big disc.

(The reference code calls the label-1 region ``is_yin`` while its ``class_names`` list reads
``['yin', 'yang', 'dot']``; we keep its integer labels and its ``class_names``.)

Generation, for each of ``size`` samples with ``rng = numpy.random.RandomState(seed)``:
``goal = rng.randint(3)``, then repeat ``x, y = rng.rand(2) * 2 * R`` until ``(x, y)`` lies in the
big disc (distance to ``(R, R)`` at most ``R``) and has label ``goal``.  Features are
``(x, y, 1 - x, 1 - y)``; the mirrored pair lets networks without a bias see every point with
equal total input.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .container import SpikeDataset
from .encoding import LatencyCode, check_code

R_SMALL = 0.1
"""Default radius of the two dots (reference ``r_small``)."""
R_BIG = 0.5
"""Default radius of the big disc (reference ``r_big``)."""
CLASS_NAMES = ("yin", "yang", "dot")
"""Names of labels 0, 1, 2 as in the reference's ``class_names``."""
CANONICAL_SPLITS = MappingProxyType(
    {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}
)
"""``split -> (size, seed)`` used in the Yin-Yang paper and by every published result."""


def yin_yang_class(x, y, r_small: float = R_SMALL, r_big: float = R_BIG) -> np.ndarray:
    """Label of points ``(x, y)``: 0 yin, 1 yang, 2 dot, and -1 outside the big disc.

    Parameters
    ----------
    x, y : array_like
        Coordinates (broadcast together), in the units of ``r_big`` (the square ``[0, 2 r_big]``).
    r_small, r_big : float
        Dot radius and big-disc radius.

    Returns
    -------
    numpy.ndarray of int64
        Labels with the broadcast shape of ``x`` and ``y``; see the module docstring for the
        regions.  The arithmetic (``sqrt((x - cx)**2 + (y - cy)**2)`` compared with ``<``/``<=``
        exactly as the reference) makes boundary points fall on the same side as there.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    yang = (
        (d_right <= r_small)
        | ((d_left > r_small) & (d_left <= 0.5 * r_big))
        | ((y > r_big) & (d_right > 0.5 * r_big))
    )
    label = np.where((d_right < r_small) | (d_left < r_small), 2, yang.astype(np.int64))
    outside = np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big
    return np.where(outside, -1, label).astype(np.int64)


def generate_yin_yang(
    size: int, seed: int, r_small: float = R_SMALL, r_big: float = R_BIG
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``size`` Yin-Yang samples exactly as the reference generator does.

    Parameters
    ----------
    size : int
        Number of samples (>= 0).
    seed : int
        Seed of the legacy ``numpy.random.RandomState`` (the reference's RNG).
    r_small, r_big : float
        Dot radius and big-disc radius (``0 < r_small < r_big / 2``).

    Returns
    -------
    features : numpy.ndarray, float64, shape ``(size, 4)``
        ``(x, y, 1 - x, 1 - y)`` per sample.
    labels : numpy.ndarray, int64, shape ``(size,)``
        0 yin, 1 yang, 2 dot.
    """
    if int(size) != size or size < 0:
        raise ValueError(f"size must be a non-negative integer, got {size!r}")
    if not (0 < r_small < r_big / 2):
        raise ValueError(
            f"need 0 < r_small < r_big/2 for a valid Yin-Yang shape, got r_small={r_small!r}, "
            f"r_big={r_big!r}"
        )
    size = int(size)
    rng = np.random.RandomState(seed)
    xy = np.empty((size, 2))
    labels = np.empty(size, dtype=np.int64)
    for i in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if yin_yang_class(x, y, r_small, r_big) == goal:
                break
        xy[i] = x, y
        labels[i] = goal
    features = np.concatenate([xy, 1.0 - xy], axis=1)
    return features, labels


def load_yin_yang(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Canonical split: "train" (5000 samples, seed 42), "validation" (1000, 41), "test" (1000, 40).

    Returns ``(features, labels)`` as :func:`generate_yin_yang` with the reference radii.
    """
    if split not in CANONICAL_SPLITS:
        raise ValueError(f"split must be one of {sorted(CANONICAL_SPLITS)}, got {split!r}")
    size, seed = CANONICAL_SPLITS[split]
    return generate_yin_yang(size, seed)


def yin_yang_features_to_times(
    features, code: LatencyCode | None = None, mirrored: bool = True
) -> np.ndarray:
    """Spike times (ms) of Yin-Yang features ``(x, y, 1 - x, 1 - y)`` under a latency ``code``.

    Parameters
    ----------
    features : array_like, shape ``(n, 4)`` (or ``(n, 2)`` holding only ``(x, y)``)
        Points in the unit square, e.g. from :func:`load_yin_yang` or a grid for a decision map.
    code : LatencyCode, optional
        Window, bias spike and direction of the latency code (default ``LatencyCode()``).
    mirrored : bool
        True: inputs ``(x, y, 1 - x, 1 - y)`` (the mirrored pair is computed when ``features``
        has only two columns); False: inputs ``(x, y)`` only.

    Returns
    -------
    numpy.ndarray, shape ``(n, 4 or 2, + 1 with a bias spike)``
        Input neurons in the order x, y[, 1 - x, 1 - y][, bias].
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] not in (2, 4):
        raise ValueError(f"features must have shape (n, 4) or (n, 2), got {f.shape}")
    xy = f[:, :2]
    values = np.concatenate([xy, 1.0 - xy], axis=1) if mirrored else xy
    return (code or LatencyCode())(values)


def yin_yang_dataset(
    split: str = "train", code: LatencyCode | None = None, mirrored: bool = True
) -> SpikeDataset:
    """Canonical Yin-Yang ``split`` encoded as input spike times (see :func:`load_yin_yang`).

    The inputs are x, y, 1 - x, 1 - y (only x, y if not ``mirrored``) and, if ``code`` has a
    ``bias_time``, a bias neuron; labels 0 yin, 1 yang, 2 dot; ``duration`` is
    ``code.duration``.  ``code`` defaults to ``LatencyCode()``.
    """
    code = check_code(code, LatencyCode, "LatencyCode()")
    features, labels = load_yin_yang(split)
    return SpikeDataset(
        yin_yang_features_to_times(features, code, mirrored),
        labels,
        n_classes=3,
        duration=code.duration,
        class_names=CLASS_NAMES,
        name=f"yin-yang {split} ({code})",
    )
