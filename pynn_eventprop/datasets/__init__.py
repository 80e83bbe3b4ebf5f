"""Data sets for training: Yin-Yang, MNIST-5k and Fashion-MNIST, and their spike encodings.

Every loader returns plain numpy arrays; the ``*_dataset`` builders encode them into a
:class:`SpikeDataset` (one precisely timed spike per input neuron, times in ms, NaN = silent)
that training iterates over in mini-batches; :class:`SpikeTrainDataset` holds samples with any
number of spikes per input neuron (e.g. SHD, :mod:`.shd`), with the same batching protocol.
``docs/datasets.md`` lists sources, splits and encodings.
"""

from .container import SpikeDataset
from .encoding import (
    ImageLatencyCode,
    LatencyCode,
    image_latency_encode,
    latency_encode,
)
from .fashion_mnist import fashion_mnist_available, fashion_mnist_dataset, load_fashion_mnist
from .idx import read_idx
from .mnist import find_mnist_5k, load_mnist_5k, mnist_5k_dataset
from .spike_trains import SpikeTrainBatch, SpikeTrainDataset
from .yin_yang import (
    generate_yin_yang,
    load_yin_yang,
    yin_yang_class,
    yin_yang_dataset,
    yin_yang_features_to_times,
)

__all__ = [
    "ImageLatencyCode",
    "LatencyCode",
    "SpikeDataset",
    "SpikeTrainBatch",
    "SpikeTrainDataset",
    "fashion_mnist_available",
    "fashion_mnist_dataset",
    "find_mnist_5k",
    "generate_yin_yang",
    "image_latency_encode",
    "latency_encode",
    "load_fashion_mnist",
    "load_mnist_5k",
    "load_yin_yang",
    "mnist_5k_dataset",
    "read_idx",
    "yin_yang_class",
    "yin_yang_dataset",
    "yin_yang_features_to_times",
]
