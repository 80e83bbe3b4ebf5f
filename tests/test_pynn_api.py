"""Simulation control, state queries, populations, views, assemblies and current sources."""

from __future__ import annotations

import numpy as np
import pytest
from pyNN.parameters import Sequence

import pynn_eventprop


def test_setup_accepts_unknown_keywords_and_sets_the_grid():
    assert pynn_eventprop.setup(timestep=0.25, min_delay=0.5, max_delay=5.0, threads=8) == 0
    assert pynn_eventprop.get_time_step() == 0.25
    assert pynn_eventprop.get_min_delay() == 0.5
    assert pynn_eventprop.get_max_delay() == 5.0
    assert pynn_eventprop.num_processes() == 1 and pynn_eventprop.rank() == 0
    assert pynn_eventprop.get_current_time() == 0.0
    pynn_eventprop.end()


def test_auto_delays_follow_the_network(sim):
    assert sim.get_min_delay() == sim.get_time_step()
    pre = sim.Population(2, sim.SpikeSourceArray())
    post = sim.Population(2, sim.IF_curr_exp())
    sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(delay=0.7))
    sim.Projection(pre, post, sim.OneToOneConnector(), sim.StaticSynapse(delay=2.0))
    assert sim.get_min_delay() == pytest.approx(0.7)
    assert sim.get_max_delay() == pytest.approx(2.0)


def test_run_run_until_run_for_and_reset(sim):
    sim.Population(1, sim.IF_curr_exp())
    assert sim.run(1.0) == pytest.approx(1.0)
    assert sim.run_until(2.5) == pytest.approx(2.5)
    assert sim.run_for(0.5) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        sim.run_until(1.0)
    sim.reset()
    assert sim.get_current_time() == 0.0


def test_list_standard_models_reports_only_supported_ones(sim):
    assert sorted(sim.list_standard_models()) == [
        "IF_cond_exp",
        "IF_curr_alpha",
        "IF_curr_exp",
        "SpikeSourceArray",
        "SpikeSourcePoisson",
    ]


def test_population_get_set_per_neuron_and_cell_access(sim):
    cells = sim.Population(4, sim.IF_curr_exp(tau_m=lambda i: 10.0 + i))
    np.testing.assert_array_equal(cells.get("tau_m"), [10.0, 11.0, 12.0, 13.0])
    cells.set(v_thresh=-52.0, cm=np.array([1.0, 2.0, 3.0, 4.0]))
    assert cells.get("v_thresh") == -52.0
    cells[2].i_offset = 0.3
    assert cells[2].i_offset == pytest.approx(0.3)
    np.testing.assert_array_equal(cells.get("i_offset"), [0.0, 0.0, 0.3, 0.0])
    tau_m, cm = cells[1:3].get(["tau_m", "cm"])
    np.testing.assert_array_equal(tau_m, [11.0, 12.0])
    np.testing.assert_array_equal(cm, [2.0, 3.0])


def test_view_of_view_writes_through_to_the_parent(sim):
    cells = sim.Population(6, sim.IF_cond_exp())
    view = cells[1:5][::2]  # parent indices 1 and 3
    view.set(e_rev_I=-80.0)
    np.testing.assert_array_equal(cells.get("e_rev_I"), [-70, -80, -70, -80, -70, -70])
    view.initialize(v=-60.0)
    np.testing.assert_array_equal(
        cells.initial_values["v"].evaluate(), [-65, -60, -65, -60, -65, -65]
    )
    np.testing.assert_array_equal(view.initial_values["v"].evaluate(), [-60.0, -60.0])


def test_assembly_get_set_initialize_record(sim):
    a = sim.Population(2, sim.IF_curr_exp(i_offset=2.0), label="a")
    b = sim.Population(3, sim.IF_cond_exp(i_offset=2.0), label="b")
    both = a + b
    both.set(tau_refrac=1.0)
    np.testing.assert_array_equal(both.get("tau_refrac"), np.ones(5))
    both.initialize(v=-60.0)
    both.record(["spikes", "v"])
    sim.run(10.0)
    block = both.get_data()
    (v,) = block.segments[0].filter(name="v")  # Neo merges the two populations' signals
    assert v.shape == (101, 5)
    np.testing.assert_array_equal(v.magnitude[0], np.full(5, -60.0))
    assert len(block.segments[0].spiketrains) == 5
    assert "a" in both.describe() and "b" in both.describe()


def test_population_describe_mentions_model_and_size(sim):
    cells = sim.Population(7, sim.IF_curr_exp(), label="cells")
    text = cells.describe()
    assert "IF_curr_exp" in text and "7" in text and "cells" in text


def test_initialize_mid_run_applies_now(sim):
    cells = sim.Population(1, sim.IF_curr_exp())
    cells.record("v")
    sim.run(1.0)
    cells.initialize(v=-50.5)  # below threshold (-50), above rest
    sim.run(0.1)
    v = cells.get_data().segments[0].filter(name="v")[0].magnitude[:, 0]
    # one exact step of decay towards v_rest from the new value
    assert v[-1] == pytest.approx(-65.0 + 14.5 * np.exp(-0.1 / 20.0), abs=1e-12)
    sim.reset()
    sim.run(0.1)
    v = cells.get_data().segments[-1].filter(name="v")[0].magnitude[:, 0]
    assert v[0] == -50.5  # reset uses the new initial value


def test_parameter_change_mid_run_keeps_the_state(sim):
    cells = sim.Population(1, sim.IF_curr_exp(i_offset=0.5))
    cells.record("v")
    sim.run(5.0)
    cells.set(v_rest=-60.0, i_offset=0.0)  # recompiles the engine between runs
    sim.run(5.0)
    v = cells.get_data().segments[0].filter(name="v")[0].magnitude[:, 0]
    # continuity at t = 5 ms, then exact relaxation towards the new v_rest
    t = np.arange(51) * 0.1
    expected = -60.0 + (v[50] + 60.0) * np.exp(-t / 20.0)
    np.testing.assert_allclose(v[50:], expected, atol=1e-12)


def test_update_spike_source_array_between_runs(sim):
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    source.record("spikes")
    sim.run(5.0)
    source.set(spike_times=[Sequence([2.0, 6.0, 7.5])])  # 2.0 is in the past: never emitted
    sim.run(5.0)
    np.testing.assert_array_equal(source.get_data().segments[0].spiketrains[0], [1.0, 6.0, 7.5])


def test_poisson_source_rate_and_window(sim):
    sim.setup(timestep=0.1, rng_seed=7)
    sources = sim.Population(50, sim.SpikeSourcePoisson(rate=100.0, start=100.0, duration=200.0))
    sources.record("spikes")
    sim.run(400.0)
    trains = sources.get_data().segments[0].spiketrains
    times = np.concatenate([t.magnitude for t in trains])
    assert times.min() >= 100.0 and times.max() < 300.0
    # 50 neurons x 20 expected spikes = 1000; Poisson sd ~32, so 5 sd is 160
    assert abs(times.size - 1000) < 160


def test_dc_source_switches_on_at_the_grid_point(sim):
    cells = sim.Population(2, sim.IF_curr_exp())
    cells[1:2].inject(sim.DCSource(amplitude=1.0, start=2.0, stop=3.0))
    cells.record("v")
    sim.run(5.0)
    v = cells.get_data().segments[0].filter(name="v")[0].magnitude
    assert np.all(v[:21, 1] == -65.0)  # up to and including t = 2.0 ms
    # during the pulse: exact response to a constant current, R = tau_m/cm = 20 MOhm
    t = np.arange(11) * 0.1
    np.testing.assert_allclose(v[20:31, 1], -65.0 + 20.0 * (1 - np.exp(-t / 20.0)), atol=1e-12)
    assert np.all(np.diff(v[31:, 1]) < 0)  # relaxing after stop
    assert np.all(v[:, 0] == -65.0)  # the other neuron received nothing


def test_step_current_source_times_are_rounded_to_the_grid(sim):
    step = sim.StepCurrentSource(times=[0.41, 0.42, 0.86], amplitudes=[0.5, -0.5, 0.5])
    np.testing.assert_allclose(step.times.evaluate(), [0.4, 0.9])
    np.testing.assert_array_equal(step.amplitudes.evaluate(), [-0.5, 0.5])


def test_recorded_current_of_a_source(sim):
    cells = sim.Population(1, sim.IF_curr_exp())
    source = sim.StepCurrentSource(times=[1.0, 2.0], amplitudes=[0.4, 0.1])
    source.inject_into(cells)
    source.record()
    sim.run(3.0)
    signal = source.get_data()
    assert signal.shape[0] == 31
    expected = np.where(np.arange(31) < 10, 0.0, np.where(np.arange(31) < 20, 0.4, 0.1))
    np.testing.assert_allclose(signal.magnitude.ravel(), expected)


def test_injecting_into_a_spike_source_is_refused(sim):
    sources = sim.Population(2, sim.SpikeSourceArray())
    with pytest.raises(TypeError):
        sim.DCSource(amplitude=1.0).inject_into(sources)


def test_conductance_based_cell_runs_and_records_conductances(sim):
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cells = sim.Population(1, sim.IF_cond_exp(tau_syn_E=2.0))
    sim.Projection(
        source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.01, delay=1.0)
    )
    cells.record(["v", "gsyn_exc"])
    sim.run(10.0)
    segment = cells.get_data().segments[0]
    g = segment.filter(name="gsyn_exc")[0].magnitude[:, 0]
    assert g.max() == pytest.approx(0.01)  # jumps by the weight (uS) on arrival at 2 ms
    assert np.argmax(g) == 20
    v = segment.filter(name="v")[0].magnitude[:, 0]
    assert v.max() > -65.0  # depolarised towards e_rev_E = 0 mV
