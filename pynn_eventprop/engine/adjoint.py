"""Exact adjoint (backward pass) of the forward simulation (docs/equations.md §3).

Feed-forward networks only: every population is its own strongly connected component.  The
layers are processed in reverse order; per layer, one elementwise reverse loop over time and two
matrix products over all steps at once (error to the previous layer, weight gradient).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .dynamics import RECEPTOR_KEYS, CurrentLIF
from .graph import is_recurrent


@dataclass
class Adjoint:
    """Adjoint trajectories of one population, shape ``(n_steps, batch, size)``, steps 1..N.

    ``lambda_v = dL/dV[n]`` (1/mV), ``lambda_u = dL/dU[n]``, ``lambda_i[x] = dL/dI_x[n]`` (1/nA)
    for receptor keys ``"E"`` and ``"I"``.
    """

    lambda_v: np.ndarray
    lambda_u: np.ndarray
    lambda_i: dict


def check_trainable(sim) -> None:
    """Raise unless the network is one the adjoint supports (feed-forward, current-based)."""
    for comp in sim.order:
        if is_recurrent(comp, sim.edges):
            labels = [sim.network.populations[i].label for i in comp]
            raise ValueError(
                f"EventProp training supports feed-forward networks only; populations {labels} "
                "form a recurrent loop"
            )
    for i, model in sim.models.items():
        if not isinstance(model, CurrentLIF):
            pop = sim.network.populations[i]
            raise ValueError(
                f"EventProp training supports current-based IF_curr_exp neurons only; population "
                f"'{pop.label}' is {pop.model}"
            )


def backward(sim, trajectory, rasters, loss_grads):
    """Gradients of the loss w.r.t. every projection's weights.

    Parameters
    ----------
    sim : Simulation
        The simulation that produced ``trajectory`` in one run of ``N`` steps from step 0.
    trajectory : dict pop index -> LayerTrajectory
    rasters : dict pop index -> Raster (sources and neurons) of that run
    loss_grads : dict pop index -> dict with optional ``"phase"`` (``dL/dphase``) and ``"v"``
        (``dL/dV``), arrays of shape ``(N, batch, size)`` on steps ``1..N``.

    Returns
    -------
    gradients : list over projections of arrays ``(n_pre, n_post)`` (zero where unconnected)
    adjoints : dict pop index -> Adjoint
    """
    check_trainable(sim)
    net = sim.network
    order = [c[0] for c in sim.order if c[0] in sim.models]
    gradients = [np.zeros(p.weights.shape, sim.dtype) for p in net.projections]
    adjoints = {}
    ws = sim.workspace
    for i in reversed(order):
        model, traj = sim.models[i], trajectory[i]
        phibar = _phase_error(sim, i, traj, adjoints, loss_grads.get(i, {}))
        dl_dv = loss_grads.get(i, {}).get("v")
        adjoints[i] = _layer_adjoint(ws, i, model, traj, phibar, dl_dv)
        for k in net.incoming(i):
            proj = net.projections[k]
            x = RECEPTOR_KEYS[proj.receptor]
            amp = rasters[proj.pre].amplitude(
                model.a[x], ws.empty(("amplitude", k), rasters[proj.pre].phase.shape, sim.dtype)
            )
            lam = adjoints[i].lambda_i[x]
            offset = -1 if net.populations[proj.pre].is_source else 0
            for d, _ in sim.delay_groups[k]:
                pre_part, post_part = _aligned(amp, lam, d + offset)
                g = np.tensordot(pre_part, post_part, axes=([0, 1], [0, 1]))
                gradients[k] += np.where(proj.mask & (proj.delays == d), g, 0.0)
    return gradients, adjoints


def _aligned(pre, post, shift):
    """Pairs ``pre[k]`` with ``post[k + shift]`` over the steps where both exist."""
    n = pre.shape[0]
    if shift >= 0:
        return pre[: n - shift], post[shift:]
    return pre[-shift:], post[: n + shift]


def _phase_error(sim, i, traj, adjoints, grads):
    """``phibar = dL/dphase + s * sum_P ln(a_P) a_P^phase xbar_P`` (docs/equations.md §3)."""
    spikes, phase = traj.spikes.spikes, traj.spikes.phase
    phibar = sim.workspace.zeros(("phibar", i), phase.shape, sim.dtype)
    if grads.get("phase") is not None:
        phibar += grads["phase"]
    spikes, phase = traj.spikes.spikes, traj.spikes.phase
    for k in sim.network.outgoing(i):
        proj = sim.network.projections[k]
        post_model = sim.models[proj.post]
        x = RECEPTOR_KEYS[proj.receptor]
        lam = adjoints[proj.post].lambda_i[x]
        xbar = sim.workspace.zeros(("xbar", k), phase.shape, sim.dtype)
        for d, W in sim.delay_groups[k]:
            pre_part, post_part = _aligned(xbar, lam, d)
            pre_part += post_part @ W.T
        kernels.add_phase_error(phibar, spikes, phase, xbar, post_model.a[x])
    return phibar


def _layer_adjoint(ws, i, model, traj, phibar, dl_dv):
    """Reverse recursion of docs/equations.md §3 for one current-based population."""
    shape = phibar.shape
    clamped = traj.clamped if traj.clamped is not None else ws.zeros(("no_clamp", i), shape, bool)
    if dl_dv is None:
        dl_dv = np.zeros((0,) + shape[1:], phibar.dtype)
    out = tuple(ws.empty((name, i), shape, phibar.dtype) for name in ("lv", "lu", "liE", "liI"))
    params = (model.b, model.p["E"], model.p["I"], model.a["E"], model.a["I"], model.theta)
    kernels.adjoint_layer(
        traj.spikes.spikes,
        clamped,
        traj.u,
        traj.v_prev,
        phibar,
        np.ascontiguousarray(dl_dv, dtype=phibar.dtype),
        params,
        out,
    )
    lam_v, lam_u, lam_e, lam_i = out
    return Adjoint(lam_v, lam_u, {"E": lam_e, "I": lam_i})
