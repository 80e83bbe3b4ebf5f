"""The test oracle (tests/oracle_lif.py) against analytic facts, and proof that these checks fail.

Every check is a function ``check_x(simulator)`` run once with the oracle (it must pass) and
once with an oracle into which a fault was injected (it must raise ``AssertionError``), so the
checks are known to be able to fail.

Tolerances: the closed forms here are evaluated independently in the test, in float64, on
values of order 10 mV and 100 ms.  Voltages agree to 1e-12 mV (a few hundred ulps of 10 mV);
spike times to 1e-11 ms (brentq locates roots to ``1e-14 + 4 eps |t|`` ms, i.e. below 1e-12 ms
up to t = 1000 ms, plus the rounding of the state carried from spike to spike over up to 90
spikes); integrals (``scipy.integrate.quad`` with 1e-12 tolerances per piece) to 1e-11 mV.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracle_lif import (
    Connections,
    Network,
    Simulator,
    Sources,
    State,
    central_difference,
    neurons,
    simulate,
)
from scipy import optimize

V_TOL, T_TOL, INT_TOL = 1e-12, 1e-11, 1e-11


def psp_kernel(h, tau_m, tau_s, cm):
    """V (mV) a time ``h`` after a 1 nA jump of a current decaying with ``tau_s``, from V = 0."""
    h = np.asarray(h, float)
    if tau_s == tau_m:
        k = h / cm * np.exp(-h / tau_m)
    else:
        k = tau_m * tau_s / (cm * (tau_s - tau_m)) * (np.exp(-h / tau_s) - np.exp(-h / tau_m))
    return np.where(h >= 0, k, 0.0)


def psp_means(weight, arrival, t_stop, tau_m, tau_s, cm):
    """``(1/T) int_0^T w(t) V(t) dt`` of one PSP for ``w = 1`` and ``w = exp(-t/T)``, closed form.

    With ``L = T - arrival`` and ``k = 1/tau + rate``: ``int_0^L exp(-k h) dh = (1 - e^{-kL})/k``
    and ``int_0^L h exp(-k h) dh = (1 - e^{-kL}(1 + kL))/k^2`` (the equal-constants kernel).
    """
    length = t_stop - arrival

    def exp_integral(tau, rate):
        k = 1.0 / tau + rate
        return -math.expm1(-length * k) / k

    def ramp_integral(rate):
        k = 1.0 / tau_m + rate
        return (1.0 - math.exp(-k * length) * (1.0 + k * length)) / k**2

    means = []
    for rate, factor in ((0.0, 1.0), (1.0 / t_stop, math.exp(-arrival / t_stop))):
        if tau_s == tau_m:
            integral = weight / cm * ramp_integral(rate)
        else:
            amp = weight * tau_m * tau_s / (cm * (tau_s - tau_m))
            integral = amp * (exp_integral(tau_s, rate) - exp_integral(tau_m, rate))
        means.append(factor * integral / t_stop)
    return means


def one_input(weight, t_in, delay, receptor="excitatory", **params):
    """One spike source (spiking at ``t_in``) -> one neuron."""
    return Network(
        [Sources([np.array([t_in])]), neurons(1, **params)],
        [Connections(0, 1, np.array([[weight]]), np.array([[delay]]), receptor)],
    )


# --- single PSP --------------------------------------------------------------------------------

PSP = dict(tau_m=10.0, tau_syn_E=4.0, tau_syn_I=2.5, cm=0.7, v_thresh=0.0)  # never fires


@pytest.mark.parametrize(
    ("receptor", "weight", "tau_s"),
    [("excitatory", 0.8, 4.0), ("inhibitory", -0.5, 2.5), ("excitatory", 0.6, 10.0)],
    ids=["exc", "inh", "tau_s=tau_m"],
)
def test_single_psp_matches_formula(receptor, weight, tau_s):
    """V(t) = w K(t - t_arrival) with K the PSP kernel; max, its time and both mean readouts.

    Each compared with the closed form evaluated here: ``t_peak = ln(tau_m/tau_s) tau_m tau_s /
    (tau_m - tau_s)`` after arrival (``tau_m`` for equal constants); the means integrated in
    closed form.  Tolerances: module docstring.
    """
    params = dict(PSP, tau_syn_E=tau_s) if receptor == "excitatory" else PSP
    t_in, delay, t_stop = 3.3, 1.7, 60.0
    arrival = t_in + delay
    result = simulate(one_input(weight, t_in, delay, receptor, **params), t_stop)
    tau_m, cm = params["tau_m"], params["cm"]
    times = np.linspace(0, t_stop, 1201)
    expected = weight * psp_kernel(times - arrival, tau_m, tau_s, cm)
    assert np.abs(result.v(1, times)[:, 0] - (expected - 65.0)).max() < V_TOL
    readouts = result.readouts(1)
    if weight > 0:
        h_peak = (
            tau_m if tau_s == tau_m else math.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)
        )
        assert abs(readouts["v_max_time"][0] - (arrival + h_peak)) < 1e-6  # flat top: sqrt(eps)
        peak = weight * psp_kernel(h_peak, tau_m, tau_s, cm)
        assert abs(readouts["v_max"][0] - peak) < V_TOL
    else:
        assert readouts["v_max"][0] == 0.0  # at t = 0, before the inhibitory arrival
    uniform, exponential = psp_means(weight, arrival, t_stop, tau_m, tau_s, cm)
    assert abs(readouts["v_mean_uniform"][0] - uniform) < INT_TOL
    assert abs(readouts["v_mean_exponential"][0] - exponential) < INT_TOL
    assert np.isinf(readouts["first_spike_time"][0])


# --- checks shared by the oracle and its faulty variants ----------------------------------------

DC = dict(tau_m=15.0, tau_refrac=2.0, v_thresh=-52.0)  # other parameters: PyNN's defaults
DC_AMPLITUDES, DC_START = (1.2, 2.0), 20.0


def dc_isi_analytic(amplitude, tau_m=15.0, tau_refrac=2.0, cm=1.0, theta=13.0, v_reset=0.0):
    """Interval of a neuron under constant current: refractory time plus the time from reset
    to threshold of ``V_inf + (v_r - V_inf) exp(-h/tau_m)``, ``V_inf = tau_m I / cm``."""
    v_inf = tau_m * amplitude / cm
    return tau_refrac + tau_m * math.log((v_inf - v_reset) / (v_inf - theta))


def check_dc_isi(simulator):
    """IF_curr_exp, tau_m 15 ms, tau_refrac 2 ms, v_thresh -52 mV, DC 1.2 / 2.0 nA from 20 ms.

    Every interval over 1 s equals the analytic one (21.214 / 10.520 ms to 3 decimals) within
    ``T_TOL``, and equals the brentq root of the closed form computed here; the first spike comes
    ``tau_m ln(V_inf / (V_inf - theta))`` after the onset (no refractoriness before it).
    """
    net = Network([neurons(2, current_steps=[(DC_START, DC_AMPLITUDES)], **DC)], [])
    result = simulate(net, 1000.0, simulator)
    for i, (amplitude, rounded) in enumerate(zip(DC_AMPLITUDES, (21.214, 10.520), strict=True)):
        spikes = result.spikes[0][i]
        isi = dc_isi_analytic(amplitude)
        assert round(isi, 3) == rounded
        v_inf = 15.0 * amplitude
        root = optimize.brentq(
            lambda h, v_inf=v_inf: v_inf * -math.expm1(-h / 15.0) - 13.0, 0.0, 100.0, xtol=1e-15
        )
        assert abs(root + 2.0 - isi) < 1e-12
        assert abs(spikes[0] - (DC_START + root)) < T_TOL
        assert len(spikes) == 1 + int((1000.0 - spikes[0]) // isi)
        assert np.abs(np.diff(spikes) - isi).max() < T_TOL


def test_dc_interval_without_refractoriness():
    """``tau_refrac = 0``: the membrane restarts from v_reset at the crossing itself, so the
    interval is ``tau_m ln((V_inf - v_r)/(V_inf - theta))`` (``T_TOL``); v_reset 5 mV below
    v_rest checks the reset value too."""
    cell = dict(DC, tau_refrac=0.0, v_reset=-70.0)
    result = simulate(Network([neurons(1, i_offset=1.5, **cell)], []), 300.0)
    isi = dc_isi_analytic(1.5, tau_refrac=0.0, v_reset=-5.0)
    assert len(result.spikes[0][0]) >= 10
    assert np.abs(np.diff(result.spikes[0][0]) - isi).max() < T_TOL


def check_refractory_clamp(simulator):
    """After a spike V stays at v_reset for exactly tau_refrac while the currents evolve.

    One input spike makes the neuron fire; a second arrives during the refractory period.  The
    membrane is v_reset until ``t_spike + tau_refrac`` and then follows the closed form started
    from v_reset with the synaptic current the input has decayed to by then (``V_TOL``).
    """
    params = dict(tau_m=10.0, tau_syn_E=3.0, cm=1.0, v_thresh=-60.0, v_reset=-70.0, tau_refrac=3.0)
    net = Network(
        [Sources([np.array([1.0]), np.array([1.5])]), neurons(1, **params)],
        [Connections(0, 1, np.array([[8.0], [1.0]]), np.array([[1.0], [2.0]]))],
    )
    result = simulate(net, 40.0, simulator)
    t_spike = result.spikes[1][0][0]
    t_end = t_spike + 3.0
    assert 2.0 < t_spike < 3.5  # fired on the first input, before the second arrived
    during = np.linspace(t_spike, t_end, 50, endpoint=False)
    assert np.all(result.v(1, during) == -70.0)
    # current at t_end: both inputs decayed; then V from v_r = -5 mV (frame) in closed form
    i_end = 8.0 * math.exp(-(t_end - 2.0) / 3.0) + 1.0 * math.exp(-(t_end - 3.5) / 3.0)
    h = np.linspace(0.0, 20.0, 201)
    expected = -5.0 * np.exp(-h / 10.0) + i_end * psp_kernel(h, 10.0, 3.0, 1.0)
    assert np.abs(result.v(1, t_end + h)[:, 0] - (expected - 65.0)).max() < V_TOL
    assert len(result.spikes[1][0]) == 1


def grazing_weight(t_stop=30.0):
    """Weight whose PSP peaks exactly at the threshold of :data:`GRAZE` (theta = 5 mV)."""
    tau_m, tau_s, cm = GRAZE["tau_m"], GRAZE["tau_syn_E"], GRAZE["cm"]
    h_peak = math.log(tau_m / tau_s) * tau_m * tau_s / (tau_m - tau_s)
    return 5.0 / float(psp_kernel(h_peak, tau_m, tau_s, cm))


GRAZE = dict(tau_m=10.0, tau_syn_E=2.0, cm=1.0, v_thresh=-60.0)


def check_grazing_crossing(simulator):
    """A PSP peaking 1e-9 mV above threshold fires (it is above for only ~1e-4 ms, far less
    than the sample spacing); one peaking 1e-9 mV below does not."""
    w = grazing_weight()
    above = simulate(one_input(w * (1 + 2e-10), 1.0, 1.0, **GRAZE), 30.0, simulator)
    below = simulate(one_input(w * (1 - 2e-10), 1.0, 1.0, **GRAZE), 30.0, simulator)
    assert len(above.spikes[1][0]) == 1
    assert len(below.spikes[1][0]) == 0


CHECKS = [check_dc_isi, check_refractory_clamp, check_grazing_crossing]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_oracle_passes(check):
    check(Simulator)


# --- injected faults -----------------------------------------------------------------------------


class GridSpikes(Simulator):
    """Fault: spikes (and so resets and refractory periods) happen at the next 0.1 ms grid point."""

    def find_crossing(self, m, s, t_a, t_b):
        t = super().find_crossing(m, s, t_a, t_b)
        return None if t is None else min(math.ceil(t / 0.1 - 1e-9) * 0.1, t_b)


class NoClamp(Simulator):
    """Fault: the membrane is reset but not held during the refractory period."""

    def reset(self, m, s):
        return State(m.v_reset, s.i_e, s.i_i, s.e, clamped=False)


class SamplesOnly(Simulator):
    """Fault: crossings only where samples change sign (no maximisation between samples)."""

    def find_crossing(self, m, s, t_a, t_b):
        if s.clamped:
            return None
        times = np.linspace(t_a, t_b, max(int((t_b - t_a) / 0.05), 8) + 1)
        above = np.flatnonzero(m.voltage(s, times - t_a) >= m.theta)
        if not above.size:
            return None
        lo, hi = times[max(above[0] - 1, 0)], times[above[0]]
        return optimize.brentq(lambda t: float(m.voltage(s, t - t_a)) - m.theta, lo, hi)


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (GridSpikes, check_dc_isi),
        (NoClamp, check_refractory_clamp),
        (SamplesOnly, check_grazing_crossing),
    ],
    ids=["grid-reset", "no-clamp", "samples-only"],
)
def test_checks_detect_injected_fault(fault, check):
    with pytest.raises(AssertionError):
        check(fault)


# --- finite differences --------------------------------------------------------------------------


def test_central_difference_matches_analytic_spike_time_derivative():
    """``dt*/dw = -K(t*) / (w K'(t*))`` for a neuron that one input drives over threshold, with
    ``t*`` the crossing of ``w K``.  Central difference with eps 1e-5 nA: truncation
    ``eps^2 |t'''| / 6`` ~1e-10 and rounding ~1e-12 ms / eps ~1e-7 relative; tolerance 1e-6."""
    w, t_in, delay = 1.6 * grazing_weight(), 1.0, 1.0
    net = one_input(w, t_in, delay, **GRAZE)
    result = simulate(net, 30.0)
    (t_star,) = result.spikes[1][0]
    h = t_star - t_in - delay
    tau_m, tau_s, cm = GRAZE["tau_m"], GRAZE["tau_syn_E"], GRAZE["cm"]
    k = float(psp_kernel(h, tau_m, tau_s, cm))
    dk = (
        tau_m
        * tau_s
        / (cm * (tau_s - tau_m))
        * (-math.exp(-h / tau_s) / tau_s + math.exp(-h / tau_m) / tau_m)
    )
    assert abs(w * k - 5.0) < V_TOL
    fd = central_difference(net, 30.0, lambda r: r.spikes[1][0][0], 0, 0, 0)
    assert fd.counts_unchanged
    assert abs(fd.value - (-k / (w * dk))) < 1e-6 * abs(k / (w * dk))


def test_central_difference_reports_changed_spike_counts():
    """A weight at the edge of firing: the perturbed runs differ in spike count, and say so."""
    net = one_input(grazing_weight(), 1.0, 1.0, **GRAZE)
    fd = central_difference(net, 30.0, lambda r: r.readouts(1)["v_max"][0], 0, 0, 0, eps=1e-6)
    assert not fd.counts_unchanged
