"""The packet network of the model: sending, routing by key and mask, delivery, checks, faults.

Every value one PE gives another travels through :class:`Fabric`: the sender hands it a batch of
packets (multicast keys, payloads, the tick they are sent in); the fabric looks each key block up
in the routing tables chip by chip (:meth:`RoutingTables.route`), and appends the packets to the
input queue of every PE the tables deliver them to.  Nothing else connects PEs.

Protocol checks (the model's own, independent of any comparison with the reference engine):

* every packet carries a sequence number, counted per sender and key block from the start of a
  phase (a forward run, a backward pass, a reduction round, a weight broadcast);
* at the end of a phase every sender sends one *tally* packet per key block it used, routed like
  the block's packets, whose payload is how many it sent;
* a receiver reads its queue with :meth:`Fabric.collect`, naming the senders it expects: a sender
  without a tally, a sequence number missing or received twice, a count that disagrees with the
  tally, or a packet from a sender it does not expect is a *problem*, recorded with the PE, the
  kind, the sender and the sequence number (and raised as :class:`PacketError` when the fabric
  was built with ``on_fault="raise"``);
* every packet carries a parity bit over its key and payload words, set by the sender; a
  receiver that finds a packet whose parity does not match reports it as corrupted (one
  flipped bit, or any odd number of them, is caught; an even number is not).

The host is a sender too (:data:`~.routing.HOST`): its label packets enter the machine at the
chip the host is attached to and are routed by the same tables.

Fault injection (for tests): :meth:`Fabric.inject` drops, duplicates or corrupts (flips one
bit of the payload word) the ``n``-th packet of a kind; :meth:`Fabric.corrupt_entry` changes one
routing-table entry.

Payloads are 32-bit words by default: values are rounded to float32 on the wire
(``payload_bits=64`` sends float64, two words, so that spike times arrive exactly).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .routing import HOST, RoutingError, RoutingTables

#: Packet kinds the fabric carries (tallies are counted separately per kind).
KINDS = ("spike", "error", "gradient", "weight", "loss", "label", "norm")


class PacketError(RuntimeError):
    """The protocol checks found lost, duplicated, misrouted or unexpected packets."""


ACTIONS = ("drop", "duplicate", "corrupt")


def sender(source: int) -> str:
    """How problems name a sender."""
    return "the host" if source == HOST else f"PE {source}"


@dataclass(frozen=True)
class Fault:
    """An injected fault: ``action`` (``"drop"``, ``"duplicate"`` or ``"corrupt"``: the most
    significant exponent bit of the payload word flipped after the sender set the parity) on
    the ``index``-th packet (0-based, counted from the injection) of ``kind``."""

    action: str
    kind: str
    index: int

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


@dataclass
class Packets:
    """Packets as arrays of equal length (``source``: the sending PE of each, ``parity``: the
    parity bit its sender set)."""

    source: np.ndarray
    keys: np.ndarray
    payload: np.ndarray
    tick: np.ndarray
    seq: np.ndarray
    parity: np.ndarray

    @classmethod
    def empty(cls) -> Packets:
        i = np.zeros(0, np.int64)
        return cls(i, i, np.zeros(0), i, i, i)

    @classmethod
    def concat(cls, parts) -> Packets:
        if not parts:
            return cls.empty()
        if len(parts) == 1:  # read only, as every Packets
            return parts[0]
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def take(self, sel) -> Packets:
        return Packets(*(getattr(self, f)[sel] for f in _FIELDS))

    def __len__(self) -> int:
        return self.keys.size


_FIELDS = ("source", "keys", "payload", "tick", "seq", "parity")


def _parity(keys: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Parity bits of keys (int64) and payload words (unsigned): their set bits modulo 2 (those
    of their exclusive or)."""
    return np.bitwise_and(np.bitwise_count(keys.view(np.uint64) ^ words), 1, dtype=np.int64)


@dataclass
class KindStats:
    """Packets, deliveries and router hops of one kind, tallies apart."""

    packets: int = 0
    deliveries: int = 0
    hops: int = 0
    tallies: int = 0
    tally_hops: int = 0
    tally_deliveries: int = 0


@dataclass
class Fabric:
    """Routes packets through the tables of ``routing`` into per-PE input queues."""

    routing: RoutingTables
    payload_bits: int = 32
    on_fault: str = "raise"
    stats: dict = field(default_factory=lambda: {k: KindStats() for k in KINDS})
    problems: list = field(default_factory=list)

    def __post_init__(self):
        if self.payload_bits not in (32, 64):
            raise ValueError(f"payload_bits must be 32 or 64, got {self.payload_bits!r}")
        if self.on_fault not in ("raise", "record"):
            raise ValueError(f"on_fault must be 'raise' or 'record', got {self.on_fault!r}")
        space = self.routing.keyspace
        self._index_mask = (1 << space.index_bits) - 1
        self._tally_index = self._index_mask  # the last index of every block
        self._routes = {}  # (block key, source) -> (destinations, hops) or None (dropped)
        self._faults = []  # [Fault, packets of its kind seen since injection]
        self.clear()

    # --- faults -------------------------------------------------------------------------------
    def inject(self, fault: Fault):
        """Arm ``fault`` (see :class:`Fault`)."""
        self._faults.append([fault, 0])

    def corrupt_entry(self, chip: int, entry: int, cores=None, links=None):
        """Replace the route of entry ``entry`` of chip ``chip``'s table (its cores, its links)."""
        table = self.routing.tables[chip]
        old_links, old_cores = table.routes[entry]
        table.routes[entry] = (
            tuple(old_links if links is None else links),
            tuple(old_cores if cores is None else cores),
        )
        self._routes.clear()

    def _apply_faults(self, kind, order):
        """Indices of the packets to send after the armed faults (``order`` = 0..n-1), and the
        positions among them whose payload is corrupted."""
        n, corrupt = order.size, []
        for armed in self._faults:
            fault, seen = armed
            if fault.kind == kind and seen <= fault.index < seen + n:
                pos = int(np.flatnonzero(order == fault.index - seen)[0])
                if fault.action == "drop":
                    order = np.delete(order, pos)
                elif fault.action == "duplicate":
                    order = np.insert(order, pos, order[pos])
                else:
                    corrupt.append(pos)
            if fault.kind == kind:
                armed[1] = seen + n
        return order, corrupt

    def _bits(self, payload) -> np.ndarray:
        """The payload words' bit patterns (float32 or float64) as unsigned integers."""
        if self.payload_bits == 32:
            return payload.astype(np.float32).view(np.uint32)
        return payload.view(np.uint64)

    def parity(self, keys, payload) -> np.ndarray:
        """Parity bit of packets: the number of set bits of key and payload word, modulo 2."""
        return _parity(keys, self._bits(payload))

    def _encode(self, payload) -> tuple[np.ndarray, np.ndarray]:
        """``(values as the receiver reads them, their payload words)`` (see :meth:`wire`)."""
        v = np.asarray(payload, np.float64)
        if self.payload_bits == 32:
            single = v.astype(np.float32)
            return single.astype(np.float64), single.view(np.uint32)
        return v, v.view(np.uint64)

    def _corrupt(self, payload, positions):
        """Flip the most significant exponent bit of the payload words at ``positions``."""
        payload = payload.copy()
        bits = self._bits(payload[positions])
        flipped = bits ^ bits.dtype.type(1 << (self.payload_bits - 2))
        float_type = np.float32 if self.payload_bits == 32 else np.float64
        payload[positions] = flipped.view(float_type)
        return payload

    # --- phases -------------------------------------------------------------------------------
    def clear(self):
        """Empty every input queue and start a new phase."""
        self.queues = defaultdict(lambda: defaultdict(list))  # pe -> kind -> [Packets]
        self.tallies = defaultdict(lambda: defaultdict(list))  # pe -> kind -> [(src, block, n)]
        self._sent = defaultdict(int)  # (source, kind, block) -> packets sent in this phase

    def wire(self, values) -> np.ndarray:
        """Values as the receiver reads them (rounded to float32 with 32-bit payloads)."""
        v = np.asarray(values, np.float64)
        return v.astype(np.float32).astype(np.float64) if self.payload_bits == 32 else v

    def _route(self, key, source):
        cached = self._routes.get((key, source), False)
        if cached is False:
            try:
                cached = self.routing.route(key, source)
            except RoutingError as err:
                cached = None
                self._problem(f"{err} (routing)")
            self._routes[(key, source)] = cached
        return cached

    def open(self, kind: str, source: int, owner: int):
        """Start ``source``'s stream of ``kind`` to the block of ``owner`` in this phase: its
        tally is sent at the end of the phase even if it sends no packet."""
        block = self.routing.keyspace.base(kind, owner)
        self._sent[(source, kind, block)] += 0

    def send(self, kind: str, source: int, keys, payload, tick):
        """Send packets of ``kind`` from PE ``source``: arrays ``keys``, ``payload`` (values),
        ``tick`` (the tick they are sent in); numbered per key block from the phase start.
        The packets keep the arrays given (callers pass arrays they do not change later)."""
        keys = np.asarray(keys, np.int64)
        values, words = self._encode(payload)
        tick = np.asarray(tick, np.int64)
        if tick.shape != keys.shape:
            tick = np.full(keys.shape, tick) if not tick.ndim else np.broadcast_to(tick, keys.shape)
        if not keys.size:
            return
        low, high = int(keys.min()) & ~self._index_mask, int(keys.max()) & ~self._index_mask
        if low == high:  # the common case: one key block (a block is a range of keys)
            self._send_block(kind, source, low, keys, values, words, tick)
            return
        blocks = keys & ~np.int64(self._index_mask)
        for block in np.unique(blocks):
            sel = np.flatnonzero(blocks == block)
            self._send_block(kind, source, int(block), keys[sel], values[sel], words[sel],
                             tick[sel])  # fmt: skip

    def _send_block(self, kind, source, block, keys, values, words, tick):
        """Number, check-bit and deliver packets of one key block (after the armed faults)."""
        n0 = self._sent[(source, kind, block)]
        self._sent[(source, kind, block)] = n0 + keys.size
        seq = np.arange(n0, n0 + keys.size)
        parity = _parity(keys, words)
        if self._faults:
            order, corrupt = self._apply_faults(kind, np.arange(keys.size))
            keys, values, parity = keys[order], values[order], parity[order]
            tick, seq = tick[order], seq[order]
            if corrupt:
                values = self._corrupt(values, corrupt)
        packets = Packets(np.full(keys.size, source), keys, values, tick, seq, parity)
        self._deliver(kind, block, source, packets)

    def _deliver(self, kind, block, source, packets):
        n, stats = len(packets), self.stats[kind]
        stats.packets += n
        route = self._route(block, source)
        if route is None:
            return
        dests, hops = route
        stats.hops += hops * n
        stats.deliveries += len(dests) * n
        for d in dests:
            self.queues[d][kind].append((int(source), packets))

    def end_phase(self, kind: str):
        """Every sender of ``kind`` in this phase sends its tally packets."""
        for (source, k, block), n in list(self._sent.items()):
            if k != kind:
                continue
            route = self._route(block, source)
            self.stats[kind].tallies += 1
            if route is None:
                continue
            self.stats[kind].tally_hops += route[1]
            self.stats[kind].tally_deliveries += len(route[0])
            for d in route[0]:
                self.tallies[d][kind].append((source, block, n))
            del self._sent[(source, k, block)]

    # --- receiving ----------------------------------------------------------------------------
    def collect(self, pe: int, kind: str, expected) -> Packets:
        """The packets of ``kind`` in PE ``pe``'s queue (taken out), ordered by sender then
        arrival, after the protocol checks against the tallies of the ``expected`` senders."""
        parts = self.queues[pe].pop(kind, ())  # (sender, Packets) of each send
        tallies = self.tallies[pe].pop(kind, ())
        expected = {int(s) for s in expected}
        announced = defaultdict(int)
        for source, _, n in tallies:
            announced[source] += n
        for source in sorted(expected - announced.keys()):
            self._problem(f"PE {pe}: no {kind} tally from {sender(source)}: its packets were lost "
                          "or misrouted")  # fmt: skip
        by_source = defaultdict(list)
        for source, part in parts:
            if len(part):
                by_source[source].append(part)
        for source in sorted(by_source.keys() - expected):
            keys = np.concatenate([p.keys for p in by_source.pop(source)])
            self._problem(f"PE {pe}: {keys.size} unexpected {kind} packet(s) from "
                          f"{sender(source)} (first key {int(keys[0]):#x}): misrouted")  # fmt: skip
        ordered = [part for source in sorted(by_source) for part in by_source[source]]
        for source in sorted(expected & announced.keys()):
            seq = [p.seq for p in by_source.get(source, ())]
            seq = np.concatenate(seq) if len(seq) > 1 else seq[0] if seq else np.zeros(0, np.int64)
            n = announced[source]
            if seq.size != n or (n and not (seq == np.arange(n)).all()):
                self._check_sequence(pe, kind, source, seq, n)
        packets = Packets.concat(ordered)
        failed = _parity(packets.keys, self._bits(packets.payload)) != packets.parity
        if failed.any():
            for m in np.flatnonzero(failed):
                self._problem(f"PE {pe}: {kind} packet #{packets.seq[m]} from "
                              f"{sender(int(packets.source[m]))} failed its parity check: "
                              "corrupted")  # fmt: skip
        return packets

    def _check_sequence(self, pe, kind, source, seq, announced):
        counts = np.bincount(seq, minlength=announced)
        for s in np.flatnonzero(counts[:announced] == 0):
            self._problem(f"PE {pe}: {kind} packet #{s} from {sender(source)} missing "
                          f"({announced} announced)")  # fmt: skip
        for s in np.flatnonzero(counts > 1):
            self._problem(f"PE {pe}: {kind} packet #{s} from {sender(source)} received "
                          f"{counts[s]} times")  # fmt: skip
        for s in np.flatnonzero(counts[announced:]):
            self._problem(f"PE {pe}: {kind} packet #{announced + s} from {sender(source)} "
                          f"beyond the {announced} announced")  # fmt: skip

    def _problem(self, text: str):
        self.problems.append(text)
        if self.on_fault == "raise":
            raise PacketError(text)
