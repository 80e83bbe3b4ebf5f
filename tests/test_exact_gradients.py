"""Exact-engine gradients against central finite differences of the continuous-time loss.

Losses are linear functionals ``L = sum c * readout`` with random coefficients of the readouts
the losses of the package use (first spike time, ``v_max``, the two voltage means), so that
``dL/dw`` is exactly what the engine's backward pass returns for those readout gradients.

Tolerance: 1e-6 relative, with a floor of 1e-2 of the loss's largest gradient, plus 2e-8
absolute (the rounding error of the difference is absolute: about ``1e-16 |L| / h``).  The
forward pass locates spike times to 1e-13 ms, so with the step ``h = 1e-6`` (nA or ms) the
central difference carries a rounding error of about ``1e-13 |dL/dt| / h ~ 1e-7 |dL/dt|``
plus a truncation error ``h^2 L''' / 6`` far below that.  A perturbation is only compared when
the *event structure* (spike counts and the order of every neuron's events) is unchanged,
since the loss is smooth only then; at most 5 % of the weights may be skipped for that reason.
Measured: worst relative error 1.8e-7 (identical at dt 1.0, 0.5 and 0.1).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_exact_networks import random_input, random_network

from pynn_eventprop.engine.exact import ExactSimulation

NAMES = ("first_spike_time", "v_max", "v_mean_uniform", "v_mean_exponential")
H = 1e-6
RTOL = 1e-6
ATOL = 2e-8  # rounding of the difference: ~1e-16 |L| / H with |L| <= 200


def _close(fd, g, scale):
    """``|fd - g| <= RTOL max(|g|, 1e-2 scale) + ATOL``."""
    return abs(fd - g) <= RTOL * max(abs(g), 1e-2 * scale) + ATOL


def _setup(seed, hidden, dt, silent_output):
    rng = np.random.default_rng(seed)
    out = {"v_thresh": 0.0} if silent_output else {}
    net = random_network(rng, hidden=hidden, out_params=out)
    batch = 2
    inp = random_input(rng, batch, 5, 20.0)
    sim = ExactSimulation(net, dt, batch_size=batch)
    out_pop = len(net.populations) - 1
    size = net.populations[out_pop].size
    coef = {name: rng.normal(size=(batch, size)) for name in NAMES}
    return sim, inp, out_pop, coef, int(round(40.0 / dt))


def _losses(sim, inp, out_pop, coef, n_steps):
    sim.reset()
    result = sim.run(n_steps, sources={0: inp}, keep_for_backward=True)
    ro = sim.readouts(result, out_pop, NAMES)
    values = {n: float((coef[n] * np.where(np.isfinite(ro[n]), ro[n], 0.0)).sum()) for n in NAMES}
    return values, result


def _check(seed, hidden, dt, silent_output, names):
    sim, inp, out_pop, coef, n_steps = _setup(seed, hidden, dt, silent_output)
    base, result = _losses(sim, inp, out_pop, coef, n_steps)
    structure = sim.event_structure(result)
    counts = [result.spikes[p].times.size for p in range(1, out_pop + 1)]
    grads = {n: sim.backward(result, {out_pop: {n: coef[n]}}).weights for n in names}
    compared, skipped, worst = 0, 0, 0.0
    for k in range(len(sim.network.projections)):
        w0 = sim.get_weights(k)
        scale = {n: np.abs(grads[n][k]).max() for n in names}
        for i, j in zip(*np.nonzero(sim.network.projections[k].mask), strict=True):
            values = []
            for sign in (1, -1):
                w = w0.copy()
                w[i, j] += sign * H
                sim.set_weights(k, w)
                val, res = _losses(sim, inp, out_pop, coef, n_steps)
                values.append(val if sim.event_structure(res) == structure else None)
            sim.set_weights(k, w0)
            if values[0] is None or values[1] is None:
                skipped += 1
                continue
            compared += 1
            for n in names:
                fd = (values[0][n] - values[1][n]) / (2 * H)
                g = grads[n][k][i, j]
                err = abs(fd - g) / max(abs(g), 1e-2 * scale[n], 1e-12)
                worst = max(worst, err)
                assert _close(fd, g, scale[n]), (n, k, i, j, fd, g, err)
    assert skipped <= 0.05 * (compared + skipped), (skipped, compared)
    return counts, worst


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.1])
@pytest.mark.parametrize("hidden", [(6,), (6, 5), (5, 4, 4)])
def test_spike_time_and_voltage_mean_gradients(dt, hidden):
    counts, worst = _check(1, hidden, dt, False, NAMES[:1] + NAMES[2:])
    assert min(counts) > 0


@pytest.mark.parametrize("dt", [1.0, 0.1])
def test_voltage_max_gradient_of_silent_outputs(dt):
    _check(2, (6, 5), dt, True, NAMES[1:])


def test_delay_gradients_match_finite_differences():
    """``dL/d(delay) = dL/dt_a`` of the connection's arrivals (same tolerance as the weights)."""
    sim, inp, out_pop, coef, n_steps = _setup(3, (6, 5), 0.5, False)
    names = ("first_spike_time", "v_mean_exponential")
    base, result = _losses(sim, inp, out_pop, coef, n_steps)
    structure = sim.event_structure(result)
    grads = {n: sim.backward(result, {out_pop: {n: coef[n]}}).delays for n in names}
    compared = 0
    for k in range(len(sim.network.projections)):
        d0 = sim.get_delays(k)
        scale = {n: np.abs(grads[n][k]).max() for n in names}
        for i, j in list(zip(*np.nonzero(sim.network.projections[k].mask), strict=True))[::3]:
            values = []
            for sign in (1, -1):
                d = d0.copy()
                d[i, j] += sign * H
                sim.set_delays(k, d)
                val, res = _losses(sim, inp, out_pop, coef, n_steps)
                values.append(val if sim.event_structure(res) == structure else None)
            sim.set_delays(k, d0)
            if None in values:
                continue
            compared += 1
            for n in names:
                fd = (values[0][n] - values[1][n]) / (2 * H)
                g = grads[n][k][i, j]
                assert _close(fd, g, scale[n]), (n, k, i, j, fd, g)
    assert compared > 40


def test_adjoints_sampled_on_the_grid_are_state_sensitivities():
    """``lambda_v`` and ``lambda_i`` at the start of a run equal ``dL/dv`` and ``dL/disyn_exc``
    of the state the run starts from (central differences through ``set_state``)."""
    sim, inp, out_pop, coef, n_steps = _setup(1, (6,), 0.5, False)
    sim.run(20, sources={0: inp})
    state = sim.get_state()
    names = ("first_spike_time", "v_mean_uniform")

    def run_from(pop, key, delta):
        st = copy.deepcopy(state)
        target = st.populations[pop].v if key == "v" else st.populations[pop].synaptic[key]
        target[0, :] += delta
        sim.set_state(st)
        res = sim.run(n_steps - 20, sources={0: inp}, keep_for_backward=True)
        ro = sim.readouts(res, out_pop, names)
        return res, sum((coef[n] * np.where(np.isfinite(ro[n]), ro[n], 0.0)).sum() for n in names)

    res, _ = run_from(1, "v", np.zeros(6))
    lam = sim.backward(res, {out_pop: {n: coef[n] for n in names}}, adjoints=True).adjoints
    assert lam[1]["lambda_v"].shape == (n_steps - 20 + 1, 2, 6)
    for key, name in (("v", "lambda_v"), ("isyn_exc", "lambda_i")):
        for j in range(6):
            delta = np.zeros(6)
            delta[j] = H
            fd = (run_from(1, key, delta)[1] - run_from(1, key, -delta)[1]) / (2 * H)
            assert abs(fd - lam[1][name][0, 0, j]) <= 1e-6 * abs(fd) + ATOL, (key, j)
    assert np.abs(lam[1]["lambda_v"][0, 0]).max() > 1e-3
