"""Forward pass of both engines against analytic solutions, and the tick-based grid engine's
internal consistency.

The reference engine (exact, event-driven) and the grid engine (the tick-based scheme the
SpiNNaker2 model composes) both integrate exactly between events, so on analytic solutions
sampled at grid points both agree to rounding; the grid engine's own paths (compiled loop and
numpy steps, chunked runs, recurrent components, its interpolated crossing) are tested on it.
"""

import numpy as np
import pytest
from engine_networks import dense, lif, random_input, run_dict, source, three_layer

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine import make_engine
from pynn_eventprop.engine.graph import simulation_order
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.engine.simulation import ReferenceEngine
from pynn_eventprop.network import CompiledNetwork

# Between spikes both engines integrate exactly: differences are rounding only (~1e-13 mV).
EXACT = 1e-10

#: The reference (exact) engine and the grid engine of the SpiNNaker2 model, in float64.
ENGINES = {
    "reference": lambda net, disc: make_engine("reference", net, disc),
    "grid": ReferenceEngine,
}


def _signals(engine_name, net, disc, n_steps, sources=None, record=None):
    """``{pop: {name: array}}`` recorded by one run of the named engine."""
    result = ENGINES[engine_name](net, disc).run(n_steps, sources=sources, record=record)
    return result.signals, result.spikes


both_engines = pytest.mark.parametrize("engine", list(ENGINES))


@both_engines
def test_constant_current_matches_analytic_solution(engine):
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork([lif("a", 1, i_offset=0.5, v_thresh=100.0, cm=1.0, tau_m=20.0)])
    out, _ = _signals(engine, net, disc, 1000, record={0: ("v",)})
    t = np.arange(1, 1001) * 0.1
    expected = -65.0 + 20.0 * 0.5 * (1 - np.exp(-t / 20.0))
    assert np.abs(out[0]["v"][:, 0, 0] - expected).max() < EXACT


@both_engines
@pytest.mark.parametrize("tau_syn", [5.0, 10.0])  # 10 = tau_m exercises the equal-tau limit
def test_postsynaptic_potential_matches_analytic_kernel(engine, tau_syn):
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork(
        [source("in", 1), lif("a", 1, v_thresh=100.0, cm=1.0, tau_syn_E=tau_syn)],
        [dense("p", 0, 1, [[1.0]], delay=10, dt=0.1)],
    )
    raster = SpikeTrains.from_lists([[np.array([1.0])]])
    out, _ = _signals(engine, net, disc, 100, {0: raster}, {1: ("v", "isyn_exc")})
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


@both_engines
@pytest.mark.parametrize("uniform", [True, False])
def test_off_grid_spike_gives_exact_current_and_voltage(engine, uniform):
    """Precise timing: a spike between grid points is integrated exactly (both paths of the
    arrival kernel: one set of factors for a uniform population, per-neuron otherwise)."""
    disc = LIFDiscretisation(0.1)
    tau_m, tau_syn = (np.full(3, 10.0), np.full(3, 5.0)) if uniform else ([10, 20, 8], [5, 2, 8])
    post = lif("a", 3, v_thresh=100.0)
    post.params["tau_m"] = np.asarray(tau_m, float)
    post.params["tau_syn_E"] = np.asarray(tau_syn, float)
    net = CompiledNetwork([source("in", 1), post], [dense("p", 0, 1, [[2.0, 2.0, 2.0]], dt=0.1)])
    raster = SpikeTrains.from_lists([[np.array([1.03])]])
    out, _ = _signals(engine, net, disc, 80, {0: raster}, {1: ("isyn_exc", "v")})
    s = np.arange(1, 81) * 0.1 - 1.13  # time since arrival (delay 0.1 ms)
    for i in range(3):
        current = np.where(s >= 0, 2.0 * np.exp(-np.maximum(s, 0) / tau_syn[i]), 0.0)
        assert np.abs(out[1]["isyn_exc"][:, 0, i] - current).max() < EXACT
        voltage = 2.0 * _psp(s, tau_m[i], tau_syn[i], 0.5)
        assert np.abs(out[1]["v"][:, 0, i] + 65.0 - voltage).max() < EXACT


def test_grid_engine_spike_time_is_the_interpolated_crossing():
    disc = LIFDiscretisation(1.0)
    net = CompiledNetwork([lif("a", 1, i_offset=0.3, v_thresh=-60.0, tau_refrac=0.0)])
    engine = ReferenceEngine(net, disc)
    result = engine.run(30, record={0: ("v",)}, keep_for_backward=True)
    out = {0: result.signals[0]}
    raster = result.tape.rasters[0]
    (k,) = np.nonzero(raster.spikes[:, 0, 0])
    k0 = k[0]
    u = -65 + 0.3 * 10 / 0.5 * (1 - np.exp(-(k0 + 1) / 10.0))  # pre-reset voltage at step k0+1
    v_prev = out[0]["v"][k0 - 1, 0, 0]
    phase = (u - (-60.0)) / (u - v_prev)
    assert raster.phase[k0, 0, 0] == pytest.approx(phase, abs=1e-12)
    times = result.spikes[0].per_neuron(0)[0]  # the interface's exact spike times
    assert times[0] == pytest.approx(k0 + 1 - phase, abs=1e-12)
    first = engine.readouts(result, 0, ["first_spike_time"])["first_spike_time"]
    assert first[0, 0] == pytest.approx(k0 + 1 - phase, abs=1e-12)


def _run(net, disc, src, n_steps, **kw):
    sim = ReferenceEngine(net, disc, batch_size=src.batch, **kw)
    return run_dict(sim, n_steps, {0: src}, {1: ("spikes", "v"), 2: ("spikes", "v")})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_kernel_matches_numpy_path(dtype):
    rng = np.random.default_rng(3)
    disc = LIFDiscretisation(0.5)
    net = three_layer(rng)
    src = random_input(rng, disc, batch=3, size=6, n_steps=80, t_max=20)
    fast = _run(net, disc, src, 80, dtype=dtype)
    slow = _run(net, disc, src, 80, dtype=dtype, compiled=False)
    # float64: identical operations up to association order; float32: a few ulp of ~10 mV
    tol = EXACT if dtype == np.float64 else 1e-4
    for i in (1, 2):
        assert np.array_equal(fast[i]["spikes"].spikes, slow[i]["spikes"].spikes)
        assert np.abs(fast[i]["v"] - slow[i]["v"]).max() < tol
        assert np.abs(fast[i]["spikes"].phase - slow[i]["spikes"].phase).max() < tol
    assert fast[2]["spikes"].spikes.sum() > 10  # the comparison covers spiking activity


def test_chunked_runs_equal_one_run():
    rng = np.random.default_rng(4)
    disc = LIFDiscretisation(0.5)
    net = three_layer(rng)
    src = random_input(rng, disc, batch=2, size=6, n_steps=80, t_max=35)
    whole = _run(net, disc, src, 80)
    sim = ReferenceEngine(net, disc, batch_size=2)
    parts = []
    for start, stop in ((0, 30), (30, 31), (31, 80)):  # the engine takes the chunk's spikes
        parts.append(run_dict(sim, stop - start, {0: src}, {2: ("v", "spikes")}))
    v = np.concatenate([p[2]["v"] for p in parts])
    spikes = np.concatenate([p[2]["spikes"].spikes for p in parts])
    assert np.array_equal(spikes, whole[2]["spikes"].spikes)
    assert np.abs(v - whole[2]["v"]).max() < EXACT


def test_recurrent_path_with_zero_recurrent_weights_equals_feed_forward():
    rng = np.random.default_rng(5)
    disc = LIFDiscretisation(0.5)
    net = three_layer(rng)
    src = random_input(rng, disc, batch=2, size=6, n_steps=60, t_max=20)
    plain = _run(net, disc, src, 60)
    net.projections.append(dense("loop", 2, 1, np.zeros((3, 8)), delay=2, dt=0.5))
    looped = _run(net, disc, src, 60)
    for i in (1, 2):
        assert np.array_equal(plain[i]["spikes"].spikes, looped[i]["spikes"].spikes)
        assert np.abs(plain[i]["v"] - looped[i]["v"]).max() < EXACT


def test_recurrent_excitation_changes_activity():
    rng = np.random.default_rng(6)
    disc = LIFDiscretisation(0.5)
    net = three_layer(rng)
    src = random_input(rng, disc, batch=1, size=6, n_steps=60, t_max=20)
    plain = _run(net, disc, src, 60)
    net.projections.append(dense("loop", 1, 1, np.full((8, 8), 0.5), delay=1, dt=0.5))
    looped = _run(net, disc, src, 60)
    assert looped[1]["spikes"].spikes.sum() > plain[1]["spikes"].spikes.sum()


@both_engines
def test_refractory_clamps_voltage_for_tau_refrac(engine):
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork([lif("a", 1, i_offset=5.0, tau_refrac=2.0)])
    out, spikes = _signals(engine, net, disc, 200, record={0: ("spikes", "v")})
    times = spikes[0].per_neuron(0)[0]
    assert times.size >= 3 and np.all(np.diff(times) > 2.0)  # 2 ms refractory at least
    grid = np.arange(1, 201) * 0.1
    # clamped at the grid points within the refractory period after the first spike
    inside = (grid > times[0] + 1e-9) & (grid < times[0] + 2.0 - 1e-9)
    assert inside.sum() >= 19 and np.all(out[0]["v"][inside, 0, 0] == -65.0)


@both_engines
def test_conductance_based_neuron_approaches_reversal_potential(engine):
    disc = LIFDiscretisation(0.1)
    net = CompiledNetwork(
        [source("in", 1), lif("c", 1, model="IF_cond_exp", v_thresh=100.0, tau_syn_E=1e6)],
        [dense("p", 0, 1, [[0.5]], dt=0.1)],
    )
    raster = SpikeTrains.from_lists([[np.array([0.0])]])
    out, _ = _signals(engine, net, disc, 2000, {0: raster}, {1: ("v", "gsyn_exc")})
    g_leak = 0.5 / 10.0  # cm / tau_m (uS); g_E ~ 0.5 uS (decays by 2e-4 in 200 ms)
    g = out[1]["gsyn_exc"][-1, 0, 0]
    assert g == pytest.approx(0.5 * np.exp(-199.9 / 1e6), rel=1e-9)
    v_inf = (g_leak * -65.0 + g * 0.0) / (g_leak + g)  # E_rev_E = 0 mV
    # after 200 ms >> cm/g = 1.8 ms the voltage sits at the (slowly moving) equilibrium
    assert out[1]["v"][-1, 0, 0] == pytest.approx(v_inf, abs=1e-3)


def test_simulation_order_puts_sources_before_targets_and_groups_cycles():
    order = simulation_order(5, [(0, 1), (1, 2), (2, 1), (2, 3), (4, 0)])
    flat = [n for comp in order for n in comp]
    assert [1, 2] in order
    assert flat.index(4) < flat.index(0) < flat.index(1) < flat.index(3)
