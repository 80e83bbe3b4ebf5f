"""SpiNNaker2 model: results computed by PEs from their packets equal the reference engine's,
and every injected packet fault changes them and is reported by the model's own checks.

Tolerances: with 64-bit payloads and one replica the model's spikes, losses, gradients and
weights are bitwise the reference engine's (float32): each PE runs the reference kernels on its
slice, the arrivals reach it in the reference's order and the only sums it splits (``dL/dt``
of a spike over downstream slices) have one term here.  With several replicas the gradient is
summed over replicas along a tree instead of sample after sample: float64 reassociation,
<= 1e-12 relative.  With 32-bit payloads spike times within the tick, errors and gradient words
are rounded to float32 on the wire: ~1e-7 relative.
"""

import numpy as np
import pytest

from pynn_eventprop.datasets.yin_yang import yin_yang_dataset
from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.engine.platforms import make_engine
from pynn_eventprop.spinnaker2.fabric import PacketError
from pynn_eventprop.spinnaker2.simulation import Spinnaker2Engine
from pynn_eventprop.spinnaker2.testing import feedforward
from pynn_eventprop.training import TrainingStep, TTFSCrossEntropy

N_STEPS, LR = 40, 0.05


def yin_yang(batch, seed=0):
    rng = np.random.default_rng(seed)
    w = [rng.normal(1.5, 0.8, (5, 60)), rng.normal(0.9, 0.8, (60, 3))]
    net = feedforward([5, 60, 3], weights=w)
    data = yin_yang_dataset("train")
    return net, LIFDiscretisation(1.0), data.times[: 3 * batch], data.labels[: 3 * batch]


def three_layers_mixed_delays(seed=3, dt=0.5):
    """6 -> 10 -> 8 -> 3, every connection its own delay of 1-4 ticks; neurons fire several
    times."""
    rng = np.random.default_rng(seed)
    sizes = [6, 10, 8, 3]
    delays = [rng.integers(1, 5, (a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    weights = [rng.normal(2.5, 1.0, (6, 10)), rng.normal(2.0, 1.0, (10, 8)),
               rng.normal(2.0, 1.0, (8, 3))]  # fmt: skip
    net = feedforward(sizes, weights=weights, delays=delays, dt=dt)
    times = rng.uniform(0.0, 8.0, (9, 6))
    times[rng.random(times.shape) < 0.2] = np.nan
    return net, LIFDiscretisation(dt), times, rng.integers(0, 3, 9)


def train(engine, times, labels, batch, steps=3):
    """Forward, backward and an SGD step per batch; returns per batch (spikes, loss, grads)."""
    out_pop = len(engine.network.populations) - 1
    step = TrainingStep(engine, 0, out_pop, TTFSCrossEntropy(), N_STEPS)
    record = []
    for b in range(steps):
        sel = slice(b * batch, (b + 1) * batch)
        forward = step.forward(times[sel], labels[sel])
        grads = step.gradients(forward).weights
        for k, g in enumerate(grads):
            engine.set_weights(k, engine.get_weights(k) - LR * g)
        spikes = {k: (s.times, s.neurons, s.offsets) for k, s in forward.result.spikes.items()}
        record.append((spikes, forward.loss.loss, grads))
    weights = [engine.get_weights(k) for k in range(len(engine.network.projections))]
    return record, weights


def compare(ref, model, rtol):
    (r_steps, r_w), (m_steps, m_w) = ref, model
    for (rs, rl, rg), (ms, ml, mg) in zip(r_steps, m_steps, strict=True):
        for k in rs:
            for a, b in zip(rs[k], ms[k], strict=True):
                if rtol == 0:
                    assert np.array_equal(a, b), k
                else:
                    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
        assert rl == ml if rtol == 0 else rl == pytest.approx(ml, rel=rtol)
        for a, b in zip(rg, mg, strict=True):
            assert np.abs(a).max() > 0
            np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())
    for a, b in zip(r_w, m_w, strict=True):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("replicas, bits, rtol", [(1, 64, 0.0), (4, 64, 1e-6), (4, 32, 2e-5)])
def test_yin_yang_training_steps_equal_the_reference_engine(replicas, bits, rtol):
    """Three SGD steps of a batch of 8: spikes, losses, gradients, weights.  Several replicas:
    the float64 gradient sums differ in the last bits, which can flip a float32 weight by one
    unit in the last place after an update (hence 1e-6 after three steps)."""
    batch = 8
    net, disc, times, labels = yin_yang(batch)
    ref = make_engine("reference", net, disc, batch, np.float32)
    model = Spinnaker2Engine(net, disc, batch, replicas=replicas, payload_bits=bits)
    compare(train(ref, times, labels, batch), train(model, times, labels, batch), rtol)
    assert model.problems == []
    stats = model.fabric.stats
    assert stats["spike"].packets > 0 and stats["error"].packets > 0
    if replicas > 1:
        assert stats["gradient"].packets > 0 and stats["weight"].packets > 0


def test_three_layers_with_mixed_delays_equal_the_reference_engine():
    net, disc, times, labels = three_layers_mixed_delays()
    ref = make_engine("reference", net, disc, 3, np.float32)
    model = Spinnaker2Engine(net, disc, 3, replicas=1, payload_bits=64)
    compare(train(ref, times, labels, 3), train(model, times, labels, 3), 0.0)
    three = Spinnaker2Engine(net, disc, 3, replicas=3, payload_bits=64)
    compare(train(ref.__class__(net, disc, 3, np.float32), times, labels, 3),
            train(three, times, labels, 3), 1e-6)  # fmt: skip


# --- fault injection -----------------------------------------------------------------------------


def _faulty_run(fault=None, corrupt=None):
    """Two training steps of the Yin-Yang network on 2 replicas with one fault injected before
    the first; returns (spikes and losses, gradients, final weights, problems)."""
    batch = 4
    net, disc, times, labels = yin_yang(batch, seed=1)
    model = Spinnaker2Engine(net, disc, batch, replicas=2, payload_bits=64, on_fault="record",
                             n_steps=N_STEPS)  # fmt: skip
    if fault is not None:
        model.inject(*fault)
    if corrupt is not None:
        corrupt(model)
    steps, weights = train(model, times, labels, batch, steps=2)
    return [(s[0], s[1]) for s in steps], [s[2] for s in steps], weights, model.problems


@pytest.fixture(scope="module")
def clean():
    return _faulty_run()


def _same_spikes(a, b):
    return all(np.array_equal(x, y) for k in a for x, y in zip(a[k], b[k], strict=True))


def _changed(clean, faulty):
    """Whether any spike, loss, gradient or weight differs from the clean run."""
    outputs, grads, weights, _ = faulty
    return (any(not _same_spikes(s, c[0]) or loss != c[1]
                for (s, loss), c in zip(outputs, clean[0], strict=True))
            or any(not np.array_equal(a, b) for g, h in zip(grads, clean[1], strict=True)
                   for a, b in zip(g, h, strict=True))
            or any(not np.array_equal(a, b)
                   for a, b in zip(weights, clean[2], strict=True)))  # fmt: skip


@pytest.mark.parametrize(
    "fault, message",
    [
        (("drop", "spike", 5), "spike packet #"),
        (("drop", "error", 3), "error packet #"),
        (("drop", "gradient", 7), "gradient packet #7 from PE"),
        (("drop", "weight", 2), "weight packet #2 from PE"),
        (("duplicate", "spike", 5), "received 2 times"),
        (("drop", "label", 1), "label packet #1 from the host missing"),
    ],
)
def test_a_lost_or_duplicated_packet_changes_the_result_and_is_reported(clean, fault, message):
    assert clean[3] == []
    faulty = _faulty_run(fault)
    assert _changed(clean, faulty)
    problems = faulty[3]
    assert any(message in p for p in problems), problems
    action = "missing" if fault[0] == "drop" else "times"
    assert any(action in p for p in problems), problems


def test_a_duplicated_label_packet_is_reported_and_harmless(clean):
    """A PE keeps one label per sample: a duplicate changes nothing but is reported."""
    faulty = _faulty_run(("duplicate", "label", 4))
    assert not _changed(clean, faulty)
    assert faulty[3] == ["PE 5: label packet #1 from the host received 2 times"]


@pytest.mark.parametrize(
    "fault, message",
    [
        (("corrupt", "label", 0), "label packet #0 from the host failed its parity check"),
        (("corrupt", "spike", 5), "spike packet #5 from PE 0 failed its parity check"),
    ],
)
def test_a_corrupted_packet_changes_the_result_and_fails_its_parity_check(clean, fault, message):
    """One payload bit flipped in flight (the exponent's most significant bit): the receiver's
    parity check names the packet; a label that becomes another class or none changes the
    loss."""
    faulty = _faulty_run(fault)
    assert _changed(clean, faulty)
    problems = faulty[3]
    assert any(message in p and "parity" in p for p in problems), problems


def _misroute_spikes(model):
    """Send the input PE's spike block of replica 0 to the output PE's core instead."""
    m = model.mapping
    src, hidden, out = m.pe(0, 0, 0), m.pe(0, 1, 0), m.pe(0, 2, 0)
    rt = model.routing
    key = rt.keyspace.key("spike", src, 0)
    chip = m.placements[src].chip
    table = rt.tables[chip]
    entry = table.lookup(key)
    assert m.placements[hidden].core in table.routes[entry][1]
    model.fabric.corrupt_entry(chip, entry, cores=(m.placements[out].core,))


def test_a_corrupted_routing_entry_changes_the_result_and_is_reported(clean):
    faulty = _faulty_run(corrupt=_misroute_spikes)
    assert _changed(clean, faulty)
    problems = faulty[3]
    assert any("no spike tally from PE" in p for p in problems), problems
    assert any("unexpected spike packet(s)" in p and "misrouted" in p for p in problems)


def test_by_default_a_fault_raises_naming_the_packet():
    batch = 4
    net, disc, times, labels = yin_yang(batch, seed=1)
    model = Spinnaker2Engine(net, disc, batch, replicas=2, n_steps=N_STEPS)
    model.inject("drop", "spike", 0)
    with pytest.raises(PacketError, match="spike packet #0 from PE 0 missing"):
        train(model, times, labels, batch, steps=1)


# --- interface ------------------------------------------------------------------------------------


def test_chunked_runs_and_state_round_trip_equal_one_run():
    net, disc, times, _ = three_layers_mixed_delays()
    src = SpikeTrains.from_matrix(times[:3])
    whole = Spinnaker2Engine(net, disc, 3, replicas=3, payload_bits=64)
    one = whole.run(N_STEPS, sources={0: src}, record={3: ("v",)})
    chunked = Spinnaker2Engine(net, disc, 3, replicas=3, payload_bits=64)
    chunked.run(N_STEPS // 2, sources={0: src})
    state = chunked.get_state()
    fresh = Spinnaker2Engine(net, disc, 3, replicas=1, payload_bits=64)
    fresh.set_state(state)  # spikes in flight cross the chunk boundary in the PEs' queues
    second = fresh.run(N_STEPS // 2, sources={0: src}, record={3: ("v",)})
    for k in (1, 2, 3):
        late = one.spikes[k].times[one.spikes[k].times > N_STEPS // 2 * disc.dt]
        np.testing.assert_allclose(np.sort(second.spikes[k].times), np.sort(late), rtol=1e-6)
    np.testing.assert_allclose(second.signals[3]["v"], one.signals[3]["v"][N_STEPS // 2 :],
                               atol=1e-5)  # fmt: skip
    assert one.spikes[3].times.size > 0


def test_only_float32_whole_ticks_feed_forward():
    net, disc, _, _ = three_layers_mixed_delays()
    with pytest.raises(ValueError, match="float32"):
        Spinnaker2Engine(net, disc, dtype=np.float64)
    with pytest.raises(ValueError, match="payload_bits must be 32 or 64"):
        Spinnaker2Engine(net, disc, payload_bits=16, n_steps=10)
    loop = feedforward([2, 3])
    loop.projections.append(
        loop.projections[0].__class__(
            "self", 1, 1, "excitatory", np.ones((3, 3)), np.ones((3, 3)), np.ones((3, 3), bool)
        )
    )
    with pytest.raises(ValueError, match="feed-forward networks only"):
        Spinnaker2Engine(loop, LIFDiscretisation(1.0))


def test_traffic_is_counted_when_read_and_the_log_stays_bounded(monkeypatch):
    import pynn_eventprop.spinnaker2.simulation as simulation

    monkeypatch.setattr(simulation, "LOG_LIMIT", 3)
    net, disc, times, _ = three_layers_mixed_delays()
    model = Spinnaker2Engine(net, disc, 3, replicas=1)
    src = SpikeTrains.from_matrix(times[:3])
    for _ in range(10):
        model.reset()
        model.run(20, sources={0: src})
        assert len(model._log) <= 4
    assert model.traffic.samples == 30 and model.traffic.batches == 10
    assert model.traffic.kinds["spike"].packets == model.fabric.stats["spike"].packets


def test_models_the_pe_programs_lack_are_refused_by_name():
    """IF_curr_alpha neurons and Tsodyks-Markram synapses would otherwise run as IF_curr_exp
    and static synapses on the PEs, silently."""
    import dataclasses

    net = feedforward([2, 3, 2])
    alpha = dataclasses.replace(net.populations[1], model="IF_curr_alpha")
    with pytest.raises(ValueError, match="population .* is IF_curr_alpha"):
        Spinnaker2Engine(dataclasses.replace(net, populations=[net.populations[0], alpha,
                                                               net.populations[2]]),
                         LIFDiscretisation(1.0))  # fmt: skip
    plastic = dataclasses.replace(net.projections[0], short_term={"U": np.full((2, 3), 0.5)})
    with pytest.raises(ValueError, match="Tsodyks-Markram"):
        Spinnaker2Engine(dataclasses.replace(net, projections=[plastic, net.projections[1]]),
                         LIFDiscretisation(1.0))  # fmt: skip
