"""Compiled (numba) time loops of a current-based LIF layer: forward and exact adjoint.

These fuse, for one feed-forward layer, the recursions of docs/equations.md §2 and §3 into one
pass over (step, batch, neuron); matrix products stay in numpy (BLAS).  The formulas are those of
:mod:`pynn_eventprop.discretisation`; ``tests/test_engine_kernels.py`` checks these loops against
the vectorised numpy path.  Arrays are C-contiguous ``(n_steps, batch, size)``; per-neuron
parameters are ``(size,)``.  float32 and float64 both compile.
"""

from __future__ import annotations

import numba
import numpy as np

from ..discretisation import MAX_PHASE

_jit = numba.njit(cache=True, nogil=True)


@_jit
def forward_layer(arr_E, arr_I, ext, v, i_E, i_I, countdown, params, out):
    """Integrate one layer over a chunk; updates the state ``v, i_E, i_I, countdown`` in place.

    ``arr_x[k]`` are the arrivals at step ``k`` (``sum_j w a^phi s``), ``ext[k]`` the external
    current (broadcast over batch when its batch dimension is 1).  ``params`` is
    ``(b, p_E, p_I, c, a_E, a_I, theta, v_reset, refractory_steps)``; ``out`` is
    ``(u, v_hist, spikes, phase, clamped, i_E_hist, i_I_hist)``, filled here (the two current
    histories may have zero length: then they are not stored).
    """
    b, p_E, p_I, c, a_E, a_I, theta, v_reset, refractory_steps = params
    u, v_hist, spikes, phase, clamped, i_E_hist, i_I_hist = out
    n_steps, batch, size = arr_E.shape
    store_currents = i_E_hist.shape[0] > 0
    ext_batch = ext.shape[1]
    for k in range(n_steps):
        for bb in range(batch):
            eb = bb if ext_batch > 1 else 0
            for i in range(size):
                v_prev = v[bb, i]
                uk = b[i] * v_prev + p_E[i] * i_E[bb, i] + p_I[i] * i_I[bb, i]
                uk += c[i] * ext[k, eb, i]
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
                    denom = uk - v_prev
                    ph = (uk - theta[i]) / denom if denom > 0 else 0.0
                    phase[k, bb, i] = min(ph, MAX_PHASE)
                    countdown[bb, i] = refractory_steps[i]
                    v[bb, i] = v_reset[i]
                else:
                    v[bb, i] = uk
                v_hist[k, bb, i] = v[bb, i]
                i_E[bb, i] = a_E * i_E[bb, i] + arr_E[k, bb, i]
                i_I[bb, i] = a_I * i_I[bb, i] + arr_I[k, bb, i]
                if store_currents:
                    i_E_hist[k, bb, i] = i_E[bb, i]
                    i_I_hist[k, bb, i] = i_I[bb, i]


@_jit
def amplitude(spikes, phase, a, out):
    """``out = spikes * a**phase``: arrival amplitudes for a current decaying by ``a``."""
    log_a = np.log(a)
    flat_s, flat_p, flat_o = spikes.ravel(), phase.ravel(), out.ravel()
    for n in range(flat_s.size):
        flat_o[n] = np.exp(log_a * flat_p[n]) if flat_s[n] else 0.0
    return out


@_jit
def add_phase_error(phibar, spikes, phase, xbar, a):
    """``phibar += s ln(a) a**phase xbar`` (error arriving through one outgoing projection)."""
    log_a = np.log(a)
    flat_s, flat_p = spikes.ravel(), phase.ravel()
    flat_x, flat_o = xbar.ravel(), phibar.ravel()
    for n in range(flat_s.size):
        if flat_s[n]:
            flat_o[n] += log_a * np.exp(log_a * flat_p[n]) * flat_x[n]


@_jit
def adjoint_layer(spikes, clamped, u, v_prev, phibar, dl_dv, params, out):
    """Reverse recursion of docs/equations.md §3 for one layer.

    ``params`` is ``(b, p_E, p_I, a_E, a_I, theta)``; ``out`` is ``(lambda_v, lambda_u,
    lambda_i_E, lambda_i_I)`` of shape ``(n_steps, batch, size)``, filled here.  ``dl_dv`` may
    have a leading dimension of 0 (no voltage term in the loss).
    """
    b, p_E, p_I, a_E, a_I, theta = params
    lam_v, lam_u, lam_E, lam_I = out
    n_steps, batch, size = u.shape
    has_dv = dl_dv.shape[0] > 0
    next_u = np.zeros((batch, size), u.dtype)  # lambda_u[k+1]
    next_E = np.zeros((batch, size), u.dtype)  # lambda_i_E[k+1]
    next_I = np.zeros((batch, size), u.dtype)
    for k in range(n_steps - 1, -1, -1):
        for bb in range(batch):
            for i in range(size):
                nu = next_u[bb, i]
                # lambda_i[k] = a lambda_i[k+1] + p lambda_u[k+1]
                next_E[bb, i] = a_E * next_E[bb, i] + p_E[i] * nu
                next_I[bb, i] = a_I * next_I[bb, i] + p_I[i] * nu
                lam_E[k, bb, i] = next_E[bb, i]
                lam_I[k, bb, i] = next_I[bb, i]
                lv = b[i] * nu
                if has_dv:
                    lv += dl_dv[k, bb, i]
                if k + 1 < n_steps and spikes[k + 1, bb, i] and phibar[k + 1, bb, i] != 0.0:
                    # the jump of step k+1 acts on V[k]: phibar dphi/dV_prev
                    d = u[k + 1, bb, i] - v_prev[k + 1, bb, i]
                    lv += phibar[k + 1, bb, i] * (u[k + 1, bb, i] - theta[i]) / (d * d)
                lam_v[k, bb, i] = lv
                lu = 0.0
                if spikes[k, bb, i]:
                    d = u[k, bb, i] - v_prev[k, bb, i]
                    lu = phibar[k, bb, i] * (theta[i] - v_prev[k, bb, i]) / (d * d)
                elif not clamped[k, bb, i]:
                    lu = lv
                lam_u[k, bb, i] = lu
                next_u[bb, i] = lu
