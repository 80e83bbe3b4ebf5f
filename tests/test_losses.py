"""Tests of the EventProp losses on readouts: values, exact gradients, predictions, silent
outputs.  A loss reads per-neuron readouts ``(B, N)`` and returns ``dL/dreadout``; how an
engine turns that into weight gradients is tested with the engines (``test_exact_gradients``,
``test_temporal_losses``)."""

import math

import numpy as np
import pytest

from pynn_eventprop.eventprop import (
    AverageVoltageCrossEntropy,
    MaxVoltageCrossEntropy,
    NonFiniteError,
    TTFSCrossEntropy,
    check_finite,
    softmax_cross_entropy,
)

B, N = 5, 3
DURATION = 3.5  # ms; not 1 so that a missing duration factor shows up


def recorded(seed=0):
    """Random readouts of a batch: first spike times in ``(0.1, DURATION - 0.1)`` ms with some
    silent neurons (``inf``), voltage maxima and means (mV) that are distinct reals.

    Sample 0: output 1 silent; sample 2: every output silent; sample 4: the label fires last.
    """
    rng = np.random.default_rng(seed)
    first = rng.uniform(0.1, DURATION - 0.1, (B, N))
    first[0, 1] = np.inf
    first[2, :] = np.inf
    first[4] = [0.5, 1.0, 2.0]
    readouts = {
        "first_spike_time": first,
        "v_max": rng.normal(0.0, 0.4, (B, N)),
        "v_mean_uniform": rng.normal(0.0, 0.4, (B, N)),
        "v_mean_exponential": rng.normal(0.0, 0.4, (B, N)),
    }
    labels = np.array([1, 0, 2, 1, 2])
    return readouts, labels


def central_differences(f, x, eps):
    """dF/dx for every finite entry of x by central differences (x restored afterwards);
    0 where x is not finite."""
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in np.flatnonzero(np.isfinite(flat)):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * eps)
    return grad


# Tolerances of the finite-difference checks: with eps = 1e-6 the truncation error is
# O(eps^2 * third derivative) ~ 1e-12 (derivatives are at most ~ (1/xi)^3 ~ 10 here) and the
# rounding error is O(1e-16 * |L| / eps) ~ 1e-9, so gradients of size ~1e-2..1 must agree to
# atol 1e-7 / rtol 1e-6; a wrong factor (1/B, 1/xi, sign, 1/T) fails by orders of magnitude.
EPS, ATOL, RTOL = 1e-6, 1e-7, 1e-6

LOSSES = [
    TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0),
    TTFSCrossEntropy(xi=0.8, alpha=0.0, beta=6.4),
    TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0, silent_push=0.3, theta=1.0),
    MaxVoltageCrossEntropy(),
    AverageVoltageCrossEntropy(),
    AverageVoltageCrossEntropy("exponential"),
]


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_gradients_match_central_differences(loss):
    readouts, labels = recorded()
    result = loss.evaluate(readouts, labels, DURATION)
    assert set(result.readout_grads) == set(loss.requires)
    largest = 0.0
    for name in loss.requires:
        grad = result.readout_grads[name]
        assert grad.shape == (B, N)

        def f():
            return loss.evaluate(readouts, labels, DURATION).loss

        fd = central_differences(f, readouts[name], EPS)
        np.testing.assert_allclose(grad, fd, RTOL, ATOL, err_msg=name)
        largest = max(largest, np.abs(grad).max())
    assert largest > 1e-2  # not vacuous


def test_ttfs_gradient_signs_and_silent_neurons():
    readouts, labels = recorded()
    result = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0).evaluate(readouts, labels, DURATION)
    grad = result.readout_grads["first_spike_time"]
    assert set(result.readout_grads) == {"first_spike_time"}  # without the silent rule
    # the label neuron should fire earlier (dL/dt > 0), every other spiking neuron later
    fired = np.isfinite(readouts["first_spike_time"])
    label = np.zeros((B, N), bool)
    label[np.arange(B), labels] = True
    assert np.all(grad[fired & label] > 0) and np.all(grad[fired & ~label] < 0)
    assert np.all(grad[~fired] == 0)  # a silent neuron's t = T is a constant
    np.testing.assert_array_equal(result.readout[fired], readouts["first_spike_time"][fired])


def test_ttfs_value_by_hand():
    # two outputs, one sample: t = 1 ms and 1.5 ms, label 1
    loss = TTFSCrossEntropy(xi=2.0, alpha=0.1, beta=4.0)
    r = loss.evaluate({"first_spike_time": np.array([[1.0, 1.5]])}, np.array([1]), 3.0)
    ce = -math.log(math.exp(-1.5 / 2) / (math.exp(-1.0 / 2) + math.exp(-1.5 / 2)))
    assert r.loss == pytest.approx(ce + 0.1 * (math.exp(1.5 / 4) - 1), rel=1e-14)
    np.testing.assert_array_equal(r.readout, [[1.0, 1.5]])
    assert r.predictions.tolist() == [0] and r.correct.tolist() == [False]
    # gradient by hand: dl/dt_1 = (1 - p_1)/xi + alpha/beta exp(t_1/beta), dl/dt_0 = -p_0/xi
    p1 = math.exp(-1.5 / 2) / (math.exp(-1.0 / 2) + math.exp(-1.5 / 2))
    dl_dt1 = (1 - p1) / 2.0 + 0.1 / 4.0 * math.exp(1.5 / 4)
    grad = r.readout_grads["first_spike_time"]
    assert grad[0, 1] == pytest.approx(dl_dt1, rel=1e-12)
    assert grad[0, 0] == pytest.approx(-(1 - p1) / 2.0, rel=1e-12)


def test_uniform_outputs_give_log_n():
    readouts, labels = recorded()
    for loss in (MaxVoltageCrossEntropy(), AverageVoltageCrossEntropy("exponential")):
        name = loss.requires[0]
        same = {name: np.repeat(readouts[name][:, :1], N, axis=1)}
        r = loss.evaluate(same, labels, DURATION)
        np.testing.assert_allclose(r.per_sample, math.log(N), rtol=1e-14)
    # all outputs fire at the same time: the cross-entropy is log N (alpha = 0)
    same = {"first_spike_time": np.full((B, N), 1.25)}
    r = TTFSCrossEntropy(alpha=0.0).evaluate(same, labels, DURATION)
    assert r.loss == pytest.approx(math.log(N), rel=1e-14)


def test_ttfs_silent_outputs_get_no_gradient_and_all_silent_has_no_prediction():
    readouts, labels = recorded()
    r = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0).evaluate(readouts, labels, DURATION)
    assert r.readout[0, 1] == DURATION  # silent neuron counts as the end of the window
    assert r.readout_grads["first_spike_time"][0, 1] == 0
    # sample 2: all silent -> constant loss log N + alpha (exp(T / beta) - 1), no gradient
    assert r.per_sample[2] == pytest.approx(math.log(N) + 0.05 * math.expm1(DURATION / 2.0))
    assert not np.any(r.readout_grads["first_spike_time"][2])
    assert r.predictions[2] == -1 and not r.correct[2]


def test_ttfs_predictions_earliest_ties_and_window_end():
    inf = np.inf
    first = np.array(
        [
            [2.0, inf, 3.0],  # neuron 0 first -> 0
            [inf, 1.8, 1.3],  # neuron 2 first -> 2
            [2.0, inf, 2.0],  # exact tie -> lowest index 0
            [inf, inf, 4.0],  # neuron 2 fires at the window end t = T: beats silence
        ]
    )
    r = TTFSCrossEntropy().evaluate({"first_spike_time": first}, np.array([0, 2, 2, 2]), 4.0)
    assert r.predictions.tolist() == [0, 2, 0, 2]
    assert r.correct.tolist() == [True, True, False, True]
    assert r.accuracy == 0.75


def test_silent_push_term_value_and_gradient():
    readouts, labels = recorded()
    gamma, theta = 0.3, 1.0
    base = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0)
    pushed = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0, silent_push=gamma, theta=theta)
    r0 = base.evaluate(readouts, labels, DURATION)
    r1 = pushed.evaluate(readouts, labels, DURATION)
    label_silent = ~np.isfinite(readouts["first_spike_time"][np.arange(B), labels])
    assert label_silent.tolist() == [True, False, True, False, False]  # samples 0 and 2
    v_max, d_vmax = readouts["v_max"], r1.readout_grads["v_max"]
    for b in range(B):
        if label_silent[b]:
            expected = gamma * (theta - v_max[b, labels[b]])
            assert r1.per_sample[b] - r0.per_sample[b] == pytest.approx(expected, rel=1e-12)
            assert d_vmax[b, labels[b]] == -gamma / B
            assert np.count_nonzero(d_vmax[b]) == 1
        else:
            assert r1.per_sample[b] == r0.per_sample[b]
            assert not np.any(d_vmax[b])
    np.testing.assert_array_equal(
        r1.readout_grads["first_spike_time"], r0.readout_grads["first_spike_time"]
    )
    assert pushed.requires == ("first_spike_time", "v_max")
    assert base.requires == ("first_spike_time",)


def test_max_voltage_logits_predictions_and_gradient():
    readouts, labels = recorded()
    r = MaxVoltageCrossEntropy().evaluate(readouts, labels, DURATION)
    assert MaxVoltageCrossEntropy().requires == ("v_max",)
    np.testing.assert_array_equal(r.readout, readouts["v_max"])
    np.testing.assert_array_equal(r.predictions, readouts["v_max"].argmax(axis=1))
    grad = r.readout_grads["v_max"]
    assert np.all(grad != 0)  # every output of every sample
    # softmax gradients sum to zero over the outputs of each sample
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


def test_average_voltage_reads_the_mean_of_its_weighting():
    readouts, labels = recorded()
    for weighting in ("uniform", "exponential"):
        loss = AverageVoltageCrossEntropy(weighting)
        name = f"v_mean_{weighting}"
        assert loss.requires == (name,)
        r = loss.evaluate(readouts, labels, DURATION)
        np.testing.assert_array_equal(r.readout, readouts[name])
        np.testing.assert_array_equal(r.predictions, readouts[name].argmax(axis=1))
        assert np.all(r.readout_grads[name] != 0)


def test_batch_mean_scaling():
    """The batch's gradients are the mean of the single-sample gradients."""
    readouts, labels = recorded()
    for loss in LOSSES:
        whole = loss.evaluate(readouts, labels, DURATION)
        for b in range(B):
            one = {name: value[b : b + 1] for name, value in readouts.items()}
            single = loss.evaluate(one, labels[b : b + 1], DURATION)
            assert single.loss == pytest.approx(whole.per_sample[b], rel=1e-13)
            for name in loss.requires:
                np.testing.assert_allclose(
                    whole.readout_grads[name][b], single.readout_grads[name][0] / B, rtol=1e-13
                )


def test_layout_and_dtype_do_not_change_results():
    readouts, labels = recorded()
    for loss in LOSSES:
        ref = loss.evaluate(readouts, labels, DURATION)
        fortran = {name: np.asfortranarray(value) for name, value in readouts.items()}
        other = loss.evaluate(fortran, labels, DURATION)
        for name in loss.requires:
            np.testing.assert_array_equal(other.readout_grads[name], ref.readout_grads[name])
        single = {name: value.astype(np.float32) for name, value in readouts.items()}
        r32 = loss.evaluate(single, labels, DURATION)
        # float32 rounding (~1e-7 relative) of the inputs bounds the difference
        np.testing.assert_allclose(r32.loss, ref.loss, rtol=1e-5)


def test_softmax_cross_entropy_is_stable_and_correct():
    z = np.array([[1000.0, 0.0, -1000.0], [0.1, 0.2, 0.3]])
    per, grad = softmax_cross_entropy(z, np.array([1, 2]))
    assert per[0] == pytest.approx(1000.0, rel=1e-15)  # no overflow
    p = np.exp(z[1]) / np.exp(z[1]).sum()
    assert per[1] == pytest.approx(-math.log(p[2]), rel=1e-14)
    np.testing.assert_allclose(grad[1], p - [0, 0, 1], rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"xi": 0.0}, "xi must be"),
        ({"beta": -1.0}, "beta must be"),
        ({"alpha": -0.1}, "alpha must be"),
        ({"alpha": float("nan")}, "alpha must be"),
        ({"silent_push": 0.1}, "theta .* is required"),
        ({"silent_push": -0.1, "theta": 1.0}, "silent_push must be"),
    ],
)
def test_ttfs_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TTFSCrossEntropy(**kwargs)


def test_input_errors_name_the_problem():
    _, labels = recorded()
    loss = TTFSCrossEntropy(silent_push=0.1, theta=1.0)
    readouts = {"first_spike_time": np.ones((B, N)), "v_max": np.zeros((B, N))}
    with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\)"):
        loss.evaluate(readouts, np.array([0, 1, 3, 0, 0]), 1.0)
    with pytest.raises(ValueError, match="labels must lie"):
        loss.evaluate(readouts, np.array([0, -1, 2, 0, 0]), 1.0)
    with pytest.raises(ValueError, match="labels must be integers of shape"):
        loss.evaluate(readouts, labels.astype(float), 1.0)
    with pytest.raises(ValueError, match="needs the readout 'v_max'"):
        loss.evaluate({"first_spike_time": readouts["first_spike_time"]}, labels, 1.0)
    with pytest.raises(ValueError, match="v_max has shape"):
        loss.evaluate({**readouts, "v_max": np.zeros((B - 1, N))}, labels, 1.0)
    with pytest.raises(ValueError, match="duration must be"):
        loss.evaluate(readouts, labels, 0.0)
    with pytest.raises(ValueError, match="weighting must be"):
        AverageVoltageCrossEntropy("linear")


def test_check_finite_names_what_and_where():
    check_finite("loss", 1.5)
    check_finite("counts", np.array([1, 2]))  # integers are always finite
    grad = np.zeros((2, 3))
    grad[1, 2] = np.nan
    grad[0, 1] = np.inf
    with pytest.raises(NonFiniteError) as info:
        check_finite("gradient of projection 'hidden->out'", grad, "epoch 3, batch 7")
    message = str(info.value)
    assert "gradient of projection 'hidden->out'" in message and "epoch 3, batch 7" in message
    assert "1 NaN" in message and "1 +inf" in message and "of 6 entries" in message
    assert info.value.first_index == (0, 1)
    with pytest.raises(FloatingPointError, match="loss is not finite: 1 -inf"):
        check_finite("loss", -np.inf)
