"""The PEs of the model and the four programs they run, exchanging packets only.

:class:`Machine` holds one :class:`ProcessingElement` per placement of a
:class:`~.mapping.Mapping`; each owns its data (the state of its neuron slice for the samples of
its replica, the weights and gradient buffers of its incoming connections, its input queue) and
integrates it with the exact engine (:mod:`.slices`).  The programs:

forward (:meth:`Machine.forward`)
    Populations in feed-forward order.  A source PE sends one spike packet per spike of its
    schedule; a neuron PE reads its queue (spike packets: key = sender, sample, neuron; tick;
    payload = the time since the tick started), rebuilds the presynaptic spike times
    ``tick dt + payload``, integrates its slice over the run and sends one spike packet per
    spike of its own when its population has targets.
loss (:meth:`Machine.send_labels`, :meth:`Machine.exchange_readouts`, :meth:`Machine.loss_pe`)
    The host sends one label packet per labelled sample (payload = the class) and one with the
    batch's number of labelled samples, routed from the host's chip to the output PEs of the
    sample's replica.  Output slices of one replica exchange the readouts the loss reads (one
    loss packet per neuron, sample and readout), so that each holds whole rows of the output
    layer (softmax normalises over all output neurons); each then calls the training core's
    loss (passed in as an object) on its rows and keeps ``dL/dreadout`` of its own neurons.
backward (:meth:`Machine.backward`)
    Populations in reverse order.  A PE sums the error packets it received into ``dL/dt`` of its
    own spikes, sweeps its slice backwards, keeps ``dL/dw`` in its gradient buffer and sends one
    error packet per presynaptic spike that reached it (same key and tick, payload = the
    summed ``dL/dt_a`` of that spike's arrivals on its slice) back to the spike's owner.
reduction (:meth:`Machine.reduce`)
    Gradient buffers summed over replicas along a binomial tree, one gradient packet per word.
update (:meth:`Machine.update_pe`, :meth:`Machine.commit`)
    Replica 0's PE of a slice (the update PE) applies the training core's optimiser (passed in
    as an object; its moment buffers are the PE's, placed in its SRAM by the mapping) to its
    own weights with its own reduced gradient, loads the new weights and multicasts them, one
    weight packet per word, to its copies in the other replicas.  Weights the host writes
    (:meth:`Machine.broadcast`) reach the update PEs and are multicast the same way.

The host loads inputs into the source PEs' schedules, sends labels, reads readouts, losses,
spikes and recordings out of the PEs' memories for reporting and may write weights; it never
moves data between PEs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.interface import SpikeTrains
from .fabric import Fabric
from .mapping import Mapping
from .routing import HOST, RoutingTables
from .slices import SliceNetwork, slice_backward, slice_network, slice_simulation


@dataclass
class ProcessingElement:
    """One PE: its placement, its samples and what it holds.

    Attributes
    ----------
    pe, replica, pop, start, stop : int
    samples : int array: the batch indices its replica runs (``local batch`` of them)
    sn : SliceNetwork or None (spike sources)
    sim : the exact engine on ``sn`` (its SRAM: weights, state, tape), or None
    spike_sources : PEs whose spike packets it receives
    error_sources : PEs whose error packets it receives
    """

    pe: int
    replica: int
    pop: int
    start: int
    stop: int
    samples: np.ndarray
    sn: SliceNetwork | None = None
    sim: object = None
    spike_sources: tuple = ()
    error_sources: tuple = ()
    result: object = None  # the last run kept for backward
    own: tuple = ()  # (index, tick) of the spikes it sent in the last run, in its spike order
    own_samples: np.ndarray | None = None  # local sample of each of its last run's spikes
    received: dict = field(default_factory=dict)  # local source -> (keys, ticks) of its spike
    # packets in SpikeTrains order
    grads: dict = field(default_factory=dict)  # global projection -> (n_pre, size) dL/dw
    labels: tuple = ()  # (labelled local samples, classes, labelled samples in the batch)
    loss: object = None  # (labelled local samples, the loss's result on them) after the loss
    loss_grads: dict | None = None  # readout -> (local batch, size) float32 dL/dreadout
    optimisers: dict = field(default_factory=dict)  # global projection -> its optimiser copy
    staged: dict = field(default_factory=dict)  # global projection -> new weights (update PE)

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def rows(self) -> slice:
        """Its samples (a contiguous range of the batch) as a slice."""
        return slice(self.samples[0], self.samples[-1] + 1) if self.samples.size else slice(0, 0)


def sample_index(trains: SpikeTrains) -> np.ndarray:
    """``trains.sample_index`` (the sample of every entry), computed without numpy's
    Python-level wrappers (the model needs it for every train of every run)."""
    offsets = trains.offsets
    return np.arange(offsets.size - 1).repeat(offsets[1:] - offsets[:-1])


def _occurrence(codes: np.ndarray) -> np.ndarray:
    """Rank of every entry among the entries with the same code, in order (0, 1, ...)."""
    order = np.argsort(codes, kind="stable")
    s = codes[order]
    first = np.r_[True, s[1:] != s[:-1]] if s.size else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    rank = np.arange(s.size) - np.repeat(starts, np.diff(np.r_[starts, s.size]))
    out = np.empty(s.size, np.int64)
    out[order] = rank
    return out


class Machine:
    """The PEs of a mapping and the programs they run (see the module docstring)."""

    def __init__(self, mapping: Mapping, routing: RoutingTables, dt, dtype, readout_pops,
                 payload_bits=32, on_fault="raise"):  # fmt: skip
        self.mapping, self.routing, self.dt = mapping, routing, float(dt)
        self.fabric = Fabric(routing, payload_bits, on_fault)
        self.keys = routing.keyspace
        net, batch = mapping.network, mapping.batch_size
        self.pes = []
        for pl in mapping.placements:
            r, sl = pl.replica, pl.slice
            samples = np.arange(r * mapping.local_batch, min((r + 1) * mapping.local_batch, batch))
            pe = ProcessingElement(pl.pe, r, sl.population, sl.start, sl.stop, samples)
            if not net.populations[sl.population].is_source:
                pe.sn = slice_network(net, sl.population, sl.start, sl.stop)
                pe.sim = slice_simulation(pe.sn, self.dt, max(samples.size, 1), dtype,
                                          sl.population in readout_pops)  # fmt: skip
            self.pes.append(pe)
        self._pe_pop = np.array([pe.pop for pe in self.pes], np.int64)
        self._pe_size = np.array([pe.size for pe in self.pes], np.int64)
        self._pe_start = np.array([pe.start for pe in self.pes], np.int64)
        self._pe_width = np.maximum(self._pe_size, 1)  # index = sample * width + neuron
        self._populations = [
            [self.pes[int(p)] for p in mapping.population_pes(k).ravel()]
            for k in range(len(net.populations))
        ]
        self._neuron_pes = [[pe for pe in pes if pe.sim is not None] for pes in self._populations]
        self._update_pes = [
            [pe for pe in self._populations[p.post] if pe.replica == 0] for p in net.projections
        ]
        self._wire_sources()

    def _wire_sources(self):
        """Which PEs each PE hears from (its static configuration, from the routing flows)."""
        spike, error = {}, {}
        self._spike_flows, self._error_targets = set(), {}
        for f in self.routing.flows:
            if f.kind == "spike":
                self._spike_flows.add(f.owner)
                for d in f.destinations:
                    spike.setdefault(d, set()).add(f.owner)
            elif f.kind == "error":
                error.setdefault(f.owner, set()).update(f.sources)
                for s in f.sources:
                    self._error_targets.setdefault(s, set()).add(f.owner)
        for pe in self.pes:
            pe.spike_sources = tuple(sorted(spike.get(pe.pe, ())))
            pe.error_sources = tuple(sorted(error.get(pe.pe, ())))
        self._error_targets = {s: tuple(sorted(o)) for s, o in self._error_targets.items()}

    def population(self, k: int) -> list[ProcessingElement]:
        """PEs of population ``k``, replica by replica, slice by slice (a list kept by the
        machine: do not modify it)."""
        return self._populations[k]

    def neuron_pes(self, k: int) -> list[ProcessingElement]:
        """The PEs of population ``k`` that integrate neurons (not spike sources), in
        :meth:`population` order (a list kept by the machine)."""
        return self._neuron_pes[k]

    # --- forward ------------------------------------------------------------------------------
    def _send_spikes(self, pe, sample, neuron, times):
        """Spike packets of PE ``pe`` for local ``sample``, slice ``neuron``, times (ms)."""
        if pe.pe in self._spike_flows:
            self.fabric.open("spike", pe.pe, pe.pe)
        if not times.size or pe.pe not in self._spike_flows:
            pe.own = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            return
        tick = np.floor(times / self.dt).astype(np.int64)
        offset = times - tick * self.dt
        index = sample * pe.size + neuron
        pe.own = (index, tick)
        self.fabric.send("spike", pe.pe, self.keys.base("spike", pe.pe) + index, offset, tick)

    def send_source(self, pe, trains: SpikeTrains | None, t0, t1, sample=None):
        """A source PE sends the spikes of its schedule in ``[t0, t1)`` (``sample``: the
        trains' ``sample_index`` when the caller has it)."""
        if trains is None or not trains.times.size:
            empty = np.zeros(0, np.int64)
            self._send_spikes(pe, empty, empty, np.zeros(0))
            return
        b = sample_index(trains) if sample is None else sample
        j, t = trains.neurons, trains.times
        rows = pe.rows  # its samples: a contiguous range
        keep = (t >= t0) & (t < t1) & (j >= pe.start) & (j < pe.stop)
        keep &= (b >= rows.start) & (b < rows.stop)
        local = b[keep] - pe.samples[0]
        self._send_spikes(pe, local, j[keep] - pe.start, t[keep].astype(np.float64))

    def receive_spikes(self, pe) -> dict:
        """Spike trains per local source of PE ``pe`` rebuilt from its queue."""
        packets = self.fabric.collect(pe.pe, "spike", pe.spike_sources)
        owner = (packets.keys >> self.keys.index_bits) & ((1 << self.keys.pe_bits) - 1)
        index = packets.keys & ((1 << self.keys.index_bits) - 1)
        times = packets.tick * self.dt + packets.payload
        trains, pe.received = {}, {}
        batch = pe.sim.batch
        for local, q in enumerate(pe.sn.pre):
            # collect keeps the expected senders' packets only: with one presynaptic
            # population, every packet is from it
            sel = slice(None) if len(pe.sn.pre) == 1 else np.flatnonzero(self._pe_pop[owner] == q)
            senders, received = owner[sel], index[sel]
            size_q = self._pe_width[senders]
            sample, neuron = received // size_q, received % size_q
            order = np.argsort(sample, kind="stable")
            offsets = np.zeros(batch + 1, np.int64)
            np.cumsum(np.bincount(sample, minlength=batch)[:batch], out=offsets[1:])
            size = self.mapping.network.populations[q].size
            trains[local] = SpikeTrains(
                times[sel][order], (self._pe_start[senders] + neuron)[order], offsets, size
            )
            pe.received[local] = (packets.keys[sel][order], packets.tick[sel][order])
        return trains

    def run_pe(self, pe, n_steps, currents, record, keep):
        """Forward program of a neuron PE over one run; returns its RunResult."""
        sources = self.receive_spikes(pe)
        local = pe.sn.local
        cut = {}
        if currents.get(pe.pop) is not None:
            c = np.asarray(currents[pe.pop], float)
            c = c[:, pe.start : pe.stop] if c.ndim == 2 else c[:, pe.samples, pe.start : pe.stop]
            cut[local] = c
        rec = {local: record[pe.pop]} if pe.pop in record else {}
        result = pe.sim.run(n_steps, sources=sources, currents=cut, record=rec,
                            keep_for_backward=keep)  # fmt: skip
        own = result.spikes[local]
        pe.own_samples = sample_index(own)
        self._send_spikes(pe, pe.own_samples, own.neurons, own.times)
        pe.result = result if keep else None
        return result

    # --- loss -------------------------------------------------------------------------------
    def send_labels(self, k, labels):
        """The host's label packets for the output PEs of population ``k``: per replica one per
        labelled sample (index: its local sample, payload: its class) and one with the number
        of labelled samples in the batch (index ``local_batch``).  Samples ``0..len(labels)-1``
        are labelled; the rest of the batch is padding."""
        labels = np.asarray(labels)
        n, lb = labels.size, self.mapping.local_batch
        pes = self.mapping.population_pes(k)
        for r in range(pes.shape[0]):
            owner = int(pes[r, 0])
            self.fabric.open("label", HOST, owner)
            samples = self.pes[owner].samples
            real = samples[samples < n]
            keys = self.keys.base("label", owner) + np.r_[real - r * lb, lb]
            self.fabric.send("label", HOST, keys, np.r_[labels[real], n].astype(np.float64), 0)
        self.fabric.end_phase("label")

    def receive_labels(self, pe, n_classes):
        """``(labelled local samples (sorted), their classes, labelled samples in the batch)``
        from the label packets in PE ``pe``'s queue; a payload that is not a class is
        reported and its sample left unlabelled."""
        packets = self.fabric.collect(pe.pe, "label", [HOST])
        lb = self.mapping.local_batch
        index = packets.keys & ((1 << self.keys.index_bits) - 1)
        count = packets.payload[index == lb]
        data = np.flatnonzero(index < lb)
        values = packets.payload[data]
        ok = (values == np.rint(values)) & (values >= 0) & (values < n_classes)
        for m in data[~ok]:
            self.fabric._problem(f"PE {pe.pe}: label packet #{packets.seq[m]} from the host "
                                 f"carries {packets.payload[m]!r}, not a class in "
                                 f"0..{n_classes - 1}")  # fmt: skip
        rows, first = np.unique(index[data[ok]], return_index=True)
        n = int(count[0]) if count.size == 1 else rows.size
        if count.size != 1:
            self.fabric._problem(f"PE {pe.pe}: {count.size} label-count packets from the host, "
                                 "expected 1")  # fmt: skip
        return rows, values[ok][first].astype(np.intp), max(n, 1)

    def exchange_readouts(self, pes, names):
        """Output slices of one replica (``pes``, more than one) send each other the readouts
        ``names`` of their labelled samples (index: local sample and neuron, tick: which
        readout)."""
        for pe in pes:
            self.fabric.open("loss", pe.pe, pe.pe)
            rows = pe.labels[0]
            index = (rows[:, None] * pe.size + np.arange(pe.size)).ravel()
            readouts = pe.result.readouts[pe.sn.local]
            for j, name in enumerate(names):
                values = np.asarray(readouts[name][rows], np.float64).ravel()
                self.fabric.send("loss", pe.pe, self.keys.base("loss", pe.pe) + index, values, j)

    def _rows(self, pe, names, others):
        """Whole output rows of PE ``pe``'s labelled samples: its own columns from its memory,
        the others' from their loss packets (NaN where a packet is missing)."""
        rows = pe.labels[0]
        own = pe.result.readouts[pe.sn.local]
        size = self.mapping.network.populations[pe.pop].size
        out = {n: np.full((rows.size, size), np.nan, own[n].dtype) for n in names}
        for name in names:
            out[name][:, pe.start : pe.stop] = own[name][rows]
        if others:
            packets = self.fabric.collect(pe.pe, "loss", [o.pe for o in others])
            start, width = self._pe_start[packets.source], self._pe_size[packets.source]
            index = packets.keys & ((1 << self.keys.index_bits) - 1)
            sample = index // width
            row = np.searchsorted(rows, sample)
            hit = row < rows.size
            hit[hit] = rows[row[hit]] == sample[hit]
            col = start + index % width
            for j, name in enumerate(names):
                sel = hit & (packets.tick == j)
                out[name][row[sel], col[sel]] = packets.payload[sel]
        return out

    def loss_pe(self, pe, loss, names, duration, others):
        """Loss program of output PE ``pe``: ``loss`` (the training core's object) on whole rows
        of its labelled samples; keeps the result and ``dL/dreadout`` of its own neurons as
        float32 (the gradient of the batch mean: the loss's ``1/n_local`` times
        ``n_local / n``)."""
        rows, classes, n = pe.labels
        pe.loss, pe.loss_grads = None, {}
        zeros = np.zeros((pe.samples.size, pe.size), np.float32)
        if not rows.size:
            pe.loss_grads = {name: zeros.copy() for name in names}
            return
        result = loss.evaluate(self._rows(pe, names, others), classes, duration)
        scale = rows.size / n
        for name in names:
            full = zeros.copy()
            g = result.readout_grads.get(name)
            if g is not None:
                g = g[:, pe.start : pe.stop]
                full[rows] = g * scale if scale != 1 else g
            pe.loss_grads[name] = full
        pe.loss = (rows, result)

    def loss(self, k, loss, labels, duration):
        """The loss program on population ``k``'s PEs (see the module docstring)."""
        names = tuple(loss.requires)
        self.send_labels(k, labels)
        pes = self.mapping.population_pes(k)
        size = self.mapping.network.populations[k].size
        for pe in self.population(k):
            pe.labels = self.receive_labels(pe, size)
        split = pes.shape[1] > 1
        if split:
            for r in range(pes.shape[0]):
                self.exchange_readouts([self.pes[int(p)] for p in pes[r]], names)
            self.fabric.end_phase("loss")
        for pe in self.population(k):
            others = [self.pes[int(p)] for p in pes[pe.replica] if int(p) != pe.pe] if split else []
            self.loss_pe(pe, loss, names, duration, others)

    # --- backward -----------------------------------------------------------------------------
    def own_spike_grads(self, pe) -> np.ndarray:
        """``dL/dt`` of PE ``pe``'s own spikes: its error packets summed, sender by sender."""
        index, tick = pe.own
        n_own = pe.result.spikes[pe.sn.local].times.size
        grads = np.zeros(n_own)
        packets = self.fabric.collect(pe.pe, "error", pe.error_sources)
        if not len(packets):
            return grads
        span = int(max(tick.max(initial=0), packets.tick.max(initial=0))) + 1
        own_code = index * span + tick
        p_index = packets.keys & ((1 << self.keys.index_bits) - 1)
        code = p_index * span + packets.tick
        sorter = np.argsort(own_code, kind="stable")
        ordered = own_code[sorter]
        if (ordered[1:] == ordered[:-1]).any():  # a neuron spiked twice in one tick
            own_code = own_code * (n_own + 1) + _occurrence(own_code)
            occ = np.zeros(code.size, np.int64)
            for s in np.unique(packets.source):
                sel = packets.source == s
                occ[sel] = _occurrence(code[sel])
            code = code * (n_own + 1) + occ
            sorter = np.argsort(own_code, kind="stable")
            ordered = own_code[sorter]
        pos = np.minimum(np.searchsorted(ordered, code), max(n_own - 1, 0))
        hit = ordered[pos] == code if n_own else np.zeros(code.size, bool)
        if not hit.all():
            for m in np.flatnonzero(~hit):
                self.fabric._problem(f"PE {pe.pe}: error packet #{packets.seq[m]} from PE "
                                     f"{packets.source[m]} names a spike it did not "
                                     "send")  # fmt: skip
        # summed in packet order into zeros (as np.add.at would)
        return np.bincount(sorter[pos[hit]], packets.payload[hit], minlength=n_own)

    def backward_pe(self, pe, readout_grads, error_to, own_loss=False):
        """Backward program of PE ``pe``: reverse sweep, gradient buffer, error packets to the
        presynaptic PEs of the local sources in ``error_to``.  ``own_loss``: the PE starts from
        the ``dL/dreadout`` its loss program computed instead of ``readout_grads[0]``."""
        own = self.own_spike_grads(pe)
        local = pe.sn.local
        per_pe = []
        for j, grads in enumerate(readout_grads):
            if own_loss and j == 0:
                per_pe.append({local: pe.loss_grads})
                continue
            cut = {
                name: np.asarray(g)[pe.rows, pe.start : pe.stop]
                for name, g in (grads or {}).get(pe.pop, {}).items()
            }
            per_pe.append({local: cut})
        weights, sources = slice_backward(pe.sim, pe.result, local, per_pe, own)
        pe.grads = dict(zip(pe.sn.projections, weights, strict=True))
        for owner in self._error_targets.get(pe.pe, ()):
            self.fabric.open("error", pe.pe, owner)
        for q in error_to:
            (keys, ticks), dldt = pe.received[q], sources[q]
            send = np.flatnonzero(dldt != 0.0)
            owner = (keys >> self.keys.index_bits) & ((1 << self.keys.pe_bits) - 1)
            for o in np.unique(owner[send]):
                sel = send[owner[send] == o]
                index = keys[sel] & ((1 << self.keys.index_bits) - 1)
                self.fabric.send("error", pe.pe, self.keys.base("error", int(o)) + index, dldt[sel],
                                 ticks[sel])  # fmt: skip

    # --- update ---------------------------------------------------------------------------------
    def _words(self, pe, projections):
        """The connected entries of ``pe``'s gradient buffers of ``projections``, in order."""
        net = self.mapping.network
        return np.concatenate([
            pe.grads.get(k, np.zeros(0))[net.projections[k].mask[:, pe.start : pe.stop]]
            for k in projections
        ]) if projections else np.zeros(0)  # fmt: skip

    def _word_keys(self, kind, owner, n):
        return self.keys.base(kind, owner) + np.arange(n) % ((1 << self.keys.index_bits) - 1)

    def _receive_words(self, pe, kind, sources, n):
        packets = self.fabric.collect(pe.pe, kind, sources)
        words = np.zeros(n)
        for s in sources:
            got = packets.payload[packets.source == s]
            if got.size != n:
                self.fabric._problem(f"PE {pe.pe}: {got.size} {kind} words from PE {s}, "
                                     f"expected {n}")  # fmt: skip
            words[: min(n, got.size)] += got[:n]
        return words

    def reduce(self, projections_of):
        """Sum every trainable slice's gradient buffers over the replicas (binomial tree)."""
        R = self.mapping.replicas
        step = 1
        while step < R:
            for k, projections in projections_of.items():
                pes = self.mapping.population_pes(k)
                for s in range(pes.shape[1]):
                    for r in range(step, R, 2 * step):
                        child = self.pes[int(pes[r, s])]
                        words = self._words(child, projections)
                        parent = int(pes[r - step, s])
                        keys = self._word_keys("gradient", parent, words.size)
                        self.fabric.send("gradient", child.pe, keys, words, 0)
            self.fabric.end_phase("gradient")
            for k, projections in projections_of.items():
                pes = self.mapping.population_pes(k)
                for s in range(pes.shape[1]):
                    for r in range(0, R - step, 2 * step):
                        parent = self.pes[int(pes[r, s])]
                        words = self._words(parent, projections)
                        words = self.fabric.wire(words) + self._receive_words(
                            parent, "gradient", [int(pes[r + step, s])], words.size
                        )
                        self._unpack(parent, projections, words)
            step *= 2

    def _unpack(self, pe, projections, words):
        net, pos = self.mapping.network, 0
        for k in projections:
            mask = net.projections[k].mask[:, pe.start : pe.stop]
            g = np.zeros(mask.shape)
            n = int(mask.sum())
            g[mask] = words[pos : pos + n]
            pe.grads[k] = g
            pos += n

    def gradient_norm(self, k, pes) -> float:
        """Norm of projection ``k``'s whole reduced gradient as every update PE in ``pes`` (its
        target's slices) computes it: each sends the sum of squares of its block (one norm
        packet) to the others and adds the partials it holds in slice order."""
        partial = {}
        for pe in pes:
            g = pe.grads.get(k)
            partial[pe.pe] = float(np.vdot(g, g)) if g is not None else 0.0
            self.fabric.open("norm", pe.pe, pe.pe)
            key = np.array([self.keys.base("norm", pe.pe) + k])
            self.fabric.send("norm", pe.pe, key, np.array([partial[pe.pe]]), 0)
        self.fabric.end_phase("norm")
        norms = []
        for pe in pes:
            packets = self.fabric.collect(pe.pe, "norm", [o.pe for o in pes if o is not pe])
            held = dict(zip(packets.source.tolist(), packets.payload.tolist(), strict=True))
            held[pe.pe] = float(self.fabric.wire(partial[pe.pe]))
            norms.append(float(np.sqrt(sum(held.get(o.pe, 0.0) for o in pes))))
        if len(set(norms)) > 1:
            self.fabric._problem(f"update PEs of projection {k} disagree on the gradient norm: "
                                 f"{norms}")  # fmt: skip
        return norms

    def update_pe(self, pe, k, clip=None, norm=None):
        """Update program of update PE ``pe`` for projection ``k``: ``clip`` (optional; given
        ``norm``, the norm of the whole gradient, when the PE holds a block of it) and its
        optimiser (``pe.optimisers[k]``, the training core's, with the PE's moment buffers) on
        its own weights and reduced gradient; the new weights are staged until
        :meth:`commit`.  Returns ``(new weights, gradient used)``."""
        local = pe.sn.projections.index(k)
        weights = pe.sim.get_weights(local)
        gradient = pe.grads.get(k)
        if gradient is None:  # a trainable projection the loss does not reach: no gradient
            gradient = np.zeros(weights.shape)
        if clip is not None:
            gradient = clip(gradient) if norm is None else clip(gradient, norm=norm)
        pe.optimisers[k].step(
            {"weights": weights}, {"weights": np.asarray(gradient, weights.dtype)}
        )
        pe.staged[k] = weights
        return weights, gradient

    def update_pes(self, k) -> list:
        """The update PEs of projection ``k``: replica 0's PEs of its target, slice by slice."""
        return self._update_pes[k]

    def commit(self, k: int):
        """The update PEs of projection ``k`` load their staged weights and multicast them."""
        for pe in self.update_pes(k):
            pe.sim.set_weights(pe.sn.projections.index(k), pe.staged.pop(k))
        self._multicast(k)

    def broadcast(self, k: int, weights: np.ndarray):
        """Replica 0's PEs of projection ``k``'s target take ``weights`` from the host and
        multicast them to the other replicas, which load what they receive."""
        net, flow = self.mapping.network, self.mapping.flow
        proj = net.projections[k]
        pes = self.mapping.population_pes(proj.post)
        if not any(flow.gradient[i] for i in net.incoming(proj.post)):
            for pe in self.population(proj.post):  # no weight flow: the host loads every copy
                pe.sim.set_weights(pe.sn.projections.index(k), weights[:, pe.start : pe.stop])
            return
        for s in range(pes.shape[1]):
            owner = self.pes[int(pes[0, s])]
            local = owner.sn.projections.index(k)
            owner.sim.set_weights(local, weights[:, owner.start : owner.stop])
        self._multicast(k)

    def _multicast(self, k: int):
        """Replica 0's PEs of projection ``k``'s target send their weights to the other
        replicas, which load what they receive."""
        proj = self.mapping.network.projections[k]
        pes = self.mapping.population_pes(proj.post)
        if self.mapping.replicas == 1:
            return
        for s in range(pes.shape[1]):
            owner = self.pes[int(pes[0, s])]
            local = owner.sn.projections.index(k)
            words = owner.sim.get_weights(local)[proj.mask[:, owner.start : owner.stop]]
            keys = self._word_keys("weight", owner.pe, words.size)
            self.fabric.send("weight", owner.pe, keys, words.astype(np.float64), 0)
        self.fabric.end_phase("weight")
        for s in range(pes.shape[1]):
            for r in range(1, self.mapping.replicas):
                pe = self.pes[int(pes[r, s])]
                mask = proj.mask[:, pe.start : pe.stop]
                words = self._receive_words(pe, "weight", [int(pes[0, s])], int(mask.sum()))
                w = np.zeros(mask.shape)
                w[mask] = words
                pe.sim.set_weights(pe.sn.projections.index(k), w)
