"""Simulation control and the procedural API: ``setup``, ``run``, ``reset``, ``create`` ...

Built with PyNN's function factories (``pyNN.common.build_run`` etc.) on
:data:`pynn_eventprop.simulator.state`, exactly as pyNN.mock and pyNN.brian2 do.
"""

from __future__ import annotations

import math

import numpy as np
from pyNN import common
from pyNN.common.control import DEFAULT_MIN_DELAY, DEFAULT_TIMESTEP
from pyNN.recording import get_io

from . import simulator
from .connectors import FixedProbabilityConnector
from .engine.platforms import SPINNAKER2_OPTIONS, check_platform
from .engine.threads import set_threads
from .populations import Population
from .projections import Projection
from .standardmodels.synapses import StaticSynapse
from .validation import check_integer, check_real

#: Names other simulators use that PyNN's setup() rejects, and the argument meant.
_MISNAMED_SETUP_ARGUMENTS = {
    "dt": "timestep",
    "time_step": "timestep",
    "mindelay": "min_delay",
    "maxdelay": "max_delay",
}


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
    threads : int, optional
        Threads the engine's kernels use (the samples of a batch run in parallel; results do
        not depend on the count).  Default: every core (numba's ``NUMBA_NUM_THREADS``);
        under MPI, the rank's share of the cores of its machine.
    **extra_params
        Other keyword arguments (options of other simulators) are accepted and ignored.

    Returns
    -------
    int
        The MPI rank (0 without MPI).

    Raises
    ------
    ValueError or TypeError
        For a timestep that is not a finite number > 0, a min_delay below the timestep, a
        max_delay below min_delay, a negative or non-integer rng_seed, an unknown platform, a
        thread count that is not an integer >= 1 (more than the cores: reduced, with a
        warning), or a misnamed argument such as ``dt``.
    """
    try:
        dt = float(timestep)
    except (TypeError, ValueError):
        dt = math.nan
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"timestep must be a finite number of ms > 0, got {timestep!r}")
    _check_setup_arguments(dt, min_delay, extra_params)
    mpi = simulator.state.communicator  # first: the MPI ranks of a machine share its cores
    set_threads(extra_params.get("threads"))
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
    return mpi.rank


def _check_setup_arguments(dt: float, min_delay, extra_params: dict) -> None:
    """Checks of setup()'s delays, seed and argument names (PyNN raises bare Exceptions)."""
    for wrong, right in _MISNAMED_SETUP_ARGUMENTS.items():
        if wrong in extra_params:
            raise ValueError(
                f"setup() has no argument {wrong}={extra_params[wrong]!r}; use {right}= instead"
            )
    low, what = dt, f"the timestep {dt!r} ms"
    if min_delay != "auto":
        value = check_real("min_delay", min_delay, where="(ms)")
        if value < dt * (1 - 1e-9):
            raise ValueError(f"min_delay must be >= {what}, got {min_delay!r}")
        low, what = value, f"min_delay={min_delay!r} ms"
    max_delay = extra_params.get("max_delay", "auto")
    if max_delay != "auto" and check_real("max_delay", max_delay, where="(ms)") < low:
        raise ValueError(f"max_delay must be >= {what}, got {max_delay!r}")
    seed = extra_params.get("rng_seed")
    if seed is not None:
        check_integer("rng_seed", seed, minimum=0, where="of setup()")


def end(compatible_output=True):
    """Write the data requested with ``record(..., to_file=...)``."""
    state = simulator.state
    for population, variables, filename in state.write_on_end:
        population.write_data(get_io(filename), variables)
    state.write_on_end = []


_pynn_run, _pynn_run_until = common.build_run(simulator)


def run_until(time_point, callbacks=None):
    """Advance the simulation until ``time_point`` (ms), at least one step ahead.

    ``callbacks`` as in PyNN: callables taking the current time and returning the next time
    they want to be called.  Returns the time reached.

    Raises
    ------
    ValueError
        ``time_point`` is not finite, lies in the past, or is so close to the current time
        (less than half a timestep) that no step would run.
    """
    state = simulator.state
    tstop = check_real("time_point", time_point, where="(ms)")
    if tstop < state.t - state.dt / 2:
        raise ValueError(
            f"time_point must not lie before the current time {state.t!r} ms, got {tstop!r}"
        )
    _check_some_step_runs("time_point", time_point, tstop)
    return _pynn_run_until(tstop, callbacks)


def run(simtime, callbacks=None):
    """Advance the simulation by ``simtime`` ms (``>= 0``); see :func:`run_until`.

    Raises
    ------
    ValueError
        ``simtime`` is negative or not finite, or shorter than half a timestep (no step would
        run).
    """
    duration = check_real("simtime", simtime, minimum=0.0, where="(ms)")
    state = simulator.state
    _check_some_step_runs("simtime", simtime, state.t + duration)
    return _pynn_run_until(state.t + duration, callbacks)


def _check_some_step_runs(name: str, value, tstop: float) -> None:
    """A positive advance that rounds to zero grid steps is an error, not a silent no-op."""
    state = simulator.state
    ahead = tstop - state.t
    if ahead > 1e-9 * state.dt and round(tstop / state.dt) <= state.n:
        raise ValueError(
            f"{name}={value!r} ms advances the simulation by {ahead!r} ms, less than half the "
            f"timestep {state.dt!r} ms, so no step would run; run for at least one timestep"
        )


run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
(
    get_current_time,
    get_time_step,
    get_min_delay,
    get_max_delay,
    _,
    rank,
) = common.build_state_queries(simulator)


def num_processes() -> int:
    """The number of MPI processes (1 without MPI).

    Each rank simulates the whole network; :class:`~pynn_eventprop.eventprop.Trainer` splits
    every training batch over the ranks (``mpirun -n N python script.py``).
    """
    return simulator.state.communicator.size


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
