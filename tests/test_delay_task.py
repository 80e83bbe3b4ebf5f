"""The delay task: the interval between cue and probe is the class, nothing else is."""

from __future__ import annotations

import numpy as np
import pytest

from pynn_eventprop.datasets.delay_task import delay_task_dataset, generate_delay_task


def test_interval_is_the_class_and_onset_is_uninformative():
    times, labels, window = generate_delay_task(2000, n_classes=3, jitter=0.5, n_distractors=2)
    assert times.shape == (2000, 4) and np.bincount(labels).tolist() == [667, 667, 666]
    interval = times[:, 1] - times[:, 0]
    for c, expected in enumerate((30.0, 42.0, 54.0)):
        mine = interval[labels == c]
        assert np.abs(mine - expected).max() <= 1.5 + 1e-12  # jitter clipped at 3 sigma
    # the cue's time alone carries no class information: same distribution in every class
    means = [times[labels == c, 0].mean() for c in range(3)]
    assert np.ptp(means) < 0.5  # U(0, 10): std of a mean of 667 is 0.11
    assert times.min() >= 0 and times.max() <= window == 10.0 + 54.0 + 1.5


def test_seeded_and_splits_differ():
    a = generate_delay_task(50, seed=1)[0]
    np.testing.assert_array_equal(a, generate_delay_task(50, seed=1)[0])
    assert not np.allclose(a, generate_delay_task(50, seed=1, sample_seed=2)[0])


def test_dataset_window():
    data = delay_task_dataset(20, intervals=[25.0, 40.0], onset=5.0, jitter=0.0)
    assert data.duration == 45.0 and data.n_inputs == 2
    np.testing.assert_allclose(np.diff(data.times, axis=1).ravel(),
                               np.where(data.labels == 0, 25.0, 40.0))  # fmt: skip


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(intervals=[20.0]), "intervals must be 2 finite numbers > 0 ms"),
        (dict(intervals=[20.0, 20.0]), "intervals must be distinct"),
        (dict(intervals=[-1.0, 20.0]), "intervals must be 2 finite numbers > 0 ms"),
        (dict(jitter=-0.1), "jitter"),
        (dict(n_classes=1), "n_classes must be an integer >= 2"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        generate_delay_task(10, **kwargs)


def test_example_learns_delays_and_writes_its_outputs(tmp_path):
    """The example's task on a small budget: learned delays beat chance, files are written."""
    from pynn_eventprop.tasks.delays import main

    figures = main(["--epochs", "3", "--train-samples", "512", "--test-samples", "64",
                    "--out", str(tmp_path), "--json", str(tmp_path / "f.json"),
                    "--no-progress"])  # fmt: skip
    assert figures["test_accuracy"] >= 0.9  # 100 % measured; chance is 50 %
    for name in ("history.csv", "history.json", "test_samples.pkl", "training.png", "f.json"):
        assert (tmp_path / name).is_file(), name
