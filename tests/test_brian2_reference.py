"""brian2_reference on its own, against closed-form solutions of the LIF equations.

Brian2 integrates the subthreshold equations exactly between grid points, so its only errors
are the grid placement of events: an arrival is off by less than one Brian2 step, a spike time
(reported as the middle of the step in which the crossing is detected) by less than half a
step plus the error of the ``V`` that crossed, a refractory end by less than one step.  The
tolerances below are these bounds; the gradients (the adjoint integrated backward by Brian2)
are compared with closed-form derivatives and must be first-order accurate: their error at
0.01 ms must be below a fifth of that at 0.1 ms and below 2 %.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from brian2_reference import (  # noqa: E402
    LayerSpec,
    LossSpec,
    NetworkSpec,
    ProjectionSpec,
    SpikeInput,
    backward,
    forward,
    loss_gradients,
)

TAU_M, TAU_S, CM, THETA = 10.0, 5.0, 1.0, 10.0
CELL = dict(tau_m=TAU_M, cm=CM, tau_syn_E=TAU_S, tau_syn_I=3.0, v_rest=0.0, v_reset=0.0)
INPUT_TIMES = (1.0, 3.0)
DELAY = 1.3
DURATION = 20.0


def _psp(s, w=1.0):
    """``V`` (mV) at time ``s`` after a current jump of ``w`` nA (0 before)."""
    s = np.maximum(s, 0.0)
    r = TAU_M / CM
    return w * r * TAU_S / (TAU_S - TAU_M) * (np.exp(-s / TAU_S) - np.exp(-s / TAU_M))


def _v(t, w):
    return sum(_psp(t - t_in - DELAY, w) for t_in in INPUT_TIMES)


def _dv_dt(t, w, h=1e-7):
    return (_v(t + h, w) - _v(t - h, w)) / (2 * h)


def _one_neuron(w, v_thresh, tau_refrac=0.0):
    out = LayerSpec("out", 1, v_thresh=v_thresh, tau_refrac=tau_refrac, **CELL)
    proj = ProjectionSpec("input", "out", [[w]], [[DELAY]])
    return NetworkSpec(1, [out], [proj], DURATION), SpikeInput([[list(INPUT_TIMES)]])


def _crossing(w):
    t = np.linspace(0.0, DURATION, 200001)
    k = np.nonzero(_v(t, w) >= THETA)[0][0]
    lo, hi = t[k - 1], t[k]
    for _ in range(60):  # bisection to 1e-15 ms
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _v(mid, w) < THETA else (lo, mid)
    return hi


def test_tonic_neuron_spike_times_within_the_grid_bounds():
    """Constant current, refractory period: ``t_k = t1 + k (tau_refrac + t1)`` exactly; Brian2
    is within half a step for the first spike and one more step per refractory end."""
    i_offset, tau_refrac = 1.5, 2.0
    t1 = -TAU_M * np.log(1 - THETA / (i_offset * TAU_M / CM))
    out = LayerSpec("out", 1, v_thresh=THETA, tau_refrac=tau_refrac, i_offset=i_offset, **CELL)
    spec = NetworkSpec(1, [out], [], 40.0)
    for dt in (0.1, 0.01):
        _, _, times = forward(spec, SpikeInput([[[]]]), dt).spikes("out")
        k = np.arange(times.size)
        np.testing.assert_array_equal(times.size, 3)
        assert np.all(np.abs(times - (t1 + k * (tau_refrac + t1))) <= (k + 0.5) * dt + 1e-9)


@pytest.mark.parametrize("dt", [0.1, 0.01])
def test_subthreshold_voltage_is_the_psp_sum_up_to_one_step_of_arrival(dt):
    """Below threshold ``V`` is exact but for the arrival times, which are off by less than a
    step: the error is at most ``|w|/cm * dt`` per arrival (the largest slope of a PSP)."""
    w = 2.0
    spec, inputs = _one_neuron(w, 1000.0)
    fwd = forward(spec, inputs, dt)
    t = np.arange(fwd.n_steps + 1) * dt
    error = np.abs(fwd.trace("V")["out"][:, 0, 0] - _v(t, w)).max()
    assert error <= len(INPUT_TIMES) * w / CM * dt
    assert error > 0  # the grid does show


def _gradient(spec, inputs, dt, readout):
    fwd = forward(spec, inputs, dt)
    return backward(fwd, {"out": {readout: np.ones((1, 1))}}).gradients[0][0, 0], fwd


def _first_order(errors):
    assert errors[1] < errors[0] / 5 and errors[1] < 0.02, errors


def test_first_spike_time_gradient_converges_to_the_implicit_derivative():
    """``dt*/dw = -(dV/dw)/(dV/dt)`` at the crossing, ``dV/dw = V/w`` (V is linear in w):
    exercises the adjoint's jump at a spike and the arrival terms."""
    w = 3.0
    spec, inputs = _one_neuron(w, THETA)
    t_star = _crossing(w)
    exact = -(_v(t_star, w) / w) / _dv_dt(t_star, w)
    errors = []
    for dt in (0.1, 0.01):
        grad, fwd = _gradient(spec, inputs, dt, "first_spike_time")
        first = fwd.readouts("out")["first_spike_time"][0, 0]
        assert abs(first - t_star) <= 1.5 * dt
        errors.append(abs(grad - exact) / abs(exact))
    _first_order(errors)


def test_voltage_readout_gradients_converge_to_closed_forms():
    """Non-spiking neuron: ``d v_max/dw = max_t V/w`` and ``d v_mean/dw = (1/T) int V/w``."""
    w = 2.0
    spec, inputs = _one_neuron(w, 1000.0)
    t = np.linspace(0.0, DURATION, 400001)
    u = _v(t, 1.0)
    exact = {"v_max": u.max(), "v_mean_uniform": np.trapezoid(u, t) / DURATION}
    for readout, value in exact.items():
        errors = [
            abs(_gradient(spec, inputs, dt, readout)[0] - value) / value for dt in (0.1, 0.01)
        ]
        _first_order(errors)


@pytest.mark.parametrize("kind", ["ttfs", "max_voltage", "mean_voltage"])
def test_loss_gradients_match_finite_differences(kind):
    rng = np.random.default_rng(3)
    readout = rng.uniform(2.0, 9.0, (3, 4))
    if kind == "ttfs":
        readout[1, 2] = np.inf  # a silent neuron: no gradient
    loss = LossSpec(kind, np.array([0, 3, 1]))
    value, name, grad = loss_gradients(loss, {_name(kind): readout}, 12.0)
    assert name == _name(kind)
    h = 1e-6
    for b, i in [(0, 0), (2, 1), (1, 3)]:
        up, down = readout.copy(), readout.copy()
        up[b, i] += h
        down[b, i] -= h
        fd = (
            loss_gradients(loss, {name: up}, 12.0)[0] - loss_gradients(loss, {name: down}, 12.0)[0]
        ) / (2 * h)
        assert fd == pytest.approx(grad[b, i], rel=1e-6, abs=1e-9)
    if kind == "ttfs":
        assert grad[1, 2] == 0.0


def _name(kind):
    return {"ttfs": "first_spike_time", "max_voltage": "v_max", "mean_voltage": "v_mean_uniform"}[
        kind
    ]


def test_bad_input_is_rejected_early():
    with pytest.raises(ValueError, match="delays must be finite and > 0"):
        ProjectionSpec("input", "out", [[1.0]], [[0.0]])
    with pytest.raises(ValueError, match="tau_syn_E must differ from tau_m"):
        LayerSpec("out", 1, tau_m=5.0, tau_syn_E=5.0)
    with pytest.raises(ValueError, match="v_reset must be < v_thresh"):
        LayerSpec("out", 1, v_reset=-40.0)
    spec, _ = _one_neuron(1.0, 1000.0)
    with pytest.raises(ValueError, match="closer than the Brian2 step"):
        forward(spec, SpikeInput([[[1.0, 1.05]]]), 0.1)
    with pytest.raises(ValueError, match="whole multiple of dt"):
        forward(spec, SpikeInput([[[1.0]]]), 0.3)
    fwd = forward(spec, SpikeInput([[[1.0]]]), 0.1)
    with pytest.raises(ValueError, match="unknown readout"):
        backward(fwd, {"out": {"v_min": np.ones((1, 1))}})
