"""SHD/SSC loaders: tiny files written in the data sets' own HDF5 layout, read through tonic."""

from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
pytest.importorskip("tonic")

from pynn_eventprop.datasets.shd import (  # noqa: E402
    first_spike_dataset,
    hsd_file,
    load_hsd,
    spike_train_dataset,
)

SAMPLES = [  # (times in s, units, label)
    (np.array([0.0102, 0.0305, 0.0207, 0.5]), np.array([3, 3, 699, 10]), 4),
    (np.array([0.25]), np.array([0]), 19),
    (np.array([], float), np.array([], int), 0),
]


def write_hsd(path, samples, n_classes=20):
    """An HDF5 file as the published ones: ragged spikes/times (s) and spikes/units."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), h5py.vlen_dtype(np.uint16))
        for i, (t, u, _) in enumerate(samples):
            times[i], units[i] = t.astype(np.float32), u.astype(np.uint16)
        f.create_dataset("labels", data=np.array([s[2] for s in samples], np.uint16))
        f.create_dataset("extra/keys", data=np.array([f"k{i}".encode() for i in range(n_classes)]))
        f.create_dataset("extra/speaker", data=np.arange(len(samples), dtype=np.uint16))


@pytest.mark.parametrize("dataset, split", [("shd", "train"), ("shd", "test"), ("ssc", "valid")])
def test_loads_every_spike_in_ms(tmp_path, dataset, split):
    write_hsd(hsd_file(tmp_path, dataset, split), SAMPLES)
    data = load_hsd(tmp_path, dataset, split)
    assert len(data) == 3 and data.n_channels == 700
    assert data.n_classes == (20 if dataset == "shd" else 35)
    np.testing.assert_array_equal(data.labels, [4, 19, 0])
    for (t, u, _), times, units in zip(SAMPLES, data.times, data.units, strict=True):
        np.testing.assert_array_equal(units, u)
        # float32 seconds -> ms: float32 rounding of the stored times, ~1e-6 relative
        np.testing.assert_allclose(times, t * 1000.0, rtol=1e-6)


def test_first_spike_dataset_takes_the_earliest_spike_per_pooled_channel(tmp_path):
    write_hsd(hsd_file(tmp_path, "shd", "train"), SAMPLES)
    data = first_spike_dataset(load_hsd(tmp_path, "shd", "train"), duration=300.0, pool=2)
    assert data.n_inputs == 350 and data.n_classes == 20
    first = data.times[0]
    assert first[1] == pytest.approx(10.2, rel=1e-6)  # units 3 (two spikes): the earlier one
    assert first[349] == pytest.approx(20.7, rel=1e-6)  # unit 699
    assert np.isnan(first[5])  # unit 10 fires at 500 ms, after the 300 ms window
    assert np.isnan(data.times[2]).all()  # no spikes
    assert np.count_nonzero(~np.isnan(data.times)) == 3


def test_spike_train_dataset_keeps_every_spike_of_every_pooled_channel(tmp_path):
    write_hsd(hsd_file(tmp_path, "shd", "train"), SAMPLES)
    data = spike_train_dataset(load_hsd(tmp_path, "shd", "train"), duration=300.0, pool=2)
    assert data.n_inputs == 350 and data.n_classes == 20 and len(data) == 3
    np.testing.assert_array_equal(data.labels, [4, 19, 0])
    np.testing.assert_array_equal(data.counts, [3, 1, 0])  # the 500 ms spike is dropped
    first = data.spike_times(0)
    # float32 seconds -> ms, ~1e-6 relative; unit 3 fires twice, both spikes are kept
    np.testing.assert_allclose(first[1], [10.2, 30.5], rtol=1e-6)
    np.testing.assert_allclose(first[349], [20.7], rtol=1e-6)
    assert sum(t.size for t in first) == 3 and first[5].size == 0
    np.testing.assert_allclose(data.spike_times(1)[0], [250.0], rtol=1e-6)
    # the first spikes of this data set are first_spike_dataset's
    firsts = first_spike_dataset(load_hsd(tmp_path, "shd", "train"), 300.0, pool=2).times
    for i in range(3):
        expected = [t[0] if t.size else np.nan for t in data.spike_times(i)]
        np.testing.assert_array_equal(firsts[i], expected)


def test_spike_train_dataset_drops_spikes_at_the_window_end_and_pools(tmp_path):
    samples = [(np.array([0.1, 0.1, 0.0999]), np.array([0, 1, 2]), 1)]
    write_hsd(hsd_file(tmp_path, "shd", "test"), samples)
    events = load_hsd(tmp_path, "shd", "test")
    at_end = float(events.times[0][0])  # 100 ms after float32 rounding
    data = spike_train_dataset(events, duration=at_end, pool=700)
    assert data.n_inputs == 1
    np.testing.assert_array_equal(data.counts, [1])  # spikes at duration are not simulated
    pooled = spike_train_dataset(events, duration=200.0, pool=700)
    assert pooled.spike_times(0)[0].size == 3  # coincident spikes of pooled channels all kept
    with pytest.raises(ValueError, match="pool must be an integer >= 1, got 0"):
        spike_train_dataset(events, duration=200.0, pool=0)
    with pytest.raises(ValueError, match=r"duration \(ms\) must be a finite number > 0"):
        spike_train_dataset(events, duration=0.0)


def test_missing_file_says_how_to_obtain_it_and_downloads_nothing(tmp_path):
    expected = r"shd_test.h5.*not found.*nothing is downloaded.*shd_test.h5.zip.*zenkelab"
    with pytest.raises(FileNotFoundError, match=expected):
        load_hsd(tmp_path / "nowhere", "shd", "test")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(dataset="mnist"), "dataset must be one of"), (dict(dataset="shd", split="valid"),
                                                          "split of 'shd' must be one of")],
)  # fmt: skip
def test_bad_names(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_hsd(tmp_path, **kwargs)
