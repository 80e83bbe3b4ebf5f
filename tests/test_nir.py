"""NIR export and import (pynn_eventprop.interop): mapping, round trip, bad input.

The round trip (export -> ``nir.write`` -> ``nir.read`` -> import -> run) must give the same
spike times bit for bit: the engine is deterministic and the importer rebuilds the same
compiled network.  The parameter mapping is checked against NIR's own equations, solved
analytically for one input spike (independent of the engine's code).
"""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import pynn_eventprop as sim  # noqa: E402
from pynn_eventprop.interop import NIRConversionError, export_nir, import_nir  # noqa: E402

NEURON = dict(
    tau_m=10.0,
    cm=0.25,
    v_rest=-65.0,
    v_thresh=-55.0,
    v_reset=-70.0,
    tau_syn_E=5.0,
    tau_syn_I=5.0,
    tau_refrac=0.0,
    i_offset=0.0,
)
DURATION = 60.0


def _spike_times(rng, n=6):
    return [np.sort(rng.uniform(0.0, 25.0, 4)).round(3) for _ in range(n)]


def build_network(times):
    """input(6) -> hidden(8) -> output(3): mixed delays, per-neuron delays, inhibition.

    * input -> hidden: delays 0.5, 1.0 or 2.3 ms mixed over the connections;
    * input -> hidden (inhibitory): delays depending on the presynaptic neuron only;
    * hidden -> output: uniform 1 ms (excitatory) and 0.7 ms (inhibitory, negative weights);
    * hidden -> hidden: recurrent inhibition, 1.2 ms;
    * the output population is refractory (2 ms) and starts at v = -60 mV.
    """
    rng = np.random.default_rng(1)
    inputs = sim.Population(6, sim.SpikeSourceArray(spike_times=times), label="input")
    hidden = sim.Population(8, sim.IF_curr_exp(**NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**{**NEURON, "tau_refrac": 2.0}), label="output")
    hidden.initialize(v=-65.0)
    output.initialize(v=-60.0)
    w = rng.uniform(0.3, 1.2, (6, 8))
    d = rng.choice([0.5, 1.0, 2.3], (6, 8))
    rows = [(i, j, w[i, j], d[i, j]) for i in range(6) for j in range(8)]
    connector = sim.FromListConnector(rows, column_names=["weight", "delay"])
    sim.Projection(inputs, hidden, connector, sim.StaticSynapse(), label="in-hid")
    per_pre = [(i, j, -0.2, 0.5 + 0.4 * i) for i in range(6) for j in range(0, 8, 2)]
    connector = sim.FromListConnector(per_pre, column_names=["weight", "delay"])
    sim.Projection(inputs, hidden, connector, receptor_type="inhibitory", label="in-hid-inh")
    synapse = sim.StaticSynapse(weight=0.9, delay=1.0)
    sim.Projection(hidden, output, sim.AllToAllConnector(), synapse, label="hid-out")
    connector = sim.FixedProbabilityConnector(0.5, rng=sim.NumpyRNG(3))
    synapse = sim.StaticSynapse(weight=-0.6, delay=0.7)
    sim.Projection(hidden, output, connector, synapse, receptor_type="inhibitory", label="inh")
    synapse = sim.StaticSynapse(weight=-0.3, delay=1.2)
    recurrent = sim.FixedProbabilityConnector(
        0.3, rng=sim.NumpyRNG(4), allow_self_connections=False
    )
    sim.Projection(hidden, hidden, recurrent, synapse, receptor_type="inhibitory", label="rec")
    return inputs, hidden, output


def _run_and_get_spikes(populations):
    for population in populations.values():
        population.record("spikes")
    sim.run(DURATION)
    return {
        name: [np.asarray(st.magnitude) for st in p.get_data().segments[0].spiketrains]
        for name, p in populations.items()
    }


@pytest.mark.parametrize("uniform_delays", ["metadata", "node"])
def test_round_trip_through_hdf5_gives_identical_spikes(tmp_path, uniform_delays):
    times = _spike_times(np.random.default_rng(0))
    sim.setup(timestep=0.1)
    _, hidden, output = build_network(times)
    reference = _run_and_get_spikes({"hidden": hidden, "output": output})
    with pytest.warns(UserWarning, match="tau_refrac=2.0"):
        graph = export_nir(uniform_delays=uniform_delays)
    nir.write(tmp_path / "net.nir", graph)
    sim.end()

    sim.setup(timestep=0.1)
    network = import_nir(tmp_path / "net.nir")
    network.populations["input"].set(spike_times=times)
    assert network.inputs == ["input"] and network.outputs == {"output_out": "output"}
    spikes = _run_and_get_spikes({k: network.populations[k] for k in ("hidden", "output")})
    sim.end()
    for name in ("hidden", "output"):
        counts = [len(t) for t in reference[name]]
        assert 0 < sum(counts) < 40 * len(counts), counts  # active, not saturated
        for k, (a, b) in enumerate(zip(reference[name], spikes[name], strict=True)):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}[{k}]")


def test_export_maps_parameters_weights_and_delays(sim):
    build_network(_spike_times(np.random.default_rng(0)))
    with pytest.warns(UserWarning):
        graph = export_nir(uniform_delays="node")
    hidden = graph.nodes["hidden"]
    assert isinstance(hidden, nir.CubaLIF) and isinstance(graph.nodes["input"], nir.Input)
    np.testing.assert_array_equal(hidden.tau_mem, 10.0)
    np.testing.assert_array_equal(hidden.r, 10.0 / 0.25)  # MOhm = tau_m / cm
    np.testing.assert_array_equal(hidden.w_in, hidden.tau_syn)
    np.testing.assert_array_equal(hidden.v_leak, -65.0)
    np.testing.assert_array_equal(hidden.v_reset, -70.0)
    projection = sim.simulator.state.projections[2]  # hid-out: uniform 1 ms
    weights = np.nan_to_num(projection.get("weight", format="array"))
    np.testing.assert_array_equal(graph.nodes["w2_hidden_output"].weight, weights.T)
    np.testing.assert_array_equal(graph.nodes["delay2_hidden_output"].delay, np.full(8, 1.0))
    np.testing.assert_array_equal(
        graph.nodes["delay1_input_hidden"].delay, 0.5 + 0.4 * np.arange(6)
    )
    mixed = [n for n in graph.nodes if n.startswith("delay0_input_hidden_d")]
    assert sorted(float(graph.nodes[n].delay[0]) for n in mixed) == [0.5, 1.0, 2.3]
    np.testing.assert_array_equal(graph.nodes["output"].metadata["tau_refrac"], 2.0)


def test_uniform_delay_goes_to_metadata_by_default(sim):
    build_network(_spike_times(np.random.default_rng(0)))
    with pytest.warns(UserWarning):
        graph = export_nir()
    assert "delay2_hidden_output" not in graph.nodes
    assert graph.nodes["w2_hidden_output"].metadata["delay"] == 1.0
    assert graph.metadata["time_unit"] == "ms" and graph.metadata["resistance_unit"] == "MOhm"


def test_exported_parameters_follow_nir_equations(sim):
    """One spike of weight W at t0 with delay d, simulated by the engine, against NIR's CubaLIF
    equations solved with the exported fields: I steps by w_in W / tau_syn at t0 + d, and
    v = v_leak + r dI tau_syn / (tau_mem - tau_syn) (exp(-s/tau_mem) - exp(-s/tau_syn)).
    Tolerance 1e-9 mV: the engine integrates exactly; only rounding differs."""
    t0, weight, delay = 2.0, 0.3, 1.5
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[t0]), label="src")
    cell = sim.Population(1, sim.IF_curr_exp(**{**NEURON, "v_thresh": 0.0}), label="cell")
    cell.initialize(v=-65.0)
    sim.Projection(
        source, cell, sim.AllToAllConnector(), sim.StaticSynapse(weight=weight, delay=delay)
    )
    cell.record("v")
    sim.run(30.0)
    signal = cell.get_data().segments[0].analogsignals[0]
    node = export_nir().nodes["cell"]
    step = float(node.w_in[0]) * weight / float(node.tau_syn[0])
    tau_m, tau_s = float(node.tau_mem[0]), float(node.tau_syn[0])
    s = np.clip(np.asarray(signal.times) - (t0 + delay), 0.0, None)
    kernel = tau_s / (tau_m - tau_s) * (np.exp(-s / tau_m) - np.exp(-s / tau_s))
    expected = float(node.v_leak[0]) + float(node.r[0]) * step * kernel
    np.testing.assert_allclose(np.asarray(signal).ravel(), expected, rtol=0, atol=1e-9)
    assert np.ptp(expected) > 1.0  # the response is not trivially flat


# --- bad input -------------------------------------------------------------------------------
def _lif(n, **changes):
    fields = dict(
        tau_mem=np.full(n, 20.0),
        tau_syn=np.full(n, 5.0),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
        w_in=np.full(n, 5.0),
    )
    return nir.CubaLIF(**{**fields, **changes})


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_unsupported_node_is_named(sim):
    lif = nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    graph = _graph({"in": nir.Input(np.array([2])), "plain_lif": lif}, [("in", "plain_lif")])
    with pytest.raises(NIRConversionError, match=r"'plain_lif'.*type LIF is not supported"):
        import_nir(graph)
    assert sim.simulator.state.populations == []  # nothing was created


def test_mismatched_shapes_are_named(sim):
    nodes = {
        "in": nir.Input(np.array([5])),
        "w": nir.Linear(weight=np.ones((3, 4))),
        "lif": _lif(3),
    }
    with pytest.raises(NIRConversionError, match=r"'in' -> 'w'.*5 values.*takes 4"):
        import_nir(_graph(nodes, [("in", "w"), ("w", "lif")]))
    nodes["w"] = nir.Linear(weight=np.ones((2, 5)))
    with pytest.raises(NIRConversionError, match=r"'w' -> 'lif'.*2 values.*takes 3"):
        import_nir(_graph(nodes, [("in", "w"), ("w", "lif")]))


def test_delay_below_time_step_is_named(sim):
    nodes = {
        "in": nir.Input(np.array([2])),
        "short": nir.Delay(delay=np.array([0.5, 0.05])),
        "w": nir.Linear(weight=np.ones((2, 2))),
        "lif": _lif(2),
    }
    edges = [("in", "short"), ("short", "w"), ("w", "lif")]
    with pytest.raises(NIRConversionError, match=r"'short'.*delay 0\.05 ms.*time step"):
        import_nir(_graph(nodes, edges))


@pytest.mark.parametrize(
    "node, match",
    [
        (nir.Affine(weight=np.ones((2, 2)), bias=np.array([0.0, 0.5])), r"'w'.*bias 0\.5"),
        ("tau_mem", r"'lif'.*tau_mem must be > 0, got -1\.0"),
        ("v_reset", r"'lif'.*v_reset must be below v_threshold.*v_reset=2\.0"),
    ],
)
def test_bad_values_are_named(sim, node, match):
    nodes = {"in": nir.Input(np.array([2])), "w": nir.Linear(weight=np.ones((2, 2)))}
    nodes["lif"] = _lif(2)
    if node == "tau_mem":
        nodes["lif"] = _lif(2, tau_mem=np.array([20.0, -1.0]))
    elif node == "v_reset":
        nodes["lif"] = _lif(2, v_reset=np.array([0.0, 2.0]))
    else:
        nodes["w"] = node
    with pytest.raises(NIRConversionError, match=match):
        import_nir(_graph(nodes, [("in", "w"), ("w", "lif")]))


def test_export_refuses_what_nir_cannot_hold(sim):
    with pytest.raises(NIRConversionError, match="no populations"):
        export_nir()
    cells = sim.Population(2, sim.IF_cond_exp(), label="cond")
    with pytest.raises(NIRConversionError, match=r"'cond'.*IF_cond_exp"):
        export_nir()
    sim.setup()
    sim.Population(2, sim.IF_curr_exp(i_offset=0.5, tau_refrac=0.0), label="biased")
    with pytest.raises(NIRConversionError, match=r"'biased'.*i_offset=0\.5"):
        export_nir()
    sim.setup()
    cells = sim.Population(2, sim.IF_curr_exp(tau_syn_E=5.0, tau_syn_I=10.0, tau_refrac=0.0))
    source = sim.Population(2, sim.SpikeSourceArray())
    for receptor in ("excitatory", "inhibitory"):
        sim.Projection(source, cells, sim.OneToOneConnector(), receptor_type=receptor)
    with pytest.raises(NIRConversionError, match=r"tau_syn_E=5\.0 != tau_syn_I=10\.0"):
        export_nir()
    sim.setup()
    cells = sim.Population(1, sim.IF_curr_exp(tau_refrac=0.0))
    sim.DCSource(amplitude=1.0).inject_into(cells)
    with pytest.raises(NIRConversionError, match="DCSource"):
        export_nir()


def test_export_of_a_trained_network_holds_the_trained_weights(sim):
    """After ``Trainer.fit`` the Linear nodes hold the trained weights (read through PyNN),
    not the initial ones."""
    from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
    from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
    from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
    from pynn_eventprop.eventprop.training import Trainer
    from pynn_eventprop.neurons import WP_NEURON

    sim.setup(timestep=1.0, min_delay=1.0)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(10, sim.IF_curr_exp(**WP_NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**WP_NEURON), label="output")
    hidden.initialize(v=0.0)
    output.initialize(v=0.0)
    rule, rng = EventPropRule(Adam(lr=0.05)), sim.NumpyRNG(seed=2)
    for pre, post, mean in ((inputs, hidden, 1.5), (hidden, output, 1.5)):
        weight = sim.RandomDistribution("normal", (mean, mean), rng=rng)
        synapse = EventPropSynapse(weight=weight, delay=1.0, rule=rule)
        sim.Projection(pre, post, sim.AllToAllConnector(), synapse)
    initial = [p.get("weight", format="array").copy() for p in sim.simulator.state.projections]
    data = yin_yang_dataset("train", LatencyCode()).subset(np.arange(64))
    loss = TTFSCrossEntropy(xi=0.5, alpha=3e-3, beta=6.4, silent_push=10.0, theta=1.0)
    trainer = Trainer(inputs, output, loss, duration=40.0, batch_size=32, progress=False)
    trainer.fit(data, 1)
    graph = export_nir()
    for k, name in enumerate(("w0_input_hidden", "w1_hidden_output")):
        trained = trainer.engine.get_weights(k)
        np.testing.assert_array_equal(graph.nodes[name].weight, trained.T)
        assert np.abs(trained - initial[k]).max() > 1e-3  # training moved the weights


def test_unit_spike_scaling_and_client_helpers():
    """Helpers of the Norse client that need no torch: ``w_in`` over ``dt`` (the original
    graph untouched), spikes placed at ``floor(t / dt)``, first-spike class with ties to the
    lower index and -1 for silence."""
    from pynn_eventprop.interop import scale_for_unit_spikes
    from pynn_eventprop.interop.nir_clients import _raster, ttfs_predictions

    graph = _graph({"in": nir.Input(np.array([2])), "lif": _lif(2)}, [("in", "lif")])
    scaled = scale_for_unit_spikes(graph, 0.5)
    np.testing.assert_array_equal(scaled.nodes["lif"].w_in, 10.0)
    np.testing.assert_array_equal(graph.nodes["lif"].w_in, 5.0)
    with pytest.raises(ValueError, match="dt must be"):
        scale_for_unit_spikes(graph, 0.0)
    raster = _raster(np.array([[0.0, 1.26], [np.nan, 9.9]]), n_steps=10, dt=0.5)
    assert raster.shape == (10, 2, 2) and raster.sum() == 2
    assert raster[0, 0, 0] == 1 and raster[2, 0, 1] == 1  # 9.9 ms is past the window
    first = np.array([[3.0, 1.0, 1.0], [np.inf, np.inf, np.inf], [2.0, np.inf, 5.0]])
    np.testing.assert_array_equal(ttfs_predictions(first), [1, -1, 0])


def test_short_term_plasticity_is_not_exported_as_static_weights(sim):
    inputs = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [2.0]]), label="in")
    cells = sim.Population(2, sim.IF_curr_exp(), label="cells")
    sim.Projection(inputs, cells, sim.AllToAllConnector(),
                   sim.TsodyksMarkramSynapse(weight=0.5, U=0.5), label="tm")  # fmt: skip
    with pytest.raises(NIRConversionError, match=r"'tm' is a TsodyksMarkramSynapse"):
        export_nir()
