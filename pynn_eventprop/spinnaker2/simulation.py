"""The SpiNNaker2 model as an engine: results computed by PEs that exchange packets.

:class:`Spinnaker2Engine` implements :class:`pynn_eventprop.engine.interface.Engine`.  It maps
the network onto PEs (:func:`~.mapping.map_network`), builds the routing tables
(:func:`~.routing.build_routing`) and runs the forward, loss, backward, reduction and
weight-update programs on the PEs of a :class:`~.machine.Machine`, each on its own data and on
the packets the routing tables deliver to it.  Its spikes, readouts, losses, gradients and
weights are read out of the PEs' memories, so a wrong key, a lost packet or a misrouted entry
changes them.  Each PE integrates its slice with the exact engine, evaluates the training
core's loss object and steps its optimiser object (one definition of the maths); the
:class:`~pynn_eventprop.training.step.TrainingStep` hands those objects over through
:meth:`Spinnaker2Engine.evaluate_loss` and :meth:`Spinnaker2Engine.optimiser_step`.

Packets and work are tallied per run as before (:func:`~.packets.count_traffic` on the run's
spikes binned into ticks) for the time and energy estimate; the packet, delivery and hop
counts of the spike, error, gradient and weight kinds are replaced by what the fabric really
carried.

Restrictions (the hardware's): delays are whole ticks (``dt``); a spike source sends at most one
spike per neuron and tick; networks are feed-forward; ``IF_cond_exp`` populations run forward
only.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect

import numpy as np

from ..engine.exact.parameters import components, is_recurrent
from ..engine.interface import (
    EngineState,
    Gradients,
    InFlight,
    PopulationState,
    RunResult,
    SpikeTrains,
    check_readouts,
    check_readouts_only,
)
from .energy import CostEstimate, EnergyCoefficients, estimate_cost
from .fabric import Fault
from .hardware import OperationCycles, Spinnaker2Hardware
from .machine import Machine, sample_index
from .mapping import MappingError, map_network
from .packets import KindCount, Traffic, count_traffic, event_counts, plan_traffic
from .report import Report, build_report
from .routing import build_routing
from .sensitivity import sensitivity

#: Runs and backward passes logged before the tallies are counted anyway.
LOG_LIMIT = 256


class Spinnaker2Engine:
    """PEs running EventProp on the exact maths, connected by packets (module docstring).

    Parameters
    ----------
    network, discretisation, batch_size
        As for every engine (``discretisation`` gives ``dt``, one tick).
    dtype
        Must be float32 (the default): weights and state between runs are float32 on the PEs.
    n_steps : int, optional
        Steps per sample the mapping reserves memory for; default: the first run's length.
    hardware, cycles, coefficients
        :class:`Spinnaker2Hardware`, :class:`OperationCycles`, :class:`EnergyCoefficients`.
    replicas : int, optional
        Network copies on the machine, each running ``ceil(batch_size / replicas)`` samples
        at once; default: the fewest copies whose PEs fit their SRAM (fewest PEs).
    training : bool, optional
        Reserve training memory and plan the backward pass (default: a projection is trainable).
    loss_populations : sequence of int, optional
    max_spikes_per_neuron : int
        Capacity of the spike records (see :func:`map_network`), default 4: time-to-first-spike
        networks such as Yin-Yang fire at most about twice per neuron and sample; the report
        warns when a neuron fired more often than the records hold.
    payload_bits : 32 or 64
        Packet payload width: 32 (default, the hardware's) rounds spike times within the tick,
        error values and gradient words to float32 on the wire; 64 carries them exactly.
    on_fault : ``"raise"`` or ``"record"``
        What a failed protocol check does (see :mod:`.fabric`); recorded problems are in
        :attr:`problems`.
    readout_populations : iterable of int, optional
        Populations whose PEs compute the voltage readouts (default: those without outgoing
        projections, as the reference engine).
    spike_payload : bool
        Must be True: spike packets carry the spike time (kept for the option's old callers).
    """

    def __init__(
        self,
        network,
        discretisation,
        batch_size=1,
        dtype=np.float32,
        *,
        n_steps=None,
        hardware: Spinnaker2Hardware | None = None,
        cycles: OperationCycles | None = None,
        coefficients: EnergyCoefficients | None = None,
        replicas=None,
        training=None,
        loss_populations=None,
        max_spikes_per_neuron=4,
        payload_bits=32,
        on_fault="raise",
        readout_populations=None,
        spike_payload=True,
    ):
        if np.dtype(dtype) != np.float32:
            raise ValueError(
                f"dtype must be float32 on the SpiNNaker2 model (Cortex-M4F single precision), "
                f"got {np.dtype(dtype).name}"
            )
        if not spike_payload:
            raise ValueError("spike_payload must be True: the model's spike packets carry the "
                             "spike time (count_traffic can count key-only packets)")  # fmt: skip
        self.network = network
        self.disc = discretisation
        self.dt = float(getattr(discretisation, "dt", discretisation))
        self.batch = int(batch_size)
        if self.batch < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dtype = np.float32
        self._check_network()
        self.hardware = hardware if hardware is not None else Spinnaker2Hardware()
        self.op_cycles = cycles if cycles is not None else OperationCycles()
        self.coefficients = coefficients if coefficients is not None else EnergyCoefficients()
        self.payload_bits, self.on_fault = payload_bits, on_fault
        if isinstance(replicas, (int, np.integer)) and 1 <= replicas <= self.batch:
            replicas = -(-self.batch // -(-self.batch // replicas))  # no replica without samples
        trainable = any(p.trainable for p in network.projections)
        self._map_options = dict(
            replicas=replicas,
            training=trainable if training is None else bool(training),
            loss_populations=loss_populations,
            max_spikes_per_neuron=max_spikes_per_neuron,
        )
        if readout_populations is None:
            readout_populations = [
                i for i, p in enumerate(network.populations)
                if not p.is_source and not network.outgoing(i)
            ]  # fmt: skip
        self.readout_populations = set(readout_populations)
        self._weights = [np.where(p.mask, p.weights, 0).astype(np.float32)
                         for p in network.projections]  # fmt: skip
        self._delays = [np.where(p.mask, np.asarray(p.delays, float), 0.0)
                        for p in network.projections]  # fmt: skip
        self._initial = []  # (pop, name, values), loaded again whenever a machine is built
        self._state = None  # a state set before the machine exists
        self.mapping = self.routing = self.plan = self.machine = None
        self._log = []  # runs and backward passes not yet counted
        self._traffic: Traffic | None = None
        self._training_traffic: Traffic | None = None
        self._last_batch = None  # (spikes, t_start, n_steps) of the last trained batch
        self.n = 0
        self._last_gradients = None  # what the last backward pass returned
        self._optimiser_of = {}  # projection -> (the host's optimiser, its step count) loaded
        if n_steps is not None:
            self._build(int(n_steps))

    # --- checks ----------------------------------------------------------------------------------
    def _check_network(self):
        pops = self.network.populations
        self._components = components(self.network)
        for comp in self._components:
            if is_recurrent(self.network, comp):
                labels = [pops[i].label for i in comp]
                raise ValueError(
                    f"the SpiNNaker2 model runs feed-forward networks only; populations {labels} "
                    "form a recurrent loop"
                )
        for pop in pops:
            if not pop.is_source and pop.model not in ("IF_curr_exp", "IF_cond_exp"):
                raise ValueError(f"the SpiNNaker2 model runs IF_curr_exp and IF_cond_exp "
                                 f"neurons; population '{pop.label}' is {pop.model}")  # fmt: skip
        for p in self.network.projections:
            if getattr(p, "short_term", None) is not None:
                raise ValueError(f"the SpiNNaker2 model has no short-term plasticity; projection "
                                 f"'{p.label}' is a Tsodyks-Markram synapse")  # fmt: skip
            self._delay_ticks(np.asarray(p.delays, float)[p.mask])

    def _delay_ticks(self, delays):
        steps = getattr(self.disc, "delay_steps", None)
        if steps is not None:
            return steps(delays)
        return np.rint(np.asarray(delays) / self.dt).astype(np.int64)

    def check_trainable(self):
        for pop in self.network.populations:
            if pop.model == "IF_cond_exp":
                raise ValueError(f"EventProp training supports current-based IF_curr_exp neurons "
                                 f"only; population '{pop.label}' is IF_cond_exp")  # fmt: skip

    @property
    def problems(self) -> list:
        """Protocol problems the PEs found (see :mod:`.fabric`)."""
        return [] if self.machine is None else self.machine.fabric.problems

    @property
    def fabric(self):
        if self.machine is None:
            raise RuntimeError("the machine is built at the first run (or give n_steps)")
        return self.machine.fabric

    def inject(self, action: str, kind: str, index: int = 0):
        """Drop or duplicate the ``index``-th packet of ``kind`` from now on (tests)."""
        self.fabric.inject(Fault(action, kind, int(index)))

    # --- mapping and machine --------------------------------------------------------------------
    def _map(self, n_steps: int):
        """The mapping; without ``replicas``, the one with the fewest replicas that fits."""
        options = dict(self._map_options)
        if options["replicas"] is not None:
            return map_network(self.network, n_steps, self.batch, hardware=self.hardware,
                               dt=self.dt, **options)  # fmt: skip
        del options["replicas"]
        counts = sorted({-(-self.batch // -(-self.batch // r)) for r in range(1, self.batch + 1)})
        for r in counts:  # replica counts that leave no replica without samples
            try:
                return map_network(self.network, n_steps, self.batch, hardware=self.hardware,
                                   dt=self.dt, replicas=r, **options)  # fmt: skip
            except MappingError as err:
                if err.limit != "SRAM per PE" or r == counts[-1]:
                    raise

    def _build(self, n_steps: int):
        self.mapping = self._map(n_steps)
        self.routing = build_routing(self.mapping)
        self.plan = plan_traffic(self.mapping, self.routing, self.op_cycles)
        self.machine = Machine(self.mapping, self.routing, self.dt, np.float32,
                               self.readout_populations, self.payload_bits,
                               self.on_fault)  # fmt: skip
        self._plan_backward = self._backward_plan()
        for pe in self.machine.pes:  # the host loads weights, delays and initial values
            if pe.sim is None:
                continue
            for local, k in enumerate(pe.sn.projections):
                pe.sim.set_delays(local, self._delays[k][:, pe.start : pe.stop])
                pe.sim.set_weights(local, self._weights[k][:, pe.start : pe.stop])
        for pop, name, values in self._initial:
            self._set_initial(pop, name, values)
        if self._state is not None:
            self.set_state(self._state)
            self._state = None

    def _neuron_pes(self, pop):
        return self.machine.neuron_pes(pop)

    # --- weights, delays, state -----------------------------------------------------------------
    def get_weights(self, k):
        if self.machine is None:
            return self._weights[k].copy()
        post = self.network.projections[k].post
        w = np.zeros(self._weights[k].shape, np.float32)
        for pe in self._neuron_pes(post):
            if pe.replica == 0:
                w[:, pe.start : pe.stop] = pe.sim.get_weights(pe.sn.projections.index(k))
        return w

    def set_weights(self, k, weights, take=False):  # float32 on the PEs: always a copy
        mask = self.network.projections[k].mask
        with np.errstate(over="ignore"):
            w = np.where(mask, np.asarray(weights, float), 0).astype(np.float32)
        if not np.isfinite(w).all():
            largest = np.abs(np.asarray(weights, float)).max()
            raise ValueError(f"weights of projection {k} must be finite in float32 (|w| < "
                             f"3.4e38 nA), got one of {largest!r}")  # fmt: skip
        self._weights[k] = w
        if self.machine is not None:
            before = self.machine.fabric.stats["weight"].packets
            self.machine.broadcast(k, w)
            self._account("weight", self.machine.fabric.stats["weight"].packets - before)

    def get_delays(self, k):
        return self._delays[k].copy()

    def set_delays(self, k, delays):
        proj = self.network.projections[k]
        d = np.broadcast_to(np.asarray(delays, float), proj.mask.shape)
        self._delay_ticks(d[proj.mask])
        self._delays[k] = np.where(proj.mask, d, 0.0)
        if self.machine is not None:
            for pe in self._neuron_pes(proj.post):
                local = pe.sn.projections.index(k)
                pe.sim.set_delays(local, self._delays[k][:, pe.start : pe.stop])

    def reset(self):
        self.n, self._state = 0, None
        if self.machine is not None:
            self.machine.fabric.clear()
            for pe in self.machine.pes:
                if pe.sim is not None:
                    pe.sim.reset()
                pe.result = None

    def set_initial(self, pop, name, values):
        size = self.network.populations[pop].size
        values = np.broadcast_to(np.asarray(values, float), (size,)).copy()
        self._initial.append((pop, name, values))
        if self.machine is not None:
            self._set_initial(pop, name, values)

    def _set_initial(self, pop, name, values):
        for pe in self._neuron_pes(pop):
            pe.sim.set_initial(pe.sn.local, name, values[pe.start : pe.stop])

    def get_state(self) -> EngineState:
        if self.machine is None:  # the state a machine would start from
            if self._state is not None:
                return self._state
            probe = Spinnaker2Engine(
                self.network,
                self.disc,
                self.batch,
                n_steps=1,
                replicas=1,
                readout_populations=self.readout_populations,
            )
            for pop, name, values in self._initial:
                probe.set_initial(pop, name, values)
            return probe.get_state()
        pops, flight = {}, {}
        for i, pop in enumerate(self.network.populations):
            if pop.is_source:
                continue
            parts = {}
            for pe in self._neuron_pes(i):
                st = pe.sim.get_state()
                parts[pe.pe] = (pe, st.populations[pe.sn.local], st.in_flight[pe.sn.local])
            pops[i], flight[i] = self._assemble_state(i, parts)
        return EngineState(step=self.n, t=self.n * self.dt, populations=pops, in_flight=flight)

    def _assemble_state(self, i, parts):
        shape = (self.batch, self.network.populations[i].size)
        first = next(iter(parts.values()))[1]
        out = PopulationState(np.zeros(shape), {n: np.zeros(shape) for n in first.synaptic},
                              np.zeros(shape))  # fmt: skip
        fields = {"arrival": [], "sample": [], "target": [], "receptor": [], "weight": []}
        for pe, ps, fl in parts.values():
            rows, cols = pe.samples, slice(pe.start, pe.stop)
            out.v[rows, cols] = ps.v[: rows.size]
            out.refractory[rows, cols] = ps.refractory[: rows.size]
            for n, x in ps.synaptic.items():
                out.synaptic[n][rows, cols] = x[: rows.size]
            fields["arrival"].append(fl.arrival)
            fields["sample"].append(rows[fl.sample] if rows.size else fl.sample)
            fields["target"].append(fl.target + pe.start)
            fields["receptor"].append(fl.receptor)
            fields["weight"].append(fl.weight)
        return out, InFlight(**{k: np.concatenate(v) for k, v in fields.items()})

    def set_state(self, state: EngineState):
        self.n = int(state.step)
        if self.machine is None:
            self._state = state
            return
        for i, ps in state.populations.items():
            if i >= len(self.network.populations) or self.network.populations[i].is_source:
                continue
            fl = state.in_flight.get(i)
            for pe in self._neuron_pes(i):
                rows, cols = pe.samples, slice(pe.start, pe.stop)
                pad = pe.sim.batch - rows.size

                def cut(x, rows=rows, cols=cols, pad=pad):
                    x = np.asarray(x)[rows, cols]
                    return np.concatenate([x, np.zeros((pad, x.shape[1]))]) if pad else x

                local = PopulationState(cut(ps.v), {n: cut(x) for n, x in ps.synaptic.items()},
                                        cut(ps.refractory))  # fmt: skip
                flights = {}
                if fl is not None:
                    s, tg = np.asarray(fl.sample), np.asarray(fl.target)
                    sel = np.isin(s, rows) & (tg >= pe.start) & (tg < pe.stop)
                    flights[pe.sn.local] = InFlight(
                        np.asarray(fl.arrival)[sel], np.searchsorted(rows, s[sel]),
                        tg[sel] - pe.start, np.asarray(fl.receptor)[sel],
                        np.asarray(fl.weight)[sel],
                    )  # fmt: skip
                pe.sim.set_state(EngineState(state.step, state.t, {pe.sn.local: local}, flights))

    # --- running ---------------------------------------------------------------------------------
    def _check_sources(self, sources, t0, t1) -> dict:
        """Check the spike sources' trains; returns their ``sample_index`` arrays."""
        samples = {}
        for i, trains in sources.items():
            pop = self.network.populations[i]
            if trains.batch != self.batch or trains.size != pop.size:
                raise ValueError(
                    f"spikes for '{pop.label}' have batch {trains.batch} and size {trains.size}, "
                    f"expected {self.batch} and {pop.size}"
                )
            keep = (trains.times >= t0) & (trains.times < t1)
            tick = np.floor(trains.times[keep] / self.dt).astype(np.int64)
            samples[i] = sample_index(trains)
            code = (samples[i][keep] * pop.size + trains.neurons[keep]) * (tick.max(
                initial=0) + 1) + tick  # fmt: skip
            code.sort()
            if (code[1:] == code[:-1]).any():
                raise ValueError(
                    f"spike source '{pop.label}' has two spikes of one neuron within one time "
                    f"step of {self.dt} ms; a SpiNNaker2 source PE sends at most one per tick"
                )
        return samples

    def run(self, n_steps, sources=None, currents=None, record=None, keep_for_backward=False,
            readouts_only=()):  # fmt: skip
        """Forward program over ``n_steps`` ticks (see :class:`~.machine.Machine`).

        ``readouts_only`` is checked and otherwise ignored: the PEs integrate every tick, as
        the chip would, so the packet counts and time estimates are those of the whole run.
        """
        n_steps = int(n_steps)
        if n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps}")
        sources, currents, record = sources or {}, currents or {}, record or {}
        check_readouts_only(self.network, readouts_only, record)
        if self.machine is None:
            self._build(self.n + n_steps)
        t0, t1 = self.n * self.dt, (self.n + n_steps) * self.dt
        samples = self._check_sources(sources, t0, t1)
        m, fabric = self.machine, self.machine.fabric
        before = self._snapshot()
        results = {}
        for comp in self._components:
            k = comp[0]
            for pe in m.population(k):
                if pe.sim is None:
                    m.send_source(pe, sources.get(k), t0, t1, samples.get(k))
                else:
                    results[pe.pe] = m.run_pe(pe, n_steps, currents, record, keep_for_backward)
            fabric.end_phase("spike")
        for pe in m.pes:  # spikes of the run's last tick that reach no neuron PE
            fabric.queues[pe.pe].pop("spike", None)
        out = self._assemble_run(results, sources, samples, t0, n_steps, keep_for_backward)
        self.n += n_steps
        self._count_forward(out, n_steps, before)
        return out

    def _assemble_run(self, results, sources, samples, t0, n_steps, keep):
        pops = self.network.populations
        spikes, signals, readouts = {}, {}, {}
        t1 = t0 + n_steps * self.dt
        for i, pop in enumerate(pops):
            if pop.is_source:
                tr = sources.get(i)
                spikes[i] = (SpikeTrains.empty(self.batch, pop.size) if tr is None
                             else _window(tr, samples[i], t0, t1))  # fmt: skip
                continue
            parts = [(pe, results[pe.pe]) for pe in self._neuron_pes(i)]
            sample, neuron, times = [], [], []
            for pe, res in parts:
                own = res.spikes[pe.sn.local]
                sample.append(pe.samples[pe.own_samples] if pe.samples.size else pe.own_samples)
                neuron.append(own.neurons + pe.start)
                times.append(own.times)
            spikes[i] = SpikeTrains.from_arrays(
                np.concatenate(sample),
                np.concatenate(neuron),
                np.concatenate(times),
                self.batch,
                pop.size,
            )
            readouts[i] = self._gather(parts, lambda pe, res: res.readouts[pe.sn.local], 0)
            sig = self._gather(parts, lambda pe, res: res.signals.get(pe.sn.local, {}), 1,
                               n_steps)  # fmt: skip
            if sig:
                signals[i] = {k: v.astype(np.float32) for k, v in sig.items()}
        tape = {"results": results, "readouts": readouts} if keep else None
        return RunResult(t0, n_steps, spikes, signals, {}, tape)

    def _gather(self, parts, get, axis, n_steps=None):
        """Per-PE arrays ``(local batch, slice)`` (axis 0) or ``(steps, local batch, slice)``
        (axis 1) into ``(batch, size)`` / ``(steps, batch, size)``."""
        out = {}
        for pe, res in parts:
            for name, x in get(pe, res).items():
                if name not in out:
                    size = self.network.populations[pe.pop].size
                    shape = (self.batch, size) if axis == 0 else (n_steps, self.batch, size)
                    out[name] = np.zeros(shape, x.dtype)
                rows = pe.samples
                if axis == 0:
                    out[name][rows, pe.start : pe.stop] = x[: rows.size]
                else:
                    out[name][:, rows, pe.start : pe.stop] = x[:, : rows.size]
        return out

    def readouts(self, result: RunResult, pop: int, names) -> dict:
        """Readouts of a run kept for backward, read out of the PEs holding ``pop`` (cached in
        ``result.readouts`` for the names asked for)."""
        names = check_readouts(names)
        if result.tape is None or "readouts" not in result.tape:
            raise ValueError("readouts need a run of this engine made with keep_for_backward=True")
        have = result.tape["readouts"].get(pop, {})
        missing = [n for n in names if n not in have]
        if missing:
            raise ValueError(
                f"readouts {missing} of population {pop} were not computed in this run; pass "
                "readout_populations including it to the SpiNNaker2 model"
            )
        result.readouts.setdefault(pop, {}).update({n: have[n] for n in names})
        return {n: have[n] for n in names}

    # --- loss ---------------------------------------------------------------------------------
    def evaluate_loss(self, result, pop, loss, labels, duration):
        """Loss program: ``loss`` (the training core's :class:`Loss` object) evaluated by the
        PEs of population ``pop`` on their readouts and the labels the host sends them as
        packets (samples ``0..len(labels)-1`` are labelled, the rest is padding).

        The PEs keep ``dL/dreadout`` of their neurons, from which :meth:`backward` of this run
        starts (the ``readout_grads`` given there for ``pop`` are then not used).  A mapping
        without a label flow to ``pop`` (not a loss population, or not for training) has no
        loss program: the host evaluates ``loss`` on the readouts it reads.  Returns the
        loss's result assembled from the PEs' memories for the host: the batch mean, the
        per-sample values, predictions and ``dL/dreadout`` of the labelled samples.
        """
        if result.tape is None or "results" not in result.tape or result.t_start != 0:
            raise ValueError("the loss program needs a run of this engine from step 0 made with "
                             "keep_for_backward=True")  # fmt: skip
        labels = np.asarray(labels)
        if labels.ndim != 1 or not 1 <= labels.size <= self.batch:
            raise ValueError(f"labels must be 1-D with 1..{self.batch} entries, got shape "
                             f"{labels.shape}")  # fmt: skip
        names = tuple(loss.requires)
        if pop not in self.mapping.flow.loss_populations or not self.mapping.training:
            # no label flow to this population (an inference mapping): the host evaluates
            real = {k: v[: labels.size] for k, v in self.readouts(result, pop, names).items()}
            return loss.evaluate(real, labels, duration)
        self.readouts(result, pop, names)  # every name computed, or a clear error
        before = self._snapshot()
        self.machine.loss(pop, loss, labels, duration)
        result.tape["loss"] = pop
        result.tape["loss_delta"] = self._delta(before, ("label", "loss"))
        return self._assemble_loss(pop, names, labels.size)

    def _assemble_loss(self, pop, names, n):
        """The loss result the host reads for its ``n`` labelled samples: per sample from each
        replica's first output PE, ``dL/dreadout`` from every output PE's own neurons.  A
        sample no PE evaluated (its label was lost) has loss 0, prediction -1 and no
        gradient."""
        parts, grads = [], {name: np.zeros((n, self.network.populations[pop].size))
                            for name in names}  # fmt: skip
        for pe in self.machine.population(pop):
            if pe.loss is None:
                continue
            rows, res = pe.loss
            samples = pe.samples[rows]
            keep = samples < n
            if pe.start == 0:
                parts.append((samples[keep], res, keep))
            for name in names:
                grads[name][samples[keep], pe.start : pe.stop] = pe.loss_grads[name][rows[keep]]
        if not parts:
            raise ValueError("no output PE received a label")
        first = parts[0][1]
        per_sample, predictions = np.zeros(n), np.full(n, -1, first.predictions.dtype)
        readout = np.full((n, first.readout.shape[1]), np.nan, first.readout.dtype)
        correct = np.zeros(n, bool)
        for samples, res, keep in parts:
            per_sample[samples] = res.per_sample[keep]
            predictions[samples] = res.predictions[keep]
            readout[samples] = res.readout[keep]
            correct[samples] = res.correct[keep]
        return dataclasses.replace(first, loss=float(np.add.reduce(per_sample)) / n,
                                   per_sample=per_sample, readout_grads=grads,
                                   predictions=predictions, correct=correct,
                                   readout=readout)  # fmt: skip

    # --- update ----------------------------------------------------------------------------------
    def optimiser_step(self, k, optimiser, clip, gradients):
        """Update program for projection ``k``: each update PE applies ``clip`` and
        ``optimiser`` (the training core's objects) to its own weights with its own reduced
        gradient and PE-local moment buffers; the new weights are staged until
        :meth:`commit_weights`.

        The PEs' optimiser copies are loaded from ``optimiser`` (sliced to their columns) when
        it is a different object or has stepped elsewhere since they last ran; after the step
        its state (step count, moments) is written back from the PEs for the host (checks,
        checkpoints).  Returns ``(new weights, gradient used)`` assembled for the host's checks,
        or None when the update cannot run on the PEs and the caller must update on the host:
        ``gradients`` are not this engine's last backward pass's (e.g. reduced over ranks
        elsewhere), the loss does not reach the projection, or a gradient-norm clip would need
        the norm over several PEs and ``clip`` takes no ``norm``.
        """
        if gradients is not self._last_gradients or not self.mapping.flow.gradient[k]:
            return None
        pes = self.machine.update_pes(k)
        norms = [None] * len(pes)
        if getattr(getattr(clip, "__self__", None), "max_grad_norm", True) is None:
            clip = None  # the rule's clip without a limit: the identity
        if clip is not None and len(pes) > 1:
            if not _takes_norm(getattr(clip, "__func__", clip)):
                return None
            before = self.machine.fabric.stats["norm"].packets
            norms = self.machine.gradient_norm(k, pes)
            self._account("norm", self.machine.fabric.stats["norm"].packets - before)
        self._load_optimisers(k, optimiser, pes)
        weights = np.zeros(self.network.projections[k].mask.shape, np.float32)
        used = np.zeros(weights.shape)
        for pe, norm in zip(pes, norms, strict=True):
            w, g = self.machine.update_pe(pe, k, clip, norm)
            weights[:, pe.start : pe.stop], used[:, pe.start : pe.stop] = w, g
        self._store_optimiser(k, optimiser, pes)
        return weights, used

    def _load_optimisers(self, k, optimiser, pes):
        slots = len(getattr(optimiser, "slots", ()))
        if slots > self.mapping.optimizer_words:
            raise ValueError(f"optimiser {type(optimiser).__name__} keeps {slots} words per "
                             f"weight; the mapping reserved optimizer_words="
                             f"{self.mapping.optimizer_words} in the update PEs' SRAM")  # fmt: skip
        loaded = self._optimiser_of.get(k)
        if loaded is not None and loaded[0] is optimiser and loaded[1] == optimiser.step_count:
            return
        state = optimiser.state_dict()
        for pe in pes:
            own = copy.copy(optimiser)
            cols = slice(pe.start, pe.stop)
            own.load_state_dict(
                {
                    **state,
                    "state": {
                        key: {n: a[:, cols] for n, a in v.items()}
                        for key, v in state["state"].items()
                    },
                }
            )
            pe.optimisers[k] = own

    def _store_optimiser(self, k, optimiser, pes):
        """The host's copy of the optimiser state, read back from the update PEs' memories
        (their copies' moment arrays, concatenated over the columns)."""
        states = [pe.optimisers[k]._state for pe in pes]  # the PE's memory
        merged = {key: {n: np.concatenate([st[key][n] for st in states], axis=1)
                        for n in slots} for key, slots in states[0].items()}  # fmt: skip
        state = {"optimiser": type(optimiser).__name__, "state": merged,
                 "step_count": pes[0].optimisers[k].step_count}  # fmt: skip
        optimiser.load_state_dict(state, strict=False)  # same settings: the PEs' are copies
        self._optimiser_of[k] = (optimiser, optimiser.step_count)

    def commit_weights(self, k):
        """The update PEs of projection ``k`` load the weights :meth:`optimiser_step` staged and
        multicast them to the other replicas."""
        pes = self.machine.update_pes(k)
        for pe in pes:
            self._weights[k][:, pe.start : pe.stop] = pe.staged[k]
        before = self.machine.fabric.stats["weight"].packets
        self.machine.commit(k)
        self._account("weight", self.machine.fabric.stats["weight"].packets - before)

    # --- gradients -------------------------------------------------------------------------------
    def backward(
        self, result, readout_grads, extra_grads=None, adjoints=False, delays=True,
        source_times=True,
    ) -> Gradients:  # fmt: skip
        """Backward program, gradient reduction over the replicas; ``dL/dw`` read out of
        replica 0's gradient buffers (0 for projections that are not trained).  The PEs
        compute no delay gradients (``Gradients.delays`` is None, whatever ``delays``) and
        report no spike-time gradients (``source_times`` changes nothing)."""
        if adjoints:
            raise ValueError("the SpiNNaker2 model does not record adjoints on the grid")
        if result.tape is None or "results" not in result.tape:
            raise ValueError("backward needs a run of this engine made with keep_for_backward=True")
        if result.t_start != 0:
            raise ValueError("backward needs a run that starts at step 0 (after reset())")
        self.check_trainable()
        m, flow, net = self.machine, self.mapping.flow, self.network
        fabric = m.fabric
        before = self._snapshot()
        grads = [readout_grads, extra_grads]
        loss_pop = result.tape.get("loss")
        error_to, trained = self._plan_backward
        for comp in reversed(self._components):
            k = comp[0]
            if net.populations[k].is_source or not flow.backward[k]:
                continue
            for pe in self._neuron_pes(k):
                pe.result = result.tape["results"][pe.pe]
                m.backward_pe(pe, grads, error_to[k], own_loss=k == loss_pop)
            fabric.end_phase("error")
        m.reduce(trained)
        weights = [np.zeros(p.mask.shape) for p in net.projections]
        for k, ps in trained.items():
            for pe in self._neuron_pes(k):
                if pe.replica == 0:
                    for i in ps:
                        weights[i][:, pe.start : pe.stop] = pe.grads[i]
        self._count_backward(result, before)
        self._last_gradients = Gradients(weights, None, None)
        return self._last_gradients

    def _backward_plan(self):
        """What the backward pass's PEs do, fixed by the mapping: per population, the local
        sources of its PEs that error packets go back to, and the trained projections into
        it (populations with any)."""
        net, flow = self.network, self.mapping.flow
        error_to, trained = {}, {}
        for k in range(len(net.populations)):
            pes = self._neuron_pes(k)  # every PE of a population has the same sources
            error_to[k] = [
                local
                for local, q in enumerate(pes[0].sn.pre if pes else ())
                if any(flow.error[i] for i in net.incoming(k) if net.projections[i].pre == q)
            ]
            gradient = [i for i in net.incoming(k) if flow.gradient[i]]
            if gradient:
                trained[k] = gradient
        return error_to, trained

    # --- accounting ------------------------------------------------------------------------------
    def _events(self, spikes, t_start, T):
        """Raster index (count_traffic's convention, clipped to ``0..T``), sample and neuron of
        every spike of every population."""
        out = {}
        n0 = int(round(t_start / self.dt))
        for i, pop in enumerate(self.network.populations):
            tr = spikes[i]
            x = tr.times / self.dt - n0
            idx = np.floor(x) if pop.is_source else np.ceil(x) - 1
            neurons = np.asarray(tr.neurons, np.int64)
            out[i] = (np.clip(idx.astype(np.int64), 0, T), sample_index(tr), neurons)
        return out

    def _rasters(self, spikes, t_start, T):
        """Spike counts per (tick, sample, neuron) in count_traffic's convention."""
        out = {}
        for i, (idx, sample, neuron) in self._events(spikes, t_start, T).items():
            pop = self.network.populations[i]
            shape = (T + 1, self.batch, pop.size)
            flat = (idx * self.batch + sample) * pop.size + neuron
            r = np.bincount(flat, minlength=np.prod(shape)).reshape(shape)
            out[i] = r[:T] if not pop.is_source else r[: T + 1]
        return out

    def _snapshot(self):
        """The fabric's counts so far: per kind (packets, deliveries, hops) and the tallies."""
        out, tallies, deliveries, hops = {}, 0, 0, 0
        for kind, s in self.machine.fabric.stats.items():
            out[kind] = (s.packets, s.deliveries, s.hops)
            tallies, deliveries, hops = (tallies + s.tallies, deliveries + s.tally_deliveries,
                                         hops + s.tally_hops)  # fmt: skip
        out["tally"] = (tallies, deliveries, hops)
        return out

    def _delta(self, before, kinds):
        """What the fabric carried of ``kinds`` (and tallies) since ``before``."""
        now = self._snapshot()
        return {k: tuple(a - b for a, b in zip(now[k], before[k], strict=True))
                for k in (*kinds, "tally")}  # fmt: skip

    def _actual(self, traffic, delta):
        """Replace the estimated counts of the kinds in ``delta`` by the fabric's."""
        bits = int(self.hardware.key_bits) + self.payload_bits
        for kind, (packets, deliveries, hops) in delta.items():
            c = traffic.kinds[kind]
            c.bits_per_packet = bits
            c.packets, c.deliveries, c.hops = packets, deliveries, hops

    # Accounting is deferred: runs and backward passes log what happened, and the tallies are
    # counted (count_traffic) when they are read.
    def _count_forward(self, result, n_steps, before):
        entry = ["forward", result.spikes, result.t_start, n_steps, self._delta(before, ("spike",))]
        entry.append(result.tape is not None)
        self._log.append(entry)
        if result.tape is not None:
            result.tape["entry"] = entry
        if len(self._log) > LOG_LIMIT:  # bounded memory over long runs
            self._flush()

    def _count_backward(self, result, before):
        delta = self._delta(before, ("error", "gradient"))
        for kind, counts in result.tape.get("loss_delta", {}).items():  # the loss program's
            old = delta.get(kind, (0, 0, 0))
            delta[kind] = tuple(a + b for a, b in zip(old, counts, strict=True))
        self._log.append(["backward", result.tape["entry"], result.n_steps, delta])
        if len(self._log) > LOG_LIMIT:  # bounded memory over long trainings
            self._flush()

    def _account(self, kind, packets):
        """Log ``packets`` of ``kind`` sent by an update (weights, norms) for the tallies."""
        if not packets:
            return
        stats = self.machine.fabric.stats[kind]
        per = stats.hops / max(stats.packets, 1), stats.deliveries / max(stats.packets, 1)
        self._log.append(["update", kind, packets, per])

    def _flush(self):
        log, self._log = self._log, []
        for entry in log:
            if entry[0] == "forward":
                entry.append(self._flush_forward(*entry[1:6]))
            else:
                getattr(self, f"_flush_{entry[0]}")(*entry[1:])

    def _flush_forward(self, spikes, t_start, n_steps, delta, keep):
        start = int(round(t_start / self.dt))
        counts = event_counts(self.plan, self._events(spikes, t_start, n_steps), n_steps)
        forward = count_traffic(self.plan, None, start_step=start, n_ticks=n_steps,
                                programs=("forward",), counts=counts,
                                batch=self.batch)  # fmt: skip
        self._actual(forward, delta)
        self._traffic = forward if self._traffic is None else self._traffic + forward
        return (forward, (spikes, t_start, n_steps), counts) if keep else None

    def _flush_backward(self, forward_entry, n_steps, delta):
        forward, run, counts = forward_entry[6]  # counted: it was logged before
        training = count_traffic(
            self.plan,
            None,
            n_ticks=n_steps,
            programs=("loss", "backward", "update"),
            counts=counts,
            batch=self.batch,
        )
        self._actual(training, delta)
        bits = training.kinds["weight"].bits_per_packet
        training.kinds["weight"] = KindCount(bits_per_packet=bits)  # counted at the broadcast
        self._traffic = self._traffic + training
        training = forward + training
        tally = self._training_traffic
        self._training_traffic = training if tally is None else tally + training
        self._last_batch = run  # its rasters are built when a report needs them

    def _flush_update(self, kind, packets, per):
        """Weight or norm packets of an update, added to the tallies of the last trained
        batch."""
        for traffic in (self._traffic, self._training_traffic):
            if traffic is not None and packets:
                c = traffic.kinds[kind]
                c.packets += packets
                c.hops += packets * per[0]
                c.deliveries += packets * per[1]

    @property
    def traffic(self) -> Traffic | None:
        """Packets and work of every run so far (see :meth:`counted`)."""
        self._flush()
        return self._traffic

    @traffic.setter
    def traffic(self, value):
        self._flush()
        self._traffic = value

    @property
    def training_traffic(self) -> Traffic | None:
        """Packets and work of the trained batches (forward run, loss, backward, update)."""
        self._flush()
        return self._training_traffic

    @training_traffic.setter
    def training_traffic(self, value):
        self._flush()
        self._training_traffic = value

    def reset_traffic(self):
        """Forget the packets counted so far (the mapping stays)."""
        self._log = []
        self._traffic = self._training_traffic = None
        self._last_batch = None

    # --- results ---------------------------------------------------------------------------------
    def counted(self, scope: str = "auto") -> Traffic | None:
        """The tally results are quoted from: ``"training"`` (trained batches), ``"all"`` (every
        run) or ``"auto"`` (training once a batch has been trained, else all)."""
        if scope not in ("auto", "training", "all"):
            raise ValueError(f"scope must be 'auto', 'training' or 'all', got {scope!r}")
        trained = self.training_traffic is not None and self.training_traffic.samples > 0
        if scope == "training" or (scope == "auto" and trained):
            return self.training_traffic
        return self.traffic

    def cost(self, scope: str = "auto") -> CostEstimate:
        """Time and energy per sample from the traffic counted so far (see :meth:`counted`)."""
        traffic = self.counted(scope)
        if traffic is None or traffic.samples == 0:
            raise RuntimeError(
                f"no sample has been simulated from step 0 yet (scope {scope!r}): nothing to cost"
            )
        return estimate_cost(self.mapping, traffic, self.coefficients, self.op_cycles)

    def report(self, scope: str = "auto") -> Report:
        """Mapping report, with traffic and cost once samples have been simulated."""
        if self.mapping is None:
            raise RuntimeError("the network is mapped at the first run (or give n_steps)")
        traffic = self.counted(scope)
        counted = traffic is not None and traffic.samples > 0
        table = None
        if counted and traffic is self.training_traffic and self._last_batch is not None:
            spikes, t_start, n = self._last_batch
            rasters = self._rasters(spikes, t_start, n)
            table = sensitivity(self.mapping, self.routing, rasters, n, self.coefficients,
                                self.op_cycles)  # fmt: skip
        return build_report(
            self.mapping,
            self.routing,
            traffic if counted else None,
            self.cost(scope) if counted else None,
            self.op_cycles,
            scope="training" if counted and traffic is self.training_traffic else "all",
            sensitivity=table,
        )


def _window(trains: SpikeTrains, sample, t0, t1) -> SpikeTrains:
    """A copy of the spikes of ``trains`` in ``[t0, t1)`` (``sample``: its sample_index), as
    :meth:`SpikeTrains.from_arrays` builds it."""
    keep = (trains.times >= t0) & (trains.times < t1)
    times, neurons, offsets = trains.times, trains.neurons, trains.offsets
    if keep.all() and (times.dtype, neurons.dtype, offsets.dtype) == _TRAIN_DTYPES:
        return SpikeTrains(times.copy(), neurons.copy(), offsets.copy(), trains.size)
    return SpikeTrains.from_arrays(sample[keep], neurons[keep], times[keep], trains.batch,
                                   trains.size)  # fmt: skip


#: dtypes of times, neurons and offsets of the trains SpikeTrains.from_arrays builds
_TRAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.int64))


@functools.lru_cache(maxsize=32)
def _takes_norm(function) -> bool:
    """Whether a clip function accepts ``norm`` (the norm of the whole gradient)."""
    try:
        return "norm" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


#: The name this model had before it became an engine (kept for existing scripts).
Spinnaker2Simulation = Spinnaker2Engine
