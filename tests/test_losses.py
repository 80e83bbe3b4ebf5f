"""Tests of the EventProp losses: values, exact gradients, predictions, silent outputs."""

import math

import numpy as np
import pytest
from grid_losses import on_grid

from pynn_eventprop.engine.readouts import grid_readouts, time_weights
from pynn_eventprop.eventprop import (
    AverageVoltageCrossEntropy,
    MaxVoltageCrossEntropy,
    NonFiniteError,
    TTFSCrossEntropy,
    check_finite,
    softmax_cross_entropy,
    time_to_phase_gradient,
)

T, B, N = 7, 5, 3
DT = 0.5  # ms; not 1 so that a missing dt factor shows up


def recorded(seed=0):
    """Random recorded arrays with several spikes per neuron and some silent neurons.

    Phases lie in [0.05, 0.95] so that a finite-difference step of 1e-6 keeps them in [0, 1);
    voltages are distinct reals, so maxima are unique by a wide margin (checked below).
    """
    rng = np.random.default_rng(seed)
    spikes = rng.random((T, B, N)) < 0.35
    spikes[:, 0, 1] = False  # sample 0: output 1 silent
    spikes[:, 2, :] = False  # sample 2: all outputs silent
    phase = np.where(spikes, rng.uniform(0.05, 0.95, (T, B, N)), 0.0)
    v = rng.normal(0.0, 0.4, (T, B, N))
    labels = np.array([1, 0, 2, 1, 2])
    return spikes, phase, v, labels


def central_differences(f, x, eps):
    """dF/dx for every entry of x by central differences (x restored afterwards)."""
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * eps)
    return grad


def first_spike_mask(spikes):
    first = spikes.argmax(axis=0)
    mask = np.zeros_like(spikes)
    b, i = np.nonzero(spikes.any(axis=0))
    mask[first[b, i], b, i] = True
    return mask


# Tolerances of the finite-difference checks: with eps = 1e-6 the truncation error is
# O(eps^2 * third derivative) ~ 1e-12 (derivatives are at most ~ (dt/xi)^3 ~ 1e3 here) and the
# rounding error is O(1e-16 * |L| / eps) ~ 1e-9, so gradients of size ~1e-2..1 must agree to
# atol 1e-7 / rtol 1e-6; a wrong factor (1/B, dt, sign, 1/T) fails by orders of magnitude.
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
    spikes, phase, v, labels = recorded()
    # the max-based terms are smooth only if no perturbation changes an argmax
    top2 = np.sort(v, axis=0)[-2:]
    assert np.min(top2[1] - top2[0]) > 1e3 * EPS

    def f():
        return on_grid(loss, spikes, phase, v, labels, DT).loss

    result = on_grid(loss, spikes, phase, v, labels, DT)
    np.testing.assert_allclose(result.dL_dphase, central_differences(f, phase, EPS), RTOL, ATOL)
    np.testing.assert_allclose(result.dL_dv, central_differences(f, v, EPS), RTOL, ATOL)
    assert np.abs(result.dL_dphase).max() + np.abs(result.dL_dv).max() > 1e-3  # not vacuous


def test_ttfs_gradient_only_at_first_spikes_and_phase_sign():
    spikes, phase, v, labels = recorded()
    result = on_grid(TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0), spikes, phase, v, labels, DT)
    nonzero = result.dL_dphase != 0
    assert np.all(first_spike_mask(spikes)[nonzero])  # only at first spikes
    assert not np.any(result.dL_dv)  # without the silent rule no voltage gradient
    # dL/dphase = -dt dL/dt: the label neuron should fire earlier (dL/dt > 0), i.e. its
    # phase should grow (dL/dphase < 0); every other spiking neuron later (dL/dphase > 0)
    t_first = result.readout
    for b in range(B):
        for i in range(N):
            if not spikes[:, b, i].any():
                continue
            k = spikes[:, b, i].argmax()
            assert np.sign(result.dL_dphase[k, b, i]) == (-1 if i == labels[b] else 1)
            assert t_first[b, i] == pytest.approx((k + 1 - phase[k, b, i]) * DT, abs=1e-12)


def test_ttfs_value_by_hand():
    # two outputs, one sample: t = (1 - 0) * 1 ms = 1 ms and (2 - 0.5) * 1 ms = 1.5 ms
    spikes = np.zeros((3, 1, 2), bool)
    phase = np.zeros((3, 1, 2))
    spikes[0, 0, 0] = spikes[1, 0, 1] = spikes[2, 0, 1] = True
    phase[1, 0, 1] = 0.5
    loss = TTFSCrossEntropy(xi=2.0, alpha=0.1, beta=4.0)
    r = on_grid(loss, spikes, phase, None, [1], 1.0)
    ce = -math.log(math.exp(-1.5 / 2) / (math.exp(-1.0 / 2) + math.exp(-1.5 / 2)))
    assert r.loss == pytest.approx(ce + 0.1 * (math.exp(1.5 / 4) - 1), rel=1e-14)
    np.testing.assert_array_equal(r.readout, [[1.0, 1.5]])
    assert r.predictions.tolist() == [0] and r.correct.tolist() == [False]
    # gradient by hand: dl/dt_1 = (1 - p_1)/xi + alpha/beta exp(t_1/beta), dL/dphase = -dt dl/dt
    p1 = math.exp(-1.5 / 2) / (math.exp(-1.0 / 2) + math.exp(-1.5 / 2))
    dl_dt1 = (1 - p1) / 2.0 + 0.1 / 4.0 * math.exp(1.5 / 4)
    assert r.dL_dphase[1, 0, 1] == pytest.approx(-dl_dt1, rel=1e-12)
    assert r.dL_dphase[2, 0, 1] == 0.0  # second spike of the same neuron is not used


def test_uniform_outputs_give_log_n():
    spikes, phase, v, labels = recorded()
    same_v = np.repeat(v[:, :, :1], N, axis=2)
    for loss in (MaxVoltageCrossEntropy(), AverageVoltageCrossEntropy("exponential")):
        r = on_grid(loss, None, None, same_v, labels, DT)
        np.testing.assert_allclose(r.per_sample, math.log(N), rtol=1e-14)
    # all outputs fire at the same time: the cross-entropy is log N (alpha = 0)
    same_spikes = np.repeat(spikes[:, 1:2, :1], N, axis=2).repeat(B, axis=1)
    same_phase = np.repeat(phase[:, 1:2, :1], N, axis=2).repeat(B, axis=1)
    r = on_grid(TTFSCrossEntropy(alpha=0.0), same_spikes, same_phase, None, labels, DT)
    assert r.loss == pytest.approx(math.log(N), rel=1e-14)


def test_ttfs_silent_outputs_get_no_gradient_and_all_silent_has_no_prediction():
    spikes, phase, v, labels = recorded()
    loss = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0)
    r = on_grid(loss, spikes, phase, v, labels, DT)
    assert r.readout[0, 1] == T * DT  # silent neuron counts as the end of the window
    assert not np.any(r.dL_dphase[:, 0, 1])
    # sample 2: all silent -> constant loss log N + alpha (exp(T dt / beta) - 1), no gradient
    assert r.per_sample[2] == pytest.approx(math.log(N) + 0.05 * math.expm1(T * DT / 2.0))
    assert not np.any(r.dL_dphase[:, 2, :])
    assert r.predictions[2] == -1 and not r.correct[2]


def test_ttfs_predictions_earliest_ties_and_window_end():
    spikes = np.zeros((4, 4, 3), bool)
    phase = np.zeros((4, 4, 3))
    spikes[2, 0, 2] = spikes[1, 0, 0] = True  # sample 0: neuron 0 fires at step 2 -> 0
    spikes[1, 1, 1] = spikes[1, 1, 2] = True  # sample 1: same step ...
    phase[1, 1, 1], phase[1, 1, 2] = 0.2, 0.7  # ... but neuron 2 earlier in the step -> 2
    spikes[1, 2, 0] = spikes[1, 2, 2] = True  # sample 2: exact tie -> lowest index 0
    spikes[3, 3, 2] = True  # sample 3: neuron 2 fires at the window end t = T dt, phase 0
    r = on_grid(TTFSCrossEntropy(), spikes, phase, None, [0, 2, 2, 2], 1.0)
    assert r.predictions.tolist() == [0, 2, 0, 2]  # a spike at T dt beats silence
    assert r.correct.tolist() == [True, True, False, True]
    assert r.accuracy == 0.75


def test_silent_push_term_value_and_gradient():
    spikes, phase, v, labels = recorded()
    gamma, theta = 0.3, 1.0
    base = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0)
    pushed = TTFSCrossEntropy(xi=0.5, alpha=0.05, beta=2.0, silent_push=gamma, theta=theta)
    r0 = on_grid(base, spikes, phase, v, labels, DT)
    r1 = on_grid(pushed, spikes, phase, v, labels, DT)
    label_silent = ~spikes[:, np.arange(B), labels].any(axis=0)
    assert label_silent.tolist() == [True, False, True, False, False]  # samples 0 and 2
    for b in range(B):
        if label_silent[b]:
            k = v[:, b, labels[b]].argmax()
            expected = gamma * (theta - v[k, b, labels[b]])
            assert r1.per_sample[b] - r0.per_sample[b] == pytest.approx(expected, rel=1e-12)
            assert r1.dL_dv[k, b, labels[b]] == -gamma / B
            assert np.count_nonzero(r1.dL_dv[:, b, :]) == 1
        else:
            assert r1.per_sample[b] == r0.per_sample[b]
            assert not np.any(r1.dL_dv[:, b, :])
    np.testing.assert_array_equal(r1.dL_dphase, r0.dL_dphase)
    assert pushed.requires == ("first_spike_time", "v_max")
    assert base.requires == ("first_spike_time",)


def test_max_voltage_gradient_only_at_argmax_and_predictions():
    _, _, v, labels = recorded()
    r = on_grid(MaxVoltageCrossEntropy(), None, None, v, labels, DT)
    np.testing.assert_array_equal(r.readout, v.max(axis=0))
    np.testing.assert_array_equal(r.predictions, v.max(axis=0).argmax(axis=1))
    k = v.argmax(axis=0)
    mask = np.zeros(v.shape, bool)
    b, i = np.indices((B, N))
    mask[k, b, i] = True
    assert np.all(r.dL_dv[~mask] == 0) and np.all(r.dL_dv[mask] != 0)
    # softmax gradients sum to zero over the outputs of each sample
    np.testing.assert_allclose(r.dL_dv.sum(axis=(0, 2)), 0.0, atol=1e-15)
    assert not np.any(r.dL_dphase)


def test_average_voltage_readout_and_weights():
    _, _, v, labels = recorded()
    r = on_grid(AverageVoltageCrossEntropy(), None, None, v, labels, DT)
    np.testing.assert_allclose(r.readout, v.mean(axis=0), rtol=1e-13, atol=1e-15)
    assert np.all(r.dL_dv != 0)  # every step of every output gets gradient
    w = time_weights("exponential", T, np.dtype(np.float64))
    np.testing.assert_allclose(w, np.exp(-np.arange(1, T + 1) / T) / T, rtol=1e-15)
    re = on_grid(AverageVoltageCrossEntropy("exponential"), None, None, v, labels, DT)
    np.testing.assert_allclose(re.readout, np.einsum("n,nbi->bi", w, v), rtol=1e-13)
    np.testing.assert_array_equal(re.predictions, re.readout.argmax(axis=1))


def test_batch_mean_scaling():
    """The batch's gradients are the mean of the single-sample gradients."""
    spikes, phase, v, labels = recorded()
    for loss in LOSSES:
        whole = on_grid(loss, spikes, phase, v, labels, DT)
        for b in range(B):
            one = on_grid(
                loss,
                spikes[:, b : b + 1],
                phase[:, b : b + 1],
                v[:, b : b + 1],
                labels[b : b + 1],
                DT,
            )
            assert one.loss == pytest.approx(whole.per_sample[b], rel=1e-13)
            np.testing.assert_allclose(whole.dL_dphase[:, b], one.dL_dphase[:, 0] / B, rtol=1e-13)
            np.testing.assert_allclose(whole.dL_dv[:, b], one.dL_dv[:, 0] / B, rtol=1e-13)


def test_layout_and_dtype_do_not_change_results():
    spikes, phase, v, labels = recorded()
    for loss in LOSSES:
        ref = on_grid(loss, spikes, phase, v, labels, DT)
        other = on_grid(
            loss,
            np.asfortranarray(spikes),
            np.asfortranarray(phase),
            np.asfortranarray(v),
            labels,
            DT,
        )
        np.testing.assert_array_equal(other.dL_dphase, ref.dL_dphase)
        np.testing.assert_array_equal(other.dL_dv, ref.dL_dv)
        r32 = on_grid(loss, spikes, phase.astype(np.float32), v.astype(np.float32), labels, DT)
        assert r32.dL_dphase.dtype == np.float32 and r32.dL_dv.dtype == np.float32
        # float32 rounding (~1e-7 relative) of the inputs bounds the difference
        np.testing.assert_allclose(r32.loss, ref.loss, rtol=1e-5)


def test_softmax_cross_entropy_is_stable_and_correct():
    z = np.array([[1000.0, 0.0, -1000.0], [0.1, 0.2, 0.3]])
    per, grad = softmax_cross_entropy(z, np.array([1, 2]))
    assert per[0] == pytest.approx(1000.0, rel=1e-15)  # no overflow
    p = np.exp(z[1]) / np.exp(z[1]).sum()
    assert per[1] == pytest.approx(-math.log(p[2]), rel=1e-14)
    np.testing.assert_allclose(grad[1], p - [0, 0, 1], rtol=1e-14)
    assert time_to_phase_gradient(np.array([2.0]), 0.25)[0] == -0.5


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
    spikes, phase, v, labels = recorded()
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
    with pytest.raises(ValueError, match="unknown readout"):
        grid_readouts(spikes, phase, v, ["v_min"], DT)


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
