"""The same PyNN scripts on pyNN.brian2 and on pynn_eventprop give the same spikes and voltages.

Our spikes are the exact solution of PyNN's ``IF_curr_exp`` equations (tests/test_vs_oracle.py),
so every difference is Brian2's own time-stepping error.  Brian2 (as pyNN.brian2 drives it)
checks the threshold at the end of each step, stamps the spike with the *start* of that step
``t_{n-1}``, resets at ``t_n`` and delivers spikes with their full weight at grid points:

* Spikes: Brian2's stamp is less than one step before the true crossing, so a neuron's first
  spike in the first layer agrees within one step.  With ``tau_refrac = 0`` a neuron restarts
  from the grid point after its crossing in Brian2: for a neuron under constant drive each of
  Brian2's intervals is ours rounded up to the grid, so its ``k``-th spike is up to
  ``k - 1`` steps late.  With synaptic drive a late reset also leaves less synaptic current,
  so the error can grow by more than a step per spike, and later layers add the earlier
  layers' errors: the feed-forward network's spikes agree within 4 Brian2 steps (measured: at
  most 3.0 steps at dt 0.05, 1.9 at dt 0.1).  Spike counts are equal (the network is seeded so
  that no crossing grazes the threshold).
* Voltages: until a neuron's first spike, both integrate the same exact propagator on the same
  grid, so without synaptic input they agree to rounding (1e-9 mV).  Brian2 delivers a spike
  with its full weight at the grid point after ``t_spike + delay``; we add its exact effect from
  ``t_spike + delay`` on.  A PSP shifted by ``delta`` changes ``v`` by at most ``delta |w| / cm``
  (the largest slope of a current-based PSP, reached at its onset), and PSPs add up linearly
  until the first reset, so at every grid point before a neuron's first spike

      |v_brian - v_ours| <= sum over input spikes k of |w_k| delta_k / cm  (+ 1e-9 mV rounding)

  with ``delta_k`` the difference of the two arrival times, computed from the recorded spikes.
  Input spike times sit 0.002 dt before a grid point, so Brian2's SpikeGeneratorGroup (which
  bins ``t + 0.001 dt``) emits them in the same step as we do and ``delta`` is 0.002 dt for
  them.  After a reset the two differ by Brian2's reset error (up to a step of relaxation).

Runs use Brian2's numpy code generation target (no compilation).
"""

from __future__ import annotations

import numpy as np
import pytest

brian2 = pytest.importorskip("brian2")
pynn_brian2 = pytest.importorskip("pyNN.brian2")

import pynn_eventprop  # noqa: E402

INPUT_OFFSET = 0.002  # input spike times sit this fraction of a step before a grid point
CELL = dict(tau_refrac=0.0, tau_m=10.0, tau_syn_E=5.0, tau_syn_I=5.0, v_thresh=-55.0, cm=1.0)


@pytest.fixture(scope="module", autouse=True)
def brian2_numpy_target():
    old_target, old_dt = brian2.prefs.codegen.target, brian2.defaultclock.dt
    brian2.prefs.codegen.target = "numpy"
    yield
    brian2.prefs.codegen.target = old_target
    brian2.defaultclock.dt = old_dt


def _setup(sim, dt):
    if sim is pynn_brian2:
        # pyNN.brian2 creates SpikeGeneratorGroups on Brian2's default clock
        brian2.defaultclock.dt = dt * brian2.ms
    sim.setup(timestep=dt, min_delay=dt)


def _collect(population):
    segment = population.get_data().segments[0]
    spikes = [np.asarray(st.rescale("ms").magnitude) for st in segment.spiketrains]
    v = np.asarray(segment.filter(name="v")[0].rescale("mV").magnitude)
    return spikes, v


# --- scripts -------------------------------------------------------------------------------------


def single_neurons(sim, dt):
    """Three neurons: DCSource with start/stop, i_offset, StepCurrentSource."""
    _setup(sim, dt)
    cells = sim.Population(3, sim.IF_curr_exp(**CELL))
    cells[0:1].inject(sim.DCSource(amplitude=2.0, start=5.0, stop=80.0))
    cells[1:2].set(i_offset=1.5)
    cells[2:3].inject(sim.StepCurrentSource(times=[10.0, 40.0], amplitudes=[2.5, 0.5]))
    cells.record(["spikes", "v"])
    sim.run(100.0)
    result = {"cells": _collect(cells)}
    sim.end()
    return result


def feed_forward(sim, dt, seed=23):
    """SpikeSourceArray(10) -> IF_curr_exp(16) -> IF_curr_exp(6), mixed-sign weights."""
    rng = np.random.default_rng(seed)
    _setup(sim, dt)
    volleys = np.array([5.0, 30.0, 55.0])
    times = [
        (np.sort(np.round((volleys + rng.uniform(0, 3, 3)) / dt)) - INPUT_OFFSET) * dt
        for _ in range(10)
    ]
    layers = [sim.Population(10, sim.SpikeSourceArray(spike_times=[list(t) for t in times]))]
    weights = []
    for size in (16, 6):
        post = sim.Population(size, sim.IF_curr_exp(**CELL))
        pre = layers[-1]
        w = rng.uniform(0.2, 1.0, (pre.size, size)) * (10.0 / pre.size)
        w = np.where(rng.random(w.shape) < 0.2, -w, w)
        for receptor, part in (("excitatory", np.maximum(w, 0)), ("inhibitory", np.minimum(w, 0))):
            synapse = sim.StaticSynapse(weight=part, delay=1.0)
            sim.Projection(pre, post, sim.AllToAllConnector(), synapse, receptor_type=receptor)
        post.record(["spikes", "v"])
        layers.append(post)
        weights.append(w)
    sim.run(80.0)
    result = {"hidden": _collect(layers[1]), "output": _collect(layers[2])}
    result["input_times"], result["weights"] = times, weights
    sim.end()
    return result


# --- comparison ----------------------------------------------------------------------------------


def assert_same_spikes(brian_spikes, our_spikes, dt, later_steps, first_layer=True):
    """Equal counts; in the first layer every neuron's first spike within one step of Brian2's
    (its stamp); every spike within ``later_steps`` steps (module docstring)."""
    assert [len(s) for s in brian_spikes] == [len(s) for s in our_spikes]
    for b, o in zip(brian_spikes, our_spikes, strict=True):
        assert not first_layer or np.all(np.abs(b[:1] - o[:1]) < dt), (b, o)
        assert np.all(np.abs(b - o) <= later_steps * dt + 1e-9), (b, o)


def arrival_shift(brian_times, our_times, dt):
    """Per input spike, |Brian2's arrival - ours| (delays cancel): see the module docstring."""
    return np.abs(np.asarray(brian_times) + dt - np.asarray(our_times))


def assert_v_close(brian, ours, dt, tolerance):
    """``|v_b - v_o| <= tolerance[neuron]`` at the grid points before the neuron's first spike
    (in either simulator) and not adjacent to it."""
    (b_spikes, b_v), (o_spikes, o_v) = brian, ours
    assert b_v.shape == o_v.shape
    n = np.arange(b_v.shape[0])
    for i in range(b_v.shape[1]):
        first = min([*b_spikes[i][:1], *o_spikes[i][:1]], default=np.inf)
        before = n * dt < first - dt
        error = np.abs(b_v[before, i] - o_v[before, i])
        assert error.max(initial=0.0) <= tolerance[i], (i, error.max(), tolerance[i])


@pytest.mark.parametrize("dt", [0.1, 0.05, 0.2])
def test_single_neurons_with_current_sources(dt):
    brian = single_neurons(pynn_brian2, dt)["cells"]
    ours = single_neurons(pynn_eventprop, dt)["cells"]
    assert sum(len(s) for s in ours[0]) >= 10  # the neurons do spike repeatedly
    lag = [np.diff(o) - np.diff(b) for b, o in zip(brian[0], ours[0], strict=True)]
    # each of Brian2's intervals is ours rounded up to its grid (it resets at the grid point)
    assert all(np.all((x <= 1e-9) & (x > -dt - 1e-9)) for x in lag), lag
    assert_same_spikes(brian[0], ours[0], dt, later_steps=len(max(ours[0], key=len)))
    # no synaptic events: the same exact integration on the same grid, only rounding differs
    assert_v_close(brian, ours, dt, np.full(3, 1e-9))


@pytest.mark.parametrize("dt", [0.1, 0.05])
def test_feed_forward_network_driven_by_spike_source_array(dt):
    brian = feed_forward(pynn_brian2, dt)
    ours = feed_forward(pynn_eventprop, dt)
    assert sum(len(s) for s in ours["output"][0]) >= 3  # activity reaches the output layer
    assert_same_spikes(brian["hidden"][0], ours["hidden"][0], dt, later_steps=4)
    assert_same_spikes(brian["output"][0], ours["output"][0], dt, later_steps=4, first_layer=False)
    # voltage bound (module docstring): inputs shift by INPUT_OFFSET dt, hidden spikes by the
    # measured difference of arrival times
    w_in, w_hidden = ours["weights"]
    n_inputs = np.array([len(t) for t in ours["input_times"]])
    tol_hidden = (np.abs(w_in) * (n_inputs * INPUT_OFFSET * dt)[:, None]).sum(0) / CELL["cm"]
    shifts = [
        arrival_shift(b, o, dt).sum()
        for b, o in zip(brian["hidden"][0], ours["hidden"][0], strict=True)
    ]
    tol_output = (np.abs(w_hidden) * np.array(shifts)[:, None]).sum(0) / CELL["cm"]
    assert_v_close(brian["hidden"], ours["hidden"], dt, tol_hidden + 1e-9)
    assert_v_close(brian["output"], ours["output"], dt, tol_output + 1e-9)
