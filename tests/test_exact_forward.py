"""Exact-engine forward pass: closed forms, the crossing detector, dt-independence, chunking.

Tolerances: spike times within 1e-9 ms (the root finder stops at 1e-13 ms; what remains is
float64 rounding of the closed form, ~1e-14 relative, accumulated over events), voltages
within 1e-9 mV.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from test_exact_networks import neurons, projection, random_input, random_network, source

from pynn_eventprop.engine.exact import ExactSimulation
from pynn_eventprop.engine.exact.closed_form import (
    IT_M,
    POW,
    THETA,
    _start,
    first_crossing,
    power_bracket,
    power_form,
    power_roots,
    power_start,
    power_starts,
    propagate,
    vdot,
)
from pynn_eventprop.engine.exact.parameters import parameter_rows
from pynn_eventprop.engine.interface import Engine, SpikeTrains
from pynn_eventprop.network import CompiledNetwork


def _psp(t, w, tau_m, tau_s, cm):
    """Analytic PSP (mV) of a current jump ``w`` nA at ``t = 0`` (exp synapse)."""
    if tau_s == tau_m:
        return w / cm * t * np.exp(-t / tau_m)
    return w * tau_m * tau_s / (cm * (tau_s - tau_m)) * (np.exp(-t / tau_s) - np.exp(-t / tau_m))


@pytest.mark.parametrize("receptor,tau_syn", [("excitatory", 5.0), ("inhibitory", 20.0)])
def test_single_psp_matches_the_analytic_formula(receptor, tau_syn):
    w, t_spike, delay = (0.8 if receptor == "excitatory" else -0.8), 3.3, 1.7
    post = neurons("n", 1, tau_syn_E=tau_syn, tau_syn_I=tau_syn, v_thresh=0.0)
    net = CompiledNetwork([source("s", 1), post], [projection(0, 1, [[w]], delay, receptor)])
    sim = ExactSimulation(net, 0.1)
    inp = SpikeTrains.from_lists([[[t_spike]]])
    v = sim.run(300, sources={0: inp}, record={1: ["v"]}).signals[1]["v"][:, 0, 0]
    t = 0.1 * np.arange(1, 301)
    s = np.clip(t - t_spike - delay, 0.0, None)
    expected = -65.0 + _psp(s, w, 20.0, tau_syn, 1.0)
    np.testing.assert_allclose(v, expected, rtol=0, atol=1e-12)


def _dc_spike_times(current, t_on=20.0, t_end=200.0):
    """Analytic spike times of the DC-driven neuron, root-found with brentq on the closed form."""
    theta, tau_m, tau_ref, r = 13.0, 15.0, 2.0, 15.0  # mV, ms, ms, MOhm (cm = 1 nF)
    s = brentq(lambda x: current * r * (1 - math.exp(-x / tau_m)) - theta, 1e-9, 1e3, xtol=1e-15)
    times = [t_on + s]
    while times[-1] + tau_ref + s < t_end:
        times.append(times[-1] + tau_ref + s)
    return np.array(times), tau_ref + s


@pytest.mark.parametrize("dt", [0.1, 1.0])
def test_dc_driven_neuron_interspike_interval(dt):
    pop = neurons("n", 2, tau_m=15.0, tau_refrac=2.0, v_thresh=-52.0, v_reset=-65.0)
    sim = ExactSimulation(CompiledNetwork([pop], []), dt)
    n = int(round(200.0 / dt))
    cur = np.zeros((n, 2))
    on = int(round(20.0 / dt))
    cur[on:] = [1.2, 2.0]
    spikes = sim.run(n, currents={0: cur}).spikes[0].per_neuron(0)
    for j, amp, isi in ((0, 1.2, 21.214), (1, 2.0, 10.520)):
        expected, interval = _dc_spike_times(amp)
        assert abs(interval - isi) < 1e-3
        assert spikes[j].size == expected.size
        np.testing.assert_allclose(spikes[j], expected, rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.diff(spikes[j]), interval, rtol=0, atol=1e-9)


def _run_random(dt, duration=40.0, record=(), chunks=1, seed=3):
    rng = np.random.default_rng(seed)
    net = random_network(rng, hidden=(6, 5), gain=1.5)
    inp = random_input(rng, 2, 5, 25.0, per_neuron=4)
    sim = ExactSimulation(net, dt, batch_size=2)
    n = int(round(duration / dt))
    per = n // chunks
    rec = {p: list(record) for p in (1, 2, 3)}
    results = [sim.run(per, sources={0: inp}, record=rec) for _ in range(chunks)]
    return sim, results


def _times(results, pop, b):
    per = [r.spikes[pop].per_neuron(b) for r in results]
    return [np.concatenate([p[j] for p in per]) for j in range(len(per[0]))]


def test_spike_times_do_not_depend_on_dt():
    """Recording ``v`` makes every grid point an event (the intervals are split there); without
    recording or step currents the grid is not visited at all and the results are identical.
    Measured: 3.3e-12 ms."""
    ref = _run_random(0.01, record=["v"])[1]
    counts = [sum(t.size for t in _times(ref, p, b)) for p in (1, 2, 3) for b in (0, 1)]
    assert min(counts) > 0 and max(t.size for t in _times(ref, 1, 0)) >= 2
    for dt in (1.0, 0.5, 0.1):
        res = _run_random(dt, record=["v"])[1]
        for pop in (1, 2, 3):
            for b in (0, 1):
                for got, want in zip(_times(res, pop, b), _times(ref, pop, b), strict=True):
                    assert got.size == want.size
                    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_recorded_voltage_is_the_exact_value_at_grid_points():
    coarse = _run_random(1.0, record=["v", "isyn_exc"])[1][0].signals
    fine = _run_random(0.1, record=["v", "isyn_exc"])[1][0].signals
    for pop in (1, 2, 3):
        for name in ("v", "isyn_exc"):
            np.testing.assert_allclose(coarse[pop][name], fine[pop][name][9::10], atol=1e-9)


def test_chunked_runs_carry_state_and_spikes_in_flight():
    whole = _run_random(0.5)[1]
    sim, parts = _run_random(0.5, chunks=8)
    for pop in (1, 2, 3):
        for b in (0, 1):
            for got, want in zip(_times(parts, pop, b), _times(whole, pop, b), strict=True):
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_state_moves_to_a_new_engine_with_spikes_in_flight():
    sim, whole = _run_random(0.5)
    first, _ = _run_random(0.5, duration=20.0)
    state = first.get_state()
    assert sum(f.arrival.size for f in state.in_flight.values()) > 0
    second = ExactSimulation(first.network, 0.5, batch_size=2)
    second.set_state(state)
    rng = np.random.default_rng(3)
    random_network(rng, hidden=(6, 5), gain=1.5)
    inp = random_input(rng, 2, 5, 25.0, per_neuron=4)
    rest = second.run(40, sources={0: inp})
    for pop in (1, 2, 3):
        for b in (0, 1):
            want = [t[t > 20.0] for t in _times(whole, pop, b)]
            for got, w in zip(rest.spikes[pop].per_neuron(b), want, strict=True):
                np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)


def _closed_form(s, v, ie, ii, e, tau_m=10.0, tau_e=1.0, tau_i=8.0, cm=0.25):
    """V(s) written independently of the engine (numpy, textbook form)."""
    em = np.exp(-s / tau_m)
    psc = [
        i0 * tau_m * tau / (cm * (tau - tau_m)) * (np.exp(-s / tau) - em)
        for i0, tau in ((ie, tau_e), (ii, tau_i))
    ]
    return v * em + psc[0] + psc[1] + e * tau_m / cm * (1 - em)


def _dense_first_crossing(v, ie, ii, e, d, theta=5.0, **neuron):
    """Reference: first sign change of V - theta on a fine sampling, refined with brentq
    (``neuron``: time constants and capacitance of :func:`_closed_form`)."""
    s = np.linspace(0.0, d, 200001)
    up = np.nonzero(_closed_form(s, v, ie, ii, e, **neuron) >= theta)[0]
    if up.size == 0:
        return -1.0
    k = up[0]
    return brentq(
        lambda x: _closed_form(x, v, ie, ii, e, **neuron) - theta, s[k - 1], s[k], xtol=1e-14
    )


def test_crossing_detector_finds_crossings_between_two_extrema():
    """tau_syn_E != tau_syn_I and currents of opposite sign: V may rise above theta and fall
    back before the end of the interval (two extrema); no crossing may be missed."""
    rng = np.random.default_rng(0)
    pop = neurons("n", 1, tau_m=10.0, tau_syn_E=1.0, tau_syn_I=8.0, cm=0.25, v_thresh=-60.0)
    p = parameter_rows(pop)[0]
    hidden_crossings = 0
    for _ in range(300):
        v, ie, ii = rng.uniform(-10, 4.9), rng.uniform(0, 6), rng.uniform(-6, 3)
        e, d = rng.uniform(-0.5, 0.5), rng.uniform(0.5, 20.0)
        v_end, ie_end, ii_end = propagate(p, v, ie, ii, e, d)
        slope_end = vdot(p, v_end, ie_end, ii_end, e)
        got = first_crossing(p, v, ie, ii, e, d, v_end, slope_end, 1e-13)
        want = _dense_first_crossing(v, ie, ii, e, d)
        hidden_crossings += want >= 0 and v_end < p[7]
        assert (got >= 0) == (want >= 0)
        if want >= 0:
            assert abs(got - want) < 1e-9
    assert hidden_crossings > 5


@pytest.mark.parametrize("k", [2, 4, 8])
def test_power_form_crossing_matches_a_dense_search(k):
    """tau_syn = tau_m/k: the detector works on V as a polynomial of exp(-s/tau_m) (no
    exponential per iteration, the maximum above theta decided without any).  Against the dense
    search of the textbook formula (1e-9 ms: brentq's 1e-14 plus the conditioning of a
    crossing at a slope of 1e-5 mV/ms and more) and against the general detector on the same
    state with the power column cleared (1e-11 ms: two root finders stopping at 1e-13)."""
    rng = np.random.default_rng(k)
    tau_m, cm, theta = 10.0, 0.25, 5.0
    pop = neurons("n", 1, tau_m=tau_m, tau_syn_E=tau_m / k, tau_syn_I=tau_m / k, cm=cm,
                  v_thresh=-65.0 + theta)  # fmt: skip
    p = parameter_rows(pop)[0]
    general = p.copy()
    general[POW] = 0.0  # the general detector on the same state
    assert p[POW] == k
    crossings, grazing = 0, 0
    for _ in range(300):
        v, ie, ii = rng.uniform(-10, 4.9), rng.uniform(-2, 6), rng.uniform(-3, 3)
        e, d = rng.uniform(-0.5, 0.5), rng.uniform(0.5, 20.0)
        v_end, ie_end, ii_end = propagate(p, v, ie, ii, e, d)
        slope_end = vdot(p, v_end, ie_end, ii_end, e)
        got = first_crossing(p, v, ie, ii, e, d, v_end, slope_end, 1e-13)
        other = first_crossing(general, v, ie, ii, e, d, v_end, slope_end, 1e-13)
        want = _dense_first_crossing(v, ie, ii, e, d, theta, tau_m=tau_m, tau_e=tau_m / k,
                                     tau_i=tau_m / k, cm=cm)  # fmt: skip
        assert (got >= 0) == (want >= 0) == (other >= 0)
        crossings += want >= 0
        grazing += want >= 0 and v_end < theta
        if want >= 0:
            assert abs(got - want) < 1e-9
            assert abs(got - other) < 1e-11
    assert crossings > 50 and grazing > 5


@pytest.mark.parametrize("k", [2, 4])
def test_crossings_located_together_equal_those_located_one_by_one(k):
    """:func:`power_roots` interleaves the iterations of many brackets; each must take the
    steps :func:`first_crossing` takes for it alone, so the crossing times are equal bit for
    bit (not merely close), whatever the other brackets do."""
    rng = np.random.default_rng(10 + k)
    pop = neurons("n", 1, tau_m=10.0, tau_syn_E=10.0 / k, tau_syn_I=10.0 / k, cm=0.25,
                  v_thresh=-60.0)  # fmt: skip
    p = tuple(parameter_rows(pop)[0])
    d, theta, it_m, tol = rng.uniform(0.5, 20.0), p[THETA], p[IT_M], 1e-13
    x_end = math.exp(-d * it_m)
    states = [
        (rng.uniform(-10, 4.9), rng.uniform(-2, 6), rng.uniform(-3, 3), rng.uniform(-0.5, 0.5))
        for _ in range(400)
    ]
    want, rows, flags = [], np.empty((7, len(states))), np.empty((2, len(states)), np.bool_)
    for v, ie, ii, e in states:
        v_end, ie_end, ii_end = propagate(p, v, ie, ii, e, d)
        if v_end < theta:
            continue  # only certain crossings are located together
        slope_end = vdot(p, v_end, ie_end, ii_end, e)
        q = len(want)
        want.append(first_crossing(p, v, ie, ii, e, d, v_end, slope_end, tol))
        a1, ak, _, c = power_form(p, v, ie, ii, e)
        rows[:6, q] = (
            a1,
            ak,
            c - theta,
            power_start(p, v, ie, ii, e, x_end, v_end, slope_end),
            x_end,
            1.0,
        )
        flags[0, q] = v_end < theta
    n = len(want)
    assert n > 50
    power_roots(k, rows, flags, tol * it_m * x_end, n)
    got = [-math.log(x) / it_m for x in rows[3, :n]]  # math's log, as first_crossing's
    np.testing.assert_array_equal(got, want)


def _branching_start(lo, hi, flo, fhi, dlo, dhi):
    """The first iterate of the root finder written with branches and a loop that breaks
    (in Python: the same IEEE operations as the compiled code, so the same bits)."""
    y = -flo / (fhi - flo)
    if not (0.0 < y < 1.0):
        y = 0.5
    if math.isfinite(dlo) and math.isfinite(dhi):
        span = hi - lo
        m0, m1 = dlo * span, dhi * span
        c1, c2, c3 = m0, 3.0 * (fhi - flo) - 2.0 * m0 - m1, 2.0 * (flo - fhi) + m0 + m1
        for _ in range(4):
            val = flo + y * (c1 + y * (c2 + y * c3))
            slope = c1 + y * (2.0 * c2 + 3.0 * y * c3)
            if slope == 0.0:
                break
            y = min(max(y - val / slope, 0.0), 1.0)
    x = lo + y * (hi - lo)
    return x if lo < x < hi else 0.5 * (lo + hi)


def test_first_iterates_without_branches_equal_those_with():
    """The root finder's first iterate is computed without branches (selects, so that a loop
    over many brackets is vectorised): one by one (``_start``) and many at once
    (``power_starts``) it must equal, bit for bit, the iterate of the loop with branches, on
    crossings of the power form, on random brackets, with slopes that are not finite (the
    secant point) and with a cubic whose slope is 0 where the steps start (they stop there)."""
    rng = np.random.default_rng(21)
    pop = neurons("n", 1, tau_m=20.0, tau_syn_E=5.0, tau_syn_I=5.0, cm=0.25, v_thresh=-60.0)
    p = tuple(parameter_rows(pop)[0])
    brackets = []
    while len(brackets) < 300:  # crossings in the power form, as the shared path meets them
        v, ie, ii, e = rng.uniform(-10, 4.9), rng.uniform(-2, 6), rng.uniform(-3, 3), 0.1
        d = rng.uniform(0.05, 20.0)
        v_end, ie_end, ii_end = propagate(p, v, ie, ii, e, d)
        if v_end >= p[THETA]:
            x_end = math.exp(-d * p[IT_M])
            brackets.append(power_bracket(p, v, ie, ii, e, x_end, v_end,
                                          vdot(p, v_end, ie_end, ii_end, e)))  # fmt: skip
    for _ in range(300):  # any bracket, slopes of either sign and size
        lo = rng.uniform(-2, 1)
        brackets.append((lo, lo + rng.uniform(1e-6, 3), rng.uniform(0, 2), -rng.uniform(0, 2),
                         rng.normal(0, 10), rng.normal(0, 10)))  # fmt: skip
    for bad in (math.nan, math.inf, -math.inf):
        brackets += [(0.2, 1.0, 0.5, -0.3, bad, 1.0), (0.2, 1.0, 0.5, -0.3, -2.0, bad)]
    brackets.append((0.0, 1.0, 0.75, -0.25, 0.0, 6.0))  # the cubic's slope is 0 at y = 0.75
    want = [_branching_start(*b) for b in brackets]
    assert _branching_start(0.0, 1.0, 0.75, -0.25, 0.0, 6.0) == 0.75  # it stopped at once
    np.testing.assert_array_equal([_start(*b) for b in brackets], want)
    rows = np.full((9, len(brackets)), np.nan)
    for q, (lo, hi, f_lo, f_hi, d_lo, d_hi) in enumerate(brackets):
        rows[[4, 5, 3, 6, 7, 8], q] = lo, hi, f_lo, f_hi, d_lo, d_hi
    power_starts(rows, len(brackets))
    np.testing.assert_array_equal(rows[3], want)


def test_float32_engine_matches_float64():
    rng = np.random.default_rng(3)
    net = random_network(rng, hidden=(6,))
    inp = random_input(rng, 2, 5, 25.0)
    out = {}
    for dtype in (np.float64, np.float32):
        sim = ExactSimulation(net, 0.5, batch_size=2, dtype=dtype)
        res = sim.run(80, sources={0: inp}, record={1: ["v"]}, keep_for_backward=True)
        grads = sim.backward(res, {2: {"first_spike_time": np.ones((2, 3))}})
        out[dtype] = (res.spikes[1].times, res.signals[1]["v"], grads.weights[0])
        assert res.signals[1]["v"].dtype == dtype
    np.testing.assert_allclose(out[np.float32][0], out[np.float64][0], atol=1e-4)
    np.testing.assert_allclose(out[np.float32][2], out[np.float64][2], rtol=1e-3, atol=1e-4)


def test_engine_fulfils_the_contract():
    sim = _run_random(0.5, duration=5.0)[0]
    assert isinstance(sim, Engine)
    sim.check_trainable()
