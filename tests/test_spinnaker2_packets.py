"""SpiNNaker2 model: packet counts and per-PE work against hand counts on tiny networks."""

import numpy as np
import pytest

from pynn_eventprop.spinnaker2 import (
    OperationCycles,
    Spinnaker2Hardware,
    build_routing,
    count_traffic,
    map_network,
    plan_traffic,
)
from pynn_eventprop.spinnaker2.packets import tick_timing
from pynn_eventprop.spinnaker2.testing import feedforward, random_spikes

T = 4


def _plan(net, batch, hw=None, cycles=None, **kw):
    m = map_network(net, T, batch, hardware=hw, **kw)
    return plan_traffic(m, build_routing(m), cycles)


def _tiny_rasters():
    """Hand-made spikes of the 2-3-2 network, batch 2 (raster index 0 = step 0 for the input,
    step 1 for neurons)."""
    src = np.zeros((T, 2, 2), bool)
    src[0, 0, 0] = src[2, 0, 1] = src[1, 1, 0] = True  # steps 0, 2 (sample 0); 1 (sample 1)
    hid = np.zeros((T, 2, 3), bool)
    hid[0, 0, 0] = hid[2, 0, 2] = hid[3, 1, 1] = True  # steps 1, 3 (sample 0); 4 (sample 1)
    out = np.zeros((T, 2, 2), bool)
    out[1, 0, 0] = True
    return {0: src, 1: hid, 2: out}


def test_hand_count_tiny_network():
    hw = Spinnaker2Hardware().replace(max_neurons_per_pe=2)  # hidden split 2 + 1
    plan = _plan(feedforward([2, 3, 2]), 2, hw)
    assert [s.size for s in plan.mapping.slices[1]] == [2, 1]
    tr = count_traffic(plan, _tiny_rasters())
    k = tr.kinds
    # forward: 3 input + 3 hidden spikes; the output layer sends nothing
    assert k["spike"].packets == 6
    # input packets reach both hidden slices (3 x 2), hidden packets the one output slice (3)
    assert k["spike"].deliveries == 9
    assert k["spike"].per_step.tolist() == [3, 1, 1, 1]  # step-0 emission handled in tick 1
    # backward: hidden spikes at steps 1 and 3 (+ delay 1 <= T) each get one partial from the
    # single output slice; the step-4 spike's error would arrive after T
    assert k["error"].packets == 2 and k["error"].per_step.tolist() == [0, 1, 0, 1]
    # dense: 2 output neurons x 4 steps x 2 samples
    assert tr.dense_error_packets == 16 and tr.error_saving == 8
    # update, 2 replicas: 2x3 + 3x2 trainable weights reduced once and multicast once
    assert k["gradient"].packets == 12 and k["weight"].packets == 12
    assert k["weight"].deliveries == 12
    # labels: one per sample and one count per replica, from the host; one output slice: no
    # readouts exchanged
    assert k["label"].packets == 4 and k["loss"].packets == 0
    # everything on one chip: one router per packet
    for kind in ("spike", "error", "gradient", "weight"):
        assert k[kind].hops == k[kind].packets
    ops = tr.operations
    assert ops["synaptic_events"] == 3 * 3 + 3 * 2
    assert ops["backward_synapses"] == 2 * 2
    assert ops["gradient_synapses"] == 3 * 3 + 2 * 2
    assert ops["neuron_updates"] == ops["adjoint_updates"] == (3 + 2) * 2 * T
    assert tr.max_spikes_per_neuron == 1 and not tr.spike_log_overflow


def test_key_only_spikes_cost_32_bits_less():
    plan = _plan(feedforward([2, 3, 2]), 2)
    with_phase = count_traffic(plan, _tiny_rasters())
    key_only = count_traffic(plan, _tiny_rasters(), spike_payload=False)
    assert with_phase.kinds["spike"].bits_per_packet == 64
    assert key_only.kinds["spike"].bits_per_packet == 32
    assert key_only.kinds["spike"].packets == with_phase.kinds["spike"].packets


def test_error_packets_follow_delay_and_post_slices():
    # hidden neuron 0 connects only to output slice 0; neuron 1 to both slices; delay 2
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], bool)
    net = feedforward([1, 2, 4], masks=[np.ones((1, 2)), mask], delays=[1, 2])
    hw = Spinnaker2Hardware().replace(max_neurons_per_pe=2)  # output slices {0,1} and {2,3}
    plan = _plan(net, 1, hw)
    spikes = {0: np.zeros((T, 1, 1), bool), 1: np.zeros((T, 1, 2), bool)}
    spikes[2] = np.zeros((T, 1, 4), bool)
    spikes[1][0, 0, 0] = True  # step 1 -> 1 packet in tick 3
    spikes[1][1, 0, 1] = True  # step 2 -> 2 packets in tick 4
    spikes[1][2, 0, 1] = True  # step 3 -> 3 + 2 > T: none
    tr = count_traffic(plan, spikes)
    assert tr.kinds["error"].per_step.tolist() == [0, 0, 1, 2]
    assert tr.kinds["spike"].deliveries == 3 * 2  # both output slices are in the block's tree
    assert tr.operations["backward_synapses"] == 2 + 3


def test_loss_gather_for_split_output():
    hw = Spinnaker2Hardware().replace(max_neurons_per_pe=2)
    plan = _plan(feedforward([2, 2, 3]), 2, hw)  # output split 2 + 1
    tr = count_traffic(plan, random_spikes(plan.mapping.network, T, 2, rate=0.0))
    # every output neuron's first-spike time multicast to the other slice, per sample
    assert tr.kinds["loss"].packets == 3 * 2 and tr.kinds["loss"].deliveries == 3 * 2
    assert tr.kinds["label"].packets == 2 * 2
    assert tr.kinds["spike"].packets == tr.kinds["error"].packets == 0


def test_inference_mapping_counts_no_training_traffic():
    plan = _plan(feedforward([2, 3, 2]), 2, training=False)
    tr = count_traffic(plan, _tiny_rasters())
    assert tr.kinds["spike"].packets == 6
    for kind in ("error", "gradient", "weight", "label", "loss"):
        assert tr.kinds[kind].packets == 0
    assert tr.total_cycles["backward"] == 0


def test_accumulating_batches_sums_counts():
    plan = _plan(feedforward([2, 3, 2]), 2)
    a = count_traffic(plan, _tiny_rasters())
    b = a + a
    assert b.samples == 4 and b.batches == 2
    assert b.kinds["spike"].packets == 12 and b.per_sample("spike") == 3
    assert np.array_equal(b.kinds["error"].per_step, 2 * a.kinds["error"].per_step)
    assert (
        b.time_ms["forward"]["realtime"].tolist() == (2 * a.time_ms["forward"]["realtime"]).tolist()
    )


def test_work_per_tick_and_overrun():
    # 150 MHz x 1 ms = 150,000 cycles per tick; a neuron update of 60,000 cycles x 3 neurons
    # x 1 sample overruns at 150 MHz (180,000) but not at 300 MHz (300,000 per tick)
    cycles = OperationCycles().replace(neuron_update=60000.0)
    plan = _plan(feedforward([2, 3, 2]), 1, cycles=cycles)
    spikes = {k: v[:, :1] for k, v in _tiny_rasters().items()}
    tr = count_traffic(plan, spikes)
    hidden_pe = plan.mapping.pe(0, 1, 0)
    assert tr.peak_cycles["forward"][hidden_pe] >= 180000
    assert tr.overrun_ticks["forward"].tolist() == [T, 0]
    assert tr.time_ms["forward"]["realtime"][0] > T * 1.0
    assert tr.time_ms["forward"]["realtime"][1] == pytest.approx(T * 1.0)


def test_tick_timing_formula():
    hw = Spinnaker2Hardware().replace(clock_levels_mhz=(100.0,), timer_tick_ms=1.0)
    work = np.array([[50000.0, 10.0], [250000.0, 0.0]])  # busiest: 0.5 ms, 2.5 ms at 100 MHz
    t, over = tick_timing(work, hw)
    assert t["realtime"].tolist() == [1.0 + 2.5] and t["compute"].tolist() == [3.0]
    assert over.tolist() == [1]


def test_spike_log_overflow_is_flagged():
    plan = _plan(feedforward([2, 3, 2]), 1, max_spikes_per_neuron=2)
    spikes = {k: np.zeros((T, 1, n), bool) for k, n in enumerate((2, 3, 2))}
    spikes[1][:3, 0, 0] = True  # a hidden neuron spikes 3 times: its error needs all 3
    tr = count_traffic(plan, spikes)
    assert tr.max_spikes_per_neuron == 3 and tr.spike_log_overflow


def test_bad_rasters_are_rejected():
    plan = _plan(feedforward([2, 3, 2]), 2)
    spikes = _tiny_rasters()
    del spikes[1]
    with pytest.raises(ValueError, match="missing for population 1"):
        count_traffic(plan, spikes)
    spikes = _tiny_rasters()
    spikes[2] = np.zeros((T, 2, 5), bool)
    with pytest.raises(ValueError, match="must have shape"):
        count_traffic(plan, spikes)


def test_hops_across_chips():
    # one replica per chip (3 PEs each, 4 PEs per chip): reduction and redistribution cross
    # one chip-to-chip link, so each of those packets passes two routers
    hw = Spinnaker2Hardware().replace(pes_per_chip=4, chips_per_board=2, board_width=2)
    plan = _plan(feedforward([2, 3, 2]), 2, hw)
    assert plan.mapping.chips_used == 2
    tr = count_traffic(plan, _tiny_rasters())
    for kind in ("gradient", "weight"):
        assert tr.kinds[kind].packets == 12 and tr.kinds[kind].hops == 24
    assert tr.kinds["spike"].hops == tr.kinds["spike"].packets  # spikes stay on their chip


def test_programs_can_be_counted_separately():
    plan = _plan(feedforward([2, 3, 2]), 2)
    whole = count_traffic(plan, _tiny_rasters())
    fwd = count_traffic(plan, _tiny_rasters(), programs=("forward",))
    rest = count_traffic(plan, _tiny_rasters(), programs=("loss", "backward", "update"))
    assert fwd.kinds["error"].packets == 0 and rest.kinds["spike"].packets == 0
    assert fwd.samples == 2 and rest.samples == 0  # samples are counted with the forward run
    both = fwd + rest
    for kind in whole.kinds:
        assert both.kinds[kind].packets == whole.kinds[kind].packets, kind
    assert rest.time_ms["forward"]["realtime"].tolist() == [0.0, 0.0]
    inference = _plan(feedforward([2, 3, 2]), 2, training=False)
    with pytest.raises(ValueError, match="training=True"):
        count_traffic(inference, _tiny_rasters(), programs=("backward",))
    with pytest.raises(ValueError, match="programs must be among"):
        count_traffic(plan, _tiny_rasters(), programs=("learn",))


def test_backward_needs_the_whole_sample():
    plan = _plan(feedforward([2, 3, 2]), 2)
    with pytest.raises(ValueError, match="from step 0, got start_step 2"):
        count_traffic(plan, _tiny_rasters(), start_step=2, programs=("backward",))


def test_neurons_without_targets_send_nothing():
    # hidden slice {0, 1} has no connection to the output, slice {2} has
    mask = np.array([[0, 0], [0, 0], [1, 1]], bool)
    hw = Spinnaker2Hardware().replace(max_neurons_per_pe=2)
    plan = _plan(feedforward([2, 3, 2], masks=[np.ones((2, 3)), mask]), 2, hw)
    tr = count_traffic(plan, _tiny_rasters())
    # input: 3 packets to both hidden slices; hidden: only h2's spike (slice 1) is sent
    assert tr.kinds["spike"].packets == 3 + 1 and tr.kinds["spike"].deliveries == 3 * 2 + 1
    assert tr.kinds["error"].packets == 1  # h2 at step 3: 3 + 1 <= T, one output slice
