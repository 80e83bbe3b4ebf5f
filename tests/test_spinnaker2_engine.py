"""SpiNNaker2 model on the reference engine: identical float32 numerics, counted traffic."""

import numpy as np
import pytest
from engine_networks import random_input, three_layer

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine.simulation import ReferenceEngine
from pynn_eventprop.spinnaker2 import MappingError, build_routing, count_traffic, plan_traffic
from pynn_eventprop.spinnaker2.simulation import Spinnaker2Engine

DT, N_STEPS, BATCH = 0.5, 80, 3


def _setup(seed=1):
    rng = np.random.default_rng(seed)
    disc = LIFDiscretisation(DT)
    net = three_layer(rng)
    src = random_input(rng, disc, BATCH, 6, N_STEPS, t_max=20)
    c_time = rng.normal(size=(BATCH, 3))
    return disc, net, src, c_time


def _train_step(engine, src, c_time):
    """Forward and backward of L = sum c * first spike time, through the Engine interface."""
    engine.reset()
    result = engine.run(N_STEPS, sources={0: src}, keep_for_backward=True)
    engine.readouts(result, 2, ["first_spike_time"])
    grads = {2: {"first_spike_time": c_time.astype(np.float32)}}
    gradients = engine.backward(result, grads, adjoints=True)
    out = {"rasters": result.tape.rasters}
    return out, gradients.weights, gradients.adjoints


def test_rasters_and_gradients_identical_to_reference_engine_in_float32():
    disc, net, src, c_time = _setup()
    ref = ReferenceEngine(net, disc, batch_size=BATCH, dtype=np.float32)
    model = Spinnaker2Engine(net, disc, batch_size=BATCH)
    ref_out, ref_grads, ref_adj = _train_step(ref, src, c_time)
    out, grads, adj = _train_step(model, src, c_time)
    for k, r in ref_out["rasters"].items():
        assert np.array_equal(out["rasters"][k].spikes, r.spikes)
        assert np.array_equal(out["rasters"][k].phase, r.phase)  # bitwise, not approximately
    assert all(out["rasters"][k].phase.dtype == np.float32 for k in (1, 2))
    assert all(out["rasters"][k].spikes.sum() > 10 for k in (1, 2))  # every layer spikes
    for g_ref, g in zip(ref_grads, grads, strict=True):
        assert np.array_equal(g, g_ref) and np.abs(g).max() > 0
    for k in ref_adj:
        assert np.array_equal(adj[k]["lambda_v"], ref_adj[k]["lambda_v"])


def test_model_counts_the_traffic_of_its_own_spikes():
    disc, net, src, c_time = _setup()
    model = Spinnaker2Engine(net, disc, batch_size=BATCH)
    out, _, _ = _train_step(model, src, c_time)
    spikes = {k: r.spikes for k, r in out["rasters"].items()}
    expected = count_traffic(plan_traffic(model.mapping, build_routing(model.mapping)), spikes)
    tr = model.traffic
    assert tr.samples == BATCH and tr.batches == 1
    for kind in ("spike", "error", "gradient", "weight", "label"):
        assert tr.kinds[kind].packets == expected.kinds[kind].packets, kind
    # forward spike packets = input spikes + hidden spikes (the output layer sends none)
    assert tr.kinds["spike"].packets == spikes[0].sum() + spikes[1].sum()
    assert tr.kinds["error"].packets > 0 and tr.error_saving > 1
    rep = model.report().to_dict()
    assert rep["traffic"]["packets_per_sample"]["spike"]["packets"] == pytest.approx(
        tr.kinds["spike"].packets / BATCH
    )
    assert "cost" in rep


def test_chunked_runs_count_the_same_forward_traffic():
    disc, net, src, _ = _setup()
    whole = Spinnaker2Engine(net, disc, batch_size=BATCH, n_steps=N_STEPS)
    whole.run(N_STEPS, sources={0: src})
    chunked = Spinnaker2Engine(net, disc, batch_size=BATCH, n_steps=N_STEPS)
    half = N_STEPS // 2
    chunked.run(half, sources={0: src})  # each run takes the spikes of its own window
    chunked.run(half, sources={0: src})
    a, b = whole.traffic, chunked.traffic
    assert b.samples == a.samples == BATCH  # only the chunk starting at step 0 counts samples
    assert a.kinds["spike"].packets == b.kinds["spike"].packets > 0
    pa, pb = a.kinds["spike"].per_step, b.kinds["spike"].per_step
    # a source spike emitted at the boundary step is sent in the next window's first tick
    boundary = [half - 1, half]
    assert np.array_equal(np.delete(pa, boundary), np.delete(pb, boundary))
    assert pa[boundary].sum() == pb[boundary].sum()
    assert a.operations["synaptic_events"] == b.operations["synaptic_events"]
    assert np.allclose(a.time_ms["forward"]["realtime"], b.time_ms["forward"]["realtime"])


def test_backward_longer_than_the_mapped_history_is_refused():
    disc, net, src, c_time = _setup()
    model = Spinnaker2Engine(net, disc, batch_size=BATCH, n_steps=N_STEPS // 2)
    with pytest.raises(MappingError, match="history steps"):
        _train_step(model, src, c_time)


def test_only_float32():
    disc, net, _, _ = _setup()
    with pytest.raises(ValueError, match="float32"):
        Spinnaker2Engine(net, disc, dtype=np.float64)
