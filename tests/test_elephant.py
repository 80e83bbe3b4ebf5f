"""Neo data from ``get_data()`` go into Elephant unchanged, and Elephant's numbers are right.

A 400 ms run of three kinds of neurons: two identical DC-driven neurons (``i_offset``, regular
firing), one driven by input spikes at irregular times, and the spike sources themselves.
Elephant's functions are applied to the Neo objects as a pyNN.nest user would; their input
checks (units, ``t_start``/``t_stop`` shared by the trains of a ``BinnedSpikeTrain``) must
pass and their results must equal what we compute ourselves:

* firing rate: Elephant's equals spike count / duration of our spike arrays (rtol 1e-12,
  rounding only);
* DC-driven neuron: the ISI equals the analytic period
  ``tau_m ln((R I + v_rest - v_reset) / (R I + v_rest - v_thresh))`` (1e-9 ms: the engine
  integrates exactly, only rounding differs) and the ISI CV is 0 (below 1e-9);
* binned correlation coefficient: equals numpy's Pearson correlation of our own bin counts
  (1e-12), is 1 for the two identical DC neurons and below 1 for the irregular one.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

elephant = pytest.importorskip("elephant")

import quantities as pq  # noqa: E402
from elephant.conversion import BinnedSpikeTrain  # noqa: E402
from elephant.spike_train_correlation import correlation_coefficient  # noqa: E402
from elephant.statistics import cv, isi, mean_firing_rate, time_histogram  # noqa: E402

DURATION = 400.0
# a neuron driven by i_offset alone: tau_m dV/dt = v_rest - V + R I, reset to v_reset
DC = {"tau_m": 20.0, "cm": 1.0, "v_rest": -65.0, "v_reset": -65.0, "v_thresh": -50.0}
DC.update(tau_refrac=0.0, i_offset=1.0)


def _period(p):
    """Analytic inter-spike interval (ms) of a DC-driven LIF neuron reset to v_reset."""
    drive = p["tau_m"] / p["cm"] * p["i_offset"] + p["v_rest"]
    return p["tau_refrac"] + p["tau_m"] * np.log((drive - p["v_reset"]) / (drive - p["v_thresh"]))


@pytest.fixture
def block(sim):
    rng = np.random.default_rng(5)
    times = [np.sort(rng.uniform(0.0, DURATION, 40)).round(2) for _ in range(4)]
    source = sim.Population(4, sim.SpikeSourceArray(spike_times=times), label="source")
    cells = sim.Population(3, sim.IF_curr_exp(**DC), label="cells")
    cells.initialize(v=DC["v_reset"])
    cells[2:3].set(i_offset=0.0)
    sim.Projection(
        source,
        cells[2:3],
        sim.AllToAllConnector(),
        sim.StaticSynapse(weight=2.0, delay=1.0),
    )
    cells.record("spikes")
    source.record("spikes")
    sim.run(DURATION)
    return cells.get_data(), source.get_data(), times


def test_rates_match_our_spike_counts(block):
    cells, source, times = block
    for data in (cells, source):
        for train in data.segments[0].spiketrains:
            rate = mean_firing_rate(train).rescale(pq.Hz)
            ours = len(np.asarray(train.magnitude)) / (DURATION / 1000.0)
            assert len(train) > 2
            np.testing.assert_allclose(float(rate), ours, rtol=1e-12)
    rates = [float(mean_firing_rate(t).rescale(pq.Hz)) for t in source.segments[0].spiketrains]
    np.testing.assert_allclose(rates, [40 / 0.4] * 4, rtol=1e-12)  # the times we gave


def test_dc_driven_neuron_fires_regularly(block):
    train = block[0].segments[0].spiketrains[0]
    intervals = isi(train)
    assert intervals.units == pq.ms
    np.testing.assert_allclose(intervals.magnitude, _period(DC), rtol=0, atol=1e-9)
    assert cv(intervals.magnitude) < 1e-9
    irregular = block[0].segments[0].spiketrains[2]
    assert cv(isi(irregular).magnitude) > 0.1  # driven by irregular input spikes


def test_binned_correlation_matches_numpy(block):
    trains = block[0].segments[0].spiketrains
    binned = BinnedSpikeTrain(trains, bin_size=5 * pq.ms)  # checks shared t_start/t_stop
    coefficients = correlation_coefficient(binned)
    edges = np.arange(0.0, DURATION + 5.0, 5.0)
    counts = np.array([np.histogram(np.asarray(t.magnitude), edges)[0] for t in trains])
    np.testing.assert_allclose(coefficients, np.corrcoef(counts), rtol=0, atol=1e-12)
    np.testing.assert_allclose(coefficients[0, 1], 1.0, atol=1e-12)  # identical DC neurons
    assert abs(coefficients[0, 2]) < 0.9
    histogram = time_histogram(list(trains), bin_size=5 * pq.ms)
    np.testing.assert_array_equal(np.asarray(histogram).ravel(), counts.sum(axis=0))


def test_example_analysis_accepts_our_block(block):
    """``examples/neo_elephant.py``'s analysis (Elephant only) on a Block from get_data()."""
    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples/neo_elephant.py"))
    result = example["analyse"](block[0])
    counts = [len(t) for t in block[0].segments[0].spiketrains]
    np.testing.assert_allclose(result["rates"], np.array(counts) / 0.4, rtol=1e-12)
    assert result["correlations"].shape == (3, 3) and result["cvs"].shape == (3,)
