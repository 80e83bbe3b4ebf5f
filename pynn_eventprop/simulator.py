"""Simulator state of the PyNN backend: time grid, network registry and the run loop.

This is PyNN's "internal API" for the ``pynn_eventprop`` backend (compare ``pyNN.mock.simulator``
and ``pyNN.brian2.simulator``).  The single :data:`state` object knows the time step, the current
grid step ``n`` (time ``t = n dt``), every Population, Projection and current source created since
``setup()``, and the engine (:class:`pynn_eventprop.engine.interface.Engine`, built by
:func:`pynn_eventprop.engine.platforms.make_engine`) that advances them.

A run of ``N`` steps asks each spike source for its spikes in ``[n dt, (n+N) dt)`` (exact times,
any number per step), each current source for its current in steps ``n+1 .. n+N``, runs the
engine (batch size 1), and hands each population's recorded arrays to its
:class:`~pynn_eventprop.recording.Recorder`.  The engine is compiled from the PyNN objects
lazily, at the first run and again after any change of structure, parameters or weights; a
recompilation in the middle of a segment carries the dynamic state over with
``engine.get_state()`` / ``engine.set_state()``.  The PyNN objects own the weights
here: every change made through PyNN recompiles, and the engine never writes them back.
"""

from __future__ import annotations

import numpy as np
from pyNN import common

from .compile import compile_network
from .discretisation import LIFDiscretisation
from .engine.platforms import make_engine
from .training.distributed import Communicator, world

name = "pynn_eventprop"

#: Steps times neurons handed to the engine at once (bounds memory of rasters and recordings).
CHUNK_ELEMENTS = 4_000_000


class ID(int, common.IDMixin):
    """A neuron identifier: an int that knows its parent Population."""

    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    """Everything a simulation needs between ``setup()`` and ``end()``.

    Attributes
    ----------
    n : int
        Current grid step; ``t = n * dt`` ms.
    populations, projections, current_sources : lists
        In creation order; a population's position is its index in the compiled network.
    engine : Engine or None
        Built at the first run; rebuilt when :attr:`version` moves past :attr:`engine_version`.
    network : CompiledNetwork or None
        What the engine was built from (see :mod:`pynn_eventprop.compile`).
    projection_map : list
        For each PyNN Projection, the indices of its compiled projections in :attr:`network`.
    """

    def __init__(self):
        super().__init__()
        # Under MPI every rank simulates the whole network on its share of each training batch
        # (pynn_eventprop.training.distributed).  PyNN's common code reads num_processes > 1
        # as "cells are spread over ranks" and would gather (and so duplicate) their data,
        # hence 1 here; sim.num_processes() reports the ranks, and PyNN writes files where
        # mpi_rank == 0, i.e. on rank 0 only.
        self.num_processes = 1
        self._disc = LIFDiscretisation(0.1)
        self.min_delay = "auto"
        self.max_delay = "auto"
        self.rng = np.random.default_rng()
        self.clear()

    @property
    def communicator(self) -> Communicator:
        """The MPI ranks training together (one process when not started by ``mpirun``)."""
        return world()

    @property
    def mpi_rank(self) -> int:
        """This process's MPI rank (0 without MPI): ``sim.rank()``."""
        return self.communicator.rank

    # --- time grid ---------------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return self._disc.dt

    @dt.setter
    def dt(self, timestep):
        self._disc = LIFDiscretisation(float(timestep))  # setup() has checked the value

    @property
    def discretisation(self) -> LIFDiscretisation:
        return self._disc

    @property
    def t(self) -> float:
        return self.n * self.dt

    @property
    def min_delay(self):
        if self._min_delay != "auto":
            return self._min_delay
        delays = [p._delays.min() for p in self.projections if len(p) > 0]
        return min(delays, default=self.dt)

    @min_delay.setter
    def min_delay(self, value):
        self._min_delay = value

    @property
    def max_delay(self):
        if self._max_delay != "auto":
            return self._max_delay
        delays = [p._delays.max() for p in self.projections if len(p) > 0]
        return max(delays, default=self.min_delay)

    @max_delay.setter
    def max_delay(self, value):
        self._max_delay = value

    # --- registry ----------------------------------------------------------------------------
    def clear(self):
        """Forget the whole network (``setup()``)."""
        self.recorders = set()
        self.populations = []
        self.projections = []
        self.current_sources = []
        self.write_on_end = []
        self.id_counter = 0
        self.segment_counter = -1
        self.engine = None
        self.network = None
        self.projection_map = []
        self.version = 0
        self.engine_version = -1
        self.running = False
        self.reset()

    def changed(self):
        """Note that structure, parameters or weights changed: recompile before the next run."""
        self.version += 1

    def add_population(self, population) -> int:
        self.populations.append(population)
        self.changed()
        return len(self.populations) - 1

    def add_projection(self, projection):
        self.projections.append(projection)
        self.changed()

    # --- reset ---------------------------------------------------------------------------------
    def reset(self):
        """Back to ``t = 0`` with the initial values; start a new Segment."""
        self.running = False
        self.t_start = 0
        self.n = 0
        self._emitted = {}  # population index -> EmittedSpikes of the last run window
        self.segment_counter += 1
        for recorder in self.recorders:
            recorder._clear_all_data()
        for source in self.current_sources:
            source._reset()
        if self.engine is not None:
            self.engine.reset()
            for index, population in enumerate(self.populations):
                if not population.celltype.is_spike_source:
                    for variable, values in population._initial_value_arrays().items():
                        self.engine.set_initial(index, variable, values)

    def set_current_value(self, population, variable, values):
        """``initialize()`` after a run: apply to the running engine now and after resets."""
        index = population._index
        if self.engine is None or index >= len(self.network.populations):
            return  # not compiled yet: compile_network reads Population.initial_values
        self.engine.set_initial(index, variable, values)
        if self.n > 0:
            state = self.engine.get_state()
            _set_variable(state.populations[index], variable, values)
            self.engine.set_state(state)

    # --- running -------------------------------------------------------------------------------
    def run(self, simtime):
        self.run_until(self.t + simtime)

    def run_until(self, tstop):
        target = int(round(tstop / self.dt))
        self.running = True
        if target > self.n:
            self._advance(target - self.n)

    def _advance(self, n_steps: int):
        self._ensure_engine()
        if self.n == 0:
            for recorder in self.recorders:
                recorder._store_initial_sample()
        n_neurons = sum(p.size for p in self.populations)
        max_chunk = max(1, CHUNK_ELEMENTS // max(1, n_neurons))
        while n_steps > 0:
            chunk = min(n_steps, max_chunk)
            self._run_chunk(chunk)
            n_steps -= chunk

    def _run_chunk(self, n_steps: int):
        n0, dt = self.n, self.dt
        sources, emitted = {}, {}
        for index, population in enumerate(self.populations):
            if population.celltype.is_spike_source:
                spikes = population._emitted_spikes(n0, n_steps, self.rng)
                emitted[index] = spikes
                if self.network.outgoing(index):
                    # the previous window too: a grid engine takes a spike in the step that
                    # ends after it (the exact engine ignores spikes before the run's start)
                    previous = self._emitted.get(index)
                    both = spikes if previous is None else previous.followed_by(spikes)
                    sources[index] = both.trains(population.size)
        self._emitted = emitted
        currents = {}
        for source in self.current_sources:
            for index, targets, amplitude in source._currents(n0, n_steps, dt):
                pop_currents = currents.setdefault(
                    index, np.zeros((n_steps, self.populations[index].size))
                )
                np.add.at(pop_currents, (slice(None), targets), amplitude[:, None])
        record = {}
        for index, population in enumerate(self.populations):
            names = population.recorder._engine_variables()
            if names and not population.celltype.is_spike_source:
                record[index] = names
        result = self.engine.run(n_steps, sources=sources, currents=currents, record=record)
        self.n += n_steps
        for index, population in enumerate(self.populations):
            population.recorder._store_chunk(n0, n_steps, result, index, emitted.get(index))

    def _ensure_engine(self):
        if self.engine is not None and self.engine_version == self.version:
            return
        network, self.projection_map = compile_network(self)
        platform = getattr(self, "platform", "reference")
        options = getattr(self, "platform_options", None)
        engine = make_engine(platform, network, self._disc, 1, options=options)
        if self.engine is not None and self.n > 0:
            # populations and projections are only ever appended: indices stay valid
            engine.set_state(self.engine.get_state())
        self.engine = engine
        self.network = network
        self.engine_version = self.version


def _set_variable(population_state, variable, values):
    """Overwrite one state variable (PyNN units) of a PopulationState."""
    v = population_state.v
    values = np.broadcast_to(np.asarray(values, float), v.shape).copy()
    if variable == "v":
        population_state.v = values
    elif variable in population_state.synaptic:
        population_state.synaptic[variable] = values
    else:
        allowed = ["v", *population_state.synaptic]
        raise ValueError(f"cannot initialize {variable!r}; state variables are {allowed}")


state = State()
