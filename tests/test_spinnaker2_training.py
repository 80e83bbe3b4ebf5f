"""The SpiNNaker2 model trains as the reference engine does (float32), through PyNN: equal
spikes and trained weights, hybrid off-chip (reference engine) / on-chip training, the Yin-Yang
example on the model.

The model is selected the way a user selects it, ``sim.setup(..., platform="spinnaker2")``.  The
platform ``"spinnaker2_64"`` registered here is the model with 64-bit packet payloads (spike
times within the tick, errors and gradient words arrive exactly), for bitwise comparisons; the
reference engine runs the same PyNN script in float32 (``Trainer(dtype=np.float32)``).
"""

import json

import numpy as np
import pytest
from engine_networks import random_input
from pyNN.parameters import Sequence
from pyNN.random import NumpyRNG, RandomDistribution

from pynn_eventprop.compile import compile_network
from pynn_eventprop.datasets import LatencyCode, SpikeDataset, yin_yang_dataset
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.engine.platforms import make_engine, register_engine
from pynn_eventprop.eventprop import TTFSCrossEntropy
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.spinnaker2 import Spinnaker2Engine
from pynn_eventprop.tasks import yin_yang
from pynn_eventprop.training import Adam
from pynn_eventprop.training.checkpoint import load_checkpoint

CODE = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
PLATFORMS = ("reference", "spinnaker2_64")


def exact_payload_model(network, discretisation, batch_size=1, dtype=np.float32, **options):
    """The SpiNNaker2 model with 64-bit payloads and two replicas (batch-parallel: gradients
    reduced and weights broadcast by packets)."""
    return Spinnaker2Engine(network, discretisation, batch_size, dtype, payload_bits=64,
                            replicas=2, **options)  # fmt: skip


def one_replica_model(network, discretisation, batch_size=1, dtype=np.float32, **options):
    """The SpiNNaker2 model with 64-bit payloads on one replica: bitwise the reference."""
    return Spinnaker2Engine(network, discretisation, batch_size, dtype, payload_bits=64,
                            replicas=1, **options)  # fmt: skip


def two_replica_model(network, discretisation, batch_size=1, dtype=np.float32, **options):
    """The SpiNNaker2 model with two replicas (gradient reduction and weight broadcast)."""
    return Spinnaker2Engine(network, discretisation, batch_size, dtype, replicas=2, **options)


register_engine("spinnaker2_64", "test_spinnaker2_training:exact_payload_model", np.float32)
register_engine("spinnaker2_2", "test_spinnaker2_training:two_replica_model", np.float32)
register_engine("spinnaker2_1x64", "test_spinnaker2_training:one_replica_model", np.float32)


@pytest.fixture(scope="module")
def data():
    return yin_yang_dataset("train", CODE), yin_yang_dataset("validation", CODE)


def example_network(platform, *options):
    """The Yin-Yang example's PyNN network (its own ``build_network``) on ``platform``."""
    args = yin_yang.parse_args(["--preset", "quick", *options])
    args.platform = platform  # also "spinnaker2_64", which the example's command line lacks
    inputs, hidden, output = yin_yang.build_network(args)
    return args, inputs, hidden, output


def example_trainer(platform, *options, dtype=np.float32):
    args, inputs, hidden, output = example_network(platform, *options)
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    trainer = Trainer(
        inputs,
        output,
        loss,
        duration=args.duration,
        batch_size=args.batch_size,
        seed=args.seed,
        dtype=dtype,
        progress=False,
    )
    return trainer


def trained_weights(trainer) -> dict:
    """Master weights (float64) of every trainable projection, by label."""
    return {
        trainer.state.projections[k].label: trainer.engine.get_weights(c)
        for k, c in trainer.trainable.items()
    }


def engines(sim, batch):
    """The float32 reference engine and the model (64-bit payloads) for the network set up now."""
    network, _ = compile_network(sim.simulator.state)
    disc = sim.simulator.state.discretisation
    return {
        "reference": make_engine("reference", network, disc, batch, np.float32),
        "spinnaker2": make_engine("spinnaker2_64", network, disc, batch),
    }


# --- (a) identical spikes ------------------------------------------------------------------------
def deep_network(sim):
    """8 sources -> 30 -> 20 -> 4 with sparse and skip connections, delays of 1-3 ms,
    an inhibitory projection and a refractory period of 2 steps (dt = 0.5 ms)."""
    sim.setup(timestep=0.5, min_delay=0.5)
    rng = NumpyRNG(seed=11)
    neuron = dict(yin_yang.NEURON, tau_refrac=1.0)
    src = sim.Population(8, sim.SpikeSourceArray(), label="src")
    layers = [sim.Population(n, sim.IF_curr_exp(**neuron), label=f"l{n}") for n in (30, 20, 4)]
    for layer in layers:
        layer.initialize(v=0.0)
    l30, l20, l4 = layers

    def connect(pre, post, p, mean, delay, receptor="excitatory"):
        connector = sim.AllToAllConnector() if p == 1 else sim.FixedProbabilityConnector(p, rng=rng)
        # PyNN's sign convention for static current synapses: inhibitory weights negative
        low, high = sorted((0.0, 2 * mean * (-1 if receptor == "inhibitory" else 1)))
        weight = RandomDistribution("uniform", (low, high), rng=rng)
        synapse = sim.StaticSynapse(weight=weight, delay=delay)
        sim.Projection(pre, post, connector, synapse, receptor_type=receptor)

    connect(src, l30, 0.7, 1.6, RandomDistribution("uniform_int", (1, 3), rng=rng))
    connect(src, l30, 0.3, 0.8, 0.5, receptor="inhibitory")
    connect(l30, l20, 1, 0.4, 1.0)
    connect(l30, l4, 0.5, 0.2, 1.5)  # skip connection
    connect(l20, l4, 1, 0.5, 2.0)


@pytest.mark.parametrize("network", ["yin_yang", "deep"])
def test_spikes_identical_to_the_float32_reference_over_batches(sim, data, network):
    """Bitwise: every PE runs the reference kernels on its slice with the spike times it
    rebuilt from 64-bit payloads (tick + time within it), in the reference's arrival order."""
    batch, n_steps = 16, 80
    if network == "yin_yang":
        example_network("spinnaker2")
        inputs = [
            SpikeTrains.from_matrix(data[0].times[b * batch : (b + 1) * batch]) for b in range(3)
        ]
    else:
        deep_network(sim)
        rng = np.random.default_rng(5)
        disc = sim.simulator.state.discretisation
        inputs = [random_input(rng, disc, batch, 8, n_steps, t_max=25) for _ in range(3)]
    sims = engines(sim, batch)
    model = sims["spinnaker2"]
    assert isinstance(model, Spinnaker2Engine)
    sent = 0
    for trains in inputs:  # a few batches, each from step 0
        out = {}
        for name, engine in sims.items():
            engine.reset()
            out[name] = engine.run(n_steps, sources={0: trains}, keep_for_backward=True).spikes
        for k, ref in out["reference"].items():
            got = out["spinnaker2"][k]
            for field in ("times", "neurons", "offsets"):
                assert np.array_equal(getattr(got, field), getattr(ref, field)), (k, field)
            assert ref.times.size > batch, k  # every population spikes in every batch
        outgoing = {p.pre for p in model.network.projections}
        sent += sum(out["spinnaker2"][k].times.size for k in outgoing)
    # the model counted what it sent: one forward spike packet per spike of a sending population
    assert model.traffic.samples == 3 * batch
    assert model.traffic.kinds["spike"].packets == sent == model.fabric.stats["spike"].packets
    assert model.problems == []


def test_pynn_recording_on_the_model_matches_the_batched_float32_reference(sim, data):
    """``run``/``get_data`` with the switch (default 32-bit payloads): the spikes and v a user
    records are the float32 reference engine's, to the float32 rounding of the input spike
    times on the wire (< 2e-6 ms within a 1 ms tick)."""
    n_samples, duration = 3, 40.0
    args, inputs, hidden, output = example_network("spinnaker2")
    output.record(["spikes", "v"])
    times = data[1].times[:n_samples]
    for i in range(n_samples):
        inputs.set(spike_times=[Sequence([t]) for t in times[i]])
        sim.run(duration)
        sim.reset()
    block = output.get_data()
    assert isinstance(sim.simulator.state.engine, Spinnaker2Engine)

    n_steps = int(duration / args.dt)
    ref = engines(sim, n_samples)["reference"]
    result = ref.run(n_steps, sources={0: SpikeTrains.from_matrix(times)},
                     record={output._index: ("v",)})  # fmt: skip
    spikes, v_ref = result.spikes[output._index], result.signals[output._index]["v"]
    n_spikes = 0
    for i, segment in enumerate(block.segments):
        expected = spikes.per_neuron(i)
        for train in segment.spiketrains:
            j = train.annotations["source_index"]
            np.testing.assert_allclose(train.magnitude, expected[j], rtol=0, atol=1e-5)
            n_spikes += len(train)
        v = np.asarray(segment.analogsignals[0].magnitude)[1:]  # row 0 is the initial value
        np.testing.assert_allclose(v, v_ref[:, i].astype(float), rtol=0, atol=1e-5)
    assert n_spikes >= n_samples  # the output layer spikes


# --- (b) weights after one epoch ------------------------------------------------------------------
def train_both(sim, train, epochs, *options):
    """Train the example network on both platforms (float32): per platform the initial and
    trained weights, the history, the trainer, then the spikes and gradients of the first
    batch of ``train`` after training."""
    result = {}
    for platform in PLATFORMS:
        trainer = example_trainer(platform, *options)
        initial = trained_weights(trainer)
        history = trainer.fit(train, epochs)
        batch = slice(0, trainer.batch_size)
        forward = trainer.step.forward(train.times[batch], train.labels[batch])
        stopped = trainer.step.readouts_only  # the reference engine stops these early
        spikes = {k: s.times for k, s in forward.result.spikes.items() if k not in stopped}
        for k in stopped:  # what the loss reads of them
            first = trainer.engine.readouts(forward.result, k, ("first_spike_time",))
            spikes[k] = first["first_spike_time"]
        gradient = trainer.gradient(train.times[batch], train.labels[batch])
        result[platform] = (initial, trained_weights(trainer), history, trainer, spikes, gradient)
        sim.end()
    return result


def assert_weights_agree(result):
    (w0, ref, ref_history, _, ref_spikes, ref_grad) = result["reference"]
    (_, got, history, model, spikes, grad) = result[PLATFORMS[1]]
    for label, w in ref.items():
        scale = np.abs(w).max()
        # within 1e-5 relative: the replicas' gradients are summed along a tree, not sample
        # after sample (float64 reassociation), which can move a float32 weight by one unit in
        # the last place, and that difference is carried through the epoch
        np.testing.assert_allclose(got[label], w, rtol=1e-5, atol=1e-5 * scale, err_msg=label)
        assert np.abs(w - w0[label]).max() > 1e-2 * scale, label  # training changed the weights
    assert history["loss"] == pytest.approx(ref_history["loss"], rel=1e-6)
    # after training, on a batch: spike times and gradients (the same 1e-5 weights: a spike
    # time moves by about as much, a gradient relatively more where a spike grazes threshold)
    for k, t in ref_spikes.items():
        np.testing.assert_allclose(spikes[k], t, rtol=1e-5, atol=1e-5, err_msg=k)
    for label, g in ref_grad.items():
        scale = np.abs(g).max()
        assert scale > 0, label
        np.testing.assert_allclose(grad[label], g, rtol=1e-3, atol=1e-4 * scale, err_msg=label)
    return model


def test_weights_after_one_epoch_of_yin_yang_agree_with_the_reference_engine(sim, data):
    """One full epoch of the whole 5000-sample training split with the example's quick preset
    (5-60-3, 40 steps, batch 32) on two batch replicas; the twin network over ten epochs is the
    slow test below."""
    train = data[0]
    result = train_both(sim, train, 1)
    model = assert_weights_agree(result)
    assert model.engine.mapping.replicas == 2
    for kind in ("gradient", "weight"):  # the replicas' gradients and weights travelled
        assert model.engine.training_traffic.kinds[kind].packets > 0, kind
    # every batch of the epoch was trained on the model and counted (the last one padded), and
    # the gradient of one batch after training
    batches = train.n_batches(model.batch_size) + 1
    assert model.engine.training_traffic.batches == batches
    assert model.engine.training_traffic.samples == batches * model.batch_size


@pytest.mark.slow
def test_weights_after_training_the_twin_network_agree_with_the_reference_engine(sim, data):
    """The SpiNNaker2 twin's configuration (5-120-3, 27 steps, batch 22), ten full epochs."""
    twin = yin_yang.PRESETS["twin"]
    train = yin_yang_dataset(
        "train", LatencyCode(t_early=0.0, t_late=twin["t_late"], bias_time=0.0)
    )
    result = train_both(sim, train, 10, "--preset", "twin", "--train-samples", "5000")
    assert_weights_agree(result)


def mixed_delay_trainer(sim, platform):
    """6 -> 10 -> 8 -> 3, every projection trainable, every connection its own delay of 1-4 ms
    (2-8 steps of 0.5 ms); Adam with a gradient-norm clip."""
    sim.setup(timestep=0.5, min_delay=0.5, platform=platform)
    rng = NumpyRNG(seed=3)
    layers = [sim.Population(6, sim.SpikeSourceArray(), label="input")]
    rule = sim.EventPropRule(Adam(lr=0.01), max_grad_norm=1.0)
    for n, mean in ((10, 2.5), (8, 2.0), (3, 2.0)):
        post = sim.Population(n, sim.IF_curr_exp(**yin_yang.NEURON), label=f"layer{n}")
        post.initialize(v=yin_yang.NEURON["v_rest"])
        synapse = sim.EventPropSynapse(
            weight=RandomDistribution("normal", (mean, 1.0), rng=rng),
            delay=RandomDistribution("uniform_int", (1, 4), rng=rng),
            rule=rule,
        )
        label = f"{layers[-1].label}-{post.label}"
        sim.Projection(layers[-1], post, sim.AllToAllConnector(), synapse, label=label)
        layers.append(post)
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    return Trainer(layers[0], layers[-1], loss, duration=20.0, batch_size=3, seed=1,
                   dtype=np.float32, progress=False)  # fmt: skip


@pytest.mark.parametrize("platform, rtol", [("spinnaker2_1x64", 0.0), ("spinnaker2_64", 1e-6)])
def test_trainer_on_mixed_delays_and_three_layers_equals_the_reference_engine(sim, platform, rtol):
    """Two epochs of four batches through the Trainer (the model's loss and Adam programs on
    its PEs): losses, then spikes, gradients and weights on a batch after training."""
    rng = np.random.default_rng(3)
    times = rng.uniform(0.0, 8.0, (12, 6))
    times[rng.random(times.shape) < 0.2] = np.nan
    data = SpikeDataset(times, rng.integers(0, 3, 12), n_classes=3, duration=20.0)
    out = {}
    for name in ("reference", platform):
        trainer = mixed_delay_trainer(sim, name)
        history = trainer.fit(data, 2)
        forward = trainer.step.forward(times[:3], data.labels[:3])
        spikes = {k: s.times for k, s in forward.result.spikes.items()}
        gradient = trainer.gradient(times[:3], data.labels[:3])
        out[name] = (history["loss"], spikes, gradient, trained_weights(trainer), trainer)
        sim.end()
    (ref_loss, ref_spikes, ref_grad, ref_w, _), (loss, spikes, grad, w, model) = out.values()
    assert loss == pytest.approx(ref_loss, rel=rtol, abs=0)
    for k, t in ref_spikes.items():
        assert t.size > 0, k
        np.testing.assert_allclose(spikes[k], t, rtol=rtol, atol=rtol)
    for label, g in ref_grad.items():
        assert np.abs(g).max() > 0, label
        np.testing.assert_allclose(grad[label], g, rtol=rtol, atol=rtol * np.abs(g).max())
        np.testing.assert_allclose(w[label], ref_w[label], rtol=rtol, atol=rtol)
    engine = model.engine
    assert engine.problems == []
    for kind in ("label", "error"):
        assert engine.training_traffic.kinds[kind].packets > 0, kind
    for c in model.trainable.values():  # Adam ran on the update PEs, 8 steps
        assert all(pe.optimisers[c].step_count == 8 for pe in engine.machine.update_pes(c))


# --- (c) hybrid training --------------------------------------------------------------------------
def test_hybrid_training_off_chip_then_on_chip_and_back(sim, data, tmp_path):
    """Pre-train on the reference engine (float64, off-chip), fine-tune on the model from the
    checkpoint (on-chip, float32), then return to the reference engine."""
    train = data[0].subset(np.arange(1024))
    validation = data[1].subset(np.arange(500))
    options = ("--train-samples", str(len(train)))
    off_chip, on_chip = tmp_path / "off_chip.npz", tmp_path / "on_chip.npz"

    # 1. off-chip pre-training: the reference engine, its default float64
    pre = example_trainer("reference", *options, dtype=None)
    pre.fit(train, 2, checkpoint=off_chip)
    pre_accuracy = pre.evaluate(validation)["accuracy"]
    assert not hasattr(pre.engine, "traffic")  # nothing is counted off-chip
    sim.end()

    # 2. on-chip fine-tuning: the same script with the switch (two replicas, so that the
    # gradients are reduced and the weights broadcast by packets), resumed from the checkpoint
    fine = example_trainer("spinnaker2_2", *options)
    fine.load_checkpoint(off_chip)
    saved = load_checkpoint(off_chip)["projections"]
    for k, c in fine.trainable.items():
        projection = fine.state.projections[k]
        w = saved[projection.label]["weights"]
        # carried over exactly: the PyNN projection, and the engine's weights are the float32
        # weights the PEs hold (the checkpoint's rounded to single precision)
        assert np.array_equal(fine.engine.get_weights(c), w.astype(np.float32))
        # the Trainer writes the engine's weights back into PyNN: float32 values there too
        assert np.array_equal(projection.get("weight", format="array"), w.astype(np.float32))
        state = fine.optimisers[k].state_dict()
        assert state["step_count"] == saved[projection.label]["optimiser"]["step_count"] > 0
    assert fine.epoch == 2
    on_chip_accuracy = fine.evaluate(validation)["accuracy"]
    for k, c in fine.trainable.items():  # every replica's PEs hold the float32 weights
        w = saved[fine.state.projections[k].label]["weights"].astype(np.float32)
        for pe in fine.engine.machine.population(fine.engine.network.projections[c].post):
            local = pe.sn.projections.index(c)
            assert np.array_equal(pe.sim.get_weights(local), w[:, pe.start : pe.stop])
    assert on_chip_accuracy == pytest.approx(pre_accuracy, abs=0.01)  # float32 vs float64
    fine.fit(train, 2, checkpoint=on_chip)
    history = fine.history
    assert history["epoch"] == [1, 2, 3, 4]
    assert history["loss"][3] < history["loss"][2] < history["loss"][1]  # keeps decreasing
    fine_accuracy = fine.evaluate(validation)["accuracy"]
    assert fine_accuracy >= pre_accuracy - 0.02
    # the model counted the fine-tuning: two epochs of batches, training traffic only
    model = fine.engine
    batches = 2 * train.n_batches(fine.batch_size)
    assert model.training_traffic.batches == batches
    assert model.training_traffic.samples == batches * fine.batch_size
    # the evaluations before and after fine-tuning: the engine (and its tally) persists while
    # the PyNN network is unchanged
    evaluated = 2 * validation.n_batches(fine.batch_size) * fine.batch_size
    assert model.traffic.samples == model.training_traffic.samples + evaluated
    for kind in ("spike", "error", "gradient", "weight"):
        assert model.training_traffic.kinds[kind].packets > 0, kind
    report = model.report().to_dict()
    assert report["traffic"]["scope"] == "training"
    assert report["traffic"]["samples_counted"] == model.training_traffic.samples
    everything = model.report(scope="all").to_dict()["traffic"]
    assert (everything["scope"], everything["samples_counted"]) == ("all", model.traffic.samples)
    final = trained_weights(fine)
    sim.end()

    # 3. back off-chip: the fine-tuned weights continue on the reference engine
    back = example_trainer("reference", *options, dtype=None)
    back.load_checkpoint(on_chip)
    for label, w in trained_weights(back).items():
        assert np.array_equal(w, final[label])
    assert back.evaluate(validation)["accuracy"] == pytest.approx(fine_accuracy, abs=0.01)
    back.fit(train, 1)
    assert back.history["loss"][4] < back.history["loss"][3]
    assert back.evaluate(validation)["accuracy"] >= fine_accuracy - 0.02


# --- (d) the example on the model -----------------------------------------------------------------
def test_yin_yang_example_runs_on_the_model_and_reports(sim, tmp_path, capsys):
    argv = ["--preset", "quick", "--platform", "spinnaker2", "--out", str(tmp_path)]
    figures = yin_yang.main(argv + ["--no-progress", "--train-samples", "500"])
    printed = capsys.readouterr().out
    assert figures["platform"] == "spinnaker2"
    assert "SpiNNaker2 model report" in printed and "error packets: event-based" in printed
    assert "sensitivity at 150 MHz" in printed
    assert (tmp_path / "spinnaker2_pe_map.png").stat().st_size > 0
    report = json.loads((tmp_path / "spinnaker2_report.json").read_text())
    mapping, traffic = report["mapping"], report["traffic"]
    # quick preset (5-60-3, batch 32): by default the fewest replicas whose PEs fit their SRAM,
    # here one replica running all 32 samples
    assert mapping["replicas"] == 1 and mapping["local_batch"] == 32
    assert mapping["pes_used"] == mapping["pes_per_replica"]
    assert traffic["scope"] == "training"
    assert traffic["samples_counted"] == 3 * 16 * 32  # 3 epochs of 16 batches of 32 (padded)
    packets = {kind: c["packets"] for kind, c in traffic["packets_per_sample"].items()}
    for kind in ("spike", "label", "error", "tally"):
        assert packets[kind] > 0, kind
    # one output slice: first-spike times need no exchange; one replica: no reduction, no
    # broadcast (the text names the reason instead of printing zero rows)
    assert packets["loss"] == packets["gradient"] == packets["weight"] == 0
    assert "gradient (one replica: no gradient reduction)" in printed
    assert traffic["event_vs_dense_errors"]["saving_ratio"] > 1
    assert report["cost"]["time_per_sample_ms"]["realtime"]["total"][0] > 0
