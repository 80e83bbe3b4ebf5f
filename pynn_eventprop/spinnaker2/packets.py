"""Packet and work accounting of the four EventProp programs, by array arithmetic.

Everything is derived from the actual spike events of a batch (boolean rasters), never from one
Python object per packet.  Who sends what, when (``R`` replicas, sample ``b`` on replica
``b // local_batch``; tick ``n`` computes grid step ``n``, ``n = 1 .. T``):

forward program
    A neuron spiking at step ``n`` (a source emitting at step ``n``; step-0 emissions are
    handled in tick 1) sends **one spike packet**: key = its own key, payload = its spike phase
    as float32 (``spike_payload=True``; ``False`` counts key-only packets on the grid).  The
    packet is multicast to every PE of its replica holding a postsynaptic slice of *any* neuron
    of its slice (the key block's routing tree).  Populations without outgoing projections send
    nothing.
loss program (one tick)
    Output PEs compute the loss and its gradient from the readouts they hold; the labels
    arrive from the host (one ``label`` packet per sample, multicast to the ``S`` output slices
    of its replica, plus one per replica with the batch's number of labelled samples), routed
    from the host's chip through the tables.  An output population split over ``S > 1`` slices
    exchanges its readouts: one ``loss`` packet per output neuron, sample and readout,
    multicast to the ``S - 1`` other slices.
backward program (ticks ``T .. 1``)
    For each presynaptic spike of neuron ``j`` at step ``m`` on an error-carrying projection of
    delay ``d`` with ``m + d <= T``, each postsynaptic PE holding a target of ``j`` computes its
    partial ``sum_i W_ji ln(a_i) a_i**phi_j lambda_I,i[m + d]`` and sends **one error packet**
    (key = ``j``'s error key, payload = the partial) in tick ``m + d``; the PE holding ``j``
    adds the partials.  Connections of one PE to ``j`` with equal delay share a packet.  The
    *dense* alternative sends every adjoint value every step: one packet per postsynaptic
    neuron, receptor and step.
weight-update program (per batch)
    Gradients are summed over the replicas along a binomial tree (``R - 1`` transfers of the
    slice's trainable weights, one ``gradient`` packet per float32 word), replica 0 applies the
    update and multicasts the new weights (one ``weight`` packet per word, delivered to
    ``R - 1`` PEs).

Work per PE and tick is counted in operations and converted to cycles with
:class:`~pynn_eventprop.spinnaker2.hardware.OperationCycles`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .hardware import OperationCycles
from .mapping import Mapping
from .routing import HOST, RoutingTables, reduction_children

PROGRAM_OF = {
    "spike": "forward",
    "loss": "loss",
    "label": "loss",
    "error": "backward",
    "gradient": "update",
    "weight": "update",
    "norm": "update",
    "tally": "all",  # end-of-phase packet counts (the model's protocol check)
}


def _padded(op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``op(a, b)`` for 1-D arrays of possibly different lengths, the shorter zero-padded."""
    if len(a) == len(b):  # the common case: batches of equal length
        return op(a, b)
    n = max(len(a), len(b))
    return op(np.pad(a, (0, n - len(a))), np.pad(b, (0, n - len(b))))


@dataclass
class KindCount:
    """Packets of one kind in a batch.

    Attributes
    ----------
    packets : float
        Packets sent (a multicast packet counts once).
    deliveries : float
        Packets received by PEs (a multicast packet counts once per destination).
    hops : float
        Chip-router traversals summed over packets.
    bits_per_packet : int
        Key plus payload bits.
    per_step : float array (T,) or None
        Packets sent in each tick (steps 1..T) for the forward and backward programs.
    """

    packets: float = 0.0
    deliveries: float = 0.0
    hops: float = 0.0
    bits_per_packet: int = 0
    per_step: np.ndarray | None = None

    def __add__(self, other: KindCount) -> KindCount:
        if self.per_step is None or other.per_step is None:
            steps = self.per_step if other.per_step is None else other.per_step
        else:
            steps = _padded(np.add, self.per_step, other.per_step)
        return KindCount(
            self.packets + other.packets,
            self.deliveries + other.deliveries,
            self.hops + other.hops,
            max(self.bits_per_packet, other.bits_per_packet),
            steps,
        )


@dataclass
class Traffic:
    """Packets and work of one or more batches (add Traffic objects to accumulate).

    Attributes
    ----------
    samples, batches : int
    kinds : dict kind -> KindCount
        Kinds: ``spike``, ``label``, ``loss``, ``error``, ``gradient``, ``weight``.
    dense_error_packets : float
        Packets the dense alternative (every adjoint value every step) would send.
    operations : dict name -> float
        Operation totals (synaptic events, neuron updates, adjoint updates, ...).
    peak_cycles : dict program -> float array (n_pes,)
        Each PE's largest work in one tick (forward, backward, loss) or one batch (update),
        in cycles, over the accumulated batches.
    busiest_per_tick : dict program -> float array (T,)
        Forward and backward: the busiest PE's cycles in each tick (maximum over batches).
    total_cycles : dict program -> float
        Cycles summed over PEs, ticks and batches (dynamic energy).
    time_ms : dict program -> dict mode -> float array (n_clock_levels,)
        Wall time summed over batches.  ``realtime``: each tick lasts the timer tick, or longer
        when the busiest PE overruns it; ``compute``: each tick lasts exactly the busiest PE's
        work (as fast as possible).  The update program is not tick-bound (both modes equal).
    overrun_ticks : dict program -> int array (n_clock_levels,)
        Ticks whose busiest PE needed more than one timer tick, summed over batches.
    max_spikes_per_neuron : int
        Most spikes of one neuron in one sample among populations whose spikes are kept in
        bounded records (source schedules, the backward pass's spike log).
    spike_log_capacity : int
    dma_bytes : float
        Input spike records (8 bytes per source spike) loaded into source PEs.
    """

    samples: int
    batches: int
    kinds: dict
    dense_error_packets: float
    operations: dict
    peak_cycles: dict
    busiest_per_tick: dict
    total_cycles: dict
    time_ms: dict
    overrun_ticks: dict
    max_spikes_per_neuron: int
    spike_log_capacity: int
    dma_bytes: float = 0.0

    @property
    def spike_log_overflow(self) -> bool:
        return self.max_spikes_per_neuron > self.spike_log_capacity

    def per_sample(self, kind: str, what: str = "packets") -> float:
        """``packets``, ``deliveries`` or ``hops`` of ``kind`` per sample."""
        return getattr(self.kinds[kind], what) / self.samples

    @property
    def error_saving(self) -> float:
        """Dense-alternative error packets / event-based error packets (inf without errors)."""
        event = self.kinds["error"].packets
        return self.dense_error_packets / event if event else float("inf")

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            samples=self.samples + other.samples,
            batches=self.batches + other.batches,
            kinds=_sums(self.kinds, other.kinds),
            dense_error_packets=self.dense_error_packets + other.dense_error_packets,
            operations=_sums(self.operations, other.operations),
            peak_cycles={
                k: np.maximum(v, other.peak_cycles[k]) for k, v in self.peak_cycles.items()
            },
            busiest_per_tick={
                k: _padded(np.maximum, v, other.busiest_per_tick[k])
                for k, v in self.busiest_per_tick.items()
            },
            total_cycles=_sums(self.total_cycles, other.total_cycles),
            time_ms={p: _sums(modes, other.time_ms[p]) for p, modes in self.time_ms.items()},
            overrun_ticks=_sums(self.overrun_ticks, other.overrun_ticks),
            max_spikes_per_neuron=max(self.max_spikes_per_neuron, other.max_spikes_per_neuron),
            spike_log_capacity=self.spike_log_capacity,
            dma_bytes=self.dma_bytes + other.dma_bytes,
        )


def _sums(a: dict, b: dict) -> dict:
    """``{k: a[k] + b[k]}`` over the keys of ``a``."""
    return {k: v + b[k] for k, v in a.items()}


def _idle_timing(hw) -> tuple[dict, np.ndarray]:
    """:func:`tick_timing` of a program that does not run: no time, no overrun."""
    n = len(hw.clock_levels_mhz)
    return {"realtime": np.zeros(n), "compute": np.zeros(n)}, np.zeros(n, np.int64)


def tick_timing(cycles_per_tick: np.ndarray, hw) -> tuple[dict, np.ndarray]:
    """Wall time of a tick-driven program from its per-tick, per-PE work.

    Parameters
    ----------
    cycles_per_tick : float array (n_ticks, n_pes)
    hw : Spinnaker2Hardware (clock levels in MHz, timer tick in ms)

    Returns
    -------
    time_ms : dict ``{"realtime", "compute"}`` -> array (n_clock_levels,)
        ``realtime = sum_n max(tick, c_n / f)``, ``compute = sum_n c_n / f`` with ``c_n`` the
        busiest PE's cycles in tick ``n`` and ``f`` the clock in cycles per ms.
    overruns : int array (n_clock_levels,)
        Ticks with ``c_n / f > tick``.
    """
    busiest = cycles_per_tick.max(axis=1, initial=0.0)
    f = np.asarray(hw.clock_levels_mhz, float)[:, None] * 1e3  # cycles per ms
    work_ms = busiest[None, :] / f
    tick = float(hw.timer_tick_ms)
    return (
        {
            "realtime": np.maximum(work_ms, tick).sum(axis=1),
            "compute": work_ms.sum(axis=1),
        },
        (work_ms > tick).sum(axis=1),
    )


@dataclass
class TrafficPlan:
    """Static part of the accounting: hop counts and connection tables of a mapping.

    Build with :func:`plan_traffic`.  ``tables`` holds the per-population and per-projection
    arrays the counter multiplies spike counts with; ``static`` caches, per batch size, the work
    and packets that do not depend on spikes (neuron and adjoint updates, the loss and
    weight-update programs).
    """

    mapping: Mapping
    routing: RoutingTables
    cycles: OperationCycles
    spike_hops: dict  # pop -> (R, S) hops of the spike packet of each PE
    spike_dests: dict  # pop -> (R, S) destination PEs of each PE's spike packets
    error_hops: dict  # (pre pop, post pop) -> (R, S_pre, S_post) hops post PE -> pre PE
    loss_hops: dict  # pop -> (R, S) hops of loss packets
    reduction_hops: dict  # pop -> (R, S) hops from each replica's PE to its reduction parent
    weight_hops: dict  # pop -> (S,) hops of the weight multicast
    label_hops: dict = field(default_factory=dict)  # pop -> (R,) hops host -> output PEs
    tables: dict = field(default_factory=dict, repr=False)
    static: dict = field(default_factory=dict, repr=False)


def _hops(routing: RoutingTables, kind: str, owner: int, source: int) -> int:
    key = routing.keyspace.key(kind, owner, 0)
    return routing.route(key, source)[1]


def plan_traffic(
    mapping: Mapping, routing: RoutingTables, cycles: OperationCycles | None = None
) -> TrafficPlan:
    """Route one representative packet of every flow, keep the hop counts and the tables."""
    net, flow, R = mapping.network, mapping.flow, mapping.replicas
    cycles = cycles if cycles is not None else OperationCycles()
    spike_hops, spike_dests, error_hops, loss_hops = {}, {}, {}, {}
    reduction_hops, weight_hops, label_hops = {}, {}, {}
    by_owner = {(f.kind, f.owner): f for f in routing.flows}
    for k in range(len(net.populations)):
        pes = mapping.population_pes(k)
        if net.outgoing(k):
            h, n = np.zeros(pes.shape, np.int64), np.zeros(pes.shape, np.int64)
            for (r, s), pe in np.ndenumerate(pes):
                f = by_owner.get(("spike", int(pe)))
                if f is not None:
                    d, h[r, s] = routing.route(routing.keyspace.key("spike", f.owner, 0), f.owner)
                    n[r, s] = len(d)
            spike_hops[k], spike_dests[k] = h, n
        if ("label", int(pes[0, 0])) in by_owner:
            label_hops[k] = np.array([_hops(routing, "label", int(pe), HOST) for pe in pes[:, 0]])
        if ("loss", int(pes[0, 0])) in by_owner:
            loss_hops[k] = np.vectorize(lambda pe: _hops(routing, "loss", int(pe), int(pe)))(pes)
        if R > 1 and any(flow.gradient[i] for i in net.incoming(k)):
            red = np.zeros(pes.shape, np.int64)
            for r in range(R):
                for child in reduction_children(r, R):
                    for s in range(pes.shape[1]):
                        red[child, s] = _hops(
                            routing, "gradient", int(pes[r, s]), int(pes[child, s])
                        )
            reduction_hops[k] = red
            weight_hops[k] = np.array(
                [
                    _hops(routing, "weight", int(pes[0, s]), int(pes[0, s]))
                    for s in range(pes.shape[1])
                ]
            )
    for i, p in enumerate(net.projections):
        if not flow.error[i] or (p.pre, p.post) in error_hops:
            continue
        pre_pes, post_pes = mapping.population_pes(p.pre), mapping.population_pes(p.post)
        h = np.zeros((R, pre_pes.shape[1], post_pes.shape[1]), np.int64)
        for r in range(R):
            for a, owner in enumerate(pre_pes[r]):
                f = by_owner.get(("error", int(owner)))  # None: slice without targets
                for b, src in enumerate(post_pes[r]):
                    if f is not None and int(src) in f.sources:
                        h[r, a, b] = _hops(routing, "error", int(owner), int(src))
        error_hops[(p.pre, p.post)] = h
    plan = TrafficPlan(
        mapping,
        routing,
        cycles,
        spike_hops,
        spike_dests,
        error_hops,
        loss_hops,
        reduction_hops,
        weight_hops,
        label_hops,
    )
    plan.tables = _tables(plan)
    return plan


def _tables(plan: TrafficPlan) -> dict:
    """Connection tables as float arrays, ready to multiply spike counts with."""
    m = plan.mapping
    net, flow = m.network, m.flow
    n_pops = len(net.populations)
    t = {
        "starts": [m.bounds(k)[:-1] for k in range(n_pops)],
        "sizes": [np.diff(m.bounds(k)) for k in range(n_pops)],
        "slice_of": [_slice_matrix(m.bounds(k)) for k in range(n_pops)],  # (size, S) one-hot
        "pes": [m.population_pes(k).ravel() for k in range(n_pops)],
        "cols": [_columns(m.population_pes(k).ravel()) for k in range(n_pops)],
        "logged": [_logged(m, k) for k in range(n_pops)],
        "synapses": [],  # (pre, post, connection counts (n_pre, S_post))
        "receive": [],  # (pre, post, key-block reaches slice (S_pre, S_post))
        "backward": [],  # (pre, post, delay, counts, cycles per synapse) of that delay
        "errors": [],  # (pre, post, delay, targets (n_pre, S_post), targets per neuron, hops)
    }
    blocks, targets = {}, {}
    cyc = plan.cycles
    for i, p in enumerate(net.projections):
        counts = m.connection_counts(i)
        t["synapses"].append((p.pre, p.post, counts.astype(float)))
        reach = np.add.reduceat(counts, t["starts"][p.pre], axis=0) > 0
        blocks[(p.pre, p.post)] = blocks.get((p.pre, p.post), False) | reach
        if not (flow.error[i] or flow.gradient[i]):
            continue
        for d in m.delays(i):
            cd = m.connection_counts(i, d)
            per_syn = cyc.gradient_synapse * flow.gradient[i] + cyc.backward_synapse * flow.error[i]
            t["backward"].append((p.pre, p.post, d, cd.astype(float), float(per_syn)))
            if flow.error[i]:
                key = (p.pre, p.post, d)
                targets[key] = targets.get(key, False) | (cd > 0)
    t["receive"] = [(q, k, b.astype(float)) for (q, k), b in blocks.items()]
    t["sending"] = {k: dests > 0 for k, dests in plan.spike_dests.items()}  # (R, S)
    for (q, k, d), tg in targets.items():
        tf = tg.astype(float)
        t["errors"].append((q, k, d, tf, tf.sum(axis=1), plan.error_hops[(q, k)]))
    return t


def _columns(pes: np.ndarray):
    """``pes`` as an index of the per-PE axis: a slice when they are consecutive (cheaper to
    add into than a list of indices), else the array."""
    if pes.size and np.array_equal(pes, np.arange(pes[0], pes[0] + pes.size)):
        return slice(int(pes[0]), int(pes[0]) + pes.size)
    return pes


def _slice_matrix(bounds) -> np.ndarray:
    """``M[j, s] = 1`` when neuron ``j`` lies in slice ``s``: ``x @ M`` sums over each slice
    (a matrix product is much faster than ``np.add.reduceat`` along the last axis)."""
    bounds = np.asarray(bounds)
    neurons = np.arange(bounds[-1])
    return ((neurons[:, None] >= bounds[None, :-1]) & (neurons[:, None] < bounds[None, 1:])).astype(
        float
    )


PROGRAMS = ("forward", "loss", "backward", "update")
OPERATIONS = (
    "neuron_updates",
    "synaptic_events",
    "adjoint_updates",
    "backward_synapses",
    "gradient_synapses",
    "loss_neurons",
    "weight_updates",
)


def spike_counts(plan: TrafficPlan, spikes: dict, n_ticks: int) -> tuple[dict, int]:
    """Spike counts per (tick, replica, neuron) of every population, and the most spikes of
    one neuron in one sample among the logged populations.

    The result can be passed to :func:`count_traffic` (``counts=``) to count several programs
    of the same rasters without recomputing it.

    Source raster index ``k`` is emission step ``start_step + k``; emissions at ``start_step``
    are sent in the window's first tick (there is no tick 0; a run split into windows sends
    the boundary step's source spikes one tick later than a whole run).  Neuron raster index
    ``k`` is step ``start_step + 1 + k`` (the engine's convention).
    """
    m = plan.mapping
    net, R, B = m.network, m.replicas, m.local_batch
    Y, most = {}, 0
    for k, pop in enumerate(net.populations):
        if k not in spikes:
            raise ValueError(f"spikes missing for population {k} ('{pop.label}')")
        s = np.asarray(spikes[k])
        if s.ndim != 3 or s.shape[2] != pop.size or s.shape[1] > R * B:
            raise ValueError(
                f"spikes of population {k} ('{pop.label}') must have shape (steps, batch <= "
                f"{R * B}, {pop.size}), got {s.shape}"
            )
        shift = 0 if pop.is_source else 1
        s = s[: n_ticks + 1 - shift]
        if s.shape[1] < R * B:
            s = np.concatenate([s, np.zeros((s.shape[0], R * B - s.shape[1], pop.size), bool)], 1)
        y = np.zeros((n_ticks + 1, R, pop.size))
        y[shift : shift + s.shape[0]] = (
            s.reshape(s.shape[0], R, pop.size)
            if B == 1
            else s.reshape(s.shape[0], R, B, pop.size).sum(axis=2)
        )
        y[1] += y[0]
        Y[k] = y[1:]
        if plan.tables["logged"][k]:
            most = max(most, int(s.sum(axis=0).max(initial=0)))
    return Y, most


def event_counts(plan: TrafficPlan, events: dict, n_ticks: int) -> tuple[dict, int]:
    """:func:`spike_counts` of the rasters that spike events fill, without building them.

    ``events[k] = (index, sample, neuron)``: int arrays with every spike's raster index (in
    :func:`spike_counts`' convention; indices past the raster's ``n_ticks + 1`` rows for
    sources, ``n_ticks`` for neurons, are not counted), its sample in the batch and its neuron.
    The counts are integers, so the result equals that of :func:`spike_counts` exactly.
    """
    m = plan.mapping
    net, R, B = m.network, m.replicas, m.local_batch
    Y, most = {}, 0
    for k, pop in enumerate(net.populations):
        index, sample, neuron = events[k]
        shift = 0 if pop.is_source else 1
        keep = index < n_ticks + 1 - shift
        if not keep.all():
            index, sample, neuron = index[keep], sample[keep], neuron[keep]
        flat = ((index + shift) * R + sample // B) * pop.size + neuron
        y = np.bincount(flat, minlength=(n_ticks + 1) * R * pop.size).astype(float)
        y = y.reshape(n_ticks + 1, R, pop.size)
        y[1] += y[0]
        Y[k] = y[1:]
        if plan.tables["logged"][k] and sample.size:
            most = max(most, int(np.bincount(sample * pop.size + neuron).max()))
    return Y, most


def _static(plan: TrafficPlan, batch: int) -> dict:
    """Spike-independent work and packets of a batch of ``batch`` samples (cached)."""
    if batch in plan.static:
        return plan.static[batch]
    m, cyc, t = plan.mapping, plan.cycles, plan.tables
    net, flow, R = m.network, m.flow, m.replicas
    samples_r = np.bincount(np.arange(batch) // m.local_batch, minlength=R).astype(float)
    st = {
        "forward": np.zeros(m.n_pes),
        "backward": np.zeros(m.n_pes),
        "loss": np.zeros(m.n_pes),
        "update": np.zeros(m.n_pes),
        "ops_per_tick": dict.fromkeys(OPERATIONS, 0.0),
        "ops": dict.fromkeys(OPERATIONS, 0.0),
        "kinds": {},
        "dense_per_tick": 0.0,
        "critical": 0.0,
    }
    for k, pop in enumerate(net.populations):
        work = samples_r[:, None] * t["sizes"][k][None, :]  # neuron-steps per tick (R, S)
        st["forward"][t["pes"][k]] += (
            work * (cyc.source_update if pop.is_source else cyc.neuron_update)
        ).ravel()
        if not pop.is_source:
            st["ops_per_tick"]["neuron_updates"] += work.sum()
        if flow.backward[k]:
            st["backward"][t["pes"][k]] += (work * cyc.adjoint_update).ravel()
            st["ops_per_tick"]["adjoint_updates"] += work.sum()
        receptors = {net.projections[i].receptor for i in net.incoming(k) if flow.error[i]}
        st["dense_per_tick"] += len(receptors) * pop.size * batch
    kinds = {kind: KindCount() for kind in ("label", "loss", "gradient", "weight")}
    for k in flow.loss_populations if m.training else ():
        work = samples_r[:, None] * t["sizes"][k][None, :]
        S = work.shape[1]
        st["ops"]["loss_neurons"] += work.sum()
        st["loss"][t["pes"][k]] += (work * cyc.loss_neuron).ravel()
        labels = samples_r + 1  # per replica: its samples' labels and the batch's count
        kinds["label"].packets += labels.sum()
        kinds["label"].deliveries += labels.sum() * S
        kinds["label"].hops += (labels * plan.label_hops.get(k, 0)).sum()
        st["loss"][t["pes"][k]] += np.repeat(labels * cyc.error_receive, S)
        if k in plan.loss_hops:
            kinds["loss"].packets += work.sum()
            kinds["loss"].deliveries += work.sum() * (S - 1)
            kinds["loss"].hops += (work * plan.loss_hops[k]).sum()
            st["loss"][t["pes"][k]] += (
                work * (cyc.packet_send + (S - 1) * cyc.error_receive)
            ).ravel()
    _update(plan, st, kinds)
    st["kinds"] = kinds
    plan.static[batch] = st
    return st


def count_traffic(
    plan: TrafficPlan,
    spikes: dict,
    *,
    start_step: int = 0,
    n_ticks: int | None = None,
    programs=None,
    spike_payload: bool = True,
    counts: tuple[dict, int] | None = None,
    batch: int | None = None,
) -> Traffic:
    """Count the packets and per-PE work of one batch from its spike rasters.

    Parameters
    ----------
    plan : TrafficPlan
    spikes : dict population index -> bool array ``(steps, batch, size)``
        Spikes of every population (``batch <= replicas * local_batch``) in the engine's
        convention: source index ``k`` is emission step ``start_step + k``, neuron index ``k``
        is step ``start_step + 1 + k``.
    start_step : int
        Grid step before the window (0 for a whole sample).
    n_ticks : int, optional
        Ticks in the window; default the mapping's steps per sample.
    programs : iterable of str, optional
        Programs to count among ``forward, loss, backward, update``; default all four for a
        training mapping, ``forward`` otherwise.  ``loss``, ``backward`` and ``update`` need
        the whole sample (``start_step == 0``) within the mapping's history length.
    spike_payload : bool
        Forward spike packets carry the spike phase as a 32-bit payload (default) or are
        key-only (grid timing; for comparison).
    counts : optional
        :func:`spike_counts` of the same ``spikes`` and ``n_ticks`` (computed when omitted), or
        :func:`event_counts` of the spike events; with ``counts`` and ``batch`` given,
        ``spikes`` may be None.
    batch : int, optional
        Samples in the batch; default ``spikes``' second axis.

    Raises
    ------
    ValueError
        When a loss, backward or update program is asked for a window not starting at step 0.
    """
    m = plan.mapping
    n_ticks = m.n_steps if n_ticks is None else int(n_ticks)
    if programs is None:
        programs = PROGRAMS if m.training else ("forward",)
    programs = tuple(programs)
    unknown = sorted(set(programs) - set(PROGRAMS))
    if unknown:
        raise ValueError(f"programs must be among {PROGRAMS}, got {unknown}")
    training = [p for p in programs if p != "forward"]
    if training and not m.training:
        raise ValueError(f"programs {training} need a mapping built with training=True")
    if training and start_step != 0:
        raise ValueError(
            f"programs {training} need the whole sample from step 0, got start_step {start_step}"
        )
    hw = m.hardware
    if batch is None:
        batch = next(iter(spikes.values())).shape[1]
    st = _static(plan, batch)
    Y, most = spike_counts(plan, spikes, n_ticks) if counts is None else counts
    kb, pb = int(hw.key_bits), int(hw.payload_bits)
    kinds = {k: KindCount(bits_per_packet=kb + pb) for k in PROGRAM_OF}
    kinds["spike"].bits_per_packet = kb + (pb if spike_payload else 0)
    for kind in ("spike", "error"):
        kinds[kind].per_step = np.zeros(n_ticks)
    cycles = {
        "forward": np.zeros((n_ticks, m.n_pes)),
        "backward": np.zeros((n_ticks, m.n_pes)),
        "loss": np.zeros((1, m.n_pes)),
        "update": np.zeros(m.n_pes),
    }
    ops = dict.fromkeys(OPERATIONS, 0.0)
    dense, critical = 0.0, 0.0
    if "forward" in programs:
        _forward(plan, Y, st, cycles["forward"], kinds["spike"], ops)
    if "loss" in programs:
        cycles["loss"][0] = st["loss"]
        ops["loss_neurons"] += st["ops"]["loss_neurons"]
        for kind in ("label", "loss"):
            kinds[kind] = kinds[kind] + st["kinds"][kind]
    if "backward" in programs:
        _backward(plan, Y, st, cycles["backward"], kinds["error"], ops)
        dense = st["dense_per_tick"] * n_ticks
    if "update" in programs:
        cycles["update"] = st["update"].copy()
        ops["weight_updates"] += st["ops"]["weight_updates"]
        critical = st["critical"]
        for kind in ("gradient", "weight"):
            kinds[kind] = kinds[kind] + st["kinds"][kind]
    first = "forward" in programs and start_step == 0
    dma = sum(Y[k].sum() for k, p in enumerate(m.network.populations) if p.is_source) * 8.0
    busiest_forward = cycles["forward"].max(axis=1)
    if start_step:  # per-step arrays are indexed by absolute step - 1
        for kind in ("spike", "error"):
            kinds[kind].per_step = np.pad(kinds[kind].per_step, (start_step, 0))
        busiest_forward = np.pad(busiest_forward, (start_step, 0))
    time_ms, overruns = {}, {}
    for name in ("forward", "backward", "loss"):
        if name in programs:
            time_ms[name], overruns[name] = tick_timing(cycles[name], hw)
        else:  # a program that does not run takes no ticks (and its cycles are all 0)
            time_ms[name], overruns[name] = _idle_timing(hw)
    f = np.asarray(hw.clock_levels_mhz, float) * 1e3
    time_ms["update"] = {"realtime": critical / f, "compute": critical / f}
    overruns["update"] = np.zeros(len(f), np.int64)
    return Traffic(
        samples=int(batch) if first else 0,
        batches=1 if first else 0,
        kinds=kinds,
        dense_error_packets=float(dense),
        operations=ops,
        peak_cycles={
            "forward": cycles["forward"].max(axis=0, initial=0.0),
            "backward": cycles["backward"].max(axis=0, initial=0.0),
            "loss": cycles["loss"][0],
            "update": cycles["update"],
        },
        busiest_per_tick={
            "forward": busiest_forward,
            "backward": cycles["backward"].max(axis=1),
        },
        total_cycles={k: float(v.sum()) for k, v in cycles.items()},
        time_ms=time_ms,
        overrun_ticks=overruns,
        max_spikes_per_neuron=most,
        spike_log_capacity=m.max_spikes_per_neuron,
        dma_bytes=float(dma) if "forward" in programs else 0.0,
    )


def _forward(plan, Y, st, fwd, spike, ops):
    """Forward program: neuron updates, spike packets, receptions, synaptic events."""
    cyc, t = plan.cycles, plan.tables
    T = fwd.shape[0]
    fwd += st["forward"][None, :]
    ops["neuron_updates"] += st["ops_per_tick"]["neuron_updates"] * T
    sends = {}
    for k in plan.spike_hops:
        per_slice = Y[k] @ t["slice_of"][k]  # (T, R, S)
        per_slice *= t["sending"][k]  # a PE whose spikes reach nobody sends nothing
        sends[k] = per_slice
        spike.per_step += per_slice.sum(axis=(1, 2))
        total = per_slice.sum(axis=0)
        spike.packets += total.sum()
        spike.hops += (total * plan.spike_hops[k]).sum()
        spike.deliveries += (total * plan.spike_dests[k]).sum()
        fwd[:, t["cols"][k]] += per_slice.reshape(T, -1) * cyc.packet_send
    for pre, post, counts in t["synapses"]:
        syn = Y[pre] @ counts  # (T, R, S_post)
        ops["synaptic_events"] += syn.sum()
        fwd[:, t["cols"][post]] += syn.reshape(T, -1) * cyc.synaptic_event
    for pre, post, reach in t["receive"]:
        fwd[:, t["cols"][post]] += (sends[pre] @ reach).reshape(T, -1) * cyc.spike_receive


def _logged(m: Mapping, k: int) -> bool:
    """Whether population ``k``'s spikes are kept in a record with bounded capacity."""
    net = m.network
    if net.populations[k].is_source:
        return True
    return m.training and any(m.flow.error[i] or m.flow.gradient[i] for i in net.outgoing(k))


def _backward(plan, Y, st, bwd, error, ops):
    """Backward program: adjoint updates, partial errors, error packets, gradient sums.

    A presynaptic spike at step ``n - d`` is used in backward tick ``n`` (``n <= T``).
    """
    cyc, t = plan.cycles, plan.tables
    T = bwd.shape[0]
    bwd += st["backward"][None, :]
    ops["adjoint_updates"] += st["ops_per_tick"]["adjoint_updates"] * T
    grad_cycles, back_cycles = cyc.gradient_synapse, cyc.backward_synapse
    for pre, post, d, counts, per_syn in t["backward"]:
        if d >= T:
            continue
        syn = Y[pre][: T - d] @ counts  # (T - d, R, S_post)
        total = syn.sum()
        if per_syn in (grad_cycles, grad_cycles + back_cycles):
            ops["gradient_synapses"] += total
        if per_syn in (back_cycles, grad_cycles + back_cycles):
            ops["backward_synapses"] += total
        bwd[d:, t["cols"][post]] += syn.reshape(T - d, -1) * per_syn
    for q, k, d, targets, per_neuron, hops in t["errors"]:
        if d >= T:
            continue
        y = Y[q][: T - d]
        sent = y @ targets  # (T - d, R, S_post): packets each post PE sends per tick
        error.per_step[d:] += sent.sum(axis=(1, 2))
        n_sent = sent.sum()
        error.packets += n_sent
        error.deliveries += n_sent
        bwd[d:, t["cols"][k]] += sent.reshape(T - d, -1) * cyc.packet_send
        received = y @ (per_neuron[:, None] * t["slice_of"][q])  # (T - d, R, S_pre)
        bwd[d:, t["cols"][q]] += received.reshape(T - d, -1) * cyc.error_receive
        pair = t["slice_of"][q].T @ (y.sum(axis=0)[:, :, None] * targets[None])  # (R, S, S)
        error.hops += (pair * hops).sum()


def _update(plan: TrafficPlan, st: dict, kinds: dict):
    """Weight-update program of one batch: binomial reduction, update, redistribution."""
    m, cyc = plan.mapping, plan.cycles
    net, R = m.network, m.replicas
    if not m.training:
        return
    rounds = int(np.ceil(np.log2(R))) if R > 1 else 0
    upd = st["update"]
    for k in range(len(net.populations)):
        grads = [i for i in net.incoming(k) if m.flow.gradient[i]]
        if not grads:
            continue
        words = sum(m.connection_counts(i).sum(axis=0) for i in grads)  # (S,) per slice
        pes = m.population_pes(k)
        w = float(words.max())
        st["ops"]["weight_updates"] += words.sum()
        upd[pes[0]] += words * cyc.weight_update
        st["critical"] = max(st["critical"], w * cyc.weight_update)
        if R == 1:
            continue
        for r in range(R):
            upd[pes[r]] += words * len(reduction_children(r, R)) * cyc.reduce_word
            if r:
                upd[pes[r]] += words * (cyc.packet_send + cyc.weight_receive)
        upd[pes[0]] += words * cyc.packet_send
        kinds["gradient"].packets += (R - 1) * words.sum()
        kinds["gradient"].deliveries += (R - 1) * words.sum()
        kinds["gradient"].hops += (words[None, :] * plan.reduction_hops[k]).sum()
        kinds["weight"].packets += words.sum()
        kinds["weight"].deliveries += (R - 1) * words.sum()
        kinds["weight"].hops += (words * plan.weight_hops[k]).sum()
        st["critical"] = max(
            st["critical"],
            rounds * w * (cyc.packet_send + cyc.reduce_word)
            + w * (cyc.weight_update + cyc.packet_send + cyc.weight_receive),
        )
