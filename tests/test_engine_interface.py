"""The Engine contract on the reference (exact) engine and the SpiNNaker2 model: state,
weights, delays, readouts, the registry; the compiled network stays untouched."""

import numpy as np
import pytest
from engine_networks import dense, lif, random_input, source, three_layer

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine import Engine, EngineState, make_engine, register_engine
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork

DT, N_STEPS = 0.5, 80


def _setup(seed=4, batch=2):
    rng = np.random.default_rng(seed)
    disc = LIFDiscretisation(DT)
    net = three_layer(rng)  # delays of 1, 2 and 3 steps: spikes are in flight at any time
    src = random_input(rng, disc, batch, 6, N_STEPS, t_max=35)
    return disc, net, src


@pytest.mark.parametrize("platform", ["reference", "spinnaker2"])
def test_state_carried_into_a_new_engine_continues_exactly(platform):
    """get_state after 37 steps, set_state on a freshly built engine, 43 more steps: the same
    spikes and voltages as one engine running 80 steps (spikes in flight included)."""
    disc, net, src = _setup()
    record = {1: ("v",), 2: ("v", "isyn_exc")}
    whole = make_engine(platform, net, disc, 2)
    w = whole.run(N_STEPS, sources={0: src}, record=record)
    first = make_engine(platform, net, disc, 2)
    a = first.run(37, sources={0: src}, record=record)
    state = first.get_state()
    assert isinstance(state, EngineState) and state.step == 37 and state.t == 37 * DT
    assert sum(f.arrival.size for f in state.in_flight.values()) > 0  # the test is not vacuous
    second = make_engine(platform, net, disc, 2)
    second.set_state(state)
    b = second.run(N_STEPS - 37, sources={0: src}, record=record)
    assert second.n == N_STEPS
    # float32: the state passes through PyNN units (v + v_rest) and arrivals are re-scheduled
    # from their times, which rounds at ~1e-7 relative; float64 continues to rounding error
    tol = 1e-10 if platform == "reference" else 1e-4
    for pop in (1, 2):
        for name in record[pop]:
            joined = np.concatenate([a.signals[pop][name], b.signals[pop][name]])
            assert np.abs(joined - w.signals[pop][name]).max() < tol, (pop, name)
        for sample in range(2):
            times = np.sort(
                np.concatenate([a.spikes[pop].sample(sample)[1], b.spikes[pop].sample(sample)[1]])
            )
            np.testing.assert_allclose(times, np.sort(w.spikes[pop].sample(sample)[1]), atol=tol)


def test_engine_owns_copies_and_leaves_the_compiled_network_alone():
    disc, net, src = _setup()
    before = [(p.weights.copy(), p.delays.copy()) for p in net.projections]
    initial_v = net.populations[1].initial["v"].copy()
    engine = make_engine("reference", net, disc, 2)
    assert isinstance(engine, Engine)
    engine.set_weights(0, engine.get_weights(0) * 2.0)
    engine.set_delays(2, np.full(net.projections[2].mask.shape, 1.0))
    engine.set_initial(1, "v", -60.0)
    engine.run(10, sources={0: src})
    for p, (w, d) in zip(net.projections, before, strict=True):
        assert np.array_equal(p.weights, w) and np.array_equal(p.delays, d)
    assert np.array_equal(net.populations[1].initial["v"], initial_v)
    assert np.all(engine.get_delays(2) == 1.0)
    np.testing.assert_array_equal(engine.get_weights(0), 2.0 * before[0][0])
    with pytest.raises(ValueError, match="must be > 0 ms"):
        engine.set_delays(2, np.full(net.projections[2].mask.shape, 0.0))
    assert np.all(engine.get_delays(2) == 1.0)  # a refused change leaves the delays as they were


def test_reference_engine_takes_real_delays_and_the_spinnaker2_model_whole_ticks():
    """A 0.6 ms delay at dt 0.5: the input spike at 1 ms arrives at exactly 1.6 ms on the
    reference engine; the SpiNNaker2 model (tick-based) refuses it."""
    disc = LIFDiscretisation(0.5)
    net = CompiledNetwork([source("in", 1), lif("a", 1)], [dense("p", 0, 1, [[1.0]], delay=0.6)])
    engine = make_engine("reference", net, disc)
    spike = SpikeTrains.from_lists([[np.array([1.0])]])
    out = engine.run(8, sources={0: spike}, record={1: ("isyn_exc",)}).signals[1]["isyn_exc"]
    t = np.arange(1, 9) * 0.5
    expected = np.where(t >= 1.6, np.exp(-(t - 1.6) / 5.0), 0.0)
    np.testing.assert_allclose(out[:, 0, 0], expected, atol=1e-12)
    with pytest.raises(ValueError, match="whole multiple of the timestep 0.5 ms, got 0.6"):
        make_engine("spinnaker2", net, disc)


@pytest.mark.parametrize("platform", ["reference", "spinnaker2"])
def test_readouts_are_relative_to_the_run_start(platform):
    disc, net, src = _setup()
    engine = make_engine(platform, net, disc, 2)
    engine.run(10, sources={0: src})
    result = engine.run(40, sources={0: src}, keep_for_backward=True)  # starts at 5 ms
    values = engine.readouts(result, 2, ["first_spike_time"])
    assert "first_spike_time" in result.readouts[2]
    absolute = [result.spikes[2].per_neuron(b) for b in range(2)]
    for b in range(2):
        for i in range(3):
            expected = absolute[b][i][0] - result.t_start if absolute[b][i].size else np.inf
            tol = 1e-12 if platform == "reference" else 1e-5
            assert values["first_spike_time"][b, i] == pytest.approx(expected, abs=tol)
    with pytest.raises(ValueError, match="unknown readout"):
        engine.readouts(result, 2, ["v_min"])


def test_grid_engine_computes_readouts_only_when_asked():
    disc, net, src = _setup()
    engine = make_engine("spinnaker2", net, disc, 2)
    result = engine.run(40, sources={0: src}, keep_for_backward=True)
    engine.readouts(result, 2, ["first_spike_time"])
    assert set(result.readouts[2]) == {"first_spike_time"}
    plain = engine.run(5)
    with pytest.raises(ValueError, match="keep_for_backward"):
        engine.readouts(plain, 2, ["v_max"])


def test_several_spikes_of_one_input_in_one_step():
    """The reference engine takes them at their times; the tick-based model refuses them."""
    disc, net, _ = _setup()
    twice = SpikeTrains.from_lists([[np.array([1.1, 1.2])] + [np.zeros(0)] * 5])
    result = make_engine("reference", net, disc, 1).run(10, sources={0: twice})
    np.testing.assert_array_equal(result.spikes[0].per_neuron(0)[0], [1.1, 1.2])
    with pytest.raises(ValueError, match="two spikes of one neuron within one time step"):
        make_engine("spinnaker2", net, disc, 1).run(10, sources={0: twice})


def test_registry_builds_registered_engines_and_names_the_platforms():
    disc, net, _ = _setup()
    register_engine("reference_copy", "pynn_eventprop.engine.exact:ExactSimulation")
    assert make_engine("reference_copy", net, disc, 3).batch == 3
    with pytest.raises(ValueError, match="platform must be one of"):
        make_engine("loihi", net, disc)
    with pytest.raises(ValueError, match="computes in float32"):
        make_engine("spinnaker2", net, disc, 1, np.float64)


def test_exact_engine_refuses_bad_weights_and_readout_gradients():
    """Non-finite or misshapen weights and loss gradients of the wrong shape: clear errors
    naming the projection or population (a NaN weight would otherwise spin the integrator)."""
    from test_exact_networks import random_input
    from test_exact_shared import shared_network

    from pynn_eventprop.engine.exact import ExactSimulation

    net = shared_network(np.random.default_rng(0))
    sim = ExactSimulation(net, 0.5, batch_size=2)
    w = sim.get_weights(0)
    one_inf = w.copy()
    one_inf[1, 2] = np.inf
    for bad, message in ((np.full_like(w, np.nan), "must be finite"), (w[:1], "must have shape"),
                         (one_inf, r"1 are not \(first: inf\)")):  # fmt: skip
        for take in (False, True):
            with pytest.raises(ValueError, match=message):
                sim.set_weights(0, bad, take=take)
    np.testing.assert_array_equal(sim.get_weights(0), w)  # a refused change leaves them
    huge = np.full_like(w, 1e308)  # finite, though their sum overflows
    sim.set_weights(0, huge)
    np.testing.assert_array_equal(sim.get_weights(0), huge)
    res = sim.run(10, sources={0: random_input(np.random.default_rng(1), 2, 5, 5.0)},
                  keep_for_backward=True)  # fmt: skip
    with pytest.raises(ValueError, match=r"first_spike_time of population 2 must have shape"):
        sim.backward(res, {2: {"first_spike_time": np.ones((2, 1))}})


def test_exact_engine_copies_weights_unless_handed_over():
    """``set_weights`` keeps a copy, so that a caller changing its array afterwards changes
    nothing in the engine; with ``take=True`` the caller hands a C-ordered array over and the
    engine may keep it as it is, but it still copies one that is not C-ordered."""
    from test_exact_shared import shared_network

    from pynn_eventprop.engine.exact import ExactSimulation

    sim = ExactSimulation(shared_network(np.random.default_rng(0)), 0.5, batch_size=2)
    w = sim.get_weights(0) * 2.0
    sim.set_weights(0, w)
    before = w.copy()
    w[0, 0] += 1.0
    np.testing.assert_array_equal(sim.get_weights(0), before)
    view = w.view(type("Sub", (np.ndarray,), {}))  # np.asarray: a plain view of its memory
    sim.set_weights(0, view)
    kept = w.copy()
    view[0, 0] += 1.0
    np.testing.assert_array_equal(sim.get_weights(0), kept)
    sim.set_weights(0, w, take=True)
    assert np.shares_memory(sim._weights[0], w)
    fortran = np.asfortranarray(w * 3.0)
    sim.set_weights(0, fortran, take=True)
    assert sim._weights[0].flags.c_contiguous and not np.shares_memory(sim._weights[0], fortran)
    np.testing.assert_array_equal(sim.get_weights(0), fortran)
