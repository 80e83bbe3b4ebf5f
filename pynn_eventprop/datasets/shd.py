"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) from a local copy, via tonic.

Reference: B. Cramer, Y. Stradmann, J. Schemmel, F. Zenke, "The Heidelberg spiking data sets for
the systematic evaluation of spiking neural networks", IEEE TNNLS 33(7), 2022,
doi:10.1109/TNNLS.2020.3044364.  Spoken words (SHD: digits 0-9 in English and German, 20
classes; SSC: 35 speech commands) turned into spikes of 700 cochlear channels, about 1 s per
sample.

Nothing is downloaded: the files are read from ``root`` in tonic's layout,
``root/SHD/shd_{train,test}.h5`` and ``root/SSC/ssc_{train,valid,test}.h5`` (HDF5 datasets
``spikes/times`` in s and ``spikes/units`` per sample, ``labels``, ``extra/keys``,
``extra/speaker``).  To obtain them, download ``shd_train.h5.zip`` etc. from the data sets' page
(zenkelab.org, "Spiking Heidelberg Datasets") and unzip them into those folders, or let tonic
download them once on a machine with network access (``tonic.datasets.SHD(save_to=root)``).

The reader is tonic's (``tonic.datasets.SHD`` / ``SSC``; times to the microsecond, its resolution;
optional dependency: ``pip install
pynn_eventprop[tonic]``), with its download switched off.  :func:`load_hsd` returns every spike;
:func:`spike_train_dataset` keeps every spike of each (optionally pooled) channel within the
input window, as a :class:`~.spike_trains.SpikeTrainDataset`; :func:`first_spike_dataset`
reduces a sample to the first spike of each pooled channel (a :class:`~.container.SpikeDataset`;
a lossy code: channels of SHD fire several times per word).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import check_integer, check_real
from .container import SpikeDataset
from .spike_trains import SpikeTrainDataset

#: data set -> (tonic class name, splits, classes)
DATASETS = {"shd": ("SHD", ("train", "test"), 20), "ssc": ("SSC", ("train", "valid", "test"), 35)}
N_CHANNELS = 700


@dataclass(frozen=True)
class EventSamples:
    """Every spike of every sample: ``times[i]`` (ms) and ``units[i]`` (channel) per sample."""

    times: list
    units: list
    labels: np.ndarray
    n_channels: int
    n_classes: int
    name: str = ""

    def __len__(self) -> int:
        return len(self.labels)


def hsd_file(root, dataset: str = "shd", split: str = "train") -> Path:
    """Where :func:`load_hsd` expects the file of ``dataset`` and ``split`` under ``root``."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    folder, splits, _ = DATASETS[dataset]
    if split not in splits:
        raise ValueError(f"split of {dataset!r} must be one of {splits}, got {split!r}")
    return Path(root) / folder / f"{dataset}_{split}.h5"


def _missing(path: Path, dataset: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{dataset.upper()} file {str(path)!r} not found (nothing is downloaded at run time). "
        f"Download {path.name}.zip from the Spiking Heidelberg Datasets page (zenkelab.org) "
        f"and unzip it into {str(path.parent)!r}, or run tonic.datasets."
        f"{DATASETS[dataset][0]}(save_to={str(path.parent.parent)!r}) once on a machine with "
        "network access; then pass root="
        f"{str(path.parent.parent)!r}"
    )


def _tonic_reader(dataset: str):
    """tonic's reader class for ``dataset`` with downloading replaced by an error."""
    try:
        import tonic.datasets
    except ImportError as error:
        raise ImportError(
            "reading SHD/SSC needs tonic: pip install 'pynn_eventprop[tonic]'"
        ) from error
    name = DATASETS[dataset][0]
    base = getattr(tonic.datasets, name)

    def check_exists(self):
        return os.path.isfile(os.path.join(self.location_on_system, self.data_filename))

    def download(self):
        raise _missing(Path(self.location_on_system) / self.data_filename, dataset)

    # the class keeps tonic's name: tonic reads from save_to/<class name>/
    return type(name, (base,), {"_check_exists": check_exists, "download": download})


def load_hsd(root, dataset: str = "shd", split: str = "train", max_samples=None) -> EventSamples:
    """All spikes of the ``split`` of SHD or SSC stored under ``root`` (times in ms).

    Raises
    ------
    FileNotFoundError
        When the file is missing, saying how to obtain it.
    """
    path = hsd_file(root, dataset, split)
    if not path.is_file():
        raise _missing(path, dataset)
    reader = _tonic_reader(dataset)
    kwargs = {"train": split == "train"} if dataset == "shd" else {"split": split}
    data = reader(save_to=str(root), **kwargs)
    n = (
        len(data)
        if max_samples is None
        else min(len(data), check_integer("max_samples", max_samples, minimum=1))
    )
    times, units, labels = [], [], np.empty(n, np.int64)
    for i in range(n):
        events, label = data[i]
        times.append(events["t"].astype(np.float64) / 1000.0)  # tonic: microseconds
        units.append(events["x"].astype(np.int64))
        labels[i] = int(label)
    return EventSamples(times, units, labels, N_CHANNELS, DATASETS[dataset][2],
                        f"{dataset.upper()} {split}")  # fmt: skip


def _window_and_pool(duration, pool, n_channels) -> tuple[float, int, int]:
    duration = check_real("duration", duration, minimum=0.0, strict=True, where="(ms)")
    pool = check_integer("pool", pool, minimum=1)
    return duration, pool, -(-n_channels // pool)


def first_spike_dataset(samples: EventSamples, duration: float, pool: int = 1) -> SpikeDataset:
    """The first spike of every channel (``pool`` neighbouring channels merged) before
    ``duration`` ms, as a :class:`SpikeDataset` with ``ceil(n_channels / pool)`` inputs."""
    duration, pool, n_inputs = _window_and_pool(duration, pool, samples.n_channels)
    first = np.full((len(samples), n_inputs), np.inf)
    for i, (t, u) in enumerate(zip(samples.times, samples.units, strict=True)):
        keep = t < duration
        np.minimum.at(first[i], u[keep] // pool, t[keep])
    first[np.isinf(first)] = np.nan
    return SpikeDataset(first, samples.labels, samples.n_classes, duration,
                        name=f"{samples.name}, first spikes, pool {pool}")  # fmt: skip


def spike_train_dataset(samples: EventSamples, duration: float, pool: int = 1) -> SpikeTrainDataset:
    """Every spike before ``duration`` ms, as a :class:`~.spike_trains.SpikeTrainDataset`.

    Channel ``u`` feeds input neuron ``u // pool`` (``pool`` neighbouring channels merged,
    ``ceil(n_channels / pool)`` inputs): an input neuron receives the spikes of all its
    channels, coincident ones included (each acts on the network separately).  Spikes at or
    after ``duration`` are dropped (they would never be simulated).
    """
    duration, pool, n_inputs = _window_and_pool(duration, pool, samples.n_channels)
    keep = [t < duration for t in samples.times]
    times = [t[k] for t, k in zip(samples.times, keep, strict=True)]
    units = [u[k] // pool for u, k in zip(samples.units, keep, strict=True)]
    offsets = np.concatenate([[0], np.cumsum([t.size for t in times], dtype=np.int64)])
    return SpikeTrainDataset(np.concatenate([np.zeros(0), *times]),
                             np.concatenate([np.zeros(0, np.int64), *units]), offsets,
                             samples.labels, n_inputs, samples.n_classes, duration,
                             name=f"{samples.name}, all spikes, pool {pool}")  # fmt: skip
