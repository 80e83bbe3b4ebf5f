"""SpiNNaker2 model: keys, flows, routing tables, key/mask merging, packet routing."""

import numpy as np
import pytest

from pynn_eventprop.spinnaker2 import (
    MappingError,
    RoutingError,
    Spinnaker2Hardware,
    build_routing,
    map_network,
)
from pynn_eventprop.spinnaker2.routing import DIRECTIONS, _merge, chip_path, next_link
from pynn_eventprop.spinnaker2.testing import feedforward

# small chips force multi-chip placement, multi-hop routes and merging across chips
SMALL = Spinnaker2Hardware().replace(
    pes_per_chip=8, chips_per_board=6, board_width=3, max_neurons_per_pe=3
)


def _mappings():
    mask = np.random.default_rng(1).random((7, 5)) < 0.4
    return [
        map_network(feedforward([5, 12, 3]), 20, 6, hardware=SMALL),
        map_network(feedforward([4, 7, 5], masks=[np.ones((4, 7)), mask]), 20, 3, hardware=SMALL),
        map_network(feedforward([5, 120, 3]), 30, 22),  # the Yin-Yang shape, one real chip
    ]


@pytest.mark.parametrize("merge", [True, False])
def test_every_packet_reaches_exactly_its_destinations(merge):
    for m in _mappings():
        rt = build_routing(m, merge=merge)
        assert {f.kind for f in rt.flows} >= {"spike", "error", "gradient", "weight"}
        for f in rt.flows:
            owner_slice = m.placements[f.owner].slice
            n_index = owner_slice.size if f.kind in ("spike", "error", "loss") else 4
            for index in range(n_index):
                key = rt.keyspace.key(f.kind, f.owner, index)
                for src in f.sources:
                    dests, hops = rt.route(key, src)
                    assert dests == f.destinations, (f, index, src)
                    assert hops >= 1


def test_spike_destinations_are_the_postsynaptic_slices_of_the_replica():
    m = map_network(feedforward([5, 12, 3]), 20, 6, hardware=SMALL)
    rt = build_routing(m)
    flows = {(f.kind, f.owner): f for f in rt.flows}
    for r in range(m.replicas):
        src = m.pe(r, 0, 0)
        assert flows[("spike", src)].destinations == set(m.population_pes(1)[r].tolist())
        # errors flow from every output PE to each hidden PE; none to the input
        for s in range(len(m.slices[1])):
            hidden = m.pe(r, 1, s)
            assert set(flows[("error", hidden)].sources) == set(m.population_pes(2)[r].tolist())
        assert ("error", src) not in flows
    # the binomial reduction tree reaches replica 0 from every replica exactly once
    pe0 = m.pe(0, 2, 0)
    assert flows[("weight", pe0)].destinations == set(m.population_pes(2)[1:, 0].tolist())
    senders = [s for f in rt.flows if f.kind == "gradient" for s in f.sources]
    # every non-root replica's PEs send once, except the input slices (sources hold no weights)
    expected = (m.replicas - 1) * (m.pes_per_replica - len(m.slices[0]))
    assert len(senders) == len(set(senders)) == expected


def test_merging_never_changes_where_a_used_key_goes():
    for m in _mappings():
        merged, plain = build_routing(m), build_routing(m, merge=False)
        assert merged.tables.keys() == plain.tables.keys()
        fewer = 0
        for chip, table in plain.tables.items():
            mt = merged.tables[chip]
            assert len(mt) <= len(table)
            fewer += len(mt) < len(table)
            for key, route in zip(table.keys, table.routes, strict=True):
                hits = np.flatnonzero((int(key) & mt.masks) == mt.keys)
                assert hits.size >= 1
                assert all(mt.routes[h] == route for h in hits), (chip, hex(int(key)))
        assert fewer > 0  # merging did something somewhere


def test_merge_respects_forbidden_blocks():
    keys, masks = [0b0000, 0b0100], [0b1100, 0b1100]  # blocks 00xx and 01xx
    k, m = _merge(keys, masks, np.array([], np.int64), np.array([], np.int64))
    assert (k, m) == ([0], [0b1000])  # 0xxx
    forbidden = np.array([0b0010]), np.array([0b1111])  # a key inside 00xx used elsewhere
    k, m = _merge(keys, masks, *forbidden)
    assert sorted(k) == [0, 0b0100] and m == [0b1100, 0b1100]


def test_hex_paths_have_hex_distance_length():
    hw = Spinnaker2Hardware()
    for a in range(hw.chips_per_board):
        for b in range(hw.chips_per_board):
            (x0, y0), (x1, y1) = hw.chip_xy(a), hw.chip_xy(b)
            dx, dy = x1 - x0, y1 - y0
            dist = max(abs(dx), abs(dy)) if dx * dy > 0 else abs(dx) + abs(dy)
            path = chip_path(hw, a, b)
            assert len(path) == dist + 1 and path[0][0] == a and path[-1] == (b, None)
    assert next_link((0, 0), (2, 2)) == DIRECTIONS.index((1, 1))
    assert next_link((0, 0), (2, -1)) == DIRECTIONS.index((1, 0))


def test_hop_count_between_neighbouring_chips():
    hw = Spinnaker2Hardware().replace(pes_per_chip=4, chips_per_board=2, board_width=2)
    net = feedforward([2, 2, 2])  # 3 PEs per replica: replica 1 on chip 1
    m = map_network(net, 10, 2, hardware=hw)
    rt = build_routing(m)
    src = m.pe(1, 2, 0)  # replica 1's output PE sends gradients to replica 0 on chip 0
    key = rt.keyspace.key("gradient", m.pe(0, 2, 0), 0)
    assert rt.route(key, src) == (frozenset({m.pe(0, 2, 0)}), 2)
    spike = rt.keyspace.key("spike", m.pe(0, 0, 0), 1)
    assert rt.route(spike, m.pe(0, 0, 0))[1] == 1


def test_unrouted_key_is_reported():
    m = map_network(feedforward([2, 3, 2]), 10, 1)
    rt = build_routing(m)
    out_pe = m.pe(0, 2, 0)  # the output population sends no spikes
    with pytest.raises(RoutingError, match="dropped"):
        rt.route(rt.keyspace.key("spike", out_pe, 0), out_pe)


def test_router_entry_limit_raises():
    m = map_network(
        feedforward([5, 12, 3]), 20, 6, hardware=SMALL.replace(router_entries_per_chip=3)
    )
    with pytest.raises(MappingError) as err:
        build_routing(m)
    assert err.value.limit == "router entries per chip" and err.value.capacity == 3
