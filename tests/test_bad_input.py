"""Bad input fails early with an error naming the parameter, the value and what is allowed."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pyNN import errors
from pyNN.standardmodels import cells as pynn_cells

import pynn_eventprop


def _match(*parts: str) -> str:
    """Regex requiring every part, in order, in the message."""
    return ".*".join(re.escape(p) for p in parts)


# --- setup ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("timestep", [0.0, -0.1, math.nan, math.inf])
def test_timestep_must_be_positive_and_finite(timestep):
    with pytest.raises(ValueError, match=_match("timestep", "> 0", repr(timestep))):
        pynn_eventprop.setup(timestep=timestep)
    pynn_eventprop.setup()  # leave a usable state for later tests


# --- neuron parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tau_m", "cm", "tau_syn_E", "tau_syn_I"])
@pytest.mark.parametrize("value", [0.0, -5.0])
def test_time_constants_and_capacitance_must_be_positive(sim, name, value):
    with pytest.raises(errors.InvalidParameterValueError, match=_match(name, "> 0", str(value))):
        sim.Population(3, sim.IF_curr_exp(**{name: value}))


def test_negative_refractory_period_is_rejected(sim):
    with pytest.raises(errors.InvalidParameterValueError, match=_match("tau_refrac", ">= 0", "-1")):
        sim.Population(2, sim.IF_cond_exp(tau_refrac=-1.0))


@pytest.mark.parametrize(("name", "value"), [("v_thresh", math.nan), ("i_offset", math.inf)])
def test_nan_and_inf_parameters_are_rejected(sim, name, value):
    with pytest.raises(
        errors.InvalidParameterValueError, match=_match(name, "finite", repr(value))
    ):
        sim.Population(2, sim.IF_curr_exp(**{name: value}))


def test_nan_parameter_set_later_names_the_neuron(sim):
    cells = sim.Population(4, sim.IF_curr_exp())
    with pytest.raises(errors.InvalidParameterValueError, match=_match("tau_m", "nan", "neuron 2")):
        cells[2:3].set(tau_m=math.nan)
    assert cells.get("tau_m") == 20.0  # the failed set left the parameters unchanged


def test_reset_must_be_below_threshold(sim):
    with pytest.raises(
        errors.InvalidParameterValueError, match=_match("v_reset", "below", "v_thresh", "-50")
    ):
        sim.Population(1, sim.IF_curr_exp(v_reset=-50.0, v_thresh=-50.0))


def test_per_neuron_synaptic_time_constants_are_simulated_per_neuron(sim):
    """Not bad input: each neuron's current decays with its own tau_syn_E."""
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0]))
    cells = sim.Population(2, sim.IF_curr_exp(tau_syn_E=[2.0, 5.0], v_thresh=100.0))
    sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0))
    cells.record("isyn_exc")
    sim.run(10.0)
    isyn = cells.get_data().segments[0].filter(name="isyn_exc")[0]
    t = isyn.times.magnitude
    at = np.searchsorted(t, 6.1)  # 5 ms after the arrival at 1.1 ms
    assert np.allclose(isyn.magnitude[at], np.exp(-5.0 / np.array([2.0, 5.0])), rtol=1e-9)


def test_initial_value_must_be_finite(sim):
    cells = sim.Population(2, sim.IF_curr_exp())
    with pytest.raises(
        errors.InvalidParameterValueError, match=_match("initial value", "v", "nan")
    ):
        cells.initialize(v=math.nan)


# --- spike sources --------------------------------------------------------------------------------


def test_negative_spike_time_is_rejected(sim):
    with pytest.raises(
        errors.InvalidParameterValueError, match=_match("spike_times", "[0, inf)", "-1.0")
    ):
        sim.Population(1, sim.SpikeSourceArray(spike_times=[-1.0, 2.0]))


def test_nan_spike_time_is_rejected(sim):
    with pytest.raises(errors.InvalidParameterValueError, match=_match("spike_times", "nan")):
        sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0, math.nan]))


def test_unsorted_spike_times_are_rejected(sim):
    with pytest.raises(
        errors.InvalidParameterValueError, match=_match("spike_times", "sorted", "3.0", "2.0")
    ):
        sim.Population(1, sim.SpikeSourceArray(spike_times=[1.0, 3.0, 2.0]))


def test_two_spike_times_in_one_step_are_accepted_but_not_by_the_tick_based_model(sim):
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.01, 1.05]))
    source.record("spikes")
    sim.run(2.0)
    assert list(source.get_data().segments[0].spiketrains[0].magnitude) == [1.01, 1.05]
    sim.setup(timestep=0.1, platform="spinnaker2")
    source = sim.Population(1, sim.SpikeSourceArray(spike_times=[1.01, 1.05]))
    cells = sim.Population(1, sim.IF_curr_exp())
    sim.Projection(source, cells, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    with pytest.raises(ValueError, match="two spikes of one neuron within one time step"):
        sim.run(2.0)


def test_negative_poisson_rate_is_rejected(sim):
    with pytest.raises(errors.InvalidParameterValueError, match=_match("rate", ">= 0", "-3")):
        sim.Population(2, sim.SpikeSourcePoisson(rate=-3.0))


# --- delays and weights ---------------------------------------------------------------------------


def _pair(sim):
    return sim.Population(2, sim.SpikeSourceArray()), sim.Population(2, sim.IF_curr_exp())


def test_delay_off_the_grid_is_accepted_but_not_by_the_tick_based_model(sim):
    pre, post = _pair(sim)
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(delay=0.25))
    assert np.all(prj.get("delay", format="array") == 0.25)
    sim.run(1.0)
    sim.setup(timestep=0.1, platform="spinnaker2")
    pre, post = _pair(sim)
    sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(delay=0.25))
    with pytest.raises(ValueError, match=_match("delay", "multiple", "0.1 ms", "0.25")):
        sim.run(1.0)


def test_delay_below_dt_is_rejected(sim):
    pre, post = _pair(sim)
    with pytest.raises(ValueError, match=_match("delay", "[0.1, inf]", "0.05")):
        sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(delay=0.05))


def test_delay_set_later_is_checked(sim):
    pre, post = _pair(sim)
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(delay=1.0))
    with pytest.raises(ValueError, match=_match("delay", "[0.1, inf]", "0.03")):
        prj.set(delay=0.03)
    assert np.all(prj.get("delay", format="array") == 1.0)


def test_nan_weight_is_rejected(sim):
    pre, post = _pair(sim)
    prj = sim.Projection(pre, post, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
    with pytest.raises(errors.InvalidWeightError, match=_match("weight", "finite", "nan")):
        prj.set(weight=math.nan)


@pytest.mark.parametrize(
    ("connection", "role", "value", "size"),
    [((5, 0), "presynaptic", "5", "[0, 2)"), ((0, 4), "postsynaptic", "4", "[0, 2)")],
)
def test_from_list_index_out_of_range(sim, connection, role, value, size):
    pre, post = _pair(sim)
    connector = sim.FromListConnector([connection])
    with pytest.raises(errors.ConnectionError, match=_match(role, "index", value, size)):
        sim.Projection(pre, post, connector, sim.StaticSynapse(weight=0.1))


def test_from_list_negative_index(sim):
    pre, post = _pair(sim)
    connector = sim.FromListConnector([(-1, 0)])
    with pytest.raises(errors.ConnectionError, match=_match("presynaptic", "-1", "[0, 2)")):
        sim.Projection(pre, post, connector, sim.StaticSynapse(weight=0.1))


# --- unsupported models and recording -------------------------------------------------------------


def test_unsupported_cell_type_names_supported_ones(sim):
    with pytest.raises(
        errors.NoModelAvailableError, match=_match("IF_cond_alpha", "IF_curr_exp", "IF_cond_exp")
    ):
        sim.IF_cond_alpha()
    assert "IF_cond_alpha" not in sim.list_standard_models()


def test_foreign_cell_type_instance_is_rejected(sim):
    with pytest.raises(errors.NoModelAvailableError, match=_match("IF_curr_exp", "supported")):
        sim.Population(1, pynn_cells.IF_curr_exp())


def test_unsupported_synapse_type_names_supported_ones(sim):
    with pytest.raises(
        errors.NoModelAvailableError, match=_match("SimpleStochasticSynapse", "StaticSynapse")
    ):
        sim.SimpleStochasticSynapse()


def test_sampling_interval_must_be_multiple_of_dt(sim):
    cells = sim.Population(1, sim.IF_curr_exp())
    with pytest.raises(ValueError, match=_match("sampling_interval", "multiple", "0.25")):
        cells.record("v", sampling_interval=0.25)


def test_step_current_times_must_increase(sim):
    with pytest.raises(errors.InvalidParameterValueError, match=_match("times", "increasing")):
        sim.StepCurrentSource(times=[1.0, 0.5], amplitudes=[0.1, 0.2])


def test_automatic_delay_limits_accept_longer_and_shorter_later_delays(sim):
    """With min/max_delay "auto", the reported extremes are not limits for new projections."""
    sim.setup(timestep=0.25)
    a = sim.Population(2, sim.SpikeSourceArray())
    b = sim.Population(2, sim.IF_curr_exp())
    sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=0.5))
    sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=1.0))
    sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=0.25))
    assert (sim.get_min_delay(), sim.get_max_delay()) == (0.25, 1.0)


def test_explicit_max_delay_is_a_limit(sim):
    sim.setup(timestep=0.25, max_delay=1.0)
    a = sim.Population(2, sim.SpikeSourceArray())
    b = sim.Population(2, sim.IF_curr_exp())
    with pytest.raises(errors.ConnectionError, match=_match("delay", "[0.25, 1.0]", "2.0")):
        sim.Projection(a, b, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=2.0))
