"""Simulation control and the procedural API: ``setup``, ``run``, ``reset``, ``create`` ...

Built with PyNN's function factories (``pyNN.common.build_run`` etc.) on
:data:`pynn_eventprop.simulator.state`, exactly as pyNN.mock and pyNN.brian2 do.
"""

from __future__ import annotations

import math

import numpy as np
from pyNN import common
from pyNN.common.control import DEFAULT_MIN_DELAY, DEFAULT_TIMESTEP
from pyNN.connectors import FixedProbabilityConnector
from pyNN.recording import get_io

from . import simulator
from .engine.platforms import SPINNAKER2_OPTIONS, check_platform
from .populations import Population
from .projections import Projection
from .standardmodels.synapses import StaticSynapse


def setup(timestep=DEFAULT_TIMESTEP, min_delay=DEFAULT_MIN_DELAY, **extra_params):
    """Start a new simulation, destroying any existing network.

    Parameters
    ----------
    timestep : float
        Grid step ``dt`` in ms (> 0).  Delays must be whole multiples of it.
    min_delay, max_delay : float or ``"auto"``
        ms; ``"auto"`` means ``dt`` and the largest delay in the network respectively.
    rng_seed : int, optional
        Seed of the generator used by SpikeSourcePoisson and NoisyCurrentSource.
    platform : ``"reference"`` (default) or ``"spinnaker2"``
        The engine that runs and trains the network: the numpy reference engine, or the
        SpiNNaker2 packet-level model (float32, mapping, packet and cost accounting); options
        of the model (``hardware``, ``cycles``, ``coefficients``, ``replicas``,
        ``spike_payload``) are passed through.
    **extra_params
        Other keyword arguments (options of other simulators) are accepted and ignored.

    Returns
    -------
    int
        The MPI rank (always 0).
    """
    try:
        dt = float(timestep)
    except (TypeError, ValueError):
        dt = math.nan
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"timestep must be a finite number of ms > 0, got {timestep!r}")
    common.setup(timestep, min_delay, **extra_params)
    state = simulator.state
    state.dt = dt
    state.clear()
    state.min_delay = min_delay
    state.max_delay = extra_params.get("max_delay", "auto")
    state.rng = np.random.default_rng(extra_params.get("rng_seed"))
    state.platform = check_platform(extra_params.get("platform", "reference"))
    state.platform_options = {
        name: extra_params[name] for name in SPINNAKER2_OPTIONS if name in extra_params
    }
    return rank()


def end(compatible_output=True):
    """Write the data requested with ``record(..., to_file=...)``."""
    state = simulator.state
    for population, variables, filename in state.write_on_end:
        population.write_data(get_io(filename), variables)
    state.write_on_end = []


run, run_until = common.build_run(simulator)
run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
(
    get_current_time,
    get_time_step,
    get_min_delay,
    get_max_delay,
    num_processes,
    rank,
) = common.build_state_queries(simulator)

create = common.build_create(Population)
connect = common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse)
set = common.set  # noqa: A001  (PyNN's name)
record = common.build_record(simulator)


def record_v(source, filename):
    """Record ``v`` of ``source`` to ``filename`` at ``end()``."""
    return record(["v"], source, filename)


def record_gsyn(source, filename):
    """Record ``gsyn_exc`` and ``gsyn_inh`` of ``source`` to ``filename`` at ``end()``."""
    return record(["gsyn_exc", "gsyn_inh"], source, filename)
