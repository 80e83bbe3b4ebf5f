"""Exact adjoint: finite differences, a hand derivation, and what training rejects."""

import numpy as np
import pytest
from engine_networks import (
    dense,
    lif,
    random_input,
    source,
    three_layer,
    weight_finite_differences,
)

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine.adjoint import backward
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.engine.simulation import ReferenceEngine
from pynn_eventprop.network import CompiledNetwork

DT, N_STEPS, BATCH = 0.5, 80, 3


def _run(sim, n_steps, sources=None):
    """Run kept for backward; returns the grid tape as the old ``{trajectory, rasters}``."""
    tape = sim.run(n_steps, sources=sources, keep_for_backward=True).tape
    return {"trajectory": tape.trajectory, "rasters": tape.rasters}


def _loss_and_grads(sim, src, c_time, c_v):
    """L = sum over output spikes of c_time * spike time + sum over steps of c_v * V_out.

    Every spike and every step carries loss, which exercises the grid adjoint beyond what the
    readouts reach (the engine's internal ``adjoint.backward`` takes these grids).
    """
    sim.reset()
    out = _run(sim, N_STEPS, {0: src})
    traj = out["trajectory"]
    last = max(traj)
    spikes = traj[last].spikes
    t = (np.arange(1, N_STEPS + 1)[:, None, None] - spikes.phase) * DT
    loss = np.sum(np.where(spikes.spikes, c_time * t, 0)) + np.sum(traj[last].v * c_v)
    grads = {
        last: {
            "phase": np.where(spikes.spikes, -DT * c_time, 0.0),  # dt_spike/dphase = -dt
            "v": np.broadcast_to(c_v, spikes.phase.shape).copy(),
        }
    }
    return loss, out, grads


def test_gradients_match_central_finite_differences_through_three_layers():
    """All weights of a 6-8-3 network with delays, inhibition and refractoriness.

    The loss is smooth in the weights while the spike pattern is fixed: for every perturbation
    we assert that no spike appears or vanishes (eps = 1e-6 nA is far below the smallest
    threshold margin here).  Central differences then have truncation error O(eps^2 L''') ~ 1e-12
    and rounding error ~ 1e-16 |L| / eps ~ 1e-7 for |L| ~ 1e3, so we allow 1e-6 absolute on
    gradients of order 1.
    """
    rng = np.random.default_rng(1)
    disc = LIFDiscretisation(DT)
    net = three_layer(rng)
    src = random_input(rng, disc, BATCH, 6, N_STEPS, t_max=20)
    c_time, c_v = rng.normal(size=(N_STEPS, BATCH, 3)), 0.01 * rng.normal(size=3)
    sim = ReferenceEngine(net, disc, batch_size=BATCH)
    _, out, grads = _loss_and_grads(sim, src, c_time, c_v)
    gradients, _ = backward(sim, out["trajectory"], out["rasters"], grads)
    pattern = {i: t.spikes.spikes.copy() for i, t in out["trajectory"].items()}
    assert all(p.sum() > 50 for p in pattern.values())  # spikes in every layer

    def evaluate():
        loss, o, _ = _loss_and_grads(sim, src, c_time, c_v)
        return loss, {i: t.spikes.spikes for i, t in o["trajectory"].items()}

    for k, proj in enumerate(net.projections):
        fd = weight_finite_differences(sim, k, evaluate, pattern)
        assert np.abs(gradients[k] - fd).max() < 1e-6, proj.label
        assert np.abs(fd).max() > 0.1  # the check is not vacuous


def test_spike_time_gradient_matches_hand_derivation():
    """One input spike of weight w drives one neuron over threshold.

    V at step n is w k[n] with k the unit PSP kernel, so the crossing phase is
    phi = (w k_n - theta) / (w (k_n - k_{n-1})) and d phi/dw = theta / (w^2 (k_n - k_{n-1})):
    the spike time (n - phi) dt has derivative -dt theta / (w^2 (k_n - k_{n-1})).
    """
    disc = LIFDiscretisation(0.5)
    w, theta = 2.0, 1.0
    net = CompiledNetwork(
        [source("in", 1), lif("a", 1, v_rest=0.0, v_reset=0.0, v_thresh=theta, cm=1.0)],
        [dense("p", 0, 1, [[w]], dt=0.5)],
    )
    src = SpikeTrains.from_lists([[np.array([0.0])]])
    sim = ReferenceEngine(net, disc)
    out = _run(sim, 40, {0: src})
    traj = out["trajectory"][1]
    (k,) = np.nonzero(traj.spikes.spikes[:, 0, 0])
    k0 = k[0]
    kernel_n, kernel_prev = traj.u[k0, 0, 0] / w, traj.v_prev[k0, 0, 0] / w
    expected = -disc.dt * theta / (w**2 * (kernel_n - kernel_prev))
    first_spike_only = np.zeros_like(traj.spikes.phase)
    first_spike_only[k0] = -disc.dt  # L = time of the first spike
    gradients, _ = backward(
        sim, out["trajectory"], out["rasters"], {1: {"phase": first_spike_only}}
    )
    assert gradients[0][0, 0] == pytest.approx(expected, rel=1e-12)


def test_float32_gradients_agree_with_float64():
    rng = np.random.default_rng(2)
    disc = LIFDiscretisation(DT)
    net = three_layer(rng, tau_refrac=0.0)
    src = random_input(rng, disc, BATCH, 6, N_STEPS, t_max=20)
    c_time, c_v = rng.normal(size=(N_STEPS, BATCH, 3)), 0.01 * rng.normal(size=3)
    results = []
    for dtype in (np.float64, np.float32):
        sim = ReferenceEngine(net, disc, batch_size=BATCH, dtype=dtype)
        _, out, grads = _loss_and_grads(sim, src, c_time, c_v)
        grads = {i: {k: v.astype(dtype) for k, v in g.items()} for i, g in grads.items()}
        results.append(backward(sim, out["trajectory"], out["rasters"], grads)[0])
    for g64, g32 in zip(*results, strict=True):
        assert g32.dtype == np.float32
        # float32 carries ~7 digits; the division by U - V_prev at spikes amplifies rounding
        assert np.abs(g64 - g32).max() < 1e-3 * np.abs(g64).max()


def test_backward_rejects_recurrent_networks():
    rng = np.random.default_rng(0)
    disc = LIFDiscretisation(DT)
    net = three_layer(rng)
    net.projections.append(dense("loop", 2, 1, np.zeros((3, 8)), dt=DT))
    sim = ReferenceEngine(net, disc)
    out = _run(sim, 10)
    with pytest.raises(ValueError, match="feed-forward networks only"):
        backward(sim, out["trajectory"], out["rasters"], {})


def test_backward_rejects_conductance_based_neurons():
    disc = LIFDiscretisation(DT)
    net = CompiledNetwork(
        [source("in", 1), lif("c", 2, model="IF_cond_exp")],
        [dense("p", 0, 1, [[0.1, 0.1]], dt=DT)],
    )
    sim = ReferenceEngine(net, disc)
    out = _run(sim, 10)
    with pytest.raises(ValueError, match="IF_curr_exp neurons only.*IF_cond_exp"):
        backward(sim, out["trajectory"], out["rasters"], {})


def test_backward_rejects_loss_gradients_of_the_wrong_shape():
    rng = np.random.default_rng(0)
    disc = LIFDiscretisation(DT)
    net = three_layer(rng)
    sim = ReferenceEngine(net, disc, batch_size=2)
    out = _run(sim, 10)
    with pytest.raises(ValueError, match=r"'phase' of population 'out' has shape \(10, 1, 1\)"):
        backward(sim, out["trajectory"], out["rasters"], {2: {"phase": np.zeros((10, 1, 1))}})
