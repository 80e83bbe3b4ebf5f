"""Randman: determinism, shapes and balance, smoothness, and that the classes are separable."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pynn_eventprop.datasets.randman import generate_randman, randman_dataset, randman_points

TASK = dict(n_classes=3, n_units=12, dim=2, seed=5)


def test_same_seed_same_task_other_sample_seed_other_points():
    a, la = generate_randman(n_samples=90, **TASK)
    b, lb = generate_randman(n_samples=90, **TASK)
    c, _ = generate_randman(n_samples=90, sample_seed=1, **TASK)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a, c)
    assert a.shape == (90, 12) and np.bincount(la).tolist() == [30, 30, 30]
    assert a.min() >= 0.0 and a.max() <= 50.0


def test_manifold_is_smooth_and_spans_the_window():
    """Nearby intrinsic coordinates give nearby spike times (Lipschitz bound of the Fourier
    series: |g'| <= 2 pi sum_k k^(1-alpha) a_k b_k / (max - min)); the window is used."""
    x = np.linspace(0, 1, 2001)[:, None]
    f = randman_points(x, np.zeros(2001, int), seed=3, n_classes=1, n_units=8, dim=1)
    assert f.min() == pytest.approx(0.0, abs=1e-3) and f.max() == pytest.approx(1.0, abs=1e-3)
    steps = np.abs(np.diff(f, axis=0)).max()
    assert steps < 0.05  # 1/2000 apart in x: at most 5 % of the window (smooth, alpha = 2)


def test_classes_are_separable_but_not_trivially():
    """A nearest-neighbour classifier on the spike times separates the classes of a 1-d task
    (the manifolds differ), whereas the per-unit mean spike time alone does not."""
    task = dict(n_classes=4, n_units=10, dim=1, seed=2)
    train, lt = generate_randman(n_samples=800, **task)
    test, ls = generate_randman(n_samples=200, sample_seed=1, **task)
    distance = ((test[:, None] - train[None]) ** 2).sum(-1)
    assert (lt[distance.argmin(1)] == ls).mean() > 0.95
    mean_time = np.array([train[lt == c].mean() for c in range(4)])  # one number per class
    guess = np.abs(test.mean(1)[:, None] - mean_time[None]).argmin(1)
    assert (guess == ls).mean() < 0.7


def test_jitter_moves_spikes_by_about_its_standard_deviation():
    clean, _ = generate_randman(n_samples=400, **TASK)
    noisy, _ = generate_randman(n_samples=400, jitter=1.0, **TASK)
    inside = (clean > 5) & (clean < 45)  # away from the clipping at the window's edges
    assert np.std((noisy - clean)[inside]) == pytest.approx(1.0, rel=0.1)


def test_dataset_wraps_the_arrays():
    data = randman_dataset(n_samples=30, t_max=40.0, **TASK)
    assert data.duration == 40.0 and data.n_classes == 3 and data.n_inputs == 12
    assert "Randman" in data.name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_classes=1), "n_classes must be an integer >= 2"),
        (dict(dim=0), "dim must be an integer >= 1"),
        (dict(alpha=0.0), "alpha"),
        (dict(t_min=10.0, t_max=5.0), "t_max"),
        (dict(jitter=-1.0), "jitter"),
        (dict(n_units=2.5), "n_units must be an integer"),
        (dict(n_spikes=0), "n_spikes must be an integer >= 1, got 0"),
        (dict(n_spikes=2.5), "n_spikes must be an integer >= 1, got 2.5"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        generate_randman(**kwargs)


def test_several_spikes_are_the_coordinates_of_a_wider_manifold():
    """Spike ``s`` of unit ``i`` with ``n_spikes = S`` is coordinate ``i S + s`` of the
    one-spike task with ``n_units * S`` units (same seeds, jitter included); one spike per
    unit gives a ``SpikeDataset``."""
    task = {k: v for k, v in TASK.items() if k != "n_units"}
    for jitter in (0.0, 1.0):
        wide, wide_labels = generate_randman(n_samples=6, n_units=12, jitter=jitter, **task)
        times, labels = generate_randman(n_samples=6, n_units=4, n_spikes=3, jitter=jitter,
                                         **task)  # fmt: skip
        np.testing.assert_array_equal(times.reshape(6, 12), wide)
        np.testing.assert_array_equal(labels, wide_labels)
    assert type(randman_dataset(n_samples=4, **TASK)).__name__ == "SpikeDataset"


def test_several_spikes_per_unit():
    """``n_spikes = 3``: every unit fires exactly 3 times in ``[t_min, t_max]`` in every sample,
    each of its 3 spikes ranges over the whole window (its own manifold coordinate, not a
    sub-window), the arrays are determined by the seeds, and the data set is a
    ``SpikeTrainDataset`` holding exactly the generated times."""
    task = dict(TASK, n_spikes=3, t_min=5.0, t_max=65.0)
    times, labels = generate_randman(n_samples=300, **task)
    again, labels_again = generate_randman(n_samples=300, **task)
    other, _ = generate_randman(n_samples=300, sample_seed=1, **task)
    np.testing.assert_array_equal(times, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert times.shape == (300, 12, 3) and not np.allclose(times, other)
    assert times.min() >= 5.0 and times.max() <= 65.0
    span = times.max(axis=0) - times.min(axis=0)  # (unit, spike) over the samples
    assert (span > 0.8 * 60.0).mean() > 0.9  # nearly every coordinate spans the window
    data = randman_dataset(n_samples=300, **task)
    assert type(data).__name__ == "SpikeTrainDataset" and data.n_inputs == 12
    assert data.duration == 65.0 and (data.counts == 36).all()
    for i in (0, 7, 299):
        for unit, spikes in enumerate(data.spike_times(i)):
            np.testing.assert_array_equal(spikes, np.sort(times[i, unit]))


def test_example_takes_several_spikes_and_jitter():
    from pynn_eventprop.tasks.randman import datasets, parse_args

    args = parse_args(["--spikes", "2", "--jitter", "0.5", "--train-samples", "10",
                       "--validation-samples", "5", "--test-samples", "5",
                       "--units", "4"])  # fmt: skip
    train, validation, test = datasets(args)
    assert [len(d) for d in (train, validation, test)] == [10, 5, 5]
    assert (train.counts == 8).all() and train.n_inputs == 4


def test_example_runs_and_writes_its_outputs(tmp_path):
    """The example's task on a tiny budget (recurrent, learned delays): files are written and
    the figures are reported."""
    from pynn_eventprop.tasks.randman import main

    small = ["--epochs", "1", "--hidden", "8", "--classes", "3", "--train-samples", "64",
             "--validation-samples", "32", "--test-samples", "32", "--no-progress",
             "--recurrent-lr", "0.001", "--recurrent-mean", "-0.05"]  # fmt: skip
    figures = main([*small, "--out", str(tmp_path), "--json", str(tmp_path / "f.json")])
    assert 0.0 <= figures["test_accuracy"] <= 1.0 and figures["samples_per_s"] > 0
    settings = figures["settings"]
    assert settings["recurrent"] and settings["learn_delays"]
    assert settings["recurrent_lr"] == 0.001 and settings["recurrent_mean"] == -0.05
    for name in ("history.csv", "history.json", "test_samples.pkl", "training.png", "f.json"):
        assert (tmp_path / name).is_file(), name


def test_recurrent_weights_start_at_the_given_mean_and_spread():
    """``recurrent_mean`` and ``recurrent_weight`` (weight units) set the initial recurrent
    weights: with spread 0 every one equals ``mean * threshold_weight`` (exact)."""
    import pynn_eventprop as sim
    from pynn_eventprop.tasks.randman import DEFAULTS
    from pynn_eventprop.tasks.temporal import build_network, threshold_weight

    settings = replace(DEFAULTS, hidden=6, recurrent_mean=-0.3, recurrent_weight=0.0)
    *_, projections = build_network(settings, n_inputs=4, n_classes=3)
    weights = projections[2].get("weight", format="array")
    sim.end()
    assert projections[2].label == "hidden-hidden" and weights.shape == (6, 6)
    np.testing.assert_array_equal(weights, np.full((6, 6), -0.3 * threshold_weight(settings)))


def test_go_cue_adds_one_input_that_only_drives_the_outputs():
    """``--go-cue``: the data sets get one more input firing ``gap`` ms after the window; it
    projects with the fixed weight ``go_weight`` weight units to every output and to no
    hidden neuron, and is not trained."""
    import pynn_eventprop as sim
    from pynn_eventprop.tasks.randman import DEFAULTS
    from pynn_eventprop.tasks.temporal import build_network, threshold_weight, with_go_cue

    data = randman_dataset(n_samples=6, t_max=40.0, **TASK)
    cued = with_go_cue(data, 15.0)
    assert cued.duration == 55.0 and cued.n_inputs == 13
    np.testing.assert_array_equal(cued.times[:, :12], data.times)
    np.testing.assert_array_equal(cued.times[:, 12], np.full(6, 55.0))
    settings = replace(DEFAULTS, hidden=5, go_cue=15.0, go_weight=7.0)
    inputs, hidden, output, projections = build_network(settings, n_inputs=12, n_classes=3)
    to_hidden = projections[0].get("weight", format="array")
    cue = [p for p in output._simulator.state.projections if p.label == "go-output"][0]
    cue_weights = cue.get("weight", format="array")
    sim.end()
    assert inputs.size == 13 and to_hidden.shape == (13, 5)
    assert np.isfinite(to_hidden[:12]).all() and np.isnan(to_hidden[12]).all()
    assert "go-output" not in [p.label for p in projections]  # not trained
    assert not cue.synapse_type.__class__.__name__.startswith("EventProp")
    np.testing.assert_allclose(cue_weights[12], np.full(3, 7.0 * threshold_weight(settings)))
    assert np.isnan(cue_weights[:12]).all()


def test_go_cue_moves_the_readout_to_the_cue(tmp_path):
    """With the go cue the outputs' voltage maxima (what the max-voltage loss reads) lie just
    after the cue in every recorded test sample (its PSP peaks 6.9 ms after arrival with
    tau_m 10, tau_syn 5 ms), not in the data window."""
    import pickle

    from pynn_eventprop.tasks.randman import main

    small = ["--epochs", "1", "--hidden", "8", "--classes", "3", "--train-samples", "32",
             "--validation-samples", "16", "--test-samples", "16", "--no-progress",
             "--go-cue", "30", "--t-max", "40", "--loss", "max"]  # fmt: skip
    figures = main([*small, "--out", str(tmp_path)])
    assert figures["settings"]["go_cue"] == 30.0
    with open(tmp_path / "test_samples.pkl", "rb") as f:
        block = pickle.load(f)
    for segment in block.segments:
        v = segment.filter(name="v")[0]
        t_peak = v.times.magnitude[np.argmax(v.magnitude, axis=0)]
        assert ((t_peak > 70.0) & (t_peak < 80.0)).all(), t_peak  # cue at 40 + 30 ms, +1 ms delay


@pytest.mark.parametrize(
    "name, kind, weighting",
    [("max", "MaxVoltageCrossEntropy", None), ("average", "AverageVoltageCrossEntropy",
     "uniform"), ("sum_exp", "SumVoltageCrossEntropy", "exponential")],
)  # fmt: skip
def test_loss_names(name, kind, weighting):
    from pynn_eventprop.tasks.temporal import make_loss

    loss = make_loss(name)
    assert type(loss).__name__ == kind and getattr(loss, "weighting", None) == weighting
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("late")


def test_memory_options_reach_the_settings():
    from pynn_eventprop.tasks.randman import DEFAULTS, parse_args
    from pynn_eventprop.tasks.temporal import settings_from

    args = parse_args(["--go-cue", "20", "--max-delay", "12", "--recurrent-self", "0.4",
                       "--recurrent-delay", "10", "30", "--go-weight", "5"])  # fmt: skip
    settings = settings_from(args, DEFAULTS)
    assert settings.go_cue == 20.0 and settings.go_weight == 5.0
    assert settings.delay_bounds == (DEFAULTS.delay_bounds[0], 12.0)
    assert settings.recurrent_self == 0.4 and settings.recurrent_delay == (10.0, 30.0)
    default = settings_from(parse_args([]), DEFAULTS)
    assert default == DEFAULTS  # the options leave the documented default unchanged


def test_go_cue_sets_the_time_of_the_maximum_in_training():
    """The cue is one of the inputs the Trainer feeds, so the training runs see it too: the
    time of every output's voltage maximum (the readout ``v_max_time`` of a training forward
    run) lies 1 ms (delay) + 6.9 ms (PSP peak) after the cue, to within 2 ms."""
    import pynn_eventprop as sim
    from pynn_eventprop.eventprop.training import Trainer
    from pynn_eventprop.tasks.randman import DEFAULTS
    from pynn_eventprop.tasks.temporal import build_network, make_loss, with_go_cue

    data = with_go_cue(randman_dataset(n_samples=8, t_max=40.0, **TASK), 25.0)
    settings = replace(DEFAULTS, hidden=6, go_cue=25.0)
    inputs, _, output, _ = build_network(settings, n_inputs=12, n_classes=3)
    trainer = Trainer(inputs, output, make_loss("max"), duration=85.0, batch_size=8,
                      progress=False)  # fmt: skip
    forward = trainer.step.forward(data.times, data.labels)
    peak = trainer.step.engine.readouts(forward.result, output._index, ("v_max_time",))
    sim.end()
    np.testing.assert_allclose(peak["v_max_time"], 65.0 + 1.0 + 6.93, atol=2.0)


def test_input_fan_in_gives_every_hidden_neuron_k_distinct_inputs():
    """``input_fan_in = K`` (``--input-fan-in K``): every hidden neuron receives exactly K
    distinct input units, the choice depends on the seed only (the same with and without
    recurrence), the weights and delays kept are those of the all-to-all network of the same
    seed; the default is all-to-all, and K outside [1, n_inputs] is refused."""
    import pynn_eventprop as sim
    from pynn_eventprop.tasks.randman import DEFAULTS, parse_args
    from pynn_eventprop.tasks.temporal import build_network, input_mask, settings_from

    def arrays(settings, n_inputs=12):
        *_, projections = build_network(settings, n_inputs=n_inputs, n_classes=3)
        got = [projections[0].get(name, format="array") for name in ("weight", "delay")]
        sim.end()
        assert projections[0].label == "input-hidden"
        return got

    dense_w, dense_d = arrays(replace(DEFAULTS, hidden=9))
    assert np.isfinite(dense_w).all() and dense_w.shape == (12, 9)  # default: all-to-all
    sparse = replace(DEFAULTS, hidden=9, input_fan_in=3)
    weight, delay = arrays(sparse)
    connected = np.isfinite(weight)
    assert (connected.sum(axis=0) == 3).all() and connected.sum() == 27
    assert connected.sum(axis=1).max() < 9  # not the same inputs for every neuron
    np.testing.assert_array_equal(connected, input_mask(sparse, 12))
    np.testing.assert_array_equal(weight[connected], dense_w[connected])
    np.testing.assert_array_equal(delay[connected], dense_d[connected])
    feed_forward = arrays(replace(sparse, recurrent=False, learn_delays=False))[0]
    np.testing.assert_array_equal(np.isfinite(feed_forward), connected)
    other_seed = arrays(replace(sparse, seed=1))[0]
    assert not np.array_equal(np.isfinite(other_seed), connected)
    with_cue = arrays(replace(sparse, go_cue=10.0))[0]  # the cue still reaches no hidden neuron
    assert with_cue.shape == (13, 9) and np.isnan(with_cue[12]).all()
    np.testing.assert_array_equal(np.isfinite(with_cue[:12]), connected)
    assert input_mask(replace(sparse, input_fan_in=12), 12) is None  # every input
    for bad in (0, 13):
        with pytest.raises(ValueError, match="input_fan_in must be an integer in"):
            input_mask(replace(sparse, input_fan_in=bad), 12)
    chosen = settings_from(parse_args(["--input-fan-in", "4", "--input-weight", "0", "0.5"]),
                           DEFAULTS)  # fmt: skip
    assert chosen.input_fan_in == 4 and chosen.input_weight == (0.0, 0.5)
    assert settings_from(parse_args([]), DEFAULTS).input_fan_in is None
