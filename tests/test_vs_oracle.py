"""The exact engine against the independent test oracle (tests/oracle_lif.py).

Networks (tests/oracle_networks.py): 1, 2 and 3 hidden layers, neurons firing 1-4 times with
refractoriness, excitatory and inhibitory projections, real-valued delays of 1-4 ms that differ
within a projection, per-neuron parameters, i_offset, a batch of two input samples.  Every network
is checked to be well conditioned: each threshold crossing has ``dV/dt >= 0.05 mV/ms``, every
local maximum below threshold is at least 0.02 mV below it, no spike is within 1 ms of the end.

Tolerances and why:

* spike times 1e-9 ms.  Both simulators locate crossings to about 1e-12 ms (a voltage rounding
  error of ~1e-14 mV divided by a slope >= 0.05 mV/ms gives < 1e-12 ms); errors propagate through
  at most four layers of synapses, each multiplying a time error by at most ``|w| / (cm slope)``
  ~ 10-40; 1e-9 leaves a margin of 10-100.  The engine's dt must not matter at all (the grid
  only batches work), so the same bound holds at every dt and between two dts.
* voltages (recorded ``v`` at grid points, ``v_max``, the two means) 1e-9 mV: closed forms in
  both, integrals to 1e-12 mV ms per piece (quad) in the oracle; what remains comes from the
  spike times (~1e-12 ms) times PSP slopes of a few mV/ms, far below 1e-9 mV.
* ``v_max_time`` 1e-6 ms, and only for neurons that do not fire (a firing neuron's maximum is the
  threshold, reached at every spike): the maximum is flat, so its time is known only to about
  ``sqrt(2 * 1e-15 mV / |V''|)`` ~ 1e-7 ms.
* weight gradients 1e-6 relative: ``|g - fd| <= 1e-6 (|fd| + max |fd|) + 1e-7``, the max over
  the checked weights of that readout (so that entries near zero in both pass) and 1e-7 for the
  rounding of the difference itself (objective values carry ~1e-14 of rounding, divided by
  ``eps``).  Central differences with ``eps = 1e-6`` nA: truncation ``eps^2 |L'''|/6`` is about
  1e-9 relative here (with ``eps = 1e-4`` it reached 4e-5 for some inhibitory weights, so the
  step matters), and every perturbed run is checked to keep every spike count.

Measured (engine of 2026-11-30), at every dt: spike times within 2.1e-12 ms of the oracle,
readouts within 6e-13 mV, recorded v within 8e-12 mV; gradients within 5e-9 of the bound's
scale (relative error <= 8e-7 even for entries a thousand times smaller than the largest),
identical at dt 1.0, 0.5 and 0.1.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from oracle_lif import Neurons, Sources, central_difference, simulate
from oracle_networks import find_case, well_conditioned

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation, CompiledProjection

T_TOL = 1e-9  # ms
V_TOL = 1e-9  # mV
V_MAX_TIME_TOL = 1e-6  # ms
GRAD_RTOL = 1e-6
FD_EPS = 1e-6  # nA
FD_ATOL = 1e-7  # rounding of a central difference: ~1e-14 / FD_EPS

DTS = [1.0, 0.5, 0.1, 0.01]
GRAD_DTS = [1.0, 0.5, 0.1]
CASES = {
    "1-hidden": dict(hidden=(6,)),
    "2-hidden": dict(hidden=(6, 5)),
    "3-hidden": dict(hidden=(5, 5, 4)),
    # synaptic time constants above tau_m and equal to it (the closed forms' limit case)
    "2-hidden-wide-tau": dict(hidden=(6, 5), wide_time_constants=True),
}
READOUTS = ("first_spike_time", "v_max", "v_mean_uniform", "v_mean_exponential")
#: Weights checked by finite differences per projection in the default run (all when slow).
FD_PER_PROJECTION = 1


@functools.cache
def case(name: str):
    return find_case(1, **CASES[name])


def neuron_pops(c) -> list[int]:
    return [p for p, pop in enumerate(c.network.populations) if isinstance(pop, Neurons)]


@functools.cache
def oracle_runs(name: str):
    c = case(name)
    return [c.simulate(b) for b in range(len(c.inputs))]


# --- the engine, through the Engine contract ---------------------------------------------------


def to_compiled(network) -> CompiledNetwork:
    """The oracle's network as the backend's plain-array description (delays in ms, float)."""
    pops = []
    for p, pop in enumerate(network.populations):
        if isinstance(pop, Sources):
            pops.append(CompiledPopulation(f"pop{p}", pop.size, "spike_source"))
            continue
        v_init = pop.params["v_rest"] if pop.v_init is None else pop.v_init
        zeros = np.zeros(pop.size)
        initial = {"v": v_init.copy(), "isyn_exc": zeros, "isyn_inh": zeros.copy()}
        params = {k: v.copy() for k, v in pop.params.items()}
        pops.append(CompiledPopulation(f"pop{p}", pop.size, "IF_curr_exp", params, initial))
    projs = [
        CompiledProjection(
            f"proj{k}",
            c.pre,
            c.post,
            c.receptor,
            c.weights.copy(),
            np.where(c.connected(), c.delays, 0.0),
            c.connected().copy(),
            True,
        )
        for k, c in enumerate(network.connections)
    ]
    return CompiledNetwork(pops, projs)


def make_exact_engine(network, dt: float, batch: int):
    """The exact engine for ``network`` at step ``dt``, computing every readout of every neuron
    population; the real-valued delays are (re)set through the contract's ``set_delays``."""
    exact = pytest.importorskip("pynn_eventprop.engine.exact")
    cls = getattr(exact, "ExactSimulation", None)
    if cls is None:
        pytest.skip("the exact engine (pynn_eventprop.engine.exact.ExactSimulation) is not there")
    pops = [p for p, pop in enumerate(network.populations) if isinstance(pop, Neurons)]
    compiled = to_compiled(network)
    engine = cls(compiled, LIFDiscretisation(dt), batch_size=batch, readout_populations=pops)
    for k, c in enumerate(network.connections):
        engine.set_delays(k, np.where(c.connected(), c.delays, 0.0))
    return engine


def run_engine(name: str, dt: float, record_v=False, keep=False):
    """``(engine, result)`` of one run of case ``name`` over its duration at step ``dt``."""
    return run_case(case(name), dt, record_v, keep)


def run_case(c, dt: float, record_v=False, keep=False):
    """``(engine, result)`` of one run of a :class:`Case` over its duration at step ``dt``."""
    engine = make_exact_engine(c.network, dt, len(c.inputs))
    names = ["spikes", "v"] if record_v else ["spikes"]
    result = engine.run(
        int(round(c.t_stop / dt)),
        sources={0: SpikeTrains.from_lists(c.inputs)},
        record={p: names for p in neuron_pops(c)},
        keep_for_backward=keep,
    )
    return engine, result


def run_engine_in_chunks(network, inputs, durations, dt, currents=None):
    """Spikes ``{pop: [per sample: per neuron times]}`` of consecutive runs of ``durations`` ms
    (``currents``: {pop: array (total steps, size)}, sliced per run)."""
    engine = make_exact_engine(network, dt, len(inputs))
    pops = [p for p, pop in enumerate(network.populations) if isinstance(pop, Neurons)]
    sources = {0: SpikeTrains.from_lists(inputs)}  # each run takes the spikes of its window
    spikes = {p: [[[] for _ in range(network.populations[p].size)] for _ in inputs] for p in pops}
    start = 0
    for duration in durations:
        n = int(round(duration / dt))
        chunk = {p: x[start : start + n] for p, x in (currents or {}).items()}
        result = engine.run(
            n, sources=sources, currents=chunk, record={p: ["spikes"] for p in pops}
        )
        start += n
        for p in pops:
            for b, per_sample in enumerate(spikes[p]):
                for i, t in enumerate(result.spikes[p].per_neuron(b)):
                    per_sample[i].extend(t)
    return spikes


# --- comparisons -------------------------------------------------------------------------------


def assert_same_spikes(expected, actual, tol=T_TOL, where=""):
    """Equal spike counts per neuron and every time within ``tol`` (lists of arrays)."""
    counts = ([len(t) for t in expected], [len(t) for t in actual])
    assert counts[0] == counts[1], f"{where}: spike counts {counts[0]} != {counts[1]}"
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        err = np.abs(np.asarray(e) - np.sort(np.asarray(a)))
        assert err.max(initial=0.0) <= tol, f"{where} neuron {i}: |dt| {err.max()} > {tol}"


def assert_engine_spikes_match_oracle(c, oracles, result, tol=T_TOL):
    for b, oracle in enumerate(oracles):
        for p in neuron_pops(c):
            per_neuron = result.spikes[p].per_neuron(b)
            assert_same_spikes(oracle.spikes[p], per_neuron, tol, f"sample {b} pop {p}")


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("name", CASES)
def test_spike_times_match_oracle(name, dt):
    """Every spike of every neuron population and sample within ``T_TOL`` of the oracle."""
    _, result = run_engine(name, dt)
    assert_engine_spikes_match_oracle(case(name), oracle_runs(name), result)


def test_spike_times_do_not_depend_on_dt():
    """The 3-hidden-layer network at dt 1.0 and 0.01: the same spikes within ``T_TOL``."""
    name = "3-hidden"
    coarse, fine = (run_engine(name, dt)[1] for dt in (1.0, 0.01))
    for b in range(len(case(name).inputs)):
        for p in neuron_pops(case(name)):
            where = f"sample {b} pop {p}"
            assert_same_spikes(
                coarse.spikes[p].per_neuron(b), fine.spikes[p].per_neuron(b), where=where
            )


@pytest.mark.parametrize("dt", [1.0, 0.1])
def test_chunked_runs_match_oracle(dt):
    """Runs of 23 ms and 27 ms (``sim.run`` twice): spikes in flight (real delays) and the
    membrane, current and refractory state cross the boundary; the joined spikes are the
    oracle's within ``T_TOL``."""
    name, split = "2-hidden", 23.0
    c = case(name)
    oracles = oracle_runs(name)
    # the boundary is crossed by spikes in flight: some neuron with targets fires just before it
    senders = [p for p in neuron_pops(c) if any(k.pre == p for k in c.network.connections)]
    assert any(
        np.any((t > split - 4.0) & (t < split)) for p in senders for t in oracles[0].spikes[p]
    )
    spikes = run_engine_in_chunks(c.network, c.inputs, (split, c.t_stop - split), dt)
    for b, oracle in enumerate(oracles):
        for p in neuron_pops(c):
            assert_same_spikes(oracle.spikes[p], spikes[p][b], where=f"sample {b} pop {p}")


@pytest.mark.parametrize("dt", [1.0, 0.5, 0.1])
def test_step_current_matches_oracle(dt):
    """A current source into the first hidden layer, on from 10 to 30 ms (grid points at every
    dt; the engine holds currents constant over steps): spikes within ``T_TOL``."""
    name, (on, off) = "2-hidden", (10.0, 30.0)
    c = case(name)
    layer = c.network.populations[1]
    p = layer.params
    amplitude = 0.15 * p["cm"] * (p["v_thresh"] - p["v_rest"]) / p["tau_m"]
    steps = [(on, amplitude), (off, np.zeros(layer.size))]
    populations = list(c.network.populations)
    populations[1] = dataclasses.replace(layer, current_steps=steps)
    network = dataclasses.replace(c.network, populations=populations)
    oracles = [simulate(network.with_sources(0, x), c.t_stop) for x in c.inputs]
    for oracle in oracles:
        assert well_conditioned(oracle, neuron_pops(c))
    assert any(
        not np.array_equal(o.spike_counts()[1], r.spike_counts()[1])
        for o, r in zip(oracles, oracle_runs(name), strict=True)
    )  # the current does change the activity
    grid = dt * np.arange(int(round(c.t_stop / dt)))
    current = np.where(((grid >= on) & (grid < off))[:, None], amplitude[None, :], 0.0)
    spikes = run_engine_in_chunks(network, c.inputs, (c.t_stop,), dt, {1: current})
    for b, oracle in enumerate(oracles):
        for q in neuron_pops(c):
            assert_same_spikes(oracle.spikes[q], spikes[q][b], where=f"sample {b} pop {q}")


@pytest.mark.parametrize("dt", [1.0, 0.1])
@pytest.mark.parametrize("name", CASES)
def test_recorded_v_is_exact_at_grid_points(name, dt):
    """``v`` recorded at ``dt, 2 dt, .., T`` equals the oracle's there within ``V_TOL``."""
    c = case(name)
    _, result = run_engine(name, dt, record_v=True)
    grid = dt * np.arange(1, int(round(c.t_stop / dt)) + 1)
    for b, oracle in enumerate(oracle_runs(name)):
        for p in neuron_pops(c):
            err = np.abs(result.signals[p]["v"][:, b, :] - oracle.v(p, grid))
            assert err.max() <= V_TOL, (b, p, err.max())


def readout_pairs(c, oracles, engine, result):
    """``[(pop, sample, engine readouts, oracle readouts)]`` (arrays ``(size,)``)."""
    pairs = []
    for p in neuron_pops(c):
        got = engine.readouts(result, p, (*READOUTS, "v_max_time"))
        for b, oracle in enumerate(oracles):
            pairs.append((p, b, {k: v[b] for k, v in got.items()}, oracle.readouts(p)))
    return pairs


def assert_readouts_match(pairs):
    """First spike time (``T_TOL``, ``inf`` for the same silent neurons), ``v_max`` and the two
    means (``V_TOL``)."""
    for p, b, got, want in pairs:
        fst = (got["first_spike_time"], want["first_spike_time"])
        assert np.array_equal(np.isinf(fst[0]), np.isinf(fst[1])), (p, b)
        finite = np.isfinite(fst[1])
        assert np.abs(fst[0][finite] - fst[1][finite]).max(initial=0) <= T_TOL, (p, b)
        for key in ("v_max", "v_mean_uniform", "v_mean_exponential"):
            err = np.abs(got[key] - want[key])
            assert err.max() <= V_TOL, (p, b, key, err.max())


def assert_v_max_time_matches(pairs):
    """``v_max_time`` of the neurons that never fire within ``V_MAX_TIME_TOL`` (a firing
    neuron's maximum is the threshold, reached at each of its spikes: no single time)."""
    for p, b, got, want in pairs:
        silent = np.isinf(want["first_spike_time"])
        err = np.abs(got["v_max_time"][silent] - want["v_max_time"][silent])
        assert err.max(initial=0) <= V_MAX_TIME_TOL, (p, b, err.max(initial=0))


@pytest.mark.parametrize("dt", DTS)
@pytest.mark.parametrize("name", CASES)
def test_readouts_match_oracle(name, dt):
    """The contract's readouts in continuous time (:func:`assert_readouts_match`)."""
    engine, result = run_engine(name, dt)
    assert_readouts_match(readout_pairs(case(name), oracle_runs(name), engine, result))


@pytest.mark.parametrize("dt", [1.0, 0.1])
@pytest.mark.parametrize("name", CASES)
def test_v_max_time_matches_oracle(name, dt):
    """:func:`assert_v_max_time_matches`."""
    engine, result = run_engine(name, dt)
    assert_v_max_time_matches(readout_pairs(case(name), oracle_runs(name), engine, result))


@pytest.mark.slow
@pytest.mark.parametrize("options", CASES.values(), ids=list(CASES))
def test_many_random_networks_match_oracle(options):
    """Ten more networks of each kind (first accepted seeds from 100, 200, .., 1000): spikes,
    readouts and ``v_max_time`` at dt 1.0 and 0.1, same tolerances."""
    for k in range(1, 11):
        c = find_case(100 * k, **options)
        oracles = [c.simulate(b) for b in range(len(c.inputs))]
        for dt in (1.0, 0.1):
            engine, result = run_case(c, dt)
            assert_engine_spikes_match_oracle(c, oracles, result)
            pairs = readout_pairs(c, oracles, engine, result)
            assert_readouts_match(pairs)
            assert_v_max_time_matches(pairs)


# --- gradients -----------------------------------------------------------------------------------


def readout_coefficients(name: str) -> dict:
    """Fixed random ``dL/dreadout`` for every readout and neuron population: ``L`` is linear in
    the readouts, so its gradient is a weighted sum of the readouts' gradients.  Silent neurons
    get 0 for ``first_spike_time`` (inf; losses replace it by T themselves)."""
    c, rng = case(name), np.random.default_rng(7)
    coeffs = {}
    for p in neuron_pops(c):
        size = c.network.populations[p].size
        for r in READOUTS:
            g = rng.normal(size=(len(c.inputs), size))
            if r == "first_spike_time":
                fired = np.array([[len(t) > 0 for t in o.spikes[p]] for o in oracle_runs(name)])
                g = np.where(fired, g, 0.0)
            coeffs[(p, r)] = g
    return coeffs


def objective(name: str, b: int):
    """``oracle result of sample b -> vector over READOUTS of sum_p,i g[p, r][b, i] r_p,i``."""
    coeffs = readout_coefficients(name)
    pops = neuron_pops(case(name))

    def value(result):
        totals = np.zeros(len(READOUTS))
        for p in pops:
            ro = result.readouts(p)
            for k, r in enumerate(READOUTS):
                x = np.where(np.isfinite(ro[r]), ro[r], 0.0)
                totals[k] += coeffs[(p, r)][b] @ x
        return totals

    return value


def checked_weights(name: str, per_projection: int | None):
    """``(k, i, j)`` of the weights checked: ``per_projection`` random connected entries of every
    projection (all if None)."""
    rng = np.random.default_rng(11)
    chosen = []
    for k, c in enumerate(case(name).network.connections):
        entries = np.argwhere(c.connected())
        if per_projection is not None and len(entries) > per_projection:
            entries = entries[rng.choice(len(entries), per_projection, replace=False)]
        chosen += [(k, int(i), int(j)) for i, j in entries]
    return chosen


@functools.cache
def finite_difference(name: str, k: int, i: int, j: int) -> np.ndarray:
    """Central difference over the batch of the vector :func:`objective` in weight ``(k, i, j)``
    (asserting unchanged spike counts)."""
    c = case(name)
    total = np.zeros(len(READOUTS))
    for b in range(len(c.inputs)):
        fd = central_difference(c.sample(b), c.t_stop, objective(name, b), k, i, j, FD_EPS)
        assert fd.counts_unchanged, f"weight {(k, i, j)} sample {b}: spike count changed"
        total += fd.value
    return total


def engine_gradients(name: str, dt: float, readout: str) -> list:
    engine, result = run_engine(name, dt, keep=True)
    coeffs = readout_coefficients(name)
    grads = {p: {readout: coeffs[(p, readout)]} for p in neuron_pops(case(name))}
    return engine.backward(result, grads).weights


def check_gradients(name: str, dt: float, per_projection: int | None):
    chosen = checked_weights(name, per_projection)
    fd = np.array([finite_difference(name, *w) for w in chosen])  # (n_weights, n_readouts)
    for r, readout in enumerate(READOUTS):
        weights = engine_gradients(name, dt, readout)
        got = np.array([weights[k][i, j] for k, i, j in chosen])
        want = fd[:, r]
        bound = GRAD_RTOL * (np.abs(want) + np.abs(want).max()) + FD_ATOL
        bad = np.abs(got - want) > bound
        assert not bad.any(), (
            f"{readout} at dt {dt}: weights {[chosen[n] for n in np.flatnonzero(bad)]}: "
            f"engine {got[bad]} vs finite differences {want[bad]}"
        )


@pytest.mark.parametrize("dt", GRAD_DTS)
@pytest.mark.parametrize("name", CASES)
def test_gradients_match_finite_differences(name, dt):
    """Engine weight gradients of each readout vs the oracle's central differences
    (``FD_PER_PROJECTION`` weights per projection), ``GRAD_RTOL`` relative."""
    check_gradients(name, dt, FD_PER_PROJECTION)


@pytest.mark.slow
@pytest.mark.parametrize("dt", GRAD_DTS)
@pytest.mark.parametrize("name", CASES)
def test_every_gradient_matches_finite_differences(name, dt):
    """As above for every connected weight of every projection."""
    check_gradients(name, dt, None)


# --- the harness itself --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_cases_cover_what_users_build(name):
    """The generated networks have what the module docstring promises (so the comparisons above
    test it): multi-spike neurons in every layer, refractoriness, inhibition, off-grid delays that
    differ within a projection, per-neuron parameters and i_offset."""
    c = case(name)
    pops = neuron_pops(c)
    counts = [oracle_runs(name)[0].spike_counts()[p] for p in pops]
    assert all((n >= 2).any() and n.max() <= 4 for n in counts)
    assert {conn.receptor for conn in c.network.connections} == {"excitatory", "inhibitory"}
    for conn in c.network.connections:
        d = conn.delays[conn.connected()]
        assert d.min() >= 1.0 and np.unique(d).size == d.size  # distinct, real-valued
        assert np.all(np.abs(d / 0.01 - np.round(d / 0.01)) > 1e-6)  # off the finest grid
    for p in pops:
        params = c.network.populations[p].params
        assert np.all(params["tau_refrac"] > 0) and np.all(params["i_offset"] > 0)
        assert np.unique(params["tau_m"]).size == params["tau_m"].size
    if CASES[name].get("wide_time_constants"):
        tau_m = np.concatenate([c.network.populations[p].params["tau_m"] for p in pops])
        for key in ("tau_syn_E", "tau_syn_I"):
            tau_s = np.concatenate([c.network.populations[p].params[key] for p in pops])
            assert np.any(tau_s == tau_m) and np.any(tau_s > tau_m + 1.0)


def test_spike_comparison_can_fail():
    """A shift of 2e-9 ms or a missing spike in the oracle's own spikes is reported."""
    spikes = oracle_runs("1-hidden")[0].spikes[1]
    assert_same_spikes(spikes, spikes)
    shifted = [t + 2e-9 for t in spikes]
    with pytest.raises(AssertionError):
        assert_same_spikes(spikes, shifted)
    i = next(n for n, t in enumerate(spikes) if len(t))
    missing = [t[1:] if n == i else t for n, t in enumerate(spikes)]
    with pytest.raises(AssertionError):
        assert_same_spikes(spikes, missing)
