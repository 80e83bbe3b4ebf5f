"""The reference engine: batched, precisely-timed simulation on the time grid (docs/equations.md).

:class:`ReferenceEngine` implements :class:`pynn_eventprop.engine.interface.Engine` for the grid
scheme of :mod:`pynn_eventprop.discretisation`.  Populations are simulated one strongly
connected component at a time in topological order.  A current-based component without
recurrence (every layer of a feed-forward network) is integrated over a whole chunk by one
compiled loop, after the spikes of earlier components have been delivered to it event by event.
Recurrent components, conductance-based neurons and the reference mode (``compiled=False``) use
the step-by-step numpy path.  The backward pass is :func:`pynn_eventprop.engine.adjoint.backward`.

State owned here: the weights and delays of every compiled projection (copies; the
CompiledNetwork is never modified), the initial values, the dynamic state of each population
(:class:`_State`) and the arrivals already scheduled for later steps (``pending``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..discretisation import LIFDiscretisation, arrival_factors, spike_phase
from ..network import CompiledNetwork
from . import kernels
from .adjoint import backward as adjoint_backward
from .adjoint import check_trainable, initial_adjoint
from .dynamics import RECEPTOR_KEYS, CurrentLIF, make_model
from .graph import is_recurrent, simulation_order
from .interface import (
    EngineState,
    Gradients,
    InFlight,
    PopulationState,
    RunResult,
    SpikeTrains,
    check_readouts,
)
from .raster import Raster
from .readouts import grid_readouts, needs_voltage, pull_back
from .workspace import Workspace

ARRIVAL_KEYS = ("E", "I", "U")  # excitatory current, inhibitory current, voltage head start


@dataclass
class LayerTrajectory:
    """What the backward pass needs of one neuron population over a chunk (EventProp frame).

    ``spikes`` is the population's :class:`Raster`; ``u`` the pre-reset voltage ``U[n]``,
    ``v_prev`` the voltage ``V[n-1]`` at the start of each step, ``v`` the post-reset ``V[n]``,
    ``clamped`` where the neuron was refractory; all ``(n_steps, batch, size)``.
    """

    spikes: Raster
    u: np.ndarray
    v_prev: np.ndarray
    v: np.ndarray
    clamped: np.ndarray


@dataclass
class GridTape:
    """The reference engine's tape: trajectories and rasters of one run, readout positions."""

    trajectory: dict
    rasters: dict
    readout_index: dict


class _State:
    """Dynamic state of one neuron population: ``v`` (frame), synaptic vars, refractory count."""

    def __init__(self, model, initial, batch):
        shape = (batch, model.size)
        self.v = np.broadcast_to(model.initial_v(initial), shape).copy()
        self.syn = {
            x: np.broadcast_to(s, shape).copy() for x, s in model.initial_syn(initial).items()
        }
        self.countdown = np.zeros(shape, np.int64)


class _Spikes(Mapping):
    """Spike trains of a run, converted from the rasters when first asked for."""

    def __init__(self, rasters, first_step, sources, dt):
        self._rasters, self._first, self._sources, self._dt = rasters, first_step, sources, dt
        self._cache = {}

    def __getitem__(self, pop):
        if pop not in self._cache:
            raster = self._rasters[pop]
            first = self._first if pop in self._sources else self._first + 1
            trains = kernels.raster_trains(raster.spikes, raster.phase, first, self._dt)
            self._cache[pop] = SpikeTrains(*trains, raster.spikes.shape[2])
        return self._cache[pop]

    def __iter__(self):
        return iter(self._rasters)

    def __len__(self):
        return len(self._rasters)


class ReferenceEngine:
    """Stateful, batched grid engine for a :class:`CompiledNetwork` (the Engine contract).

    Parameters
    ----------
    network : CompiledNetwork
    discretisation : LIFDiscretisation
    batch_size : int
        Independent copies of the network, each driven by its own input (training batches).
    dtype : numpy float type, ``float64`` (default) or ``float32``.
    compiled : bool
        Use the compiled layer loop for feed-forward current-based populations (default);
        ``False`` runs the numpy step path everywhere (a reference for tests).
    reuse_buffers : bool
        Reuse result arrays between runs (see :mod:`.workspace`): fast for training loops, but
        arrays returned by :meth:`run` are then overwritten by the next run.
    readout_populations : ignored
        Accepted as every engine of :func:`~.platforms.make_engine` accepts it; this engine
        computes the readouts of any population on demand.

    Notes
    -----
    Grid step ``n`` is time ``n * dt``; :attr:`n` is the last step computed (0 after reset).
    A run of ``N`` steps computes neuron steps ``n+1 .. n+N`` and takes source spikes of
    ``[n dt, (n+N) dt)`` (a spike at time ``t`` reaches its targets at ``t + delay``).  Delays
    must be whole multiples of ``dt``; at most one spike per source neuron and step.
    """

    def __init__(
        self,
        network: CompiledNetwork,
        discretisation: LIFDiscretisation,
        batch_size=1,
        dtype=np.float64,
        compiled=True,
        reuse_buffers=False,
        readout_populations=None,
    ):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.network = network
        self.disc = discretisation
        self.dt = discretisation.dt
        self.batch = int(batch_size)
        self.dtype = np.dtype(dtype).type
        self.compiled = compiled
        self.workspace = Workspace(reuse_buffers)
        self.models = {
            i: make_model(pop, discretisation, self.dtype)
            for i, pop in enumerate(network.populations)
            if not pop.is_source
        }
        for proj in network.projections:
            if network.populations[proj.post].is_source:
                raise ValueError(f"projection '{proj.label}' targets a spike source")
            if proj.receptor not in RECEPTOR_KEYS:
                raise ValueError(
                    f"projection '{proj.label}' has receptor_type {proj.receptor!r}; "
                    f"allowed: {sorted(RECEPTOR_KEYS)}"
                )
        self.edges = [(p.pre, p.post) for p in network.projections]
        self.order = simulation_order(len(network.populations), self.edges)
        self._initial = {
            i: {
                name: np.asarray(v, float).copy()
                for name, v in network.populations[i].initial.items()
            }
            for i in self.models
        }
        self._weights = [np.where(p.mask, p.weights, 0.0) for p in network.projections]
        self._delays = [
            np.where(p.mask, np.asarray(p.delays, float), 0.0) for p in network.projections
        ]
        self._delay_masks = [None] * len(network.projections)
        self.delay_groups = [None] * len(network.projections)
        for k in range(len(network.projections)):
            self._group_delays(k)
            self._regroup(k)
        self.reset()

    # --- weights and delays (owned copies) ------------------------------------------------------
    def _group_delays(self, k):
        """``(delay steps, mask)`` per delay of projection ``k``; mask None for a single delay."""
        proj = self.network.projections[k]
        steps = np.zeros(proj.mask.shape, np.int64)
        steps[proj.mask] = self.disc.delay_steps(self._delays[k][proj.mask])
        unique = np.unique(steps[proj.mask])
        if unique.size <= 1:
            self._delay_masks[k] = [(int(unique[0]) if unique.size else 1, None)]
        else:
            self._delay_masks[k] = [(int(d), proj.mask & (steps == d)) for d in unique]

    def _regroup(self, k):
        """``(delay steps, weights)`` per delay of projection ``k`` (weights zero elsewhere)."""
        w = self._weights[k]
        self.delay_groups[k] = [
            (d, np.ascontiguousarray(w if m is None else np.where(m, w, 0.0), self.dtype))
            for d, m in self._delay_masks[k]
        ]

    def get_weights(self, k: int) -> np.ndarray:
        """Weights of compiled projection ``k``, ``(n_pre, n_post)``, 0 where unconnected."""
        return self._weights[k].copy()

    def set_weights(self, k: int, weights):
        """Replace a projection's weights (shape ``(n_pre, n_post)``, 0 where unconnected)."""
        proj = self.network.projections[k]
        self._weights[k] = np.where(proj.mask, np.asarray(weights, float), 0.0)
        self._regroup(k)

    def get_delays(self, k: int) -> np.ndarray:
        """Delays (ms) of compiled projection ``k``, 0 where unconnected."""
        return self._delays[k].copy()

    def set_delays(self, k: int, delays):
        """Replace a projection's delays (ms, whole multiples of ``dt``, at least ``dt``)."""
        proj = self.network.projections[k]
        old = self._delays[k]
        self._delays[k] = np.where(proj.mask, np.asarray(delays, float), 0.0)
        try:
            self._group_delays(k)
        except ValueError:
            self._delays[k] = old
            raise
        self._regroup(k)

    def delay_group_masks(self, k: int):
        """``(delay steps, mask)`` per delay of projection ``k``; mask None for a single delay."""
        return self._delay_masks[k]

    def source_shift(self, proj_index: int, delay: int) -> int:
        """Raster index offset from a spike of the projection's source to its arrival index."""
        pre = self.network.projections[proj_index].pre
        return delay - 1 if self.network.populations[pre].is_source else delay

    def check_trainable(self):
        """Raise ``ValueError`` unless the backward pass supports the network."""
        check_trainable(self)

    # --- state ------------------------------------------------------------------------------
    def reset(self):
        """Return to the initial state at step 0."""
        self.n = 0
        self.state = {i: _State(m, self._initial[i], self.batch) for i, m in self.models.items()}
        self.pending = {}  # post index -> dict key -> arrivals at steps n+1, n+2, ...
        self._history = {}  # pop index -> list of (steps, phase, sample, neuron) sent lately
        self._last = None  # (rasters, first step, n_steps) of the last run, for _remember
        self._carried = {}  # post index -> InFlight handed over by set_state

    def set_initial(self, pop: int, name: str, values):
        """Set an initial value (PyNN units); applies now if at step 0 and after every reset."""
        model = self.models[pop]
        allowed = ["v", *model.synaptic_state]
        if name not in allowed:
            raise ValueError(f"cannot initialize {name!r}; state variables are {allowed}")
        size = self.network.populations[pop].size
        self._initial[pop][name] = np.broadcast_to(np.asarray(values, float), (size,)).copy()
        if self.n == 0:
            self.state[pop] = _State(model, self._initial[pop], self.batch)

    def get_state(self) -> EngineState:
        """Dynamic state in PyNN units, with the spikes still in flight (see the contract)."""
        populations = {}
        for i, st in self.state.items():
            model = self.models[i]
            populations[i] = PopulationState(
                v=(st.v + model.v_rest).astype(float),
                synaptic={
                    name: st.syn[x].astype(float)
                    for x, name in zip("EI", model.synaptic_state, strict=True)
                },
                refractory=st.countdown * self.dt,
            )
        return EngineState(self.n, self.n * self.dt, populations, self._in_flight())

    def set_state(self, state: EngineState):
        """Continue from ``state`` (populations and projections missing here are ignored)."""
        self.n = int(state.step)
        for i, ps in state.populations.items():
            if i not in self.models:
                continue
            model, st = self.models[i], self.state[i]
            st.v = np.broadcast_to(np.asarray(ps.v) - model.v_rest, st.v.shape).astype(self.dtype)
            for x, name in zip("EI", model.synaptic_state, strict=True):
                st.syn[x] = np.broadcast_to(ps.synaptic[name], st.v.shape).astype(self.dtype)
            st.countdown = np.rint(np.asarray(ps.refractory) / self.dt).astype(np.int64)
            st.countdown = np.broadcast_to(st.countdown, st.v.shape).copy()
        self._history, self._last = {}, None
        self._carried = {i: f for i, f in state.in_flight.items() if i in self.models}
        self.pending = {i: self._schedule(i, f) for i, f in self._carried.items()}

    def _in_flight(self) -> dict:
        """Spikes sent before step ``n`` that arrive after it, per target population."""
        self._remember()
        parts = {}
        for i, carried in self._carried.items():
            later = carried.arrival > self.n * self.dt + 1e-9 * self.dt
            parts.setdefault(i, []).append(
                tuple(getattr(carried, f)[later] for f in InFlight.__dataclass_fields__)
            )
        for k, proj in enumerate(self.network.projections):
            if proj.pre not in self._history:
                continue
            steps, phase, sample, neuron = (
                np.concatenate(a) for a in zip(*self._history[proj.pre], strict=True)
            )
            for (d, _), (_, W) in zip(self._delay_masks[k], self.delay_groups[k], strict=True):
                late = steps + d > self.n
                j, target = np.nonzero(W[neuron[late]])
                rows = np.flatnonzero(late)[j]
                parts.setdefault(proj.post, []).append(
                    (
                        (steps[rows] - phase[rows] + d) * self.dt,
                        sample[rows],
                        target,
                        np.full(rows.size, proj.receptor),
                        self._weights[k][neuron[rows], target],
                    )
                )
        return {
            i: InFlight(*(np.concatenate(col) for col in zip(*chunks, strict=True)))
            for i, chunks in parts.items()
        }

    def _schedule(self, post: int, flight: InFlight) -> dict:
        """Pending arrival arrays (keys of :data:`ARRIVAL_KEYS`) of spikes in flight."""
        model = self.models[post]
        steps, phase = self.disc.step_and_phase(flight.arrival)
        index = steps - (self.n + 1)
        if np.any(index < 0):
            raise ValueError("a spike in flight arrives before the state's time")
        length = int(index.max()) + 1 if index.size else 0
        arr = {x: np.zeros((length, self.batch, model.size), self.dtype) for x in ARRIVAL_KEYS}
        for e in range(index.size):
            x = RECEPTOR_KEYS[str(flight.receptor[e])]
            t = int(flight.target[e])
            coef = [c[t] if c.size > 1 else c[0] for c in model.arrival[x]]
            f_i, f_u, _, _ = arrival_factors(float(phase[e]), *(float(c) for c in coef))
            where = (index[e], int(flight.sample[e]), t)
            arr[x][where] += flight.weight[e] * f_i
            arr["U"][where] += flight.weight[e] * f_u
        return arr

    def _remember(self):
        """Keep the spikes of the last run's final ``max delay`` steps for :meth:`get_state`.

        Done lazily (before the next run, or in :meth:`get_state`): training resets before every
        batch, so it never pays for it.
        """
        if self._last is None:
            return
        rasters, n0, n_steps = self._last
        self._last = None
        horizon = max((d for groups in self.delay_groups for d, _ in groups), default=1)
        end = n0 + n_steps
        for i, raster in rasters.items():
            if not self.network.outgoing(i):
                continue
            first = n0 if self.network.populations[i].is_source else n0 + 1
            lo = max(0, end - horizon - first + 1)
            k, b, j = np.nonzero(raster.spikes[lo:])
            recent = (k + lo + first, raster.phase[lo:][k, b, j].astype(float), b, j)
            kept = []
            for steps, phase, sample, neuron in self._history.get(i, []):
                live = steps > end - horizon
                kept.append((steps[live], phase[live], sample[live], neuron[live]))
            self._history[i] = [*kept, recent]

    # --- running ----------------------------------------------------------------------------
    def run(self, n_steps, sources=None, currents=None, record=None, keep_for_backward=False):
        """Advance ``n_steps`` steps (see :class:`~.interface.Engine`); returns a RunResult."""
        n_steps, n0 = int(n_steps), self.n
        self._remember()
        sources, currents, record = sources or {}, currents or {}, record or {}
        rasters, signals = {}, {i: {} for i in record}
        source_pops = set()
        for i, pop in enumerate(self.network.populations):
            if pop.is_source:
                source_pops.add(i)
                rasters[i] = self._source_raster(i, sources.get(i), n_steps)
        trajectories = {}
        for comp in self.order:
            comp = [i for i in comp if i in self.models]
            if not comp:
                continue
            arrivals = {i: self._arrivals(i, comp, rasters, n_steps) for i in comp}
            model = self.models[comp[0]]
            layer = not is_recurrent(comp, self.edges)
            if layer and self.compiled and isinstance(model, CurrentLIF):
                names = record.get(comp[0], ())
                results = {
                    comp[0]: self._run_layer(comp[0], arrivals[comp[0]], currents, n_steps, names)
                }
            else:
                results = self._run_steps(comp, arrivals, currents, n_steps)
            for i, (traj, syn_hist) in results.items():
                rasters[i] = traj.spikes
                trajectories[i] = traj
                self.pending[i] = {x: arr[n_steps:].copy() for x, arr in arrivals[i].items()}
                if i in record:
                    signals[i].update(self._recorded(i, record[i], traj, syn_hist))
        self.n += n_steps
        self._last = (rasters, n0, n_steps)
        tape = GridTape(trajectories, rasters, {}) if keep_for_backward else None
        return RunResult(
            t_start=n0 * self.dt,
            n_steps=n_steps,
            spikes=_Spikes(rasters, n0, source_pops, self.dt),
            signals=signals,
            tape=tape,
        )

    def readouts(self, result: RunResult, pop: int, names) -> dict:
        """Readouts ``names`` of population ``pop`` in a run kept for backward (see .readouts)."""
        names = check_readouts(names)
        if result.tape is None:
            raise ValueError("readouts need a run made with keep_for_backward=True")
        traj = result.tape.trajectory[pop]
        v = traj.v if needs_voltage(names) else None
        values, index = grid_readouts(traj.spikes.spikes, traj.spikes.phase, v, names, self.dt)
        result.tape.readout_index.setdefault(pop, {}).update(index)
        result.readouts.setdefault(pop, {}).update(values)
        return values

    def backward(self, result: RunResult, readout_grads: dict, extra_grads=None, adjoints=False):
        """Exact gradients of a loss of the readouts (see :class:`~.interface.Engine`)."""
        tape = result.tape
        if tape is None:
            raise ValueError("backward needs a run made with keep_for_backward=True")
        combined = readout_grads
        if extra_grads:
            combined = {pop: dict(per_name) for pop, per_name in readout_grads.items()}
            for pop, per_name in extra_grads.items():
                into = combined.setdefault(pop, {})
                for name, g in per_name.items():
                    into[name] = g if name not in into else into[name] + g
        loss_grads = {}
        for pop, per_name in combined.items():
            missing = [n for n in per_name if n not in tape.readout_index.get(pop, {})]
            if missing:
                self.readouts(result, pop, missing)
            index = tape.readout_index[pop]
            shape = tape.trajectory[pop].u.shape
            dphase, dv = pull_back(per_name, index, shape, self.dt, self.dtype)
            loss_grads[pop] = {"phase": dphase, "v": dv}
        weights, adjoint = adjoint_backward(self, tape.trajectory, tape.rasters, loss_grads)
        signals = None
        if adjoints:
            signals = {}
            for i, adj in adjoint.items():
                model = self.models[i]
                initial = initial_adjoint(model, tape.trajectory[i], adj, slice(None))
                signals[i] = {
                    "lambda_v": np.concatenate([initial["lambda_v"][None], adj.lambda_v]),
                    "lambda_i": np.concatenate([initial["lambda_i"][None], adj.lambda_i["E"]]),
                }
        return Gradients([g.copy() for g in weights], None, signals)

    def _source_raster(self, i, trains, n_steps):
        pop = self.network.populations[i]
        raster = Raster.empty(n_steps, self.batch, pop.size, self.dtype)
        if trains is None:
            return raster
        if trains.batch != self.batch or trains.size != pop.size:
            raise ValueError(
                f"spikes for '{pop.label}' have batch {trains.batch} and size {trains.size}, "
                f"expected {self.batch} and {pop.size}"
            )
        steps, phase = self.disc.step_and_phase(trains.times)
        k = steps - self.n
        keep = (k >= 0) & (k < n_steps)
        b, j, k = trains.sample_index[keep], trains.neurons[keep], k[keep]
        raster.spikes[k, b, j] = True
        raster.phase[k, b, j] = phase[keep]
        if np.count_nonzero(raster.spikes) != k.size:
            raise ValueError(
                f"spike source '{pop.label}' has two spikes of one neuron within one time step "
                f"of {self.dt} ms; the grid engine takes at most one"
            )
        return raster

    # --- inputs -----------------------------------------------------------------------------
    def _arrivals(self, post, comp, rasters, n_steps):
        """Arrivals ``E``, ``I`` (nA) and ``U`` (mV) from earlier components and earlier chunks.

        Index ``j`` is step ``n + 1 + j``; the arrays run ``max delay`` steps past the chunk so
        that arrivals due later are carried to the next run.
        """
        incoming = self.network.incoming(post)
        max_d = max((d for k in incoming for d, _ in self.delay_groups[k]), default=1)
        max_d = max([max_d] + [len(c) for c in self.pending.get(post, {}).values()])
        model = self.models[post]
        shape = (n_steps + max_d, self.batch, model.size)
        arr = {
            x: self.workspace.zeros(("arrivals", post, x), shape, self.dtype) for x in ARRIVAL_KEYS
        }
        for x, carried in self.pending.get(post, {}).items():
            m = min(len(carried), shape[0])
            arr[x][:m] += carried[:m]
        for k in incoming:
            proj = self.network.projections[k]
            if proj.pre in comp:
                continue
            x = RECEPTOR_KEYS[proj.receptor]
            raster = rasters[proj.pre]
            for d, W in self.delay_groups[k]:
                kernels.deliver(
                    raster.spikes,
                    raster.phase,
                    W,
                    self.source_shift(k, d),
                    model.arrival[x],
                    arr[x],
                    arr["U"],
                )
        return arr

    def _external_current(self, i, currents, n_steps):
        model = self.models[i]
        e = np.broadcast_to(model.i_offset, (n_steps, 1, model.size)).astype(self.dtype)
        extra = currents.get(i)
        if extra is not None:
            extra = np.asarray(extra, self.dtype)
            e = e + (extra[:, None, :] if extra.ndim == 2 else extra)
        return np.ascontiguousarray(e)

    # --- feed-forward current-based layer: one compiled loop --------------------------------
    def _run_layer(self, i, arrivals, currents, n_steps, record_names):
        model, st, ws = self.models[i], self.state[i], self.workspace
        shape = (n_steps, self.batch, model.size)
        store_currents = bool(set(record_names) & set(model.synaptic_state))
        hist_shape = shape if store_currents else (0,) + shape[1:]
        out = (
            ws.empty(("u", i), shape, self.dtype),
            ws.empty(("v", i), shape, self.dtype),
            ws.empty(("spikes", i), shape, bool),
            ws.empty(("phase", i), shape, self.dtype),
            ws.empty(("clamped", i), shape, bool),
            ws.empty(("isyn_exc", i), hist_shape, self.dtype),
            ws.empty(("isyn_inh", i), hist_shape, self.dtype),
        )
        v_prev = ws.empty(("v_prev", i), shape, self.dtype)
        v_prev[0] = st.v
        kernels.forward_layer(
            tuple(arrivals[x][:n_steps] for x in ARRIVAL_KEYS),
            self._external_current(i, currents, n_steps),
            (st.v, st.syn["E"], st.syn["I"], st.countdown),
            model.layer_parameters(),
            out,
        )
        u, v, spikes, phase, clamped, i_e, i_i = out
        v_prev[1:] = v[:-1]
        traj = LayerTrajectory(Raster(spikes, phase), u, v_prev, v, clamped)
        return traj, {"E": i_e, "I": i_i}

    # --- general component: numpy, step by step ---------------------------------------------
    def _run_steps(self, comp, arrivals, currents, n_steps):
        """Step-by-step integration of a component (any model, recurrence allowed)."""
        internal = [
            k for k, p in enumerate(self.network.projections) if p.pre in comp and p.post in comp
        ]
        hist = {
            i: {
                name: np.zeros((n_steps, self.batch, self.models[i].size), dtype)
                for name, dtype in (
                    ("u", self.dtype),
                    ("v", self.dtype),
                    ("v_prev", self.dtype),
                    ("phase", self.dtype),
                    ("E", self.dtype),
                    ("I", self.dtype),
                    ("spikes", bool),
                    ("clamped", bool),
                )
            }
            for i in comp
        }
        ext = {i: self._external_current(i, currents, n_steps) for i in comp}
        for k in range(n_steps):
            for i in comp:
                model, st, h = self.models[i], self.state[i], hist[i]
                uk = model.membrane(st.v, st.syn, ext[i][k], arrivals[i]["U"][k])
                h["v_prev"][k], h["u"][k] = st.v, uk
                clamp = st.countdown > 0
                spike = (uk >= model.theta) & ~clamp
                phase = spike_phase(uk, st.v, np.broadcast_to(model.theta, uk.shape))
                h["phase"][k] = np.where(spike, phase, 0.0)
                h["spikes"][k], h["clamped"][k] = spike, clamp
                st.v = np.where(spike | clamp, model.v_reset, uk)
                st.countdown = np.where(spike, model.refractory_steps, st.countdown - clamp)
                h["v"][k] = st.v
                for x in "EI":
                    st.syn[x] = model.a[x] * st.syn[x] + arrivals[i][x][k]
                    h[x][k] = st.syn[x]
            for kp in internal:
                proj = self.network.projections[kp]
                h = hist[proj.pre]
                x = RECEPTOR_KEYS[proj.receptor]
                target = arrivals[proj.post]
                for d, W in self.delay_groups[kp]:
                    kernels.deliver(
                        h["spikes"][k : k + 1],
                        h["phase"][k : k + 1],
                        W,
                        k + d,
                        self.models[proj.post].arrival[x],
                        target[x],
                        target["U"],
                    )
        results = {}
        for i in comp:
            h = hist[i]
            traj = LayerTrajectory(
                Raster(h["spikes"], h["phase"]), h["u"], h["v_prev"], h["v"], h["clamped"]
            )
            results[i] = (traj, {"E": h["E"], "I": h["I"]})
        return results

    # --- recording --------------------------------------------------------------------------
    def _recorded(self, i, names, traj, syn_hist):
        model = self.models[i]
        out = {}
        for name in names:
            if name == "spikes":
                continue  # spikes come as RunResult.spikes
            if name == "v":
                out[name] = traj.v + model.v_rest
            elif name in model.synaptic_state:
                out[name] = syn_hist["EI"[model.synaptic_state.index(name)]]
            else:
                allowed = ["spikes", "v", *model.synaptic_state]
                raise ValueError(
                    f"cannot record {name!r} from population "
                    f"'{self.network.populations[i].label}'; allowed: {allowed}"
                )
        return out
