"""Forward pass of the reference (exact) engine against analytic solutions sampled at grid
points: constant current, postsynaptic potentials (also from spikes between grid points),
refractoriness, conductance-based neurons; recurrent excitation; the component order.
"""

import numpy as np
import pytest
from engine_networks import dense, lif, random_input, source, three_layer

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine import make_engine
from pynn_eventprop.engine.exact.parameters import components
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork

# Between spikes the engine integrates exactly: differences are rounding only (~1e-13 mV).
EXACT = 1e-10


def _signals(net, disc, n_steps, sources=None, record=None):
    """``{pop: {name: array}}`` and the spikes recorded by one run of the reference engine."""
    result = make_engine("reference", net, disc).run(n_steps, sources=sources, record=record)
    return result.signals, result.spikes


def test_constant_current_matches_analytic_solution():
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork([lif("a", 1, i_offset=0.5, v_thresh=100.0, cm=1.0, tau_m=20.0)])
    out, _ = _signals(net, disc, 1000, record={0: ("v",)})
    t = np.arange(1, 1001) * 0.1
    expected = -65.0 + 20.0 * 0.5 * (1 - np.exp(-t / 20.0))
    assert np.abs(out[0]["v"][:, 0, 0] - expected).max() < EXACT


@pytest.mark.parametrize("tau_syn", [5.0, 10.0])  # 10 = tau_m exercises the equal-tau limit
def test_postsynaptic_potential_matches_analytic_kernel(tau_syn):
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork(
        [source("in", 1), lif("a", 1, v_thresh=100.0, cm=1.0, tau_syn_E=tau_syn)],
        [dense("p", 0, 1, [[1.0]], delay=10, dt=0.1)],
    )
    raster = SpikeTrains.from_lists([[np.array([1.0])]])
    out, _ = _signals(net, disc, 100, {0: raster}, {1: ("v", "isyn_exc")})
    s = np.arange(1, 101) * 0.1 - 2.0  # time since arrival (spike at 1 ms, delay 1 ms)
    assert np.abs(out[1]["v"][:, 0, 0] + 65.0 - _psp(s, 10.0, tau_syn, 1.0)).max() < EXACT
    i_expected = np.where(s >= -1e-9, np.exp(-np.maximum(s, 0) / tau_syn), 0)
    assert np.abs(out[1]["isyn_exc"][:, 0, 0] - i_expected).max() < EXACT


def _psp(s, tau_m, tau_syn, cm):
    """Analytic voltage (mV) of IF_curr_exp to a 1 nA current jump at s = 0."""
    if tau_syn == tau_m:
        return np.where(s > 0, s / cm * np.exp(-s / tau_m), 0.0)
    kernel = tau_m * tau_syn / (tau_syn - tau_m) * (np.exp(-s / tau_syn) - np.exp(-s / tau_m))
    return np.where(s > 0, kernel / cm, 0.0)


@pytest.mark.parametrize("uniform", [True, False])
def test_off_grid_spike_gives_exact_current_and_voltage(uniform):
    """Precise timing: a spike between grid points is integrated exactly (both paths of the
    arrival kernel: one set of factors for a uniform population, per-neuron otherwise)."""
    disc = LIFDiscretisation(0.1)
    tau_m, tau_syn = (np.full(3, 10.0), np.full(3, 5.0)) if uniform else ([10, 20, 8], [5, 2, 8])
    post = lif("a", 3, v_thresh=100.0)
    post.params["tau_m"] = np.asarray(tau_m, float)
    post.params["tau_syn_E"] = np.asarray(tau_syn, float)
    net = CompiledNetwork([source("in", 1), post], [dense("p", 0, 1, [[2.0, 2.0, 2.0]], dt=0.1)])
    raster = SpikeTrains.from_lists([[np.array([1.03])]])
    out, _ = _signals(net, disc, 80, {0: raster}, {1: ("isyn_exc", "v")})
    s = np.arange(1, 81) * 0.1 - 1.13  # time since arrival (delay 0.1 ms)
    for i in range(3):
        current = np.where(s >= 0, 2.0 * np.exp(-np.maximum(s, 0) / tau_syn[i]), 0.0)
        assert np.abs(out[1]["isyn_exc"][:, 0, i] - current).max() < EXACT
        voltage = 2.0 * _psp(s, tau_m[i], tau_syn[i], 0.5)
        assert np.abs(out[1]["v"][:, 0, i] + 65.0 - voltage).max() < EXACT


def test_recurrent_excitation_changes_activity():
    rng = np.random.default_rng(6)
    disc = LIFDiscretisation(0.5)
    net = three_layer(rng)
    src = random_input(rng, disc, batch=1, size=6, n_steps=60, t_max=20)
    record = {1: ("spikes",)}
    _, plain = _signals(net, disc, 60, {0: src}, record)
    net.projections.append(dense("loop", 1, 1, np.full((8, 8), 0.5), delay=1, dt=0.5))
    _, looped = _signals(net, disc, 60, {0: src}, record)
    assert plain[1].times.size > 0  # the hidden layer fires without the loop
    assert looped[1].times.size > plain[1].times.size


def test_refractory_clamps_voltage_for_tau_refrac():
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork([lif("a", 1, i_offset=5.0, tau_refrac=2.0)])
    out, spikes = _signals(net, disc, 200, record={0: ("spikes", "v")})
    times = spikes[0].per_neuron(0)[0]
    assert times.size >= 3 and np.all(np.diff(times) > 2.0)  # 2 ms refractory at least
    grid = np.arange(1, 201) * 0.1
    # clamped at the grid points within the refractory period after the first spike
    inside = (grid > times[0] + 1e-9) & (grid < times[0] + 2.0 - 1e-9)
    assert inside.sum() >= 19 and np.all(out[0]["v"][inside, 0, 0] == -65.0)


def test_conductance_based_neuron_approaches_reversal_potential():
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork(
        [source("in", 1), lif("c", 1, model="IF_cond_exp", v_thresh=100.0, tau_syn_E=1e6)],
        [dense("p", 0, 1, [[0.5]], dt=0.1)],
    )
    raster = SpikeTrains.from_lists([[np.array([0.0])]])
    out, _ = _signals(net, disc, 2000, {0: raster}, {1: ("v", "gsyn_exc")})
    g_leak = 0.5 / 10.0  # cm / tau_m (uS); g_E ~ 0.5 uS (decays by 2e-4 in 200 ms)
    g = out[1]["gsyn_exc"][-1, 0, 0]
    assert g == pytest.approx(0.5 * np.exp(-199.9 / 1e6), rel=1e-9)
    v_inf = (g_leak * -65.0 + g * 0.0) / (g_leak + g)  # E_rev_E = 0 mV
    # after 200 ms >> cm/g = 1.8 ms the voltage sits at the (slowly moving) equilibrium
    assert out[1]["v"][-1, 0, 0] == pytest.approx(v_inf, abs=1e-3)


def test_components_put_sources_before_targets_and_group_cycles():
    """Populations 4 -> 0 -> 1 <-> 2 -> 3: the cycle {1, 2} is one component, and every
    projection between components goes forward in the order."""
    net = CompiledNetwork(
        [lif(f"p{i}", 1) for i in range(5)],
        [dense(f"{a}-{b}", a, b, [[0.1]]) for a, b in ((0, 1), (1, 2), (2, 1), (2, 3), (4, 0))],
    )
    order = components(net)
    assert sorted(sorted(c) for c in order) == [[0], [1, 2], [3], [4]]
    flat = [n for comp in order for n in comp]
    assert flat.index(4) < flat.index(0) < flat.index(1) < flat.index(3)
    assert flat.index(0) < flat.index(2) < flat.index(3)
