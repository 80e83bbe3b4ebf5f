"""Compiled (numba) loops of the engine: spike delivery, LIF layer forward and adjoint.

The formulas are those of docs/equations.md (and :mod:`pynn_eventprop.discretisation`).  Spike
delivery and weight gradients are event-driven: they loop over the spikes, not over a dense
raster, which is what makes one-spike-per-input codes cheap and the backward pass event-based.
Arrays are C-contiguous ``(n_steps, batch, size)``; per-neuron parameters are ``(size,)``;
float32 and float64 both compile.  ``tests/test_engine.py`` checks these loops against the
engine's numpy step path, ``tests/test_engine_adjoint.py`` against finite differences.
"""

from __future__ import annotations

import numba
import numpy as np

from ..discretisation import arrival_factors, spike_phase, spike_phase_du, spike_phase_dv

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _factors(phi, coef, f_i, f_u, df_i, df_u):
    """Arrival factors of one spike for every target; returns the index stride (0 = uniform)."""
    log_a, log_b, kappa_dt, dt_over_cm = coef
    n = log_a.shape[0]
    for i in range(n):
        f_i[i], f_u[i], df_i[i], df_u[i] = arrival_factors(
            phi, log_a[i], log_b[i], kappa_dt[i], dt_over_cm[i]
        )
    return 1 if n > 1 else 0


@_jit
def _arriving_spikes(spikes, shift, limit):
    """Indices ``(k, b, j)`` of the spikes arriving at ``k + shift`` within ``[0, limit)``."""
    ks, bs, js = np.nonzero(spikes)
    arrival = ks + shift
    keep = (arrival >= 0) & (arrival < limit)
    return ks[keep], bs[keep], js[keep]


@_jit
def _factor_buffers(n_post, dtype):
    return (
        np.empty(n_post, dtype),
        np.empty(n_post, dtype),
        np.empty(n_post, dtype),
        np.empty(n_post, dtype),
    )


@_jit
def deliver(spikes, phase, weights, shift, coef, arr_i, arr_u):
    """Add every spike's arrival to the targets: ``arr_i += w a**phi``, ``arr_u += w q(phi)``.

    A spike at raster index ``k`` arrives at index ``k + shift`` of ``arr_i``/``arr_u``
    (arrivals past their end are dropped).  ``coef`` is ``(log_a, log_b, kappa_dt,
    dt_over_cm)``, arrays over the targets or of length 1 when uniform.
    """
    n_post = weights.shape[1]
    f_i, f_u, df_i, df_u = _factor_buffers(n_post, arr_i.dtype)
    ks, bs, js = _arriving_spikes(spikes, shift, arr_i.shape[0])
    for s in range(ks.size):
        k, bb, j = ks[s], bs[s], js[s]
        stride = _factors(phase[k, bb, j], coef, f_i, f_u, df_i, df_u)
        kk = k + shift
        for i in range(n_post):
            w = weights[j, i]
            arr_i[kk, bb, i] += w * f_i[i * stride]
            arr_u[kk, bb, i] += w * f_u[i * stride]


@_jit
def collect(spikes, phase, weights, shift, coef, lam_i, lam_u, grad_w, phibar):
    """Backward counterpart of :func:`deliver`, at the presynaptic spikes only.

    ``grad_w[j, i] += lambda_i[k+shift] a**phi + lambda_u[k+shift] q(phi)`` and, if ``phibar``
    has a nonzero size, ``phibar[k, j] += sum_i w_ji (lambda_i da**phi/dphi + lambda_u dq/dphi)``.
    """
    n_post = weights.shape[1]
    has_phibar = phibar.shape[0] > 0
    f_i, f_u, df_i, df_u = _factor_buffers(n_post, lam_i.dtype)
    ks, bs, js = _arriving_spikes(spikes, shift, lam_i.shape[0])
    for s in range(ks.size):
        k, bb, j = ks[s], bs[s], js[s]
        stride = _factors(phase[k, bb, j], coef, f_i, f_u, df_i, df_u)
        kk = k + shift
        acc = 0.0
        for i in range(n_post):
            m = i * stride
            li = lam_i[kk, bb, i]
            lu = lam_u[kk, bb, i]
            grad_w[j, i] += li * f_i[m] + lu * f_u[m]
            acc += weights[j, i] * (li * df_i[m] + lu * df_u[m])
        if has_phibar:
            phibar[k, bb, j] += acc


@_jit
def forward_layer(arrivals, ext, state, params, out):
    """Integrate one current-based layer over a chunk (docs/equations.md §2).

    ``arrivals = (arr_E, arr_I, arr_U)`` at steps ``0..n-1`` of the chunk; ``ext[k]`` the
    external current (batch dimension 1 broadcasts); ``state = (v, i_E, i_I, countdown)`` is
    updated in place; ``params`` is a :class:`~.dynamics.LayerParameters` (per-neuron ``b, p_E,
    p_I, c, a_E, a_I, theta, v_reset, refractory_steps``); ``out = (u, v_hist, spikes, phase,
    clamped, i_E_hist, i_I_hist)`` is filled (the current histories may have zero length: then
    they are not stored).
    """
    arr_e, arr_i, arr_u = arrivals
    v, i_e, i_i, countdown = state
    b, p_e, p_i, c, a_e, a_i, theta, v_reset, refractory_steps = params
    u, v_hist, spikes, phase, clamped, i_e_hist, i_i_hist = out
    n_steps, batch, size = arr_e.shape
    store_currents = i_e_hist.shape[0] > 0
    ext_batch = ext.shape[1]
    for k in range(n_steps):
        for bb in range(batch):
            eb = bb if ext_batch > 1 else 0
            for i in range(size):
                v_prev = v[bb, i]
                uk = b[i] * v_prev + p_e[i] * i_e[bb, i] + p_i[i] * i_i[bb, i]
                uk += c[i] * ext[k, eb, i] + arr_u[k, bb, i]
                u[k, bb, i] = uk
                spikes[k, bb, i] = False
                phase[k, bb, i] = 0.0
                clamped[k, bb, i] = False
                if countdown[bb, i] > 0:
                    countdown[bb, i] -= 1
                    clamped[k, bb, i] = True
                    v[bb, i] = v_reset[i]
                elif uk >= theta[i]:
                    spikes[k, bb, i] = True
                    phase[k, bb, i] = spike_phase(uk, v_prev, theta[i])
                    countdown[bb, i] = refractory_steps[i]
                    v[bb, i] = v_reset[i]
                else:
                    v[bb, i] = uk
                v_hist[k, bb, i] = v[bb, i]
                i_e[bb, i] = a_e[i] * i_e[bb, i] + arr_e[k, bb, i]
                i_i[bb, i] = a_i[i] * i_i[bb, i] + arr_i[k, bb, i]
                if store_currents:
                    i_e_hist[k, bb, i] = i_e[bb, i]
                    i_i_hist[k, bb, i] = i_i[bb, i]


@_jit
def adjoint_layer(trajectory, phibar, dl_dv, params, out):
    """Reverse recursion of docs/equations.md §3 for one layer.

    ``trajectory = (spikes, clamped, u, v_prev)``; ``params`` is an
    :class:`~.dynamics.AdjointParameters` (per-neuron ``b, p_E, p_I, a_E, a_I, theta``);
    ``out = (lambda_v, lambda_u, lambda_i_E, lambda_i_I)`` is filled.  ``dl_dv`` may have a
    leading dimension of 0 (no voltage term in the loss).
    """
    spikes, clamped, u, v_prev = trajectory
    b, p_e, p_i, a_e, a_i, theta = params
    lam_v, lam_u, lam_e, lam_i = out
    n_steps, batch, size = u.shape
    has_dv = dl_dv.shape[0] > 0
    next_u = np.zeros((batch, size), u.dtype)  # lambda_u[k+1]
    next_e = np.zeros((batch, size), u.dtype)  # lambda_i_E[k+1]
    next_i = np.zeros((batch, size), u.dtype)
    for k in range(n_steps - 1, -1, -1):
        for bb in range(batch):
            for i in range(size):
                nu = next_u[bb, i]
                # lambda_i[k] = a lambda_i[k+1] + p lambda_u[k+1]
                next_e[bb, i] = a_e[i] * next_e[bb, i] + p_e[i] * nu
                next_i[bb, i] = a_i[i] * next_i[bb, i] + p_i[i] * nu
                lam_e[k, bb, i] = next_e[bb, i]
                lam_i[k, bb, i] = next_i[bb, i]
                lv = b[i] * nu
                if has_dv:
                    lv += dl_dv[k, bb, i]
                if k + 1 < n_steps and spikes[k + 1, bb, i] and phibar[k + 1, bb, i] != 0.0:
                    # the jump of step k+1 acts on V[k]: phibar dphi/dV_prev
                    dphi = spike_phase_dv(u[k + 1, bb, i], v_prev[k + 1, bb, i], theta[i])
                    lv += phibar[k + 1, bb, i] * dphi
                lam_v[k, bb, i] = lv
                lu = 0.0
                if spikes[k, bb, i]:
                    lu = phibar[k, bb, i] * spike_phase_du(u[k, bb, i], v_prev[k, bb, i], theta[i])
                elif not clamped[k, bb, i]:
                    lu = lv
                lam_u[k, bb, i] = lu
                next_u[bb, i] = lu


@_jit
def raster_trains(spikes, phase, first, dt):
    """Spike trains ``(times, neurons, offsets)`` of a raster ``(steps, batch, size)``, grouped
    by sample, in time-step then neuron order within a sample: the spike at index ``k`` with
    phase ``phi`` happened at ``(k + first - phi) dt``."""
    n_steps, batch, size = spikes.shape
    offsets = np.zeros(batch + 1, np.int64)
    for k in range(n_steps):
        for b in range(batch):
            for j in range(size):
                if spikes[k, b, j]:
                    offsets[b + 1] += 1
    for b in range(batch):
        offsets[b + 1] += offsets[b]
    times, neurons, fill = np.empty(offsets[batch]), np.empty(offsets[batch], np.int64), 0
    for b in range(batch):
        for k in range(n_steps):
            for j in range(size):
                if spikes[k, b, j]:
                    times[fill] = (k + first - phase[k, b, j]) * dt
                    neurons[fill] = j
                    fill += 1
    return times, neurons, offsets
