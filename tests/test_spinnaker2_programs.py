"""SpiNNaker2 model: the loss and update programs run on the PEs, on their own data and packets.

The loss program: the host's labels reach the output PEs as routed packets, split output
layers exchange their readouts, and each output PE calls the training core's loss object on
whole rows.  The update program: each update PE clips and steps the training core's
optimiser on its own weights, reduced gradient and moment buffers, and multicasts the result.

Tolerances: with one replica and 64-bit payloads everything is bitwise the float32 reference
engine's (same kernels, same loss and optimiser objects, the same rows and columns).  With
several replicas a PE's loss has the factor ``1/n_local`` which the program rescales by
``n_local / n`` (exact for powers of two, as here) and the replicas' gradients are summed
along a tree (float64 reassociation; 1e-6 relative after a few Adam steps, as for SGD in
``test_spinnaker2_engine.py``).
"""

import numpy as np
import pytest
from test_spinnaker2_engine import N_STEPS, three_layers_mixed_delays, yin_yang

from pynn_eventprop.engine.platforms import make_engine
from pynn_eventprop.spinnaker2.hardware import Spinnaker2Hardware
from pynn_eventprop.spinnaker2.simulation import Spinnaker2Engine
from pynn_eventprop.training import Adam, EventPropRule, Learner, TrainingStep, TTFSCrossEntropy

LOSS = TTFSCrossEntropy(silent_push=1.0, theta=1.0)  # reads two readouts: first spike, v_max


def forward_both(model, net, disc, times, labels, batch, loss=LOSS):
    """One batch forward with the loss on the reference engine (host) and on the model."""
    ref = make_engine("reference", net, disc, batch, np.float32)
    out = []
    for engine in (ref, model):
        step = TrainingStep(engine, 0, len(net.populations) - 1, loss, N_STEPS)
        forward = step.forward(times, labels)
        out.append((step, forward))
    return out


def test_labels_are_routed_packets_and_the_loss_is_the_training_cores():
    """Two replicas: each replica's output PE gets its samples' labels (and the batch count)
    from the host through the routing tables, evaluates the loss and keeps dL/dreadout."""
    batch = 8
    net, disc, times, labels = yin_yang(batch)
    model = Spinnaker2Engine(net, disc, batch, replicas=2, payload_bits=64)
    (ref_step, ref), (_, got) = forward_both(model, net, disc, times[:7], labels[:7], batch)
    assert got.loss.loss == ref.loss.loss  # the per-sample losses, summed in the same order
    for field in ("per_sample", "predictions", "correct", "readout"):
        assert np.array_equal(getattr(got.loss, field), getattr(ref.loss, field)), field
    # the PEs keep dL/dreadout in single precision, as the backward pass receives it from the
    # host (TrainingStep casts it to the engine's float32); 1/4 rescaled by 4/7 against 1/7:
    # one float32 rounding apart at most
    for name, g in ref.loss.readout_grads.items():
        np.testing.assert_allclose(got.loss.readout_grads[name], g.astype(np.float32),
                                   rtol=1.2e-7, atol=0)  # fmt: skip
    stats = model.fabric.stats["label"]
    # 7 labelled samples (4 + 3) and one count packet per replica, each to one output PE
    assert stats.packets == 7 + 2 and stats.deliveries == 9
    assert stats.hops >= stats.packets  # every label passes at least the host's chip router
    assert model.problems == []
    # the output PEs' own gradients drive the backward pass: equal to the reference's
    ref_grads = ref_step.gradients(ref).weights
    grads = model.backward(got.result, {}).weights  # nothing from the host for the output
    for a, b in zip(ref_grads, grads, strict=True):
        assert np.abs(a).max() > 0
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    label = model.training_traffic.kinds["label"]
    assert (label.packets, label.deliveries, label.hops) == (9, 9, stats.hops)


def test_a_split_output_layer_exchanges_its_readouts_and_stays_bitwise():
    """At most 2 neurons per PE: the 3 output neurons on 2 PEs, which send each other both
    readouts of every labelled sample (softmax normalises over the whole layer)."""
    batch = 4
    net, disc, times, labels = yin_yang(batch)
    hw = Spinnaker2Hardware().replace(max_neurons_per_pe=2)
    model = Spinnaker2Engine(net, disc, batch, replicas=1, payload_bits=64, hardware=hw)
    (_, ref), (_, got) = forward_both(model, net, disc, times[:batch], labels[:batch], batch)
    assert [s.size for s in model.mapping.slices[2]] == [2, 1]
    assert got.loss.loss == ref.loss.loss
    for name, g in ref.loss.readout_grads.items():  # kept in float32 (see the test above)
        assert np.array_equal(got.loss.readout_grads[name], g.astype(np.float32)), name
    # each of the 2 PEs sends its neurons' 2 readouts for 4 samples: (2 + 1) x 2 x 4
    assert model.fabric.stats["loss"].packets == 24 and model.fabric.stats["loss"].deliveries == 24
    assert model.problems == []


def adam_training(engine, times, labels, batch, steps, max_grad_norm=None):
    """``steps`` TrainingStep.train calls with Adam on every projection; per step the loss,
    spikes and gradients used, then the weights and the optimisers."""
    step = TrainingStep(engine, 0, len(engine.network.populations) - 1, LOSS, N_STEPS)
    rule = EventPropRule(Adam(lr=0.02), max_grad_norm=max_grad_norm)
    learners = {k: Learner(rule.new_optimiser(), rule.clip, f"p{k}")
                for k in range(len(engine.network.projections))}  # fmt: skip
    record = []
    for b in range(steps):
        sel = slice(b * batch, (b + 1) * batch)
        forward, used = step.train(times[sel], labels[sel], learners)
        spikes = [s.times for s in forward.result.spikes.values()]
        record.append((forward.loss.loss, spikes, used))
    weights = [engine.get_weights(k) for k in learners]
    return record, weights, learners


def no_host_writes(model):
    """Make the host's weight writes fail: the update program must not use them."""

    def refuse(k, weights):
        raise AssertionError("the host wrote weights")

    model.set_weights = refuse


@pytest.mark.parametrize(
    "network, replicas, rtol",
    [("yin_yang", 1, 0.0), ("mixed_delays", 1, 0.0), ("mixed_delays", 3, 1e-6)],
)
def test_adam_runs_on_the_update_pes_and_equals_the_host_update(network, replicas, rtol):
    """Three Adam steps through TrainingStep.train (clipped to a norm the gradients exceed):
    losses, spikes, gradients, weights and the optimiser state equal the reference engine's,
    with the host's weight writes disabled on the model."""
    if network == "yin_yang":
        batch = 6
        net, disc, times, labels = yin_yang(batch)
    else:
        batch = 3
        net, disc, times, labels = three_layers_mixed_delays()
    ref = make_engine("reference", net, disc, batch, np.float32)
    model = Spinnaker2Engine(net, disc, batch, replicas=replicas, payload_bits=64,
                             n_steps=N_STEPS)  # fmt: skip
    no_host_writes(model)
    expected = adam_training(ref, times, labels, batch, 3, max_grad_norm=0.05)
    got = adam_training(model, times, labels, batch, 3, max_grad_norm=0.05)
    for (rl, rs, ru), (ml, ms, mu) in zip(expected[0], got[0], strict=True):
        assert ml == pytest.approx(rl, rel=rtol, abs=0)
        for a, b in zip(rs, ms, strict=True):
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)
        for k, g in ru.items():
            np.testing.assert_allclose(mu[k], g, rtol=rtol, atol=rtol * np.abs(g).max())
    for a, b in zip(expected[1], got[1], strict=True):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)
    for k, learner in expected[2].items():  # the host's optimiser state, read back from the PEs
        ours, theirs = got[2][k].optimiser.state_dict(), learner.optimiser.state_dict()
        assert ours["step_count"] == theirs["step_count"] == 3
        for slot, value in theirs["state"]["weights"].items():
            np.testing.assert_allclose(ours["state"]["weights"][slot], value, rtol=rtol, atol=0)
    used = [np.linalg.norm(g) for _, _, u in got[0] for g in u.values()]
    assert max(used) == pytest.approx(0.05, rel=1e-12)  # the clip was active
    assert model.problems == []
    for k in range(len(net.projections)):  # the moments live on the update PEs
        pes = model.machine.update_pes(k)
        assert all(pe.optimisers[k].step_count == 3 for pe in pes)
        assert all(pe.replica == 0 and model.mapping.placements[pe.pe].sram["optimizer"] > 0
                   for pe in pes)  # fmt: skip
    if replicas > 1:
        assert model.fabric.stats["weight"].packets > 0
    assert model.training_traffic.kinds["label"].packets > 0


def test_a_clip_over_a_split_population_uses_norm_packets():
    """The hidden layer on several PEs: the update PEs exchange their blocks' sums of squares
    and clip by the whole gradient's norm, as the host does (to float64 reassociation)."""
    batch = 4
    net, disc, times, labels = yin_yang(batch)
    hw = Spinnaker2Hardware().replace(max_neurons_per_pe=16)  # hidden 60 on 4 PEs
    ref = make_engine("reference", net, disc, batch, np.float32)
    model = Spinnaker2Engine(net, disc, batch, replicas=1, payload_bits=64, hardware=hw)
    no_host_writes(model)
    expected = adam_training(ref, times, labels, batch, 2, max_grad_norm=0.05)
    got = adam_training(model, times, labels, batch, 2, max_grad_norm=0.05)
    assert len(model.mapping.slices[1]) == 4
    for a, b in zip(expected[1], got[1], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
    # per step: 4 update PEs of the hidden layer, each sends one partial to 3 others
    norm = model.fabric.stats["norm"]
    assert (norm.packets, norm.deliveries) == (2 * 4, 2 * 4 * 3)
    assert model.training_traffic.kinds["norm"].packets == 8
    assert model.problems == []


def test_an_optimiser_with_more_state_than_the_mapping_reserved_is_refused():
    batch = 2
    net, disc, times, labels = yin_yang(batch)
    model = Spinnaker2Engine(net, disc, batch, replicas=1, n_steps=N_STEPS)

    class ThreeMoments(Adam):
        slots = ("m", "v", "extra")

    step = TrainingStep(model, 0, 2, LOSS, N_STEPS)
    learners = {0: Learner(ThreeMoments(), None, "input-hidden")}
    with pytest.raises(ValueError, match="keeps 3 words per weight.*optimizer_words=2"):
        step.train(times[:batch], labels[:batch], learners)


def test_an_inference_mapping_has_no_loss_program_and_the_host_evaluates():
    """``training=False``: no label flow, so the host evaluates the loss on the readouts it
    reads (as before the loss program existed); no label packet is sent."""
    batch = 4
    net, disc, times, labels = yin_yang(batch)
    model = Spinnaker2Engine(net, disc, batch, replicas=1, payload_bits=64, training=False)
    (_, ref), (_, got) = forward_both(model, net, disc, times[:batch], labels[:batch], batch)
    assert got.loss.loss == ref.loss.loss
    assert model.fabric.stats["label"].packets == 0
    assert "label" not in {f.kind for f in model.routing.flows}
