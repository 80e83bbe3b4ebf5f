"""Spike encodings and the SpikeDataset container."""

import numpy as np
import pytest

from pynn_eventprop.datasets import (
    ImageLatencyCode,
    LatencyCode,
    SpikeDataset,
    image_latency_encode,
    latency_encode,
)

# --- latency codes ----------------------------------------------------------------------------


def test_latency_encode_maps_values_linearly_and_appends_bias():
    v = np.array([[0.0, 0.25, 1.0]])
    t = latency_encode(v, 5.0, 25.0, bias_time=3.0)
    np.testing.assert_array_equal(t, [[5.0, 10.0, 25.0, 3.0]])
    t_rev = latency_encode(v, 5.0, 25.0, larger_earlier=True)
    np.testing.assert_array_equal(t_rev, [[25.0, 20.0, 5.0]])


@pytest.mark.parametrize(
    "values, kwargs, match",
    [
        ([[1.5]], {}, r"\[0, 1\]"),
        ([[np.nan]], {}, r"\[0, 1\]"),
        ([0.5], {}, "shape"),
        ([[0.5]], {"t_early": 10.0, "t_late": 10.0}, "t_early < t_late"),
        ([[0.5]], {"t_early": -1.0}, "t_early"),
        ([[0.5]], {"bias_time": -1.0}, "bias_time"),
    ],
)
def test_latency_encode_rejects_bad_input(values, kwargs, match):
    with pytest.raises(ValueError, match=match):
        latency_encode(values, **kwargs)


def test_latency_code_object_equals_function_and_reports_duration():
    v = np.random.default_rng(0).random((7, 4))
    code = LatencyCode(t_early=1.0, t_late=9.0, bias_time=12.0, larger_earlier=True)
    np.testing.assert_array_equal(
        code(v), latency_encode(v, 1.0, 9.0, bias_time=12.0, larger_earlier=True)
    )
    assert code.duration == 12.0
    assert LatencyCode(t_late=9.0, bias_time=None).duration == 9.0


def test_image_latency_encode_by_hand():
    img = np.array([[[0, 51], [255, 26]]], dtype=np.uint8)  # p = 0, 0.2, 1, 0.10196...
    t = image_latency_encode(img, 0.0, 20.0)
    # threshold 0: black silent; t = 20 (1 - p); exact to rounding (1e-12 ms).
    np.testing.assert_allclose(t[0, 1:], [16.0, 0.0, 20.0 * (1 - 26 / 255)], atol=1e-12)
    assert np.isnan(t[0, 0])
    t = image_latency_encode(img, 1.0, 21.0, threshold=0.15, bias_time=0.5)
    assert t.shape == (1, 5)
    # p = 0.2 > 0.15: t = 1 + 20 (0.8 / 0.85); p = 0.102 <= 0.15: silent; bias last.
    np.testing.assert_allclose(t[0, [1, 2, 4]], [1.0 + 20.0 * 0.8 / 0.85, 1.0, 0.5], atol=1e-12)
    assert np.isnan(t[0, 0]) and np.isnan(t[0, 3])


def test_image_latency_is_monotone_and_within_window():
    pixels = np.arange(256, dtype=np.uint8)[None, :]
    t = image_latency_encode(pixels, 2.0, 12.0, threshold=0.1)
    spiking = ~np.isnan(t[0])
    assert np.array_equal(spiking, np.arange(256) / 255 > 0.1)
    assert np.all(np.diff(t[0, spiking]) < 0)  # brighter is earlier
    assert t[0, -1] == 2.0 and np.all(t[0, spiking] < 12.0)


def test_image_code_flattens_row_major_and_checks_range():
    img = np.zeros((2, 3, 4))
    img[1, 2, 1] = 255.0
    t = ImageLatencyCode(t_early=0.0, t_late=5.0)(img)
    assert t.shape == (2, 12)
    assert np.flatnonzero(~np.isnan(t[1])).tolist() == [2 * 4 + 1] and np.isnan(t[0]).all()
    with pytest.raises(ValueError, match="max_value"):
        image_latency_encode(img * 2, max_value=255.0)
    with pytest.raises(ValueError, match="threshold"):
        image_latency_encode(img, threshold=1.0)


# --- SpikeDataset ----------------------------------------------------------------------------


def make_dataset(n=10):
    rows = np.arange(n, dtype=float)
    times = np.column_stack([0.1 * rows, 0.2 * rows, 0.5 * rows])  # column 2 identifies the row
    times[0, 1] = np.nan
    return SpikeDataset(times, np.arange(n) % 3, n_classes=3, duration=7.0, name="toy")


def test_batches_in_order_and_partial_last():
    ds = make_dataset(10)
    batches = list(ds.batches(4))
    assert [len(lab) for _, lab in batches] == [4, 4, 2] and ds.n_batches(4) == 3
    np.testing.assert_array_equal(np.concatenate([t for t, _ in batches]), ds.times)
    assert [len(lab) for _, lab in ds.batches(4, drop_last=True)] == [4, 4]
    assert ds.n_batches(4, drop_last=True) == 2


def test_shuffled_batches_are_a_reproducible_permutation():
    ds = make_dataset(10)

    def order(rng):
        return np.concatenate([t[:, 2] for t, _ in ds.batches(3, shuffle=True, rng=rng)])

    a, b, c = order(5), order(5), order(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(a.tolist()) == sorted(ds.times[:, 2].tolist())
    # Labels travel with their times.
    for t, lab in ds.batches(3, shuffle=True, rng=1):
        rows = [int(np.flatnonzero(ds.times[:, 2] == x)[0]) for x in t[:, 2]]
        np.testing.assert_array_equal(ds.labels[rows], lab)
    # A Generator is advanced, so successive epochs differ.
    gen = np.random.default_rng(0)
    assert not np.array_equal(order(gen), order(gen))
    with pytest.raises(ValueError, match="rng"):
        next(ds.batches(3, shuffle=True))


def test_subset_and_read_only():
    ds = make_dataset(10)
    sub = ds.subset([7, 2])
    assert len(sub) == 2 and sub.n_inputs == 3 and sub.name == "toy"
    np.testing.assert_array_equal(sub.times, ds.times[[7, 2]])
    np.testing.assert_array_equal(sub.labels, [1, 2])
    with pytest.raises(ValueError):
        ds.times[0, 0] = 1.0
    t, _ = next(ds.batches(2))
    t[:] = -1.0  # batches are copies
    assert ds.times[1, 0] != -1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": [0, 3]}, "labels must lie"),
        ({"labels": [0]}, "labels must have shape"),
        ({"labels": [0.0, 1.0]}, "integers"),
        ({"times": [[1.0], [8.0]]}, "duration"),
        ({"times": [[1.0], [-1.0]]}, "duration"),
        ({"duration": 0.0}, "duration"),
        ({"class_names": ("a", "b")}, "class_names"),
        ({"times": [1.0, 2.0]}, "shape"),
    ],
)
def test_spike_dataset_validation(kwargs, match):
    args = {"times": [[1.0], [2.0]], "labels": [0, 1], "n_classes": 3, "duration": 7.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SpikeDataset(**args)
