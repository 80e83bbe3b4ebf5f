"""Exact continuous-time simulation and EventProp adjoint of a compiled network.

:class:`ExactSimulation` implements the engine contract of
:mod:`pynn_eventprop.engine.interface`.  ``IF_curr_exp`` neurons (any PyNN parameters,
per-neuron values, both receptors, real-valued delays) are integrated exactly: every event
happens at its exact time (:mod:`.forward`); the time grid only batches the work into runs,
holds the external current (constant over each step) and is where recorded variables are
sampled.  Gradients are the exact derivatives of the continuous-time loss (:mod:`.adjoint`).
``IF_cond_exp`` (:mod:`.conductance`) and ``IF_curr_alpha`` (:mod:`.alpha`, exact) neurons are
forward-only.

Populations are integrated one strongly connected component at a time, in an order in which
projections go forward: a population outside any cycle is integrated over the whole run,
neuron by neuron (or all neurons at once when they share every arrival time, :mod:`.shared`);
the populations of a cycle advance one grid step at a time and then send
that step's spikes, which is exact because delays inside a cycle are at least one step.  The
backward pass sweeps the components in reverse order, a cycle step by step backwards.  Only
the first spike time is read out of populations in a cycle.

Chunked runs: a run of ``n`` steps from ``t0`` integrates ``(t0, t0 + n dt]``; state and
spikes in flight carry over to the next run.  Gradients are taken within one run (arrivals
carried in from an earlier run are constants of it).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from ...network import CompiledNetwork
from ..interface import (
    READOUTS,
    EngineState,
    Gradients,
    InFlight,
    PopulationState,
    RunResult,
    SpikeTrains,
    check_readouts,
    check_readouts_only,
)
from ..threads import get_threads, threads_for
from .adjoint import backward_layer
from .alpha import alpha_rows, forward_alpha_layer
from .arrivals import empty_pending, gather
from .conductance import H_MAX, conductance_rows, forward_cond_layer
from .forward import (
    CHUNKS_PER_THREAD,
    OPT_GRID,
    OPT_RECORD,
    OPT_TAPE,
    OPT_VMAX,
    OPT_VMEAN,
    forward_layer,
)
from .linear import below_threshold, linear_backward, linear_layer
from .parameters import CHANNELS, components, delays_ms, is_recurrent, parameter_rows
from .shared import InFlightLater
from .shared_adjoint import backward_shared
from .shared_run import arrival_events, in_time_order, run_shared_layer
from .short_term import ShortTermPlasticity, merge_pending
from .step_queue import StepQueue

#: Neuron models the engine integrates (only ``IF_curr_exp`` is differentiated).
FORWARD_MODELS = ("IF_curr_exp", "IF_cond_exp", "IF_curr_alpha")
#: Spike times are located to this tolerance (ms).
TOLERANCE = 1e-13

#: Empty buffers for the backward kernel: no grid sampling, no adjoint carried between windows.
_NO_SAMPLES = (np.zeros((0, 0, 0)), np.zeros((0, 0, 0)))
_NO_CARRY = tuple(np.zeros((0, 0)) for _ in range(4))
#: Empty readout buffers of the shared-event path (readouts not asked for).
_NONE_5 = tuple(np.zeros((0, 0)) for _ in range(5))


class ExactSimulation:
    """Event-driven exact engine (see the module docstring).

    Parameters
    ----------
    network : CompiledNetwork
        Read, never modified.
    dt : float or object with a ``dt`` attribute
        Grid step (ms).
    batch_size : int
    dtype : ``np.float64`` or ``np.float32``: weights, state between runs and recordings.
        The kernels integrate in float64 either way, so in float32 the only rounding is that
        of the weights and of the state stored at the end of each run (of each step in a
        recurrent component); spike times are always float64.
    readout_populations : dict, iterable of population indices, or None
        Which readouts beyond the first spike time are computed where: ``{pop: names}`` (names
        from :data:`~pynn_eventprop.engine.interface.READOUTS`), or population indices for all
        of them; default: every readout of the populations without outgoing projections.
        Each costs work on every interval between events, so only what is read should be
        asked for; all of them keep a layer on the vectorised path (:mod:`.shared`).
    sample_adjoints : bool
        Keep every layer on the general path, the one that can sample the adjoint variables on
        the grid (``backward(..., adjoints=True)``; slower).
    """

    def __init__(self, network: CompiledNetwork, dt, batch_size=1, dtype=np.float64,
                 readout_populations=None, sample_adjoints=False):  # fmt: skip
        self.network = network
        self.dt = float(getattr(dt, "dt", dt))
        if not self.dt > 0:
            raise ValueError(f"dt must be > 0, got {dt!r}")
        self.batch = int(batch_size)
        if self.batch < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dtype = np.dtype(dtype).type
        pops = network.populations
        for pop in pops:
            if not pop.is_source and pop.model not in FORWARD_MODELS:
                raise NotImplementedError(f"the exact engine does not integrate {pop.model!r}")
        self.components = components(network)
        self.order = [i for comp in self.components for i in comp]
        self.recurrent = {
            i for comp in self.components if is_recurrent(network, comp) for i in comp
        }
        self.params = {i: parameter_rows(p) for i, p in enumerate(pops) if p.model == "IF_curr_exp"}
        self.cond = {i: conductance_rows(p) for i, p in enumerate(pops) if p.model == "IF_cond_exp"}
        self.alpha = {i: alpha_rows(p) for i, p in enumerate(pops) if p.model == "IF_curr_alpha"}
        self.forward_only = {**self.cond, **self.alpha}  # integrated without a tape
        self._uniform = {i: bool(np.all(r == r[:1])) for i, r in self.params.items()}
        neurons = [i for i, p in enumerate(pops) if not p.is_source]
        self.v_rest = {i: np.asarray(pops[i].params["v_rest"], float) for i in neurons}
        self.i_offset = {i: np.asarray(pops[i].params["i_offset"], float) for i in neurons}
        self._initial = {
            i: {k: np.array(v, float) for k, v in p.initial.items()} for i, p in enumerate(pops)
        }
        self._weights, self._delays, self._w_offset = [], [], [0]
        for k, proj in enumerate(network.projections):
            if pops[proj.post].is_source:
                raise ValueError(f"projection '{proj.label}' targets a spike source")
            if proj.receptor not in CHANNELS:
                raise ValueError(f"projection '{proj.label}' has receptor {proj.receptor!r}")
            self._weights.append(np.where(proj.mask, proj.weights, 0).astype(self.dtype))
            d = delays_ms(network, k, self.dt)
            self._check_delays(k, d)
            self._delays.append(np.where(proj.mask, d, 0.0))
            self._w_offset.append(self._w_offset[-1] + proj.mask.size)
        self._full = [bool(proj.mask.all()) for proj in network.projections]  # all connected
        #: Tsodyks-Markram projections (:mod:`.short_term`), sent through the spikes in flight
        self.short_term = {
            k: ShortTermPlasticity(network, k, self.batch)
            for k, proj in enumerate(network.projections)
            if proj.short_term is not None
        }
        self.readout_names = _readout_names(readout_populations, network, self.params)
        self._capacity = {}  # spike buffer size per population, grown when too small
        self._queue_stores = {}  # the StepQueue store of a recurrent population's last run
        self._plans = {}  # shared-event plans, rebuilt when these versions change:
        self._weights_version, self._delays_version = 0, 0
        self._initial_states = None  # state at reset, built on first use
        #: Vectorise layers whose neurons share every arrival time (:mod:`.shared`).
        self.shared_layers = not sample_adjoints
        #: Of those, run the ones that cannot reach threshold by superposition (:mod:`.linear`).
        self.linear_layers = True
        self.reset()

    # --- weights, delays, state -------------------------------------------------------------
    def _check_delays(self, k, d):
        proj = self.network.projections[k]
        if not np.all(np.isfinite(d[proj.mask])) or np.any(d[proj.mask] <= 0):
            raise ValueError(f"delays of projection '{proj.label}' must be > 0 ms")
        internal = proj.pre in self.recurrent and proj.post in self.recurrent
        if internal and np.any(d[proj.mask] < self.dt * (1 - 1e-12)):
            raise ValueError(
                f"delays of the recurrent projection '{proj.label}' must be >= the time step "
                f"{self.dt} ms (spikes are exchanged once per step)"
            )

    def get_weights(self, k):
        return self._weights[k].copy()

    def set_weights(self, k, weights, take=False):
        proj = self.network.projections[k]
        w = np.asarray(weights)
        if w.dtype != self.dtype:
            w = w.astype(float)  # stored in self.dtype below
        if w.shape != proj.mask.shape:
            raise ValueError(f"weights of projection '{proj.label}' must have shape "
                             f"{proj.mask.shape}, got {w.shape}")  # fmt: skip
        connected = w if self._full[k] else w[proj.mask]
        with np.errstate(over="ignore"):  # an overflow of finite weights: checked below
            total = np.add.reduce(connected, axis=None)
        if not math.isfinite(total):  # else every one is finite
            bad = ~np.isfinite(connected)
            if bad.any():
                raise ValueError(
                    f"weights of projection '{proj.label}' must be finite; "
                    f"{int(bad.sum())} are not (first: {float(connected[bad][0])!r})"
                )
        if not (self._full[k] and w.dtype == self.dtype):
            w = np.where(proj.mask, w, 0).astype(self.dtype)
        elif not (take and w.flags.c_contiguous):
            w = w.copy()  # the engine's own, in C order as the kernels take it
        self._weights[k] = w
        self._weights_version += 1

    def get_delays(self, k):
        return self._delays[k].copy()

    def set_delays(self, k, delays):
        d = np.broadcast_to(np.asarray(delays, float), self._delays[k].shape)
        self._check_delays(k, d)
        self._delays[k] = np.where(self.network.projections[k].mask, d, 0.0)
        self._delays_version += 1

    def check_trainable(self):
        """Raise ``ValueError`` if :meth:`backward` cannot differentiate this network."""
        if self.forward_only:
            pops = [self.network.populations[i] for i in sorted(self.forward_only)]
            models = sorted({p.model for p in pops})
            names = [f"{m} populations {[p.label for p in pops if p.model == m]}" for m in models]
            raise ValueError(
                f"{', '.join(names)} are forward-only in this engine (EventProp training needs "
                "IF_curr_exp neurons)"
            )
        trained = _downstream(self.network, [p.post for p in self.network.projections
                                             if p.trainable])  # fmt: skip
        for k in self.short_term:
            proj = self.network.projections[k]
            if proj.trainable or proj.pre in trained:
                raise ValueError(
                    f"projection '{proj.label}' (TsodyksMarkramSynapse) is forward-only: its "
                    "presynaptic spikes must not depend on trained weights"
                )

    def reset(self):
        """Back to ``t = 0`` with the initial values.

        The state arrays are shared with the initial state: a run replaces a population's
        state arrays (:meth:`_commit`) and never writes into them.
        """
        self.n = 0
        self._stopped = set()
        if self._initial_states is None:
            self._initial_states = {i: self._initial_state(i) for i in self.v_rest}
            self._nothing_in_flight = empty_pending(self.dtype)
        self._state = {i: list(st) for i, st in self._initial_states.items()}
        self._pending = dict.fromkeys(self.v_rest, self._nothing_in_flight)
        for stp in self.short_term.values():
            stp.reset()

    def _initial_state(self, i):
        size, init = self.network.populations[i].size, self._initial[i]
        shape = (self.batch, size)

        def value(name, offset=0.0):
            return np.broadcast_to(np.asarray(init.get(name, 0.0), float) - offset, shape)

        extra = [np.zeros(shape, self.dtype) for _ in self._synaptic(i)[2:]]
        return [
            np.array(value("v", self.v_rest[i]), self.dtype, order="C"),
            np.array(value(self._synaptic(i)[0]), self.dtype, order="C"),
            np.array(value(self._synaptic(i)[1]), self.dtype, order="C"),
            np.full(shape, -np.inf),
            *extra,
        ]

    def set_initial(self, pop, name, values):
        """Set an initial value (PyNN units) for this (if at t = 0) and every later reset."""
        size = self.network.populations[pop].size
        self._initial[pop][name] = np.broadcast_to(np.asarray(values, float), (size,)).copy()
        self._initial_states = None
        if self.n == 0 and pop in self.v_rest:
            self._state[pop] = self._initial_state(pop)

    def get_state(self) -> EngineState:
        if self._stopped:
            raise RuntimeError(
                f"population(s) {sorted(self._stopped)} stopped once their readouts were final "
                "(readouts_only): the state at the end of the last run is unknown"
            )
        t = self.n * self.dt
        pops = {
            i: PopulationState(
                v=st[0] + self.v_rest[i],
                synaptic={
                    n: x.copy() for n, x in zip(self._synaptic(i), st[1:3] + st[4:], strict=True)
                },
                refractory=np.maximum(st[3] - t, 0.0),
            )
            for i, st in self._state.items()
        }
        receptors = np.array(list(CHANNELS))
        flight = {
            i: InFlight(
                arrival=p[2].copy(),
                sample=p[0].copy(),
                target=p[1].copy(),
                receptor=receptors[p[4]],
                weight=p[3].copy(),
            )  # fmt: skip
            for i, p in ((i, self._in_flight(i)) for i in self._pending)
        }
        state = EngineState(step=self.n, t=t, populations=pops, in_flight=flight)
        state.short_term = {k: s.state.copy() for k, s in self.short_term.items()}
        return state

    def _in_flight(self, i):
        """Arrivals in flight into population ``i``, ``(b, j, t, w, c, widx, src)``."""
        p = self._pending[i]
        if isinstance(p, InFlightLater):
            p = self._pending[i] = p.build()
        return p

    def set_state(self, state: EngineState):
        self.n = int(state.step)
        self._stopped = set()
        t = self.n * self.dt
        for i, ps in state.populations.items():
            if i not in self._state:
                continue
            ref = np.asarray(ps.refractory, float)
            self._state[i] = [
                (np.asarray(ps.v, float) - self.v_rest[i]).astype(self.dtype),
                np.asarray(ps.synaptic[self._synaptic(i)[0]], self.dtype).copy(),
                np.asarray(ps.synaptic[self._synaptic(i)[1]], self.dtype).copy(),
                np.where(ref > 0, t + ref, -np.inf),
            ] + [np.asarray(ps.synaptic.get(name, 0.0) + np.zeros(ref.shape), self.dtype)
                 for name in self._synaptic(i)[2:]]  # fmt: skip
        for k, values in getattr(state, "short_term", {}).items():
            if k in self.short_term and values.shape == self.short_term[k].state.shape:
                self.short_term[k].state = values.copy()
        for i, f in state.in_flight.items():
            channel = np.array([CHANNELS[r] for r in f.receptor], np.int8)
            none = np.full(channel.size, -1, np.int64)
            self._pending[i] = (
                np.asarray(f.sample, np.int64), np.asarray(f.target, np.int64),
                np.asarray(f.arrival, float), np.asarray(f.weight, self.dtype), channel,
                none, none.copy(),
            )  # fmt: skip

    # --- running ----------------------------------------------------------------------------
    def _sources(self, i, trains, t0, t1):
        if trains is None:
            return np.zeros(0), np.zeros(0, np.int64), np.zeros(self.batch + 1, np.int64)
        if trains.batch != self.batch:
            raise ValueError(f"source {i} has {trains.batch} samples, expected {self.batch}")
        times = trains.times
        if not times.size or (times.min() >= t0 and times.max() < t1):  # all in this run
            offsets = np.array(trains.offsets, np.int64)
            return np.array(times, float), np.array(trains.neurons, np.int64), offsets
        keep = (times >= t0) & (times < t1)
        sample = trains.sample_index[keep]
        off = np.zeros(self.batch + 1, np.int64)
        np.cumsum(np.bincount(sample, minlength=self.batch), out=off[1:])
        return trains.times[keep].astype(float), trains.neurons[keep].astype(np.int64), off

    def _external(self, i, currents, n_steps):
        size = self.network.populations[i].size
        e = np.broadcast_to(self.i_offset[i], (n_steps, 1, size))
        extra = currents.get(i)
        if extra is None:
            return np.ascontiguousarray(e, float), False
        extra = np.asarray(extra, float)
        extra = extra[:, None, :] if extra.ndim == 2 else extra
        return np.ascontiguousarray(e + extra), True

    def run(self, n_steps, sources=None, currents=None, record=None, keep_for_backward=False,
            readouts_only=()):  # fmt: skip
        """Advance ``n_steps`` grid steps (see :class:`pynn_eventprop.engine.interface.Engine`).

        ``readouts_only``: populations of which only the first-spike and ``v_max`` readouts
        will be read; on the shared-event path a sample of such a population stops once every
        neuron has spiked (:func:`.shared.forward_shared`), and the engine then refuses to
        continue without :meth:`reset` (its state at the end of the run was not computed).
        """
        n_steps = int(n_steps)
        if n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps}")
        if self._stopped:
            raise RuntimeError(
                f"the previous run stopped population(s) {sorted(self._stopped)} once their "
                "readouts were final (readouts_only), so their state at its end is unknown: "
                "call reset() before the next run"
            )
        sources, currents, record = sources or {}, currents or {}, record or {}
        stop = check_readouts_only(self.network, readouts_only, record)
        t0 = self.n * self.dt
        t1 = (self.n + n_steps) * self.dt
        spikes, start, total = {}, {}, 0
        for i, pop in enumerate(self.network.populations):
            if pop.is_source:
                spikes[i] = self._sources(i, sources.get(i), t0, t1)
                start[i], total = total, total + spikes[i][0].size
        signals, readouts, tape = {}, {}, {"t0": t0, "t1": t1, "pops": {}}
        for comp in self.components:
            outputs, total = self._advance(comp, spikes, start, total, n_steps, t0, currents,
                                           record, keep_for_backward, stop)  # fmt: skip
            for i, out in outputs.items():
                start[i], total = total, total + out["spikes"][0].size
                spikes[i], readouts[i] = out["spikes"], out["readouts"]
                tape["pops"][i] = out.get("tape")
                if out["signals"]:
                    signals[i] = out["signals"]
        self.n += n_steps
        for p in self._pending.values():  # in flight into a later run: no gradient there
            if isinstance(p, InFlightLater):
                p.constant = True
            else:
                p[5][:] = -1
                p[6][:] = -1
        tape["start"], tape["total"] = start, total
        size = {i: p.size for i, p in enumerate(self.network.populations)}
        trains = {i: SpikeTrains(t, n, off, size[i]) for i, (t, n, off) in spikes.items()}
        return RunResult(
            t0, n_steps, trains, signals, readouts, tape if keep_for_backward else None
        )

    def _advance(self, comp, spikes, start, total, n_steps, t0, currents, record, keep, stop):
        """Integrate one component; ``(outputs per population, next free spike index)``."""
        if comp[0] in self.recurrent:
            return self._run_component(comp, spikes, start, total, n_steps, t0, currents,
                                       record, keep)  # fmt: skip
        i = comp[0]
        if i not in self.v_rest:
            return {}, total
        return {
            i: self._run_population(
                i, spikes, start, n_steps, t0, currents, record, keep, i in stop
            )  # fmt: skip
        }, total

    def _incoming(self, i, spikes, start):
        """Arguments of :func:`.arrivals.gather` for the projections into ``i``; the arrivals of
        short-term plastic projections are added to the spikes in flight instead."""
        incoming = []
        for k in self.network.incoming(i):
            proj = self.network.projections[k]
            if k in self.short_term:
                new = self.short_term[k].arrivals(spikes[proj.pre], self._weights[k],
                                                  self._delays[k], self.dtype)  # fmt: skip
                self._pending[i] = merge_pending(self._in_flight(i), new)
                continue
            incoming.append((spikes[proj.pre], start[proj.pre], self._weights[k], self._delays[k],
                             proj.mask, CHANNELS[proj.receptor], self._w_offset[k]))  # fmt: skip
        return incoming

    def _run_population(self, i, spikes, start, n_steps, t0, currents, record, keep, stop):
        shared = self._shared_run(i, spikes, start, n_steps, t0, currents, record, stop)
        if shared is not None:
            return shared
        size, batch = self.network.populations[i].size, self.batch
        t1 = t0 + n_steps * self.dt
        incoming = self._incoming(i, spikes, start)
        off, arr, late = gather(batch, size, t1, incoming, self._in_flight(i), self.dtype)
        ext, varying = self._external(i, currents, n_steps)
        names = self._signal_names(i, record.get(i, ()))
        rec = tuple(np.zeros((n_steps if names else 0, batch, size)) for _ in range(3))
        state = [np.array(x, np.float64, order="C") for x in self._state[i]]
        args = (i, ext, off, arr, t0, n_steps, rec, names)
        if i in self.forward_only:
            if keep:
                raise NotImplementedError(f"population {i} is forward-only")
            n, spk, ro, tp = self._grow(i, lambda cap: self._integrate_cond(*args, state, cap))
        else:
            opts = np.zeros(5, np.int64)
            opts[OPT_GRID], opts[OPT_RECORD], opts[OPT_TAPE] = (
                bool(names) or varying,
                bool(names),
                keep,
            )
            wanted = self.readout_names.get(i, ())
            opts[OPT_VMAX] = "v_max" in wanted or "v_max_time" in wanted
            opts[OPT_VMEAN] = "v_mean_uniform" in wanted or "v_mean_exponential" in wanted
            n, spk, ro, tp = self._grow(i, lambda cap: self._integrate(*args, opts, state, cap))
        self._pending[i] = late
        v_rest = self.v_rest[i]
        result = {
            "spikes": (spk[0][:n], spk[1][:n], np.ascontiguousarray(spk[2][::size])),
            "readouts": self._readouts(ro, t0, () if i in self.forward_only else opts),
            "signals": {
                name: (rec[k] + (v_rest if k == 0 else 0.0)).astype(self.dtype)
                for name, k in names.items()
            },
        }
        if keep:
            nt = tp[5][-1]
            result["tape"] = {
                "tape": tuple(x[:nt] for x in tp[:5]) + (tp[5],),
                "arr": (arr[1], arr[2], arr[3], arr[4]),
                "spk_off": spk[2],
                "ref_end": self._state[i][3].copy(),
                "vmax": (ro[2], ro[3], ro[4], ro[5]),
            }
        return result

    def _shared_run(self, i, spikes, start, n_steps, t0, currents, record, stop):
        """Population ``i`` on the vectorised shared-event path (:mod:`.shared`), or None when
        that does not apply: it needs uniform parameters, all-to-all projections whose delays
        depend only on the presynaptic neuron, and no recording, step currents, readouts beyond
        ``v_max`` or spikes in flight into it from an earlier run."""
        size = self.network.populations[i].size
        plain = i in self.params and self._uniform[i] and currents.get(i) is None
        if not (self.shared_layers and plain and not self._signal_names(i, record.get(i, ()))):
            return None
        wanted = self.readout_names.get(i, frozenset())
        if not wanted <= _SHARED_READOUTS or self._in_flight(i)[0].size:
            return None
        plan = self._shared_plan(i)
        if plan is None:
            return None
        projections, wcat, widx_row = plan
        incoming = tuple((spikes[pre], start[pre], *rest) for pre, *rest in projections)
        t1 = t0 + n_steps * self.dt
        e = float(self.i_offset[i].flat[0])
        linear = self._tries_linear(wanted)  # superposition takes the arrivals in any order
        ev_off, ev, late = arrival_events(incoming, self.batch, t1, not linear)
        self._pending[i] = InFlightLater(late, wcat, widx_row, self.dtype)
        if linear:
            result = self._linear_run(i, wanted, wcat, widx_row, ev_off, ev, e, t0, t1)
            if result is not None:
                return result
            ev = in_time_order(ev_off, ev)
        vm, vs = _NONE_5, _NONE_5[:2]  # size 0: not computed
        if wanted & {"v_max", "v_max_time"}:
            vm = tuple(np.zeros((self.batch, size)) for _ in range(5))
        means = wanted & {"v_mean_uniform", "v_mean_exponential"}
        if means:  # the weighted integral costs three exponentials per interval
            weighted = "v_mean_exponential" in means
            shape = (self.batch, size)
            vs = (np.zeros(shape), np.zeros(shape if weighted else (0, 0)))
        cap = self._capacity.get(i, 4 * self.batch * size + 64)
        with threads_for(size * (ev[0].size + self.batch)):
            n, cap, spk, tp, state, first = run_shared_layer(
                self.params[i], wcat, (ev_off, ev), e, tuple(self._state[i]), t0, t1, vm, vs,
                cap, TOLERANCE, stop)  # fmt: skip
        if stop:
            self._stopped.add(i)
        self._capacity[i] = cap
        self._commit(i, list(state))
        readouts = {"first_spike_time": first}
        if vm[0].size:
            readouts.update(v_max=vm[0], v_max_time=vm[1] - t0)
        if means:
            readouts.update(v_mean_uniform=vs[0] / (t1 - t0))
        if vs[1].size:
            readouts.update(v_mean_exponential=vs[1] / (t1 - t0))
        return {
            "spikes": (spk[0][:n], spk[1][:n], np.ascontiguousarray(spk[2][::size])),
            "readouts": readouts,
            "signals": {},
            "tape": {
                "shared": True,
                "tape": tuple(x[: tp[5][-1]] for x in tp[:5]) + (tp[5],),
                "ev": tuple(ev),
                "ev_off": ev_off,
                "wcat": wcat,
                "widx_row": widx_row,
                "spk_off": spk[2],
                "ref_end": self._state[i][3].copy(),
                "vmax": vm[1:],
            },
        }

    def _tries_linear(self, wanted):
        """Whether a shared-event layer whose readouts ``wanted`` are read tries superposition
        (:meth:`_linear_run`): only a layer whose voltage means are read out and not ``v_max``
        (a leaky-integrator readout); for any other the check would cost more than it saves."""
        means = wanted & {"v_mean_uniform", "v_mean_exponential"}
        return bool(self.linear_layers and means) and not wanted & {"v_max", "v_max_time"}

    def _linear_run(self, i, wanted, wcat, widx_row, ev_off, ev, e, t0, t1):
        """Population ``i`` on the shared-event path by superposition (:mod:`.linear`), or None
        when a neuron may reach threshold or is refractory at ``t0`` in this run; the arrivals
        ``ev`` in any order within a sample (:meth:`_tries_linear` said it may try)."""
        state = tuple(self._state[i])
        if not below_threshold(self.params[i], wcat, ev_off, ev[:3], e, state, t0):
            return None
        batch, size = state[0].shape
        weighted = "v_mean_exponential" in wanted
        with threads_for(size * (ev[0].size + batch)):
            new, sums, k, dk = linear_layer(self.params[i], wcat, ev_off, ev[:3], e, state, t0,
                                            t1, weighted)  # fmt: skip
        self._commit(i, [*new, state[3]])
        readouts = {"first_spike_time": np.full((batch, size), np.inf)}
        readouts["v_mean_uniform"] = sums[0] / (t1 - t0)
        if weighted:  # else sums[1] and the second row of k are 0
            readouts["v_mean_exponential"] = sums[1] / (t1 - t0)
        no_events, empty = np.zeros(batch * size + 1, np.int64), np.zeros(0)
        no_tape = (np.zeros(0, np.int8), empty, empty, empty, np.zeros(0, np.int64), no_events)
        return {
            "spikes": (empty, np.zeros(0, np.int64), np.zeros(batch + 1, np.int64)),
            "readouts": readouts,
            "signals": {},
            "tape": {
                "linear": True,
                "tape": no_tape,
                "spk_off": no_events,
                "ev": tuple(ev),
                "ev_off": ev_off,
                "wcat": wcat,
                "widx_row": widx_row,
                "k": k,
                "dk": dk,
            },
        }

    def _shared_plan(self, i):
        """``(projections, wcat, widx_row)`` of population ``i`` on the shared-event path, or
        None when its projections do not qualify (not all-to-all, or delays that depend on the
        postsynaptic neuron).  The structure is cached until delays change, ``wcat`` until
        weights change.

        ``projections``: ``(pre, delay per presynaptic neuron, first row in wcat, channel)``;
        ``wcat`` the incoming weights stacked by rows; ``widx_row`` the flat gradient index of
        each row's first column.
        """
        cached = self._plans.get(i)
        if cached is None or cached[0] != self._delays_version:
            cached = (self._delays_version, self._shared_structure(i), -1, None)
        version, structure, w_version, wcat = cached
        if structure is None:
            self._plans[i] = cached
            return None
        projections, widx_row, sources = structure
        if w_version != self._weights_version:
            weights = [self._weights[k] for k in sources]
            one = (
                len(weights) == 1
                and weights[0].dtype == np.float64
                and weights[0].flags.c_contiguous
            )
            # set_weights replaces a weight array and never writes into it, so one
            # projection's array is taken as it is
            wcat = weights[0] if one else np.ascontiguousarray(np.vstack(weights), np.float64)
        self._plans[i] = (version, structure, self._weights_version, wcat)
        return projections, wcat, widx_row

    def _shared_structure(self, i):
        """``(projections, widx_row, projection indices)`` of :meth:`_shared_plan`, or None."""
        size, row0 = self.network.populations[i].size, 0
        projections, rows, sources = [], [], []
        for k in self.network.incoming(i):
            proj, d = self.network.projections[k], self._delays[k]
            if not proj.mask.all() or np.any(d != d[:, :1]) or k in self.short_term:
                return None
            projections.append((proj.pre, d[:, 0].copy(), row0, CHANNELS[proj.receptor]))
            rows.append(self._w_offset[k] + np.arange(d.shape[0]) * size)
            sources.append(k)
            row0 += d.shape[0]
        if not projections:
            return None
        return projections, np.concatenate(rows), sources

    def _run_component(self, comp, spikes, start, total, n_steps, t0, currents, record, keep):
        """Integrate a recurrent component step by step: every population of it advances one
        grid step, then the spikes of that step are sent (delays >= dt, so none of them
        arrives within the step it was emitted in).

        Spikes get global indices in emission order from ``total`` on (the component's own
        index space, which the per-step tapes refer to).  Returns ``(outputs per population,
        new total)``.
        """
        batch, dt = self.batch, self.dt
        sizes = {i: self.network.populations[i].size for i in comp}
        empty = (np.zeros(0), np.zeros(0, np.int64), np.zeros(batch + 1, np.int64))
        ext = {i: self._external(i, currents, n_steps)[0] for i in comp}
        rec = {i: tuple(np.zeros((n_steps, batch, sizes[i])) for _ in range(3)) for i in comp}
        first = {i: np.full((batch, sizes[i]), np.inf) for i in comp}
        first_step = {i: np.full((batch, sizes[i]), -1) for i in comp}
        found, steps = {i: [] for i in comp}, {i: [] for i in comp}
        opts = np.zeros(5, np.int64)
        opts[OPT_GRID] = opts[OPT_RECORD] = 1
        opts[OPT_TAPE] = keep
        ends = [t0 + k * dt + dt for k in range(n_steps)]  # t_k + dt below
        queues = {i: StepQueue(ends, self._in_flight(i), self._queue_stores.get(i)) for i in comp}
        fed_by_short_term = {i for i in comp if self.short_term.keys() & self.network.incoming(i)}
        for k in range(n_steps):
            t_k = t0 + k * dt
            outside = {q: (s if k == 0 else empty) for q, s in spikes.items()}
            sent, sent_start = {}, {}
            for i in comp:
                if k and i not in fed_by_short_term:  # all that arrives is in the queue
                    off, arr = queues[i].take_by_neuron(k, batch, sizes[i])
                else:  # short-term plastic projections add to _pending in _incoming
                    self._pending[i] = self._nothing_in_flight
                    incoming = self._incoming(i, outside | dict.fromkeys(comp, empty),
                                              start | dict.fromkeys(comp, 0))  # fmt: skip
                    queues[i].push(self._pending[i])
                    off, arr, late = gather(batch, sizes[i], t_k + dt, incoming,
                                            queues[i].take(k), self.dtype)  # fmt: skip
                    queues[i].push(late)
                args = (i, ext[i][k : k + 1], off, arr, t_k, 1, tuple(r[k : k + 1] for r in rec[i]))
                state = [np.array(x, np.float64, order="C") for x in self._state[i]]
                if i in self.forward_only:
                    if keep:
                        raise NotImplementedError(f"population {i} is forward-only")
                    # sampled at every step, as for IF_curr_exp (opts[OPT_RECORD] above)
                    n, spk, ro, tp = self._grow(
                        i, partial(self._integrate_cond, *args, True, state)
                    )
                else:
                    n, spk, ro, tp = self._grow(i, partial(self._integrate, *args, {}, opts, state))
                new = np.isinf(first[i]) & np.isfinite(ro[0])
                first[i] = np.where(new, ro[0] + (t_k - t0), first[i])
                first_step[i][new] = k
                counts = np.diff(spk[2][:: sizes[i]])
                found[i].append((spk[0][:n], spk[1][:n], counts, np.arange(total, total + n)))
                sent[i] = (spk[0][:n], spk[1][:n], np.ascontiguousarray(spk[2][:: sizes[i]]))
                sent_start[i], total = total, total + n
                if keep:
                    steps[i].append(self._step_tape(tp, arr, spk, i, sent_start[i], t_k))
            inside = dict.fromkeys(spikes, empty) | sent
            for i in comp:  # every arrival of this step's spikes is at least one step later
                self._pending[i] = self._nothing_in_flight
                incoming = self._incoming(i, inside, start | sent_start)
                queues[i].push(self._pending[i])
                queues[i].push_spikes(incoming)
        outputs = {}
        for i in comp:
            self._pending[i], self._queue_stores[i] = queues[i].rest(), queues[i].store
            names = self._signal_names(i, record.get(i, ()))
            times, neurons, offsets, index = _concatenate_steps(found[i], batch)
            outputs[i] = {
                "spikes": (times, neurons, offsets),
                "readouts": {"first_spike_time": first[i]},
                "signals": {
                    name: (rec[i][r] + (self.v_rest[i] if r == 0 else 0.0)).astype(self.dtype)
                    for name, r in names.items()
                },
                "tape": {"steps": steps[i], "index": index, "first_step": first_step[i]},
            }
        return outputs, total

    def _step_tape(self, tp, arr, spk, i, base, t_k):
        """What the backward pass needs of one step of a recurrent population."""
        nt = tp[5][-1]
        return {
            "tape": tuple(x[:nt] for x in tp[:5]) + (tp[5],),
            "arr": (arr[1], arr[2], arr[3], arr[4]),
            "spk_off": spk[2],
            "ref_end": self._state[i][3].copy(),
            "base": base,
            "t0": t_k,
            "t1": t_k + self.dt,
        }

    def _signal_names(self, i, names):
        """Recorded variables of population ``i``: name -> row of the sampled state."""
        synaptic = self._synaptic(i)
        allowed = {"v": 0, synaptic[0]: 1, synaptic[1]: 2}
        unknown = set(names) - set(allowed) - {"spikes"}
        if unknown:
            raise ValueError(f"cannot record {sorted(unknown)} from population {i}; allowed: "
                             f"{['spikes', *allowed]}")  # fmt: skip
        return {n: allowed[n] for n in names if n in allowed}

    def _synaptic(self, i):
        if i in self.alpha:  # J_x = dI_x/dt + I_x/tau_x (nA/ms), see :mod:`.alpha`
            return ("isyn_exc", "isyn_inh", "jsyn_exc", "jsyn_inh")
        return ("gsyn_exc", "gsyn_inh") if i in self.cond else ("isyn_exc", "isyn_inh")

    def _grow(self, i, integrate):
        """Call ``integrate(capacity)`` with a spike buffer grown until it is large enough."""
        size = self.network.populations[i].size
        cap = self._capacity.get(i, 4 * self.batch * size + 64)
        while True:
            n, *out = integrate(cap)
            if n >= 0:
                self._capacity[i] = cap
                return (n, *out)
            cap *= 4

    def _spike_buffers(self, size, cap):
        rows = self.batch * size + 1
        return (np.empty(cap), np.empty(cap, np.int64), np.empty(rows, np.int64))

    def _integrate(self, i, ext, off, arr, t0, n_steps, rec, names, opts, state, cap):
        size = self.network.populations[i].size
        state = [x.copy() for x in state]  # left untouched if the buffers are too small
        cap_t = int(off[-1] + 2 * cap + self.batch * size + 16) if opts[OPT_TAPE] else 0
        spk = self._spike_buffers(size, cap)
        tp = (np.empty(cap_t, np.int8), np.empty(cap_t), np.empty(cap_t), np.empty(cap_t),
              np.empty(cap_t, np.int64), np.zeros(self.batch * size + 1, np.int64))  # fmt: skip
        ro = tuple(np.zeros((self.batch, size)) for _ in range(8))
        with threads_for(int(off[-1]) + off.size * n_steps):
            n = forward_layer(self.params[i], ext, tuple(state), off, arr[:3], t0, self.dt,
                              n_steps, opts, rec, spk, tp, ro, TOLERANCE,
                              CHUNKS_PER_THREAD * get_threads())  # fmt: skip
        if n >= 0:
            self._commit(i, state)
        return n, spk, ro, tp

    def _integrate_cond(self, i, ext, off, arr, t0, n_steps, rec, names, state, cap):
        size = self.network.populations[i].size
        state = [x.copy() for x in state]
        spk = self._spike_buffers(size, cap)
        first = np.zeros((self.batch, size))
        if i in self.alpha:
            n = forward_alpha_layer(self.alpha[i], ext, tuple(state), off, arr[:3], t0, self.dt,
                                    n_steps, bool(names), rec, spk, first, TOLERANCE)  # fmt: skip
        else:
            n = forward_cond_layer(self.cond[i], ext, tuple(state), off, arr[:3], t0, self.dt,
                                   n_steps, bool(names), rec, spk, first, H_MAX)  # fmt: skip
        if n >= 0:
            self._commit(i, state)
        return n, spk, (first,), None

    def _commit(self, i, state):
        self._state[i] = [x.astype(self.dtype, copy=False) for x in state[:3]] + [state[3]]
        self._state[i] += [x.astype(self.dtype, copy=False) for x in state[4:]]

    def _readouts(self, ro, t0, opts):
        out = {"first_spike_time": ro[0]}
        if len(opts) and opts[OPT_VMAX]:
            out.update(v_max=ro[1], v_max_time=ro[2] - t0)
        if len(opts) and opts[OPT_VMEAN]:
            out.update(v_mean_uniform=ro[6], v_mean_exponential=ro[7])
        return out

    def readouts(self, result: RunResult, pop: int, names) -> dict:
        """Per-neuron readouts of a run (beyond the first spike time, those asked for with
        ``readout_populations``)."""
        names = check_readouts(names)
        have = result.readouts.get(pop, {})
        missing = [n for n in names if n not in have]
        if missing:
            raise ValueError(
                f"readouts {missing} of population {pop} were not computed in this run; add the "
                "population to ExactSimulation.readout_populations before running"
            )
        return {n: have[n] for n in names}

    # --- gradients --------------------------------------------------------------------------
    def backward(
        self,
        result: RunResult,
        readout_grads,
        extra_grads=None,
        adjoints=False,
        spike_grads=None,
        delays=True,
        source_times=True,
    ) -> Gradients:
        """Exact ``dL/dw`` and ``dL/d(delay)`` of every projection (see :mod:`.adjoint`).

        Components are swept in reverse order, so that every spike's ``dL/dt`` (from the
        arrivals it caused) is complete before its neuron is swept; recurrent components step by
        step backwards, carrying the adjoint across grid points.  With ``adjoints``, also
        ``lambda_v = dL/dV`` (1/mV) and ``lambda_i = dL/dI_E`` (1/nA) of feed-forward
        populations at the grid points ``t0 .. t0 + n_steps dt`` (values just after the events
        at those times).  The returned object also carries ``spike_times``: ``dL/dt`` (1/ms)
        of every spike of the run, per population, in the order of ``result.spikes``.
        ``spike_grads`` ``{pop: dL/dt}`` (1/ms, in the order of ``result.spikes[pop]``) adds
        terms of the loss that depend on a population's spike times from outside this engine
        (the downstream part of a network split over several engines, as on SpiNNaker2).
        ``delays=False``: no delay gradients (``Gradients.delays`` is None), which saves
        their sums.  ``source_times=False``: ``spike_times`` leaves out the spike sources, and
        a shared-event layer fed by spike sources only does not sum ``dL/dt`` of its arrivals
        (unless delay gradients need them).
        """
        tape = result.tape
        if tape is None:
            raise ValueError("backward needs a run made with keep_for_backward=True")
        dldt, sampled = np.zeros(tape["total"]), {}
        for i, values in (spike_grads or {}).items():
            values = np.asarray(values, float)
            if values.shape != result.spikes[i].times.shape:
                raise ValueError(
                    f"spike_grads[{i}] has shape {values.shape}, but population {i} fired "
                    f"{result.spikes[i].times.size} spikes in this run"
                )
            dldt[tape["start"][i] : tape["start"][i] + values.size] += values
        n = self._w_offset[-1]
        grads = (np.zeros(n), np.zeros(n if delays else 0))
        for comp in reversed(self.components):
            if comp[0] not in self.params and comp[0] not in self.recurrent:
                continue  # a spike source or a forward-only population: nothing to sweep
            g = {i: self._readout_grads(i, readout_grads, extra_grads) for i in comp}
            if comp[0] in self.recurrent:
                self._backward_component(comp, tape, g, dldt, grads)
            elif comp[0] in self.params and tape["pops"][comp[0]].get("linear"):
                self._backward_linear(comp[0], tape, g[comp[0]], dldt, grads, adjoints)
            elif comp[0] in self.params and tape["pops"][comp[0]].get("shared"):
                times = source_times or not self._fed_by_sources(comp[0])
                self._backward_shared(comp[0], tape, g[comp[0]], dldt, grads, adjoints, times)
            elif comp[0] in self.params:
                i = comp[0]
                t = tape["pops"][i]
                shape = (result.n_steps + 1 if adjoints else 0, self.batch, g[i][0].shape[1])
                adj = (np.zeros(shape), np.zeros(shape))
                with threads_for(t["tape"][1].size + t["spk_off"].size):
                    backward_layer(self.params[i], t["tape"], t["arr"], dldt, tape["start"][i],
                                   t["spk_off"], g[i], t["vmax"], tape["t0"], tape["t1"],
                                   t["ref_end"], grads, adj, self.dt,
                                   _NO_CARRY)  # fmt: skip
                sampled[i] = {"lambda_v": adj[0], "lambda_i": adj[1]}
        weights = self._per_projection(grads[0])
        out = Gradients(weights, self._per_projection(grads[1]) if delays else None,
                        adjoints=sampled if adjoints else None)  # fmt: skip
        out.spike_times = {}
        for i, s in tape["start"].items():
            if not source_times and self.network.populations[i].is_source:
                continue
            index = (tape["pops"].get(i) or {}).get("index")
            final = slice(s, s + result.spikes[i].times.size)
            out.spike_times[i] = dldt[index if index is not None else final]
        return out

    def _fed_by_sources(self, i):
        """Whether every projection into population ``i`` comes from a spike source."""
        net = self.network
        return all(net.populations[net.projections[k].pre].is_source for k in net.incoming(i))

    def _backward_shared(self, i, tape, g, dldt, grads, adjoints, arrival_times=True):
        """Reverse sweep of population ``i`` on the shared-event path; ``arrival_times``:
        whether the ``dL/dt`` of its presynaptic spikes is wanted."""
        _refuse_adjoints(i, adjoints)
        t = tape["pops"][i]
        g_vmax = g[1] if t["vmax"][0].size else np.zeros((0, 0))
        none = np.zeros((0, 0))
        g_mean = (g[2], g[3]) if np.any(g[2]) or np.any(g[3]) else (none, none)
        with threads_for(t["wcat"].shape[1] * (t["ev"][0].size + t["ev_off"].size)):
            backward_shared(self.params[i], t["wcat"], t["ev_off"], t["ev"], t["widx_row"],
                            t["tape"], t["spk_off"], dldt, tape["start"][i], g[0], g_vmax,
                            t["vmax"], g_mean, t["ref_end"], tape["t0"], tape["t1"],
                            grads, arrival_times)  # fmt: skip

    def _backward_linear(self, i, tape, g, dldt, grads, adjoints):
        """Gradients of a population run by superposition: only its voltage means have any
        (it did not spike)."""
        _refuse_adjoints(i, adjoints)
        t = tape["pops"][i]
        g_mean = (g[2], g[3])
        if not np.any(g[2]) and not np.any(g[3]):
            return
        with threads_for(t["wcat"].shape[1] * (t["ev"][0].size + t["ev_off"].size)):
            linear_backward(t["wcat"], t["ev_off"], t["ev"], t["widx_row"], t["k"], t["dk"],
                            g_mean, tape["t1"] - tape["t0"], dldt, grads)  # fmt: skip

    def _per_projection(self, flat):
        """A flat gradient buffer as ``(n_pre, n_post)`` arrays per projection (views of it
        where a projection connects every pair)."""
        out = []
        for k, proj in enumerate(self.network.projections):
            block = flat[self._w_offset[k] : self._w_offset[k + 1]].reshape(proj.mask.shape)
            out.append(block if self._full[k] else np.where(proj.mask, block, 0.0))
        return out

    def _backward_component(self, comp, tape, g, dldt, grads):
        """Reverse sweep of a recurrent component, one grid step at a time."""
        for i in comp:
            if i in self.forward_only:
                raise NotImplementedError(f"population {i} is forward-only")
            if any(np.any(x) for x in g[i][1:]):
                raise ValueError(f"population {i} is in a cycle: only first_spike_time is read out")
            t = tape["pops"][i]
            final = slice(tape["start"][i], tape["start"][i] + t["index"].size)
            dldt[t["index"]] += dldt[final]  # downstream terms, into the step-ordered indices
        carried = {i: tuple(np.zeros(g[i][0].shape) for _ in range(4)) for i in comp}
        for k in reversed(range(len(tape["pops"][comp[0]]["steps"]))):
            for i in comp:
                st = tape["pops"][i]["steps"][k]
                first = np.where(tape["pops"][i]["first_step"] == k, g[i][0], 0.0)
                zero = np.zeros(first.shape)
                with threads_for(st["tape"][1].size + st["spk_off"].size):
                    backward_layer(self.params[i], st["tape"], st["arr"], dldt, st["base"],
                                   st["spk_off"], (first, zero, zero, zero), (zero,) * 4,
                                   st["t0"], st["t1"], st["ref_end"], grads, _NO_SAMPLES,
                                   self.dt, carried[i])  # fmt: skip

    @staticmethod
    def event_structure(result: RunResult) -> tuple:
        """The order of every neuron's events in a run kept for backward (a hashable tuple).

        The loss is a smooth function of the weights as long as this does not change (the
        finite-difference tests compare it before and after a perturbation).
        """
        out = []
        for i, t in sorted(result.tape["pops"].items()):
            for step in t.get("steps", [t]) if t else []:
                kind, idx, off = step["tape"][0], step["tape"][4], step["tape"][5]
                out.append(
                    (i, kind.tobytes(), np.where(kind == 1, 0, idx).tobytes(), off.tobytes())
                )
            if t and t.get("shared"):  # private events: also between which arrivals they fall
                out.append((i, _interval_positions(t).tobytes()))
        return tuple(out)

    def _readout_grads(self, i, *grad_dicts):
        shape = (self.batch, self.network.populations[i].size)
        g = [np.zeros(shape) for _ in range(4)]
        slots = {"first_spike_time": 0, "v_max": 1, "v_mean_uniform": 2, "v_mean_exponential": 3}
        for grads in grad_dicts:
            for name, value in (grads or {}).get(i, {}).items():
                if name not in slots:
                    raise ValueError(f"no gradient through readout {name!r}")
                if np.shape(value) != shape:
                    raise ValueError(f"dL/d{name} of population {i} must have shape {shape} "
                                     f"(batch, size), got {np.shape(value)}")  # fmt: skip
                g[slots[name]] = g[slots[name]] + np.where(np.isfinite(value), value, 0.0)
        return tuple(g)


def _refuse_adjoints(i, adjoints):
    """The shared-event path (and its linear case) does not sample adjoints on the grid."""
    if adjoints:
        raise ValueError(
            f"population {i} ran on the shared-event path, which does not sample adjoints "
            "on the grid: construct the engine with sample_adjoints=True"
        )


#: Readouts the shared-event path computes.
_SHARED_READOUTS = frozenset(
    ("first_spike_time", "v_max", "v_max_time", "v_mean_uniform", "v_mean_exponential")
)


def _readout_names(readout_populations, network, params) -> dict:
    """``{population: frozenset of readout names}`` from the ``readout_populations`` argument
    of :class:`ExactSimulation` (see there)."""
    if readout_populations is None:
        readout_populations = [i for i in params if not network.outgoing(i)]
    if not isinstance(readout_populations, dict):
        readout_populations = dict.fromkeys(readout_populations, READOUTS)
    return {int(i): frozenset(check_readouts(n)) for i, n in readout_populations.items()}


def _downstream(network, start) -> set:
    """Populations reachable from ``start`` (included) along projections."""
    seen, todo = set(start), list(start)
    while todo:
        for k in network.outgoing(todo.pop()):
            post = network.projections[k].post
            if post not in seen:
                seen.add(post)
                todo.append(post)
    return seen


def _concatenate_steps(steps, batch):
    """One CSR ``(times, neurons, offsets)`` from per-step ``(times, neurons, counts, index)``,
    and the ``index`` of every spike in its order."""
    if not steps:
        empty = np.zeros(0, np.int64)
        return np.zeros(0), empty, np.zeros(batch + 1, np.int64), empty
    times, neurons, _, index = (np.concatenate(x) for x in zip(*steps, strict=True))
    sample = np.concatenate([np.repeat(np.arange(batch), c) for _, _, c, _ in steps])
    order = np.argsort(sample, kind="stable")
    offsets = np.zeros(batch + 1, np.int64)
    np.cumsum(np.bincount(sample, minlength=batch), out=offsets[1:])
    return times[order], neurons[order], offsets, index[order]


def _interval_positions(t):
    """For a shared-event tape: how many arrivals of its sample precede each private event."""
    ev_t, ev_off, tape_off = t["ev"][0], t["ev_off"], t["tape"][5]
    size = (tape_off.size - 1) // (ev_off.size - 1)
    pos = [
        np.searchsorted(ev_t[ev_off[b] : ev_off[b + 1]],
                        t["tape"][1][tape_off[b * size] : tape_off[(b + 1) * size]])
        for b in range(ev_off.size - 1)
    ]  # fmt: skip
    return np.concatenate(pos) if pos else np.zeros(0, np.int64)
