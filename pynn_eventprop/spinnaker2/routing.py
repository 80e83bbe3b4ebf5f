"""Multicast routing: flows, per-chip routing tables with key/mask merging, packet routing.

Topology (assumed, as SpiNNaker1): chips form a hexagonal mesh, each linked to six neighbours in
the directions E (+1, 0), NE (+1, +1), N (0, +1), W (-1, 0), SW (-1, -1), S (0, -1).  A packet
goes from its source chip to each destination chip along a memoryless dimension-order path
(diagonal moves while both offsets have the same sign, then straight moves), so paths towards
one destination from different sources merge and agree.  Every chip a packet visits has a table
entry for its key (no default routing); each chip's router is one *hop*.

Flows (who sends which key block to whom; ``R`` replicas, ``pe`` = key owner):

* ``spike``: a PE whose population has outgoing projections multicasts to every PE of the same
  replica that holds a postsynaptic slice of one of its neurons.
* ``error``: every PE of a postsynaptic slice on an error-carrying projection sends to the PE
  holding the presynaptic neuron (key owner = that receiver).
* ``loss``: output populations split over several PEs exchange the readouts the loss reads
  among the slices of one replica.
* ``label``: the host (:data:`HOST`, attached to chip 0, as a board's Ethernet chip) multicasts
  the labels of a replica's samples to every PE of that replica's output slices (key owner =
  the replica's first output PE).
* ``gradient``: binomial-tree reduction across replicas: in round ``k`` replica ``r`` with
  ``r % 2**(k+1) == 2**k`` sends its slice's gradients to replica ``r - 2**k`` (key owner = the
  receiver); after ``ceil(log2 R)`` rounds replica 0 holds the sum.
* ``weight``: replica 0's PE (the update PE) multicasts the updated weights to the same slice
  in every other replica.
* ``norm``: the update PEs of a population split over several slices send each other the
  sums of squares of their gradient blocks (for clipping by the norm of the whole gradient).

Merging: per chip, entries with the same route (links and cores) are combined pairwise into
entries ``(key & m, m)`` with ``m = m1 & m2 & ~(k1 ^ k2)`` as long as the merged entry covers no
key block routed differently *at that chip*.  Only keys with an entry at a chip ever reach it,
so a merged entry never sends a key to a wrong destination.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .keys import KeySpace, allocate_keys
from .mapping import Mapping, MappingError

DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))  # E NE N W SW S
#: The sender id of the host; its packets enter the machine at :data:`HOST_CHIP`.
HOST = -1
#: The chip the host is attached to (assumed: chip 0 of the board, its Ethernet chip).
HOST_CHIP = 0


class RoutingError(RuntimeError):
    """A packet found no matching entry, or looped."""


@dataclass(frozen=True)
class Flow:
    """One key block: its kind, owner PE, sending PEs and destination PEs (model PE ids)."""

    kind: str
    owner: int
    sources: tuple[int, ...]
    destinations: frozenset[int]


def next_link(src: tuple[int, int], dst: tuple[int, int]) -> int | None:
    """Direction index of the next hop from chip ``src`` to ``dst`` (None when there)."""
    dx, dy = dst[0] - src[0], dst[1] - src[1]
    if dx == 0 and dy == 0:
        return None
    if dx and dy and (dx > 0) == (dy > 0):
        return 1 if dx > 0 else 4
    if dx:
        return 0 if dx > 0 else 3
    return 2 if dy > 0 else 5


def chip_path(hw, src_chip: int, dst_chip: int) -> list[tuple[int, int | None]]:
    """``[(chip, link), ...]`` from ``src_chip`` to ``dst_chip``; the last link is None."""
    xy, dst = hw.chip_xy(src_chip), hw.chip_xy(dst_chip)
    path = []
    while True:
        link = next_link(xy, dst)
        path.append((hw.chip_at(*xy), link))
        if link is None:
            return path
        xy = (xy[0] + DIRECTIONS[link][0], xy[1] + DIRECTIONS[link][1])


def source_chip(mapping: Mapping, source: int) -> int:
    """The chip whose router a packet from ``source`` (a PE id or :data:`HOST`) enters first."""
    return HOST_CHIP if source == HOST else mapping.placements[source].chip


def build_flows(mapping: Mapping) -> list[Flow]:
    """Every key block of the mapping with its senders and receivers (see the module doc)."""
    net, flow = mapping.network, mapping.flow
    flows = []
    for k in range(len(net.populations)):
        out = net.outgoing(k)
        if not out:
            continue
        pes = mapping.population_pes(k)
        bounds = mapping.bounds(k)
        targets = []  # per outgoing projection: bool (n_pre_slices, n_post_slices)
        for i in out:
            counts = mapping.connection_counts(i)
            per_slice = np.add.reduceat(counts, bounds[:-1], axis=0) > 0
            targets.append((i, per_slice))
        for r in range(mapping.replicas):
            for s in range(len(mapping.slices[k])):
                dests, error_senders = set(), set()
                for i, per_slice in targets:
                    post_pes = mapping.population_pes(net.projections[i].post)[r]
                    hit = post_pes[per_slice[s]]
                    dests.update(int(x) for x in hit)
                    if flow.error[i]:
                        error_senders.update(int(x) for x in hit)
                owner = int(pes[r, s])
                if dests:
                    flows.append(Flow("spike", owner, (owner,), frozenset(dests)))
                if error_senders:
                    flows.append(
                        Flow("error", owner, tuple(sorted(error_senders)), frozenset({owner}))
                    )
    if mapping.training:
        for k in flow.loss_populations:
            pes = mapping.population_pes(k)
            for r in range(mapping.replicas):
                flows.append(Flow("label", int(pes[r, 0]), (HOST,), frozenset(map(int, pes[r]))))
                if pes.shape[1] == 1:
                    continue
                for s, owner in enumerate(pes[r]):
                    others = frozenset(int(x) for x in np.delete(pes[r], s))
                    flows.append(Flow("loss", int(owner), (int(owner),), others))
        flows += _norm_flows(mapping)
        flows += _replica_flows(mapping)
    return flows


def reduction_children(replica: int, replicas: int) -> list[int]:
    """Replicas that send their partial gradient sums to ``replica`` (binomial tree at 0)."""
    children, step = [], 1
    while step < replicas:
        if replica % (2 * step) == 0 and replica + step < replicas:
            children.append(replica + step)
        step *= 2
    return children


def _norm_flows(mapping: Mapping) -> list[Flow]:
    """Between the update PEs (replica 0) of every split population with trained inputs."""
    net, flow, flows = mapping.network, mapping.flow, []
    for k in range(len(net.populations)):
        pes = mapping.population_pes(k)[0]
        if pes.size > 1 and any(flow.gradient[i] for i in net.incoming(k)):
            for s, owner in enumerate(pes):
                others = frozenset(int(x) for x in np.delete(pes, s))
                flows.append(Flow("norm", int(owner), (int(owner),), others))
    return flows


def _replica_flows(mapping: Mapping) -> list[Flow]:
    net, flow, R = mapping.network, mapping.flow, mapping.replicas
    flows = []
    if R == 1:
        return flows
    for k in range(len(net.populations)):
        if not any(flow.gradient[i] for i in net.incoming(k)):
            continue
        pes = mapping.population_pes(k)
        for s in range(pes.shape[1]):
            for r in range(R):
                children = reduction_children(r, R)
                if children:
                    src = tuple(int(pes[c, s]) for c in children)
                    flows.append(Flow("gradient", int(pes[r, s]), src, frozenset({int(pes[r, s])})))
            others = frozenset(int(x) for x in pes[1:, s])
            flows.append(Flow("weight", int(pes[0, s]), (int(pes[0, s]),), others))
    return flows


@dataclass
class RoutingTable:
    """One chip's entries: ``keys``, ``masks`` (int64 arrays) and ``routes`` (link set, cores)."""

    chip: int
    keys: np.ndarray
    masks: np.ndarray
    routes: list
    unmerged: int

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, key: int) -> int | None:
        """Index of the first entry matching ``key``."""
        hit = np.flatnonzero((key & self.masks) == self.keys)
        return int(hit[0]) if hit.size else None


def _merge(keys, masks, fkeys, fmasks):
    """Greedy pairwise key/mask merging of one route group against forbidden blocks.

    Each entry in turn is merged with the partner giving the smallest merged block that
    intersects no forbidden block; entries the merged one covers are dropped.
    """
    ks, ms = np.array(keys, np.int64), np.array(masks, np.int64)
    i = 0
    while i < len(ks):
        cm = ms[i] & ms & ~(ks[i] ^ ks)
        ck = ks[i] & cm
        ok = np.ones(len(ks), bool)
        ok[i] = False
        if fkeys.size:
            clash = ((fkeys[None, :] ^ ck[:, None]) & fmasks[None, :] & cm[:, None]) == 0
            ok &= ~clash.any(axis=1)
        if not ok.any():
            i += 1
            continue
        cand = np.flatnonzero(ok)
        j = cand[np.argmax(np.bitwise_count(cm[cand]))]
        m, k = cm[j], ck[j]
        covered = ((ks & m) == k) & ((ms & m) == m)
        i -= int(covered[:i].sum())
        ks = np.append(ks[~covered], k)
        ms = np.append(ms[~covered], m)
    return [int(x) for x in ks], [int(x) for x in ms]


@dataclass
class RoutingTables:
    """Routing tables of every used chip plus what is needed to follow packets through them."""

    mapping: Mapping
    keyspace: KeySpace
    flows: list
    tables: dict  # chip -> RoutingTable
    pe_at: dict  # (chip, core) -> PE id

    def entries(self) -> dict:
        """Entries per chip after merging."""
        return {c: len(t) for c, t in self.tables.items()}

    def route(self, key: int, source_pe: int) -> tuple[frozenset, int]:
        """Follow a packet with ``key`` sent by ``source_pe`` through the tables.

        Returns
        -------
        destinations : frozenset of PE ids that receive the packet
        hops : number of chip routers the packet passes (>= 1)

        Raises
        ------
        RoutingError
            When a chip has no matching entry (the packet would be dropped) or a loop.
        """
        hw, pe_at = self.mapping.hardware, self.pe_at
        start = source_chip(self.mapping, source_pe)
        queue, seen, dests = [start], set(), set()
        while queue:
            chip = queue.pop()
            if chip in seen:
                raise RoutingError(f"key {key:#x} visits chip {chip} twice")
            seen.add(chip)
            table = self.tables.get(chip)
            hit = None if table is None else table.lookup(key)
            if hit is None:
                raise RoutingError(f"key {key:#x} from PE {source_pe} dropped at chip {chip}")
            links, cores = table.routes[hit]
            dests.update(pe_at[(chip, c)] for c in cores)
            x, y = hw.chip_xy(chip)
            queue.extend(hw.chip_at(x + DIRECTIONS[d][0], y + DIRECTIONS[d][1]) for d in links)
        return frozenset(dests), len(seen)


def build_routing(mapping: Mapping, merge: bool = True) -> RoutingTables:
    """Key allocation, flows and per-chip routing tables (merged unless ``merge=False``).

    Raises
    ------
    MappingError
        When a chip needs more entries than ``router_entries_per_chip`` after merging.
    """
    hw = mapping.hardware
    space = allocate_keys(mapping)
    flows = build_flows(mapping)
    routes = defaultdict(lambda: defaultdict(lambda: (set(), set())))  # chip -> block -> route
    for f in flows:
        block = space.block(f.kind, f.owner)
        for src in f.sources:
            src_chip = source_chip(mapping, src)
            for d in f.destinations:
                dst = mapping.placements[d]
                for chip, link in chip_path(hw, src_chip, dst.chip):
                    links, cores = routes[chip][block]
                    if link is None:
                        cores.add(dst.core)
                    else:
                        links.add(link)
    tables = {}
    for chip in sorted(routes):
        blocks = routes[chip]
        groups = defaultdict(list)
        for block, (links, cores) in blocks.items():
            groups[(frozenset(links), frozenset(cores))].append(block)
        keys, masks, route_list = [], [], []
        for route, members in groups.items():
            k = [b[0] for b in members]
            m = [b[1] for b in members]
            if merge and len(members) > 1:
                other = [b for b in blocks if b not in set(members)]
                fk = np.array([b[0] for b in other], np.int64)
                fm = np.array([b[1] for b in other], np.int64)
                k, m = _merge(k, m, fk, fm)
            keys += k
            masks += m
            route_list += [(tuple(sorted(route[0])), tuple(sorted(route[1])))] * len(k)
        tables[chip] = RoutingTable(
            chip, np.array(keys, np.int64), np.array(masks, np.int64), route_list, len(blocks)
        )
        if len(keys) > hw.router_entries_per_chip:
            raise MappingError(
                "router entries per chip",
                len(keys),
                hw.router_entries_per_chip,
                f"chip {chip} after key/mask merging ({len(blocks)} before)",
            )
    pe_at = {(pl.chip, pl.core): pl.pe for pl in mapping.placements}
    return RoutingTables(mapping, space, flows, tables, pe_at)
