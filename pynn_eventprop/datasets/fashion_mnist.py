"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000 test images.

Source: the Debian package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``),
which installs the original IDX files::

    /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz   (60000, 28, 28) uint8
    /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz   (60000,) uint8
    /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz    (10000, 28, 28) uint8
    /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz    (10000,) uint8

The directory is, in order of precedence: the ``path`` argument, the environment variable
``PYNN_EVENTPROP_FASHION_MNIST``, then ``/usr/share/datasets/fashion-mnist``.  Each file may be
gzip-compressed (``.gz``) or raw (no suffix).  Splits are the official ones: ``"train"`` (60,000)
and ``"test"`` (10,000, the ``t10k`` files).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .container import SpikeDataset
from .encoding import ImageLatencyCode, check_code
from .idx import read_idx

DEFAULT_DIRECTORY = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the files."""
ENV_VAR = "PYNN_EVENTPROP_FASHION_MNIST"
"""Environment variable naming a directory with the IDX files."""
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Names of labels 0..9 (from the data set's README)."""
FILE_PREFIX = {"train": "train", "test": "t10k"}
"""Split -> prefix ``p`` of the files ``p-images-idx3-ubyte[.gz]``, ``p-labels-idx1-ubyte[.gz]``."""

_INSTALL_HINT = (
    "install the Debian package with `sudo apt-get install dataset-fashion-mnist` (files in "
    f"{DEFAULT_DIRECTORY}), or point path= or the environment variable {ENV_VAR} at a directory "
    "holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
    "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]"
)


def fashion_mnist_directory(path=None) -> Path:
    """The directory to read: ``path``, else ``$PYNN_EVENTPROP_FASHION_MNIST``, else the default."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_DIRECTORY


def _file(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {directory}: {_INSTALL_HINT}"
    )


def fashion_mnist_available(path=None) -> bool:
    """True if both splits' files exist in :func:`fashion_mnist_directory` (``path``)."""
    directory = fashion_mnist_directory(path)
    try:
        for prefix in FILE_PREFIX.values():
            _file(directory, f"{prefix}-images-idx3-ubyte")
            _file(directory, f"{prefix}-labels-idx1-ubyte")
    except FileNotFoundError:
        return False
    return True


def load_fashion_mnist(split: str = "train", path=None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` uint8 and labels ``(n,)`` int64 of ``split`` ("train" or "test").

    Raises
    ------
    FileNotFoundError
        When the files are missing, saying how to install them.
    ValueError
        When the files are malformed or images and labels disagree.
    """
    if split not in FILE_PREFIX:
        raise ValueError(f"split must be one of {tuple(FILE_PREFIX)}, got {split!r}")
    directory = fashion_mnist_directory(path)
    prefix = FILE_PREFIX[split]
    image_file = _file(directory, f"{prefix}-images-idx3-ubyte")
    label_file = _file(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{image_file}: expected uint8 images of shape (n, rows, cols), got "
            f"{images.dtype} {images.shape}"
        )
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"{label_file}: expected {images.shape[0]} labels to match the images, got shape "
            f"{labels.shape}"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{label_file}: labels must lie in 0..{len(CLASS_NAMES) - 1}")
    return images, labels.astype(np.int64)


def fashion_mnist_dataset(
    split: str = "train", code: ImageLatencyCode | None = None, path=None
) -> SpikeDataset:
    """Fashion-MNIST ``split`` as a :class:`SpikeDataset` (784 inputs, plus a bias neuron if any).

    ``code`` defaults to ``ImageLatencyCode()``; ``path`` as in :func:`load_fashion_mnist`.
    """
    code = check_code(code, ImageLatencyCode, "ImageLatencyCode()")
    images, labels = load_fashion_mnist(split, path)
    return SpikeDataset(
        code(images),
        labels,
        n_classes=len(CLASS_NAMES),
        duration=code.duration,
        class_names=CLASS_NAMES,
        name=f"fashion-mnist {split} ({code})",
    )
