"""Tests of the optimisers and learning-rate schedules."""

import copy
import json
import math

import numpy as np
import pytest

from pynn_eventprop.eventprop import (
    SGD,
    Adam,
    ConstantLR,
    CosineDecay,
    ExponentialDecay,
    PerEpoch,
    StepDecay,
    schedule_from_dict,
)

# Hand computations below are in Python floats with the same operation order where it
# matters; comparisons use rel=1e-12, far above float64 rounding of a few operations and far
# below any algorithmic difference (a missing bias correction changes results by > 10 %).


def test_sgd_plain_and_momentum_by_hand():
    w = {"w": np.array([0.0])}
    opt = SGD(0.1, momentum=0.9)
    for expected in (-0.1, -0.29, -0.561):  # buffer 1, 1.9, 2.71 for a constant g = 1
        opt.step(w, {"w": np.array([1.0])})
        assert w["w"][0] == pytest.approx(expected, rel=1e-12)

    w = [np.array([0.0])]
    opt = SGD(0.1, momentum=0.9, nesterov=True)
    for expected in (-0.19, -0.461):  # d = g + mu b: 1.9, 2.71
        opt.step(w, [np.array([1.0])])
        assert w[0][0] == pytest.approx(expected, rel=1e-12)

    w = [np.array([1.0, 2.0])]
    SGD(0.5).step(w, [np.array([2.0, -4.0])])
    np.testing.assert_array_equal(w[0], [0.0, 4.0])


def test_adam_first_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w = {"w": np.array([1.0, -2.0, 0.5])}
    g1, g2 = [0.1, -0.3, 0.0], [0.2, 0.0, 0.0]
    opt = Adam(lr, b1, b2, eps)
    opt.step(w, {"w": np.array(g1)})
    # first step: m_hat = g, v_hat = g^2, so every weight with g != 0 moves by lr (minus eps)
    expected = [1.0 - lr * 0.1 / (0.1 + eps), -2.0 + lr * 0.3 / (0.3 + eps), 0.5]
    np.testing.assert_allclose(w["w"], expected, rtol=1e-12)
    opt.step(w, {"w": np.array(g2)})
    for i in range(3):
        m = b1 * (1 - b1) * g1[i] + (1 - b1) * g2[i]
        v = b2 * (1 - b2) * g1[i] ** 2 + (1 - b2) * g2[i] ** 2
        d = (m / (1 - b1**2)) / (math.sqrt(v / (1 - b2**2)) + eps)
        expected[i] -= lr * d
    np.testing.assert_allclose(w["w"], expected, rtol=1e-12)
    assert opt.step_count == 2


@pytest.mark.parametrize("shape", [(37, 29), (301, 113)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_fused_pass_equals_numpy_arithmetic(dtype, shape):
    """C-contiguous float64 and float32 weights take Adam's compiled one-pass update, other
    layouts the numpy expressions of ``_direction``: the two must round every operation alike
    (bit for bit, float32 in float32 arithmetic; the compiled loop is vectorised, and 37 x 29
    elements run through its SIMD body and its remainder).  301 x 113 elements are above
    every threading layer's serial threshold: with several threads (the default on a machine
    with several cores) the update is split over them, and must not change a bit either."""
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=shape).astype(dtype)
    grads = [(rng.normal(size=shape) * 10.0**k).astype(dtype) for k in (-3, 0, 2, -1)]
    fused, plain = Adam(0.01, weight_decay=0.1), Adam(0.01, weight_decay=0.1)
    w_fused = {"w": w0.copy()}
    w_plain = {"w": np.asfortranarray(w0)}  # not C-contiguous: the numpy path
    for g in grads:
        fused.step(w_fused, {"w": g})
        plain.step(w_plain, {"w": np.asfortranarray(g)})
    assert not np.array_equal(w_fused["w"], w0)
    assert w_fused["w"].dtype == dtype
    np.testing.assert_array_equal(w_fused["w"], w_plain["w"])
    for slot in ("m", "v"):
        np.testing.assert_array_equal(fused._state["w"][slot], plain._state["w"][slot])


def test_weight_decay_modes():
    # decoupled: with zero gradient Adam's direction is 0 and w shrinks by (1 - lr wd) per step
    w = [np.array([2.0, -1.0])]
    opt = Adam(0.1, weight_decay=0.5)
    for _ in range(3):
        opt.step(w, [np.zeros(2)])
    np.testing.assert_allclose(w[0], np.array([2.0, -1.0]) * (1 - 0.05) ** 3, rtol=1e-12)
    # l2: the decay enters the gradient, which Adam normalises: the first step moves by ~lr
    w = [np.array([2.0, -1.0])]
    Adam(0.1, weight_decay=0.5, weight_decay_mode="l2").step(w, [np.zeros(2)])
    np.testing.assert_allclose(w[0], [1.9, -0.9], rtol=1e-7)  # eps = 1e-8 relative to |g|
    # for SGD with momentum the modes differ: l2 feeds the decay into the momentum buffer
    w_l2, w_dec = [np.array([1.0])], [np.array([1.0])]
    sgd_l2 = SGD(0.1, momentum=0.5, weight_decay=0.2, weight_decay_mode="l2")
    sgd_dec = SGD(0.1, momentum=0.5, weight_decay=0.2)
    for _ in range(2):
        sgd_l2.step(w_l2, [np.zeros(1)])
        sgd_dec.step(w_dec, [np.zeros(1)])
    assert w_dec[0][0] == pytest.approx(0.98**2, rel=1e-12)
    # l2 by hand: b = 0.2, w = 0.98; b = 0.5*0.2 + 0.2*0.98 = 0.296, w = 0.98 - 0.0296
    assert w_l2[0][0] == pytest.approx(0.98 - 0.0296, rel=1e-12)


def test_weight_bounds_clip():
    w = {"a": np.array([0.5, -0.5, 0.0])}
    SGD(1.0, w_min=-0.2, w_max=0.3).step(w, {"a": np.array([-1.0, 1.0, 0.1])})
    np.testing.assert_array_equal(w["a"], [0.3, -0.2, -0.1])
    w = {"a": np.array([0.5])}
    SGD(1.0, w_min=0.0).step(w, {"a": np.array([1.0])})
    assert w["a"][0] == 0.0


def test_schedule_values():
    assert [ConstantLR(0.3)(k) for k in (0, 5)] == [0.3, 0.3]
    assert [StepDecay(1.0, 2, 0.5)(k) for k in range(6)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    assert [ExponentialDecay(2.0, 0.5)(k) for k in range(3)] == [2.0, 1.0, 0.5]
    cos = CosineDecay(1.0, 4, lr_min=0.2)
    assert cos(0) == 1.0 and cos(4) == pytest.approx(0.2) and cos(100) == pytest.approx(0.2)
    assert cos(2) == pytest.approx(0.6, rel=1e-12)
    assert cos(1) == pytest.approx(0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, rel=1e-12)
    per_epoch = PerEpoch(StepDecay(1.0, 1, 0.5), steps_per_epoch=3)
    assert [per_epoch(k) for k in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert per_epoch(np.int64(3)) == 0.5


def test_optimiser_follows_its_schedule():
    w = [np.array([0.0])]
    opt = SGD(StepDecay(1.0, 1, 0.5))
    seen = []
    for _ in range(3):
        seen.append(opt.learning_rate)
        opt.step(w, [np.array([1.0])])
    assert seen == [1.0, 0.5, 0.25]
    assert w[0][0] == -1.75


def test_schedule_serialisation_round_trip():
    schedules = [
        ConstantLR(0.1),
        StepDecay(0.1, 3, 0.7),
        ExponentialDecay(0.2, 0.99),
        CosineDecay(0.1, 50, 1e-4),
        PerEpoch(CosineDecay(0.1, 10), 7),
    ]
    for s in schedules:
        spec = json.loads(json.dumps(s.to_dict()))
        assert schedule_from_dict(spec) == s


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ConstantLR(0.0), "lr must be"),
        (lambda: StepDecay(0.1, 0), "step_size must be an integer >= 1"),
        (lambda: CosineDecay(0.1, 10, lr_min=0.5), "lr_min must be"),
        (lambda: PerEpoch(0.1, 5), "schedule must be a Schedule"),
        (lambda: ConstantLR(0.1)(-1), "step must be an integer >= 0"),
        (lambda: schedule_from_dict({"type": "Linear"}), "unknown schedule type"),
        (lambda: SGD(0.1, momentum=1.0), "momentum must be"),
        (lambda: SGD(0.1, nesterov=True), "nesterov=True needs momentum"),
        (lambda: Adam(beta2=1.0), "beta2 must be"),
        (lambda: Adam(weight_decay=-1.0), "weight_decay must be"),
        (lambda: Adam(weight_decay_mode="l1"), "weight_decay_mode must be"),
        (lambda: Adam(w_min=1.0, w_max=0.0), "w_min must be < w_max"),
    ],
)
def test_parameter_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_step_errors():
    opt = Adam()
    with pytest.raises(ValueError, match="same keys"):
        opt.step({"a": np.zeros(2)}, {"b": np.zeros(2)})
    with pytest.raises(ValueError, match="gradient 'a' has shape"):
        opt.step({"a": np.zeros(2)}, {"a": np.zeros(3)})
    with pytest.raises(TypeError, match="writeable floating-point"):
        opt.step({"a": np.zeros(2, int)}, {"a": np.zeros(2)})
    with pytest.raises(TypeError, match="both be mappings or both be sequences"):
        opt.step({"a": np.zeros(2)}, [np.zeros(2)])
    opt.step({"a": np.zeros(2)}, {"a": np.ones(2)})
    with pytest.raises(ValueError, match="holds state for weights \\['a'\\]"):
        opt.step({"b": np.zeros(2)}, {"b": np.ones(2)})
    with pytest.raises(ValueError, match="optimiser state has"):
        opt.step({"a": np.zeros(3)}, {"a": np.ones(3)})


def _random_grads(rng, shapes):
    return {k: rng.normal(size=s) for k, s in shapes.items()}


@pytest.mark.parametrize(
    "make",
    [
        lambda: Adam(PerEpoch(CosineDecay(0.05, 4), 3), weight_decay=1e-2, w_min=-0.8, w_max=0.8),
        lambda: SGD(StepDecay(0.1, 2, 0.5), momentum=0.9, nesterov=True, weight_decay=1e-3),
    ],
    ids=["adam", "sgd"],
)
def test_state_round_trip_is_bit_identical(make):
    shapes = {"input->hidden": (5, 12), "hidden->output": (12, 3)}
    rng = np.random.default_rng(1)
    init = {k: rng.normal(0, 0.5, s) for k, s in shapes.items()}
    grads = [_random_grads(rng, shapes) for _ in range(10)]

    straight = copy.deepcopy(init)
    opt = make()
    for g in grads:
        opt.step(straight, g)

    resumed = copy.deepcopy(init)
    first = make()
    for g in grads[:4]:
        first.step(resumed, g)
    saved = first.state_dict()
    json.dumps(saved["hyperparameters"])  # the settings are JSON-serialisable
    for g in grads[4:6]:  # the saved state is a copy: later updates must not leak into it
        first.step(copy.deepcopy(resumed), g)
    second = make()
    second.load_state_dict(saved)
    assert second.step_count == 4
    for g in grads[4:]:
        second.step(resumed, g)

    for k in shapes:
        np.testing.assert_array_equal(resumed[k], straight[k])  # exact, not approximate
    assert not np.array_equal(straight["hidden->output"], init["hidden->output"])


def test_load_state_dict_checks():
    saved = Adam(0.01).state_dict()
    with pytest.raises(ValueError, match="for optimiser 'Adam', not 'SGD'"):
        SGD(0.01).load_state_dict(saved)
    with pytest.raises(ValueError, match="hyperparameters differ .*lr: saved"):
        Adam(0.02).load_state_dict(saved)
    Adam(0.02).load_state_dict(saved, strict=False)  # deliberate change of learning rate
    bad = Adam(0.01)
    bad.step([np.zeros(2)], [np.ones(2)])
    state = bad.state_dict()
    del state["state"][0]["v"]
    with pytest.raises(ValueError, match="has slots \\['m'\\], Adam needs \\['m', 'v'\\]"):
        Adam(0.01).load_state_dict(state)
