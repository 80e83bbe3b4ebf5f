"""SpiNNaker2 model: hardware description, SRAM budget, slicing, replicas, fit errors."""

import numpy as np
import pytest

from pynn_eventprop.spinnaker2 import (
    MappingError,
    OperationCycles,
    Spinnaker2Hardware,
    allocate_keys,
    map_network,
)
from pynn_eventprop.spinnaker2.mapping import training_flow
from pynn_eventprop.spinnaker2.testing import feedforward


def test_every_figure_has_a_unit_and_a_source():
    for figs in (Spinnaker2Hardware(), OperationCycles()):
        for f in figs.figures():
            assert f["unit"] and f["source"], f
            assert (
                "assumed" in f["source"]
                or any(c.isdigit() for c in f["source"])
                or "code" in f["source"]
            ), f
    hw = Spinnaker2Hardware()
    assert (hw.pes_per_chip, hw.sram_per_pe, hw.router_entries_per_chip) == (152, 131072, 16384)
    assert hw.clock_levels_mhz == (150.0, 300.0) and hw.chips_per_board == 48
    assert hw.source("key_bits").startswith("assumed")


def test_overrides_are_marked_and_checked():
    hw = Spinnaker2Hardware().replace(sram_per_pe=1000)
    assert hw.sram_per_pe == 1000 and hw.source("sram_per_pe") == "user override"
    assert hw.source("pes_per_chip") != "user override"
    direct = Spinnaker2Hardware(timer_tick_ms=0.1)
    assert direct.source("timer_tick_ms") == "user override"
    with pytest.raises(TypeError, match="no figure 'sram'"):
        Spinnaker2Hardware().replace(sram=5)
    with pytest.raises(ValueError, match="sram_per_pe"):
        Spinnaker2Hardware().replace(sram_per_pe=-1)
    with pytest.raises(ValueError, match="multiple of pes_per_qpe"):
        Spinnaker2Hardware().replace(pes_per_chip=10)


def _pe_need(net, n_steps, batch, pop, **kw):
    """SRAM of the update PE holding all of population ``pop`` in one slice."""
    big = Spinnaker2Hardware().replace(sram_per_pe=10**9, max_neurons_per_pe=10**6)
    m = map_network(net, n_steps, batch, hardware=big, **kw)
    assert len(m.slices[pop]) == 1
    return m.placements[m.pe(0, pop, 0)].sram_used, max(m.sram_used())


def test_exactly_at_capacity_fits_and_one_byte_less_splits():
    net = feedforward([4, 10, 3])
    need, largest = _pe_need(net, 50, 2, pop=1)
    assert need == largest  # the hidden slice is the largest PE
    hw = Spinnaker2Hardware().replace(sram_per_pe=need)
    m = map_network(net, 50, 2, hardware=hw)
    assert len(m.slices[1]) == 1 and max(m.sram_used()) == need
    m = map_network(net, 50, 2, hardware=hw.replace(sram_per_pe=need - 1))
    assert len(m.slices[1]) == 2
    assert max(m.sram_used()) <= need - 1
    assert [s.size for s in m.slices[1]] == [5, 5]  # balanced when the balanced split fits


def test_one_neuron_that_does_not_fit_names_limit_need_and_capacity():
    net = feedforward([4, 10, 3])
    hw1 = Spinnaker2Hardware().replace(max_neurons_per_pe=1, sram_per_pe=10**9)
    one = map_network(net, 50, 1, hardware=hw1)
    need = max(pl.sram_used for pl in one.placements if pl.slice.population == 1)
    with pytest.raises(MappingError) as err:
        map_network(net, 50, 1, hardware=hw1.replace(sram_per_pe=need - 1))
    e = err.value
    assert e.limit == "SRAM per PE"
    assert e.need == f"{need} bytes" and e.capacity == f"{need - 1} bytes"
    assert "layer1" in str(e) and str(need) in str(e) and str(need - 1) in str(e)


def test_sram_budget_items_follow_the_stated_formula():
    T, B = 30, 3
    net = feedforward([4, 6, 2])
    m = map_network(net, T, B, replicas=1)  # local batch 3
    hidden = m.placements[m.pe(0, 1, 0)].sram
    hw = m.hardware
    assert hidden["fixed"] == hw.code_bytes + hw.runtime_bytes + hw.receive_buffer_bytes
    assert hidden["weights"] == 4 * 4 * 6  # dense float32
    assert hidden["gradients"] == 4 * 4 * 6
    assert hidden["optimizer"] == 2 * 4 * 4 * 6  # Adam m and v on the update PE
    assert hidden["neuron_state"] == 6 * 4 * 4 * B
    assert hidden["spike_tape"] == 6 * 8 * 12 * B  # 8 records (time, slopes) per neuron
    assert hidden["adjoint_state"] == 6 * 4 * 4 * B
    assert hidden["spike_log"] == 4 * 8 * 8 * B  # 4 input neurons, 8 records of 8 bytes
    output = m.placements[m.pe(0, 2, 0)].sram
    assert output["loss_scratch_neurons"] == 2 * 4 * B and output["loss_scratch_samples"] == 4 * B
    assert output["loss_rows"] == 2 * 4 * B * 2  # two readouts of the whole (2-neuron) layer
    inference = map_network(net, T, B, replicas=1, training=False)
    items = inference.placements[inference.pe(0, 1, 0)].sram
    assert "spike_tape" not in items and items["gradients"] == 0 and items["optimizer"] == 0


def test_replicas_are_placed_whole_on_chips():
    net = feedforward([5, 120, 3])
    m = map_network(net, 30, 40)
    per = m.pes_per_replica
    assert m.n_pes == 40 * per
    for r in range(m.replicas):
        chips = {m.placements[pe].chip for pe in m.pe_table[r]}
        assert len(chips) == 1
    assert m.chips_used == -(-40 // (152 // per))
    # replica 0 holds the update PEs of the slices with trainable weights (not the input)
    updates = [pl for pl in m.placements if pl.update]
    assert len(updates) == per - len(m.slices[0])
    assert all(pl.replica == 0 and pl.slice.population > 0 for pl in updates)


def test_too_many_pes_raises_with_need_and_capacity():
    hw = Spinnaker2Hardware().replace(
        pes_per_chip=8, chips_per_board=2, board_width=2, max_neurons_per_pe=2
    )
    net = feedforward([2, 4, 2])  # 1 + 2 + 1 = 4 PEs per replica
    m = map_network(net, 10, 4, hardware=hw)
    assert m.n_pes == 16 and m.chips_used == 2
    with pytest.raises(MappingError) as err:
        map_network(net, 10, 5, hardware=hw)
    assert (err.value.limit, err.value.need, err.value.capacity) == ("PEs", 20, 16)


def test_local_batch_and_replica_choice():
    net = feedforward([2, 3, 2])
    m = map_network(net, 10, 10, replicas=4)
    assert m.local_batch == 3 and m.replicas == 4
    with pytest.raises(ValueError, match="replicas"):
        map_network(net, 10, 4, replicas=5)


def test_training_flow_marks_backward_populations_and_error_projections():
    net = feedforward([3, 4, 2])
    f = training_flow(net)
    assert f.loss_populations == (2,)
    assert f.backward.tolist() == [False, True, True]
    assert f.error.tolist() == [False, True] and f.gradient.tolist() == [True, True]
    frozen_first = feedforward([3, 4, 2], trainable=[False, True])
    f = training_flow(frozen_first)
    assert f.backward.tolist() == [False, False, True]
    assert f.error.tolist() == [False, False] and f.gradient.tolist() == [False, True]
    f = training_flow(net, training=False)
    assert not f.backward.any() and not f.error.any()
    with pytest.raises(ValueError, match="loss_populations"):
        training_flow(net, loss_populations=[0])


def test_sparse_projection_budget_counts_connections_only():
    mask = np.zeros((4, 6), bool)
    mask[0, :3] = True
    mask[1, 5] = True
    net = feedforward([4, 6, 2], masks=[mask, np.ones((6, 2), bool)])
    m = map_network(net, 10, 1, training=False)
    assert m.placements[m.pe(0, 1, 0)].sram["weights"] == 4 * 8  # 4 connections x 8 bytes
    assert m.connection_counts(0).sum() == 4


def test_key_space_too_small_raises():
    net = feedforward([5, 120, 3])
    m = map_network(net, 30, 40)
    ks = allocate_keys(m)
    assert ks.used_bits <= 32
    small = map_network(net, 30, 40, hardware=Spinnaker2Hardware().replace(key_bits=10))
    with pytest.raises(MappingError, match="key bits"):
        allocate_keys(small)
