"""Exact adjoint (backward pass) of the forward simulation (docs/equations.md §3).

Feed-forward networks of current-based neurons only.  Populations are processed in reverse
order: per population one compiled reverse loop over time gives ``lambda_v``, ``lambda_u`` and
``lambda_i``; then, for each incoming projection, one event-driven pass over the presynaptic
spikes accumulates the weight gradient and the error ``phibar`` on the presynaptic spike phases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..discretisation import spike_phase_dv
from . import kernels
from .dynamics import RECEPTOR_KEYS, CurrentLIF
from .graph import is_recurrent


@dataclass
class Adjoint:
    """Adjoint trajectories of one population, shape ``(n_steps, batch, size)``, steps 1..N.

    ``lambda_v = dL/dV[n]`` (1/mV), ``lambda_u = dL/dU[n]``, ``lambda_i[x] = dL/dI_x[n]`` (1/nA)
    for receptor keys ``"E"`` and ``"I"``; ``phibar = dL/dphase`` at the population's own spikes
    (the error signals EventProp sends back, zero elsewhere).
    """

    lambda_v: np.ndarray
    lambda_u: np.ndarray
    lambda_i: dict
    phibar: np.ndarray


def initial_adjoint(model, traj, adjoint: Adjoint, b: int) -> dict:
    """Adjoint of the initial state (step 0) of batch entry ``b`` (docs/equations.md §3).

    ``V[0]`` enters ``U[1] = b V[0] + ...`` and, if the neuron spiked at step 1, the phase
    ``phi[1]``; ``I_x[0]`` enters ``I_x[1]`` and ``U[1]``::

        lambda_v[0] = b lambda_u[1] + s[1] phibar[1] (U[1] - theta)/(U[1] - V[0])^2
        lambda_i[0] = a_E lambda_i_E[1] + p_E lambda_u[1]
    """
    lam_u1 = adjoint.lambda_u[0, b]
    spiked = traj.spikes.spikes[0, b]
    u1, v0 = traj.u[0, b], traj.v_prev[0, b]
    theta = np.broadcast_to(model.theta, u1.shape)
    jump = np.zeros_like(lam_u1)
    jump[spiked] = adjoint.phibar[0, b][spiked] * spike_phase_dv(
        u1[spiked], v0[spiked], theta[spiked]
    )
    return {
        "lambda_v": model.b * lam_u1 + jump,
        "lambda_i": model.a["E"] * adjoint.lambda_i["E"][0, b] + model.p["E"] * lam_u1,
    }


def check_trainable(engine) -> None:
    """Raise unless the network is one the adjoint supports (feed-forward, current-based)."""
    for comp in engine.order:
        if is_recurrent(comp, engine.edges):
            labels = [engine.network.populations[i].label for i in comp]
            raise ValueError(
                f"EventProp training supports feed-forward networks only; populations {labels} "
                "form a recurrent loop"
            )
    for i, model in engine.models.items():
        if not isinstance(model, CurrentLIF):
            pop = engine.network.populations[i]
            raise ValueError(
                f"EventProp training supports current-based IF_curr_exp neurons only; population "
                f"'{pop.label}' is {pop.model}"
            )


def backward(engine, trajectory, rasters, loss_grads):
    """Gradients of the loss w.r.t. every projection's weights.

    Parameters
    ----------
    engine : ReferenceEngine
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
    check_trainable(engine)
    net, ws = engine.network, engine.workspace
    phibar = {}
    for i, traj in trajectory.items():
        phibar[i] = ws.zeros(("phibar", i), traj.u.shape, engine.dtype)
        for name, given in loss_grads.get(i, {}).items():
            if given is not None and np.shape(given) != traj.u.shape:
                raise ValueError(
                    f"loss gradient {name!r} of population '{net.populations[i].label}' has "
                    f"shape {np.shape(given)}, expected {traj.u.shape} (steps, batch, neurons)"
                )
        given = loss_grads.get(i, {}).get("phase")
        if given is not None:
            phibar[i] += given
    gradients = [
        ws.zeros(("gradient", k), p.mask.shape, engine.dtype) for k, p in enumerate(net.projections)
    ]
    no_phibar = np.zeros((0, 1, 1), engine.dtype)
    adjoints = {}
    order = [c[0] for c in engine.order if c[0] in engine.models]
    for i in reversed(order):
        model = engine.models[i]
        adjoints[i] = _layer_adjoint(
            ws, i, model, trajectory[i], phibar[i], loss_grads.get(i, {}).get("v")
        )
        lam_u = adjoints[i].lambda_u
        for k in net.incoming(i):
            proj = net.projections[k]
            x = RECEPTOR_KEYS[proj.receptor]
            raster = rasters[proj.pre]
            masks = engine.delay_group_masks(k)
            for (d, W), (_, mask) in zip(engine.delay_groups[k], masks, strict=True):
                # collect() adds lambda terms to every (j, i) a spike of j reaches; with several
                # delays only the connections of this delay group may receive them
                into = gradients[k] if mask is None else np.zeros_like(gradients[k])
                kernels.collect(
                    raster.spikes,
                    raster.phase,
                    W,
                    engine.source_shift(k, d),
                    model.arrival[x],
                    adjoints[i].lambda_i[x],
                    lam_u,
                    into,
                    phibar.get(proj.pre, no_phibar),
                )
                if mask is not None:
                    gradients[k] += np.where(mask, into, 0.0)
            gradients[k] *= proj.mask
    return gradients, adjoints


def _layer_adjoint(ws, i, model, traj, phibar, dl_dv):
    """Reverse recursion of docs/equations.md §3 for one current-based population."""
    shape = phibar.shape
    if dl_dv is None:
        dl_dv = np.zeros((0,) + shape[1:], phibar.dtype)
    out = tuple(ws.empty((name, i), shape, phibar.dtype) for name in ("lv", "lu", "liE", "liI"))
    kernels.adjoint_layer(
        (traj.spikes.spikes, traj.clamped, traj.u, traj.v_prev),
        phibar,
        np.ascontiguousarray(dl_dv, dtype=phibar.dtype),
        model.adjoint_parameters(),
        out,
    )
    lam_v, lam_u, lam_e, lam_i = out
    return Adjoint(lam_v, lam_u, {"E": lam_e, "I": lam_i}, phibar)
