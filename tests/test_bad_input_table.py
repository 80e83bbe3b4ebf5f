"""Bad input at the public boundary, one table row per case: the PyNN layer and the data sets.

Each row is a call that must fail early with the given error class, and strings that the
message must contain: the parameter (or argument) and the value given, and where useful what
is allowed.  ``test_bad_input.py`` holds the longer-form cases of the same checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pyNN import connectors as pynn_connectors
from pyNN import errors
from pyNN.standardmodels import cells as pynn_cells

from pynn_eventprop import datasets
from pynn_eventprop.validation import NoDataError, StaleObjectError

nan, inf = math.nan, math.inf


@dataclass(frozen=True)
class Case:
    """One bad input: ``call(sim)`` must raise ``error`` whose message contains ``parts``."""

    id: str
    call: Any
    error: type[BaseException]
    parts: tuple[str, ...]


# --- building blocks ------------------------------------------------------------------------------


def cells(sim, n=2, model="IF_curr_exp", **parameters):
    return sim.Population(n, getattr(sim, model)(**parameters), label="cells")


def sources(sim, n=2):
    return sim.Population(n, sim.SpikeSourceArray(spike_times=[1.0]), label="spikes")


def project(sim, connector=None, synapse=None, pre=None, post=None, **kwargs):
    """A projection from two spike sources onto two IF_curr_exp cells (by default)."""
    return sim.Projection(
        pre if pre is not None else sources(sim),
        post if post is not None else cells(sim),
        connector if connector is not None else sim.AllToAllConnector(),
        synapse if synapse is not None else sim.StaticSynapse(weight=0.1),
        **kwargs,
    )


def stale(sim):
    """A source and a neuron population created before the last ``setup()``."""
    old = sources(sim), cells(sim)
    sim.setup()
    sources(sim), cells(sim)  # new objects now hold the old ones' indices
    return old


def run_then(sim, action, duration=1.0):
    population = cells(sim)
    population.record("v")
    sim.run(duration)
    return action(population)


def spike_dataset(**kwargs):
    args = {"times": [[1.0], [2.0]], "labels": [0, 1], "n_classes": 3, "duration": 7.0}
    return datasets.SpikeDataset(**{**args, **kwargs})


P = errors.InvalidParameterValueError

# --- the table ------------------------------------------------------------------------------------

SETUP = [
    Case("timestep-zero", lambda sim: sim.setup(timestep=0.0), ValueError, ("timestep", "0.0")),
    Case(
        "timestep-negative", lambda sim: sim.setup(timestep=-0.1), ValueError, ("timestep", "-0.1")
    ),
    Case("timestep-nan", lambda sim: sim.setup(timestep=nan), ValueError, ("timestep", "nan")),
    Case("timestep-inf", lambda sim: sim.setup(timestep=inf), ValueError, ("timestep", "inf")),
    Case(
        "timestep-string", lambda sim: sim.setup(timestep="abc"), ValueError, ("timestep", "'abc'")
    ),
    Case("timestep-none", lambda sim: sim.setup(timestep=None), ValueError, ("timestep", "None")),
    Case(
        "min-delay-below-timestep",
        lambda sim: sim.setup(timestep=0.1, min_delay=0.05),
        ValueError,
        ("min_delay", "0.05", "timestep"),
    ),
    Case(
        "min-delay-negative",
        lambda sim: sim.setup(min_delay=-1.0),
        ValueError,
        ("min_delay", "-1.0"),
    ),
    Case("min-delay-nan", lambda sim: sim.setup(min_delay=nan), ValueError, ("min_delay", "nan")),
    Case(
        "min-delay-string",
        lambda sim: sim.setup(min_delay="abc"),
        TypeError,
        ("min_delay", "'abc'"),
    ),
    Case(
        "max-delay-below-min-delay",
        lambda sim: sim.setup(min_delay=1.0, max_delay=0.5),
        ValueError,
        ("max_delay", "0.5", "min_delay"),
    ),
    Case(
        "max-delay-below-timestep",
        lambda sim: sim.setup(max_delay=0.05),
        ValueError,
        ("max_delay", "0.05", "timestep"),
    ),
    Case(
        "rng-seed-string",
        lambda sim: sim.setup(rng_seed="abc"),
        TypeError,
        ("rng_seed", "'abc'"),
    ),
    Case(
        "max-delay-string",
        lambda sim: sim.setup(max_delay="abc"),
        TypeError,
        ("max_delay", "'abc'"),
    ),
    Case("max-delay-inf", lambda sim: sim.setup(max_delay=inf), ValueError, ("max_delay", "inf")),
    Case("dt-keyword", lambda sim: sim.setup(dt=0.1), ValueError, ("dt=0.1", "timestep")),
    Case(
        "mindelay-keyword",
        lambda sim: sim.setup(mindelay=1.0),
        ValueError,
        ("mindelay=1.0", "min_delay"),
    ),
    Case("rng-seed-negative", lambda sim: sim.setup(rng_seed=-1), ValueError, ("rng_seed", "-1")),
    Case("rng-seed-float", lambda sim: sim.setup(rng_seed=1.5), TypeError, ("rng_seed", "1.5")),
    Case(
        "platform-unknown", lambda sim: sim.setup(platform="gpu"), ValueError, ("platform", "'gpu'")
    ),
]

NEURONS = [
    Case("tau-m-zero", lambda sim: cells(sim, tau_m=0.0), P, ("tau_m", "0.0", "> 0")),
    Case("tau-m-negative", lambda sim: cells(sim, tau_m=-5.0), P, ("tau_m", "-5.0")),
    Case("cm-negative", lambda sim: cells(sim, cm=-1.0), P, ("cm", "-1.0")),
    Case("tau-syn-e-zero", lambda sim: cells(sim, tau_syn_E=0.0), P, ("tau_syn_E", "0.0")),
    Case("tau-syn-i-negative", lambda sim: cells(sim, tau_syn_I=-2.0), P, ("tau_syn_I", "-2.0")),
    Case("tau-refrac-negative", lambda sim: cells(sim, tau_refrac=-1.0), P, ("tau_refrac", "-1.0")),
    Case("v-thresh-nan", lambda sim: cells(sim, v_thresh=nan), P, ("v_thresh", "nan")),
    Case("i-offset-inf", lambda sim: cells(sim, i_offset=inf), P, ("i_offset", "inf")),
    Case("v-rest-minus-inf", lambda sim: cells(sim, v_rest=-inf), P, ("v_rest", "-inf")),
    Case(
        "v-reset-at-threshold",
        lambda sim: cells(sim, v_reset=-50.0, v_thresh=-50.0),
        P,
        ("v_reset", "v_thresh", "-50.0"),
    ),
    Case("tau-m-string", lambda sim: cells(sim, tau_m="abc"), P, ("tau_m", "str")),
    Case(
        "tau-m-wrong-length",
        lambda sim: cells(sim, tau_m=[10.0, 20.0, 30.0]),
        P,
        ("tau_m", "3 values", "2 neurons", "10., 20., 30."),
    ),
    Case(
        "cond-e-rev-nan",
        lambda sim: cells(sim, model="IF_cond_exp", e_rev_E=nan),
        P,
        ("e_rev_E", "nan"),
    ),
    Case(
        "cond-tau-syn-negative",
        lambda sim: cells(sim, model="IF_cond_exp", tau_syn_I=-2.0),
        P,
        ("tau_syn_I", "-2.0"),
    ),
    Case("cond-cm-zero", lambda sim: cells(sim, model="IF_cond_exp", cm=0.0), P, ("cm", "0.0")),
    Case(
        "cond-v-reset-above-threshold",
        lambda sim: cells(sim, model="IF_cond_exp", v_reset=-40.0),
        P,
        ("v_reset", "v_thresh", "-40.0"),
    ),
    Case(
        "unknown-parameter",
        lambda sim: sim.IF_curr_exp(foo=1.0),
        errors.NonExistentParameterError,
        ("foo", "tau_m"),
    ),
    Case("set-negative", lambda sim: cells(sim).set(tau_m=-1.0), P, ("tau_m", "-1.0")),
    Case(
        "set-wrong-length",
        lambda sim: cells(sim).set(tau_m=[1.0, 2.0, 3.0]),
        P,
        ("tau_m", "3 values", "2 neurons"),
    ),
    Case("view-set-nan", lambda sim: cells(sim, 4)[2:3].set(tau_m=nan), P, ("tau_m", "nan")),
    Case("initialize-nan", lambda sim: cells(sim).initialize(v=nan), P, ("v", "nan")),
    Case(
        "initialize-wrong-length",
        lambda sim: cells(sim).initialize(v=[1.0, 2.0, 3.0]),
        ValueError,
        ("initial value of v", "3 values", "2 neurons"),
    ),
    Case(
        "view-initialize-wrong-length",
        lambda sim: cells(sim, 4)[1:3].initialize(v=[1.0, 2.0, 3.0]),
        ValueError,
        ("initial value of v", "3 values", "2 neurons"),
    ),
    Case("initialize-unknown", lambda sim: cells(sim).initialize(foo=1.0), P, ("'foo'", "'v'")),
    Case(
        "unsupported-cell-type",
        lambda sim: sim.IF_cond_alpha(),
        errors.NoModelAvailableError,
        ("IF_cond_alpha", "IF_curr_exp"),
    ),
    Case(
        "foreign-cell-type",
        lambda sim: sim.Population(1, pynn_cells.IF_curr_exp()),
        errors.NoModelAvailableError,
        ("IF_curr_exp", "supported"),
    ),
    Case(
        "cell-type-as-string",
        lambda sim: sim.Population(2, "IF_curr_exp"),
        TypeError,
        ("cellclass", "'IF_curr_exp'"),
    ),
    Case("size-zero", lambda sim: sim.Population(0, sim.IF_curr_exp()), ValueError, ("size", "0")),
    Case(
        "size-negative",
        lambda sim: sim.Population(-3, sim.IF_curr_exp()),
        ValueError,
        ("size", "-3"),
    ),
    Case(
        "size-float", lambda sim: sim.Population(2.5, sim.IF_curr_exp()), TypeError, ("size", "2.5")
    ),
    Case(
        "size-string",
        lambda sim: sim.Population("a", sim.IF_curr_exp()),
        TypeError,
        ("size", "'a'"),
    ),
    Case(
        "size-tuple-negative",
        lambda sim: sim.Population((2, -3), sim.IF_curr_exp()),
        ValueError,
        ("size[1]", "-3"),
    ),
    Case("view-index-out-of-range", lambda sim: cells(sim)[5], IndexError, ("5", "size 2")),
]


def ssa(sim, n=1, **parameters):
    return sim.Population(n, sim.SpikeSourceArray(**parameters))


def poisson(sim, **parameters):
    return sim.Population(2, sim.SpikeSourcePoisson(**parameters))


SPIKE_SOURCES = [
    Case(
        "spike-time-negative",
        lambda sim: ssa(sim, spike_times=[-1.0, 2.0]),
        P,
        ("spike_times", "-1.0"),
    ),
    Case("spike-time-nan", lambda sim: ssa(sim, spike_times=[1.0, nan]), P, ("spike_times", "nan")),
    Case("spike-time-inf", lambda sim: ssa(sim, spike_times=[1.0, inf]), P, ("spike_times", "inf")),
    Case(
        "spike-times-unsorted",
        lambda sim: ssa(sim, spike_times=[1.0, 3.0, 2.0]),
        P,
        ("spike_times", "3.0", "2.0", "sorted"),
    ),
    Case(
        "spike-trains-wrong-count",
        lambda sim: ssa(sim, 2, spike_times=[sim.Sequence([1.0])] * 3),
        P,
        ("spike_times", "3 values", "2 neurons"),
    ),
    Case(
        "rates-wrong-count",
        lambda sim: poisson(sim, rate=[1.0, 2.0, 3.0]),
        P,
        ("rate", "3 values", "2 neurons"),
    ),
    Case("rate-negative", lambda sim: poisson(sim, rate=-3.0), P, ("rate", "-3.0")),
    Case("rate-nan", lambda sim: poisson(sim, rate=nan), P, ("rate", "nan")),
    Case("rate-inf", lambda sim: poisson(sim, rate=inf), P, ("rate", "inf")),
    Case("poisson-start-negative", lambda sim: poisson(sim, start=-1.0), P, ("start", "-1.0")),
    Case(
        "poisson-duration-negative",
        lambda sim: poisson(sim, duration=-5.0),
        P,
        ("duration", "-5.0"),
    ),
]


def inject_into_stale_population(sim):
    population = stale(sim)[1]
    sim.DCSource(amplitude=1.0).inject_into(population)


def inject_stale_source(sim):
    source = sim.DCSource(amplitude=1.0)
    sim.setup()
    source.inject_into(cells(sim))


CURRENT_SOURCES = [
    Case("dc-amplitude-nan", lambda sim: sim.DCSource(amplitude=nan), P, ("amplitude", "nan")),
    Case("dc-start-negative", lambda sim: sim.DCSource(start=-1.0), P, ("start", "-1.0")),
    Case(
        "dc-stop-before-start",
        lambda sim: sim.DCSource(start=50.0, stop=10.0),
        P,
        ("stop", "start=50.0", "10.0"),
    ),
    Case("dc-amplitude-string", lambda sim: sim.DCSource(amplitude="x"), P, ("amplitude", "str")),
    Case(
        "dc-amplitude-list",
        lambda sim: sim.DCSource(amplitude=[1.0, 2.0]),
        P,
        ("amplitude", "single number", "[1.0, 2.0]"),
    ),
    Case(
        "dc-set-amplitude-list",
        lambda sim: sim.DCSource().set_parameters(amplitude=[1.0, 2.0]),
        P,
        ("amplitude", "[1.0, 2.0]"),
    ),
    Case(
        "dc-unknown-parameter",
        lambda sim: sim.DCSource(foo=1.0),
        errors.NonExistentParameterError,
        ("foo", "amplitude"),
    ),
    Case(
        "dc-set-stop-negative",
        lambda sim: sim.DCSource().set_parameters(stop=-5.0),
        P,
        ("stop", "-5.0"),
    ),
    Case(
        "step-lengths-differ",
        lambda sim: sim.StepCurrentSource(times=[1.0, 2.0], amplitudes=[1.0]),
        P,
        ("amplitudes", "1", "times", "2"),
    ),
    Case(
        "step-times-decreasing",
        lambda sim: sim.StepCurrentSource(times=[1.0, 0.5], amplitudes=[0.1, 0.2]),
        P,
        ("times", "[1.0, 0.5]", "increasing"),
    ),
    Case(
        "step-times-repeated",
        lambda sim: sim.StepCurrentSource(times=[1.0, 1.0], amplitudes=[0.1, 0.2]),
        P,
        ("times", "[1.0, 1.0]"),
    ),
    Case(
        "step-time-negative",
        lambda sim: sim.StepCurrentSource(times=[-1.0], amplitudes=[0.1]),
        P,
        ("times", "-1.0"),
    ),
    Case(
        "step-time-nan",
        lambda sim: sim.StepCurrentSource(times=[1.0, nan], amplitudes=[0.1, 0.2]),
        P,
        ("times", "nan"),
    ),
    Case(
        "ac-frequency-negative", lambda sim: sim.ACSource(frequency=-1.0), P, ("frequency", "-1.0")
    ),
    Case(
        "ac-stop-before-start",
        lambda sim: sim.ACSource(start=100.0, stop=50.0),
        P,
        ("stop", "start=100.0", "50.0"),
    ),
    Case("ac-amplitude-inf", lambda sim: sim.ACSource(amplitude=inf), P, ("amplitude", "inf")),
    Case(
        "noise-stdev-negative", lambda sim: sim.NoisyCurrentSource(stdev=-1.0), P, ("stdev", "-1.0")
    ),
    Case("noise-dt-zero", lambda sim: sim.NoisyCurrentSource(dt=0.0), P, ("dt", "0.0")),
    Case(
        "noise-dt-off-grid",
        lambda sim: sim.NoisyCurrentSource(dt=0.15),
        P,
        ("dt", "0.15", "multiple"),
    ),
    Case(
        "noise-stop-before-start",
        lambda sim: sim.NoisyCurrentSource(start=10.0, stop=5.0),
        P,
        ("stop", "start=10.0", "5.0"),
    ),
    Case(
        "inject-into-spike-source",
        lambda sim: sim.DCSource(amplitude=1.0).inject_into(sources(sim)),
        TypeError,
        ("DCSource", "spike source", "'spikes'"),
    ),
    Case("inject-stale-source", inject_stale_source, StaleObjectError, ("DCSource", "setup()")),
    Case(
        "inject-into-stale-population",
        inject_into_stale_population,
        StaleObjectError,
        ("'cells'", "setup()"),
    ),
]

CONNECTORS = [
    Case(
        "probability-negative",
        lambda sim: sim.FixedProbabilityConnector(-0.1),
        ValueError,
        ("p_connect", "-0.1", "[0.0, 1.0]"),
    ),
    Case(
        "probability-above-one",
        lambda sim: sim.FixedProbabilityConnector(1.5),
        ValueError,
        ("p_connect", "1.5"),
    ),
    Case(
        "probability-nan",
        lambda sim: sim.FixedProbabilityConnector(nan),
        ValueError,
        ("p_connect", "nan"),
    ),
    Case(
        "probability-string",
        lambda sim: sim.FixedProbabilityConnector("a"),
        TypeError,
        ("p_connect", "'a'"),
    ),
    Case(
        "pynn-probability-above-one",
        lambda sim: project(sim, pynn_connectors.FixedProbabilityConnector(1.5)),
        ValueError,
        ("p_connect", "1.5"),
    ),
    Case("n-pre-negative", lambda sim: sim.FixedNumberPreConnector(-1), ValueError, ("n", "-1")),
    Case("n-post-negative", lambda sim: sim.FixedNumberPostConnector(-2), ValueError, ("n", "-2")),
    Case(
        "n-total-negative", lambda sim: sim.FixedTotalNumberConnector(-1), ValueError, ("n", "-1")
    ),
    Case("n-total-float", lambda sim: sim.FixedTotalNumberConnector(2.5), TypeError, ("n", "2.5")),
    Case(
        "list-pre-out-of-range",
        lambda sim: project(sim, sim.FromListConnector([(5, 0)])),
        errors.ConnectionError,
        ("presynaptic", "5", "[0, 2)"),
    ),
    Case(
        "list-post-negative",
        lambda sim: project(sim, sim.FromListConnector([(0, -1)])),
        errors.ConnectionError,
        ("postsynaptic", "-1", "[0, 2)"),
    ),
    Case(
        "list-index-fractional",
        lambda sim: project(sim, sim.FromListConnector([(0.5, 0)])),
        errors.ConnectionError,
        ("presynaptic", "0.5"),
    ),
    Case(
        "list-weight-nan",
        lambda sim: project(
            sim, sim.FromListConnector([(0, 0, nan, 1.0)], column_names=["weight", "delay"])
        ),
        errors.InvalidWeightError,
        ("weight", "nan"),
    ),
    Case(
        "one-to-one-sizes-differ",
        lambda sim: project(sim, sim.OneToOneConnector(), post=cells(sim, 3)),
        errors.ConnectionError,
        ("OneToOneConnector", "size 2", "size 3"),
    ),
    Case(
        "array-wrong-shape",
        lambda sim: project(sim, sim.ArrayConnector(np.ones((3, 3), bool))),
        errors.ConnectionError,
        ("array", "(3, 3)", "(2, 2)"),
    ),
    Case(
        "connector-not-a-connector",
        lambda sim: project(sim, "all"),
        TypeError,
        ("connector", "Connector", "'str'"),
    ),
]


def static(weight=0.1, **kwargs):
    """A StaticSynapse made by the backend under test (the ``sim`` fixture's module)."""
    import pynn_eventprop

    return pynn_eventprop.StaticSynapse(weight=weight, **kwargs)


def set_min_delay(sim, delay, **limits):
    sim.setup(**limits)
    return project(sim, synapse=static(delay=delay))


PROJECTIONS = [
    Case(
        "weight-nan",
        lambda sim: project(sim, synapse=static(nan)),
        errors.InvalidWeightError,
        ("weight", "nan"),
    ),
    Case(
        "weight-nan-inhibitory",
        lambda sim: project(sim, synapse=static(nan), receptor_type="inhibitory"),
        errors.InvalidWeightError,
        ("weight", "nan", "finite"),
    ),
    Case(
        "weight-inf",
        lambda sim: project(sim, synapse=static(inf)),
        errors.InvalidWeightError,
        ("weight", "inf"),
    ),
    Case(
        "weight-negative-excitatory",
        lambda sim: project(sim, synapse=static(-1.0), receptor_type="excitatory"),
        errors.ConnectionError,
        ("weight", "-1.0", "'excitatory'", "positive"),
    ),
    Case(
        "weight-positive-inhibitory",
        lambda sim: project(sim, synapse=static(1.0), receptor_type="inhibitory"),
        errors.ConnectionError,
        ("weight", "1.0", "'inhibitory'", "negative"),
    ),
    Case(
        "weight-mixed-signs",
        lambda sim: project(sim, synapse=static(np.array([[1.0, -1.0], [1.0, 1.0]]))),
        errors.ConnectionError,
        ("weight", "-1.", "all positive or all negative"),
    ),
    Case("weight-string", lambda sim: project(sim, synapse=static("abc")), P, ("weight", "str")),
    Case(
        "delay-nan",
        lambda sim: project(sim, synapse=static(delay=nan)),
        errors.ConnectionError,
        ("delay", "nan"),
    ),
    Case(
        "delay-negative",
        lambda sim: project(sim, synapse=static(delay=-1.0)),
        ValueError,
        ("delay", "-1.0"),
    ),
    Case(
        "delay-zero",
        lambda sim: project(sim, synapse=static(delay=0.0)),
        ValueError,
        ("delay", "0.0"),
    ),
    Case(
        "delay-below-timestep",
        lambda sim: project(sim, synapse=static(delay=0.05)),
        ValueError,
        ("delay", "[0.1, inf]", "0.05"),
    ),
    Case(
        "delay-below-min-delay",
        lambda sim: set_min_delay(sim, 0.5, min_delay=1.0),
        errors.ConnectionError,
        ("delay", "0.5", "1.0"),
    ),
    Case(
        "delay-above-max-delay",
        lambda sim: set_min_delay(sim, 3.0, max_delay=2.0),
        errors.ConnectionError,
        ("delay", "3.0", "2.0"),
    ),
    Case(
        "receptor-unknown",
        lambda sim: project(sim, receptor_type="foo"),
        errors.ConnectionError,
        ("receptor_types=foo", "excitatory"),
    ),
    Case(
        "pre-not-a-population",
        lambda sim: project(sim, pre=[1, 2]),
        errors.ConnectionError,
        ("presynaptic_neurons", "list"),
    ),
    Case(
        "stale-populations",
        lambda sim: project(sim, pre=stale(sim)[0]),
        StaleObjectError,
        ("presynaptic population", "'spikes'", "setup()"),
    ),
    Case(
        "stale-postsynaptic",
        lambda sim: project(sim, post=stale(sim)[1]),
        StaleObjectError,
        ("postsynaptic population", "'cells'", "setup()"),
    ),
    Case(
        "unsupported-synapse-type",
        lambda sim: project(sim, synapse=sim.SimpleStochasticSynapse()),
        errors.NoModelAvailableError,
        ("SimpleStochasticSynapse", "StaticSynapse"),
    ),
    Case(
        "set-weight-nan",
        lambda sim: project(sim).set(weight=nan),
        errors.InvalidWeightError,
        ("weight", "nan"),
    ),
    Case(
        "set-delay-below-timestep",
        lambda sim: project(sim).set(delay=0.03),
        ValueError,
        ("delay", "[0.1, inf]", "0.03"),
    ),
    Case(
        "set-weight-wrong-length",
        lambda sim: project(sim).set(weight=[1.0, 2.0, 3.0]),
        P,
        ("weight", "shape (3,)", "4 values"),
    ),
    Case(
        "set-unknown-attribute",
        lambda sim: project(sim).set(foo=1.0),
        errors.NonExistentParameterError,
        ("foo", "weight"),
    ),
    Case(
        "get-unknown-attribute",
        lambda sim: project(sim).get("foo", format="list"),
        errors.NonExistentParameterError,
        ("foo", "weight"),
    ),
]


def run_after(sim, first, then):
    sim.run(first)
    sim.run_until(then)


def run_with_timestep(sim, timestep, simtime):
    sim.setup(timestep=timestep)
    sim.run(simtime)


RUN_CONTROL = [
    Case("run-negative", lambda sim: sim.run(-1.0), ValueError, ("simtime", "-1.0")),
    Case("run-nan", lambda sim: sim.run(nan), ValueError, ("simtime", "nan")),
    Case("run-inf", lambda sim: sim.run(inf), ValueError, ("simtime", "inf")),
    Case("run-string", lambda sim: sim.run("a"), TypeError, ("simtime", "'a'")),
    Case(
        "run-until-past",
        lambda sim: run_after(sim, 10.0, 5.0),
        ValueError,
        ("time_point", "5.0", "10.0"),
    ),
    Case("run-until-string", lambda sim: sim.run_until("a"), TypeError, ("time_point", "'a'")),
    Case("run-until-nan", lambda sim: sim.run_until(nan), ValueError, ("time_point", "nan")),
    Case(
        "timestep-longer-than-run",
        lambda sim: run_with_timestep(sim, 1e6, 100.0),
        ValueError,
        ("simtime=100.0", "1000000.0", "no step"),
    ),
    Case(
        "run-shorter-than-half-step",
        lambda sim: sim.run(0.04),
        ValueError,
        ("simtime=0.04", "0.1", "no step"),
    ),
]


def record_stale(sim):
    stale(sim)[1].record("v")


def initialize_stale(sim):
    stale(sim)[1].initialize(v=-60.0)


def get_data_before_run(sim):
    population = cells(sim)
    population.record("v")
    population.get_data()


RECORDING = [
    Case(
        "record-unknown", lambda sim: cells(sim).record("foo"), errors.RecordingError, ("foo", "v")
    ),
    Case(
        "record-not-recordable",
        lambda sim: cells(sim).record("gsyn_exc"),
        errors.RecordingError,
        ("gsyn_exc", "IF_curr_exp"),
    ),
    Case(
        "record-v-of-source",
        lambda sim: sources(sim).record("v"),
        errors.RecordingError,
        ("'v'", "SpikeSourceArray"),
    ),
    Case(
        "sampling-interval-off-grid",
        lambda sim: cells(sim).record("v", sampling_interval=0.25),
        ValueError,
        ("sampling_interval", "0.25"),
    ),
    Case(
        "sampling-interval-string",
        lambda sim: cells(sim).record("v", sampling_interval="abc"),
        TypeError,
        ("sampling_interval", "'abc'"),
    ),
    Case(
        "record-list-with-unknown",
        lambda sim: cells(sim).record(["v", "foo"]),
        errors.RecordingError,
        ("foo", "isyn_exc"),
    ),
    Case(
        "sampling-interval-zero",
        lambda sim: cells(sim).record("v", sampling_interval=0.0),
        ValueError,
        ("sampling_interval", "0.0"),
    ),
    Case(
        "sampling-interval-negative",
        lambda sim: cells(sim).record("v", sampling_interval=-1.0),
        ValueError,
        ("sampling_interval", "-1.0"),
    ),
    Case(
        "get-data-before-run", get_data_before_run, NoDataError, ("get_data()", "'cells'", "run()")
    ),
    Case(
        "get-data-unknown-variable",
        lambda sim: run_then(sim, lambda p: p.get_data("foo")),
        errors.RecordingError,
        ("foo", "IF_curr_exp"),
    ),
    Case("record-stale", record_stale, StaleObjectError, ("'cells'", "setup()")),
    Case("initialize-stale", initialize_stale, StaleObjectError, ("'cells'", "setup()")),
]

DATASETS = [
    Case(
        "yin-yang-split",
        lambda sim: datasets.load_yin_yang("training"),
        ValueError,
        ("split", "'training'"),
    ),
    Case(
        "yin-yang-dataset-split",
        lambda sim: datasets.yin_yang_dataset("val"),
        ValueError,
        ("split", "'val'"),
    ),
    Case("mnist-split", lambda sim: datasets.load_mnist_5k("bad"), ValueError, ("split", "'bad'")),
    Case(
        "fashion-split",
        lambda sim: datasets.load_fashion_mnist("bad"),
        ValueError,
        ("split", "'bad'"),
    ),
    Case(
        "yin-yang-code-string",
        lambda sim: datasets.yin_yang_dataset(code="latency"),
        TypeError,
        ("code", "'latency'", "LatencyCode"),
    ),
    Case(
        "mnist-code-wrong-kind",
        lambda sim: datasets.mnist_5k_dataset(code=datasets.LatencyCode()),
        TypeError,
        ("code", "LatencyCode(", "ImageLatencyCode"),
    ),
    Case(
        "fashion-code-string",
        lambda sim: datasets.fashion_mnist_dataset(code="image"),
        TypeError,
        ("code", "'image'", "ImageLatencyCode"),
    ),
    Case(
        "latency-window-reversed",
        lambda sim: datasets.LatencyCode(t_early=5.0, t_late=1.0),
        ValueError,
        ("t_early=5.0", "t_late=1.0"),
    ),
    Case(
        "latency-t-early-negative",
        lambda sim: datasets.LatencyCode(t_early=-1.0),
        ValueError,
        ("t_early", "-1.0"),
    ),
    Case(
        "latency-t-late-nan",
        lambda sim: datasets.LatencyCode(t_late=nan),
        ValueError,
        ("t_late", "nan"),
    ),
    Case(
        "latency-bias-negative",
        lambda sim: datasets.LatencyCode(bias_time=-1.0),
        ValueError,
        ("bias_time", "-1.0"),
    ),
    Case(
        "latency-t-early-string",
        lambda sim: datasets.LatencyCode(t_early="a"),
        TypeError,
        ("t_early", "'a'"),
    ),
    Case(
        "image-threshold-above-one",
        lambda sim: datasets.ImageLatencyCode(threshold=1.5),
        ValueError,
        ("threshold", "1.5"),
    ),
    Case(
        "image-max-value-zero",
        lambda sim: datasets.ImageLatencyCode(max_value=0.0),
        ValueError,
        ("max_value", "0.0"),
    ),
    Case(
        "encode-value-above-one",
        lambda sim: datasets.latency_encode([[2.0]]),
        ValueError,
        ("values", "2.0"),
    ),
    Case(
        "encode-one-dimensional",
        lambda sim: datasets.latency_encode([0.5]),
        ValueError,
        ("values", "shape", "(1,)"),
    ),
    Case("encode-nan", lambda sim: datasets.latency_encode([[nan]]), ValueError, ("values", "nan")),
    Case(
        "image-pixel-too-bright",
        lambda sim: datasets.image_latency_encode(np.full((1, 2), 300.0)),
        ValueError,
        ("pixel", "300.0", "max_value=255.0"),
    ),
    Case(
        "dataset-no-classes", lambda sim: spike_dataset(n_classes=0), ValueError, ("n_classes", "0")
    ),
    Case(
        "dataset-duration-negative",
        lambda sim: spike_dataset(duration=-1.0),
        ValueError,
        ("duration", "-1.0"),
    ),
    Case(
        "dataset-label-too-large",
        lambda sim: spike_dataset(labels=[0, 3]),
        ValueError,
        ("labels", "3"),
    ),
    Case(
        "dataset-spike-after-end",
        lambda sim: spike_dataset(times=[[1.0], [8.0]]),
        ValueError,
        ("spike times", "8.0", "duration=7.0"),
    ),
    Case(
        "yin-yang-size-negative",
        lambda sim: datasets.generate_yin_yang(-1, 0),
        ValueError,
        ("size", "-1"),
    ),
    Case(
        "yin-yang-radius",
        lambda sim: datasets.generate_yin_yang(10, 0, r_small=0.6),
        ValueError,
        ("r_small=0.6", "r_big"),
    ),
    Case(
        "batches-zero",
        lambda sim: next(spike_dataset().batches(0)),
        ValueError,
        ("batch_size", "0"),
    ),
    Case(
        "n-batches-zero", lambda sim: spike_dataset().n_batches(0), ValueError, ("batch_size", "0")
    ),
    Case(
        "shuffle-without-rng",
        lambda sim: next(spike_dataset().batches(1, shuffle=True)),
        ValueError,
        ("shuffle", "rng"),
    ),
    Case(
        "mnist-missing-file",
        lambda sim: datasets.find_mnist_5k("/nonexistent/mnist.csv"),
        FileNotFoundError,
        ("/nonexistent/mnist.csv",),
    ),
]

PYNN_LAYER = SETUP + NEURONS + SPIKE_SOURCES + CURRENT_SOURCES + CONNECTORS + PROJECTIONS
TABLE = PYNN_LAYER + RUN_CONTROL + RECORDING + DATASETS


def test_table_is_large_and_ids_are_unique():
    assert len(TABLE) >= 100
    assert len({case.id for case in TABLE}) == len(TABLE)


@pytest.mark.parametrize("case", TABLE, ids=[case.id for case in TABLE])
def test_bad_input_fails_early_with_a_clear_message(sim, case):
    with pytest.raises(case.error) as info:
        case.call(sim)
    message = str(info.value)
    missing = [part for part in case.parts if part not in message]
    assert not missing, f"message {message!r} lacks {missing}"


# --- not bad input: what must keep working ------------------------------------------------


def test_unknown_setup_arguments_of_other_simulators_are_accepted(sim):
    sim.setup(timestep=0.1, spike_precision="on_grid", threads=4)
    assert sim.get_time_step() == 0.1


def test_run_of_zero_and_of_a_whole_step_are_allowed(sim):
    assert sim.run(0.0) == 0.0
    assert sim.run(0.1) == pytest.approx(0.1)
    assert sim.run_until(0.1) == pytest.approx(0.1)  # already there: nothing to do


def test_failed_checks_leave_the_network_usable(sim):
    population = cells(sim)
    with pytest.raises(errors.InvalidParameterValueError):
        population.set(tau_m=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        sim.run(-1.0)
    population.record("v")
    sim.run(1.0)
    assert population.get("tau_m") == 20.0
    assert population.get_data().segments[0].analogsignals[0].shape == (11, 2)
