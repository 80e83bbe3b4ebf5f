"""Recording into Neo through PyNN's Recorder: spikes, signals, segments, files."""

from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq


def _driven_neuron(sim, i_offset=2.0):
    cells = sim.Population(2, sim.IF_curr_exp(i_offset=[0.0, i_offset], tau_refrac=0.0))
    cells.record(["spikes", "v"])
    return cells


def _first_crossing(i_offset, cm=1.0, tau_m=20.0, theta=15.0):
    """Threshold crossing of ``tau_m dV/dt = -V + R I`` from V = 0: ``-tau_m ln(1 - theta/RI)``."""
    return -tau_m * np.log(1.0 - theta / (i_offset * tau_m / cm))


def test_spike_times_are_precise_and_annotated(sim):
    cells = _driven_neuron(sim)
    sim.run(12.0)  # the first crossing is at 9.4 ms
    trains = cells.get_data().segments[0].spiketrains
    assert [len(t) for t in trains] == [0, 1]
    # linear interpolation of the crossing inside a 0.1 ms step: error well below 1e-3 ms here
    # (second-order in dt, v is nearly linear over one step at this slope)
    assert float(trains[1][0].rescale("ms")) == pytest.approx(_first_crossing(2.0), abs=1e-3)
    assert trains[1].annotations["source_population"] == cells.label
    assert trains[1].annotations["source_index"] == 1
    assert trains[1].annotations["channel_id"] == int(cells[1])
    assert trains[1].t_stop == 12.0 * pq.ms


def test_voltage_includes_initial_sample_in_mv(sim):
    cells = _driven_neuron(sim)
    cells.initialize(v=[-70.0, -60.0])
    sim.run(5.0)
    v = cells.get_data().segments[0].filter(name="v")[0]
    assert v.units == pq.mV
    assert v.shape == (51, 2)  # t = 0, 0.1, ..., 5.0
    assert v.t_start == 0.0 * pq.ms and v.sampling_period == 0.1 * pq.ms
    np.testing.assert_array_equal(v.magnitude[0], [-70.0, -60.0])
    # neuron 0 relaxes exactly towards v_rest: v(t) = v_rest + (v0 - v_rest) exp(-t/tau_m)
    t = np.arange(51) * 0.1
    np.testing.assert_allclose(v.magnitude[:, 0], -65.0 - 5.0 * np.exp(-t / 20.0), atol=1e-12)
    np.testing.assert_array_equal(v.array_annotations["channel_index"], [0, 1])


def test_source_spikes_are_recorded_as_given(sim):
    times = [[0.0, 0.05, 3.33], [1.2345]]
    sources = sim.Population(2, sim.SpikeSourceArray(spike_times=times))
    sources.record("spikes")
    sim.run(10.0)
    trains = sources.get_data().segments[0].spiketrains
    for train, expected in zip(trains, times, strict=True):
        np.testing.assert_array_equal(train.magnitude, expected)


def test_one_segment_per_run_between_resets(sim):
    cells = _driven_neuron(sim)
    sim.run(10.0)
    sim.run(10.0)
    sim.reset()
    sim.run(5.0)
    block = cells.get_data()
    assert len(block.segments) == 2
    first, second = (seg.filter(name="v")[0] for seg in block.segments)
    assert first.shape == (201, 2) and second.shape == (51, 2)
    # the state was reset: the second segment repeats the first one's beginning exactly
    np.testing.assert_array_equal(second.magnitude, first.magnitude[:51])


def test_current_segment_only_while_running(sim):
    cells = _driven_neuron(sim)
    sim.run(10.0)
    sim.reset()
    assert len(cells.get_data().segments) == 1  # after reset only the cached segment
    sim.run(1.0)
    assert len(cells.get_data().segments) == 2


def test_clear_keeps_the_current_sample(sim):
    cells = _driven_neuron(sim)
    sim.run(10.0)
    before = cells.get_data("v", clear=True).segments[0].filter(name="v")[0]
    sim.run(5.0)
    after = cells.get_data("v").segments[0].filter(name="v")[0]
    assert after.t_start == 10.0 * pq.ms
    assert after.shape == (51, 2)
    np.testing.assert_array_equal(after.magnitude[0], before.magnitude[-1])


def test_recording_a_view_records_only_its_neurons(sim):
    cells = sim.Population(5, sim.IF_curr_exp(i_offset=2.0))
    cells[1:3].record("v")
    sim.run(2.0)
    v = cells.get_data().segments[0].analogsignals[0]
    np.testing.assert_array_equal(v.array_annotations["channel_index"], [1, 2])
    assert v.shape == (21, 2)


def test_synaptic_currents_can_be_recorded(sim):
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cells = sim.Population(1, sim.IF_curr_exp(tau_syn_E=5.0))
    sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5, delay=1.0))
    cells.record(["isyn_exc", "isyn_inh"])
    sim.run(10.0)
    segment = cells.get_data().segments[0]
    i_exc = segment.filter(name="isyn_exc")[0]
    assert i_exc.units == pq.nA
    t = np.arange(101) * 0.1
    # the current jumps by w at 1 + 1 ms and decays with tau_syn_E (exact on the grid)
    expected = np.where(t >= 2.0 - 1e-9, 0.5 * np.exp(-(t - 2.0) / 5.0), 0.0)
    np.testing.assert_allclose(i_exc.magnitude[:, 0], expected, atol=1e-12)
    assert np.all(segment.filter(name="isyn_inh")[0].magnitude == 0.0)


def test_spike_counts_accumulate_over_runs(sim):
    cells = _driven_neuron(sim)
    sim.run(50.0)
    first = cells.get_spike_counts()
    sim.run(50.0)
    second = cells.get_spike_counts()
    assert first[cells[0]] == 0 and first[cells[1]] > 0
    assert second[cells[1]] > first[cells[1]]


@pytest.mark.parametrize("suffix", [".pkl", ".nix"])
def test_write_data_round_trip(sim, tmp_path, suffix):
    if suffix == ".nix":
        pytest.importorskip("nixio")
    cells = _driven_neuron(sim)
    sim.run(20.0)
    path = tmp_path / f"data{suffix}"
    cells.write_data(str(path))
    io = neo.io.get_io(str(path))
    block = io.read_block() if suffix == ".nix" else io.read()[0]
    if hasattr(io, "close"):
        io.close()
    original = cells.get_data().segments[0]
    segment = block.segments[0]
    np.testing.assert_allclose(
        segment.filter(name="v")[0].magnitude, original.filter(name="v")[0].magnitude
    )
    assert [len(t) for t in segment.spiketrains] == [len(t) for t in original.spiketrains]


def test_recorded_neo_block_metadata(sim):
    cells = _driven_neuron(sim)
    sim.run(1.0)
    block = cells.get_data()
    assert block.name == cells.label
    assert block.annotations["simulator"] == "pynn_eventprop"
    assert block.annotations["dt"] == 0.1


def test_record_vm_and_gsyn_from_assembly(sim):
    """PyNN's scenario of the same name with two IF_cond_exp populations (ours has no EIF)."""
    cells = sim.Population(5, sim.IF_cond_exp()) + sim.Population(6, sim.IF_cond_exp(tau_m=10.0))
    inputs = sim.Population(5, sim.SpikeSourcePoisson(rate=50.0))
    sim.Projection(inputs, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=0.5))
    cells.record("v")
    cells[2:9].record(["gsyn_exc", "gsyn_inh"])
    sim.run(100.0)
    first = cells.populations[0].get_data().segments[0]
    second = cells.populations[1].get_data().segments[0]
    both = cells.get_data().segments[0]
    assert first.filter(name="v")[0].shape == (1001, 5)
    assert second.filter(name="v")[0].shape == (1001, 6)
    assert both.filter(name="v")[0].shape == (1001, 11)
    assert first.filter(name="gsyn_exc")[0].shape == (1001, 3)
    assert second.filter(name="gsyn_exc")[0].shape == (1001, 4)
    assert both.filter(name="gsyn_exc")[0].shape == (1001, 7)
    np.testing.assert_array_equal(second.filter(name="v")[0][:, 3], both.filter(name="v")[0][:, 8])
    np.testing.assert_array_equal(
        first.filter(name="gsyn_exc")[0].array_annotations["channel_index"], [2, 3, 4]
    )
    assert first.filter(name="gsyn_exc")[0].magnitude.max() > 0.0  # the inputs arrive
