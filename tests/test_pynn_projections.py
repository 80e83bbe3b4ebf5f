"""Projections: PyNN's connectors, weight/delay access, and compilation to dense matrices."""

from __future__ import annotations

import numpy as np
import pytest
from pyNN import errors
from pyNN.random import NumpyRNG

from pynn_eventprop import simulator
from pynn_eventprop.compile import compile_network


def _populations(sim, n_pre=3, n_post=4):
    return sim.Population(n_pre, sim.SpikeSourceArray()), sim.Population(n_post, sim.IF_curr_exp())


@pytest.mark.parametrize(
    ("make_connector", "expected_count"),
    [
        (lambda sim: sim.AllToAllConnector(), 12),
        (lambda sim: sim.FixedProbabilityConnector(1.0), 12),
        (lambda sim: sim.FixedNumberPreConnector(2, rng=NumpyRNG(1)), 8),
        (lambda sim: sim.FixedNumberPostConnector(3, rng=NumpyRNG(1)), 9),
        (lambda sim: sim.ArrayConnector(np.eye(3, 4, dtype=bool)), 3),
        (lambda sim: sim.FromListConnector([(0, 1), (2, 3)]), 2),
    ],
    ids=["all_to_all", "fixed_probability", "fixed_pre", "fixed_post", "array", "from_list"],
)
def test_connectors_create_the_expected_number_of_connections(sim, make_connector, expected_count):
    pre, post = _populations(sim)
    prj = sim.Projection(pre, post, make_connector(sim), sim.StaticSynapse(weight=0.2, delay=0.5))
    assert len(prj) == prj.size() == expected_count
    weights = prj.get("weight", format="array")
    assert np.count_nonzero(~np.isnan(weights)) == expected_count
    assert np.all(weights[~np.isnan(weights)] == 0.2)


def test_one_to_one_between_views(sim):
    pre = sim.Population(5, sim.SpikeSourceArray())
    post = sim.Population(6, sim.IF_curr_exp())
    prj = sim.Projection(pre[1:4], post[[0, 2, 5]], sim.OneToOneConnector(), sim.StaticSynapse())
    assert prj.get("weight", format="list", with_address=True) == [
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 0.0),
        (2.0, 2.0, 0.0),
    ]
    network, _ = compile_network(simulator.state)
    (compiled,) = network.projections
    assert compiled.weights.shape == (5, 6)  # whole populations, view indices mapped
    assert sorted(zip(*np.nonzero(compiled.mask), strict=True)) == [(1, 0), (2, 2), (3, 5)]


def test_from_file_connector(sim, tmp_path):
    path = tmp_path / "connections.txt"
    path.write_text("# columns = ['i', 'j', 'weight', 'delay']\n0 1 0.5 1.0\n2 3 0.25 2.0\n")
    pre, post = _populations(sim)
    prj = sim.Projection(pre, post, sim.FromFileConnector(str(path)), sim.StaticSynapse())
    assert prj.get(["weight", "delay"], format="list") == [(0, 1, 0.5, 1.0), (2, 3, 0.25, 2.0)]


def test_weights_and_delays_set_as_array_and_list(sim):
    pre, post = _populations(sim, 2, 2)
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    prj.set(weight=np.array([[0.1, 0.2], [0.3, 0.4]]), delay=[1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(prj.get("weight", format="array"), [[0.1, 0.2], [0.3, 0.4]])
    assert prj.get("delay", format="list", with_address=False) == [1.0, 3.0, 2.0, 4.0]
    connection = prj[1]
    connection.weight = 0.7
    assert prj.get("weight", format="array")[connection.presynaptic_index, 0] == 0.7


def test_pynn_weight_sign_check_is_kept_for_static_synapses(sim):
    pre, post = _populations(sim)
    with pytest.raises(errors.ConnectionError, match="negative"):
        sim.Projection(
            pre,
            post,
            sim.AllToAllConnector(),
            sim.StaticSynapse(weight=0.5),
            receptor_type="inhibitory",
        )


def test_multapses_compile_to_summed_weights_and_extra_delay_layers(sim):
    pre, post = _populations(sim, 2, 1)
    conn = [(0, 0, 0.5, 1.0), (0, 0, 0.25, 1.0), (0, 0, 1.0, 2.0), (1, 0, 0.1, 1.0)]
    prj = sim.Projection(pre, post, sim.FromListConnector(conn), sim.StaticSynapse())
    assert len(prj) == 4
    network, projection_map = compile_network(simulator.state)
    assert projection_map == [[0, 1]]
    first, second = network.projections
    np.testing.assert_array_equal(first.weights[:, 0], [0.75, 0.1])  # equal delays summed
    np.testing.assert_array_equal(first.delays[:, 0], [1.0, 1.0])  # ms
    np.testing.assert_array_equal(second.mask[:, 0], [True, False])  # the 2 ms connection
    assert second.weights[0, 0] == 1.0 and second.delays[0, 0] == 2.0


def test_projection_from_assembly_is_split_by_population(sim):
    a = sim.Population(2, sim.SpikeSourceArray())
    b = sim.Population(3, sim.SpikeSourceArray())
    post = sim.Population(2, sim.IF_curr_exp())
    sim.Projection(a + b, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    network, projection_map = compile_network(simulator.state)
    assert [(p.pre, p.post) for p in network.projections] == [(0, 2), (1, 2)]
    assert [p.weights.shape for p in network.projections] == [(2, 2), (3, 2)]
    assert projection_map == [[0, 1]]


def test_compiled_population_carries_pynn_parameters(sim):
    cells = sim.Population(3, sim.IF_curr_exp(tau_m=[10.0, 20.0, 30.0], v_rest=-60.0))
    cells.initialize(v=-55.0)
    network, _ = compile_network(simulator.state)
    (compiled,) = network.populations
    assert compiled.model == "IF_curr_exp"
    np.testing.assert_array_equal(compiled.params["tau_m"], [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(compiled.params["v_rest"], [-60.0] * 3)
    np.testing.assert_array_equal(compiled.initial["v"], [-55.0] * 3)


def test_weight_change_between_runs_takes_effect(sim):
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0, 11.0]))
    cells = sim.Population(1, sim.IF_curr_exp())
    prj = sim.Projection(
        source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=1.0)
    )
    cells.record("isyn_exc")
    sim.run(10.0)
    prj.set(weight=2.0)
    sim.run(10.0)
    i_exc = cells.get_data().segments[0].filter(name="isyn_exc")[0].magnitude[:, 0]
    # the second spike arrives at 12 ms with the new weight on top of the decayed first PSC
    assert i_exc[120] == pytest.approx(2.0 + 0.5 * np.exp(-10.0 / 5.0), abs=1e-12)


def test_default_receptor_onto_an_assembly_follows_the_weight_sign(sim):
    pre = sim.Population(2, sim.SpikeSourceArray())
    post = sim.Population(2, sim.IF_curr_exp()) + sim.Population(3, sim.IF_curr_exp())
    assert post.receptor_types == ["excitatory", "inhibitory"]  # deterministic order
    exc = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    inh = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.1))
    assert (exc.receptor_type, inh.receptor_type) == ("excitatory", "inhibitory")
