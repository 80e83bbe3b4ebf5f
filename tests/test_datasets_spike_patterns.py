"""The spike-pattern task: reproducible noisy copies of one Poisson pattern per class, several
spikes per input neuron; its go cue and the task script."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pynn_eventprop.datasets import SpikeTrainDataset
from pynn_eventprop.datasets.spike_patterns import spike_pattern_dataset

CLEAN = dict(jitter=0.0, p_drop=0.0, noise_rate=0.0)


def as_set(data, i):
    return [tuple(t) for t in data.spike_times(i)]


def test_without_noise_every_sample_is_its_class_pattern_on_every_split():
    a = spike_pattern_dataset(20, n_classes=4, n_inputs=10, sample_seed=1, **CLEAN)
    b = spike_pattern_dataset(20, n_classes=4, n_inputs=10, sample_seed=2, **CLEAN)
    assert isinstance(a, SpikeTrainDataset) and a.n_inputs == 10 and a.n_classes == 4
    patterns = {}
    for data in (a, b):
        for i, label in enumerate(data.labels):
            patterns.setdefault(label, as_set(data, i))
            assert as_set(data, i) == patterns[label]  # same seed: the same patterns
    assert len({tuple(p) for p in patterns.values()}) == 4  # one pattern per class
    assert np.bincount(a.labels).tolist() == [5, 5, 5, 5]
    assert not np.array_equal(a.labels, b.labels)  # other samples, shuffled otherwise
    other = spike_pattern_dataset(4, n_classes=4, n_inputs=10, seed=1, **CLEAN)
    assert as_set(other, 0) != patterns[other.labels[0]]  # another task


def test_noise_changes_samples_reproducibly_and_keeps_the_rates():
    kwargs = dict(n_samples=400, n_classes=4, n_inputs=20, rate=30.0, duration=200.0,
                  jitter=1.0, p_drop=0.25, noise_rate=5.0, seed=3, sample_seed=7)  # fmt: skip
    data = spike_pattern_dataset(**kwargs)
    again = spike_pattern_dataset(**kwargs)
    np.testing.assert_array_equal(data.times, again.times)
    np.testing.assert_array_equal(data.offsets, again.offsets)
    assert data.times.min() >= 0.0 and data.times.max() < 200.0
    # per sample: 20 neurons x (30 Hz x 0.75 + 5 Hz) x 0.2 s = 110 spikes on average; the
    # 4 patterns themselves are Poisson draws (about 120 +- 11 spikes each), so 15 %
    assert data.counts.mean() == pytest.approx(110.0, rel=0.15)
    several = [np.mean([t.size >= 2 for t in data.spike_times(i)]) for i in range(10)]
    assert min(several) > 0.5  # most neurons fire several times
    same_class = np.flatnonzero(data.labels == data.labels[0])[:2]
    assert as_set(data, same_class[0]) != as_set(data, same_class[1])


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(n_samples=0), ValueError, "n_samples must be an integer >= 1, got 0"),
        (dict(n_classes=1), ValueError, "n_classes must be an integer >= 2, got 1"),
        (dict(rate=0.0), ValueError, r"rate \(Hz\) must be a finite number > 0.0, got 0.0"),
        (dict(duration=-1.0), ValueError, r"duration \(ms\) must be a finite number > 0.0"),
        (dict(jitter=-0.1), ValueError, r"jitter \(ms\) must be a finite number >= 0.0"),
        (dict(p_drop=1.0), ValueError, r"p_drop must be a finite number in \[0, 1\), got 1.0"),
        (dict(p_drop=1.5), ValueError, r"p_drop must be a finite number in \[0.0, 1.0\]"),
        (dict(noise_rate=float("nan")), ValueError, "noise_rate"),
        (dict(seed=1.5), TypeError, "seed must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(change, error, message):
    with pytest.raises(error, match=message):
        spike_pattern_dataset(**change)


def test_go_cue_appends_one_spike_to_every_multi_spike_sample():
    from pynn_eventprop.tasks.temporal import with_go_cue

    data = spike_pattern_dataset(6, n_classes=2, n_inputs=5, duration=50.0)
    cued = with_go_cue(data, 20.0)
    assert cued.n_inputs == 6 and cued.duration == 70.0
    np.testing.assert_array_equal(cued.counts, data.counts + 1)
    for i in range(6):
        times = cued.spike_times(i)
        assert [t.tolist() for t in times[:5]] == [t.tolist() for t in data.spike_times(i)]
        assert times[5].tolist() == [70.0]


def test_task_script_trains_on_all_or_first_spikes(tmp_path):
    from pynn_eventprop.tasks.spike_patterns import main

    small = ["--epochs", "1", "--train-samples", "16", "--validation-samples", "8",
             "--test-samples", "8", "--inputs", "10", "--hidden", "8", "--window", "40",
             "--no-progress"]  # fmt: skip
    for extra in ([], ["--first-spikes"]):
        out = tmp_path / ("first" if extra else "all")
        figures = main([*small, *extra, "--out", str(out), "--json", str(out / "f.json")])
        assert 0.0 <= figures["test_accuracy"] <= 1.0
        assert json.loads((out / "f.json").read_text())["task"]["first_spikes"] == bool(extra)
        assert (out / "history.csv").is_file() and (out / "training.png").is_file()
