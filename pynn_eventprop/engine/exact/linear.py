"""Layers that cannot reach threshold in a run, in closed form by superposition.

A leaky-integrator readout (the output layer of a voltage loss, whose threshold is out of
reach) never spikes, so it is linear in its inputs.  On the shared-event path (every neuron
sees the same arrivals, :mod:`.shared`) its membrane is then

    V_j(t) = V_free,j(t) + sum_a w_{r(a) j} q_x(a)(t - t_a),    t_a < t,

``V_free`` the free evolution from the state at ``t0`` with the external current ``e``, and
``q_x(s)`` the membrane's response to a unit current step that decays with ``tau_x``
(:func:`.closed_form.flow`).  Every readout and gradient is then a sum over arrivals of one
scalar per arrival times a weight row:

    int_t0^t1 u(t) V_j dt = F_j + sum_a w_{r(a) j} K_a,    K_a = int_{t_a}^{t1} u(t) q(t - t_a) dt,

with ``u(t) = 1`` or ``exp(-(t - t0)/T)``, ``T = t1 - t0`` (the uniform and exponentially
weighted voltage means), and

    dL/dw_{r j} = sum_{a: r(a) = r} (dL/dS_j) K_a / T,
    dL/dt_a = sum_j w_{r(a) j} (dL/dS_j) dK_a/dt_a / T,
    dK_a/dt_a = -u(t_a) exp(-gamma (t1 - t_a)) q(t1 - t_a) - gamma K_a   (gamma = 0 or 1/T),

(``S = (1/T) int u V``), the same integrals the event-by-event path (:mod:`.shared`) adds up
interval by interval and the same gradients its adjoint sweep (:mod:`.shared_adjoint`) gives:
both paths agree to rounding, by independent routes.  The cost is one set of exponentials per
arrival and one weight row, instead of one per interval and every neuron's state.

The path applies only when no neuron can reach ``theta``: :func:`below_threshold` bounds
``V`` from above by ``max(V0, 0) + max(e R, 0) + sum_x max(I_x0, 0) q_x^max + sum_a
max(w_a, 0) q_x^max`` (every response is a nonnegative multiple of its weight's sign) and
requires that no neuron is refractory at ``t0``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .adjoint import reduction_blocks
from .closed_form import (
    INV_CM,
    IT_E,
    IT_I,
    IT_M,
    K_E,
    K_I,
    R_M,
    THETA,
    advance,
    e1,
    flow,
    integral_coefs,
    integral_from,
)
from .forward import param_tuple
from .shared_adjoint import add_block_rows, clear_rows

#: Relative margin on the bound of :func:`below_threshold` (the peak of ``q_x`` is computed
#: in floating point; a bound this close to ``theta`` takes the general path).
PEAK_MARGIN = 1e-9


@numba.njit(cache=True)
def psc_peak(p, inv_tau_x, kappa_x, channel):
    """``max_s q_x(s)`` (mV per nA of initial synaptic current), at ``s = ln((1/tau_x) /
    (1/tau_m)) / kappa_x`` (``tau_m`` when ``kappa_x = 1/tau_x - 1/tau_m = 0``)."""
    s = 1.0 / p[IT_M] if kappa_x == 0.0 else math.log(inv_tau_x / p[IT_M]) / kappa_x
    return flow(p, s)[3 + channel]


@numba.njit(cache=True)
def below_threshold(par, wcat, ev_off, ev, e, state, t0):
    """Whether no neuron of any sample can reach ``theta`` over the run (see the module's
    bound) and none is refractory at ``t0``.  ``par`` the parameter rows (uniform), ``state =
    (v, i_E, i_I, ref_end)``, ``ev = (t, row, channel)`` as in
    :func:`.shared.forward_shared`."""
    p = param_tuple(par, 0)
    q_max = (psc_peak(p, p[IT_E], p[K_E], 0) * (1.0 + PEAK_MARGIN),
             psc_peak(p, p[IT_I], p[K_I], 1) * (1.0 + PEAK_MARGIN))  # fmt: skip
    batch, size = state[0].shape
    bound = np.empty(size)
    for b in range(batch):
        for j in range(size):
            if state[3][b, j] > t0:
                return False
            bound[j] = (max(state[0][b, j], 0.0) + max(e * p[R_M], 0.0)
                        + max(state[1][b, j], 0.0) * q_max[0]
                        + max(state[2][b, j], 0.0) * q_max[1])  # fmt: skip
        for m in range(ev_off[b], ev_off[b + 1]):
            q, r = q_max[ev[2][m]], ev[1][m]
            for j in range(size):
                bound[j] += max(wcat[r, j], 0.0) * q
        for j in range(size):
            if bound[j] * (1.0 + PEAK_MARGIN) >= p[THETA]:
                return False
    return True


@numba.njit(cache=True, parallel=True)
def linear_layer(par, wcat, ev_off, ev, e, state, t0, t1, weighted):
    """The state at ``t1`` and the voltage integrals of a layer that stays below threshold
    (:func:`below_threshold`), by superposition.

    ``ev = (t, row, channel)`` the arrivals due by ``t1``, per sample in any order, ``wcat``
    ``(rows, size)``, ``state = (v, i_E, i_I, ref_end)`` ``(batch, size)`` (read only), ``e``
    the uniform external current (nA).  Returns ``(state, sums, k, dk)``: ``state = (v, i_E,
    i_I)`` at ``t1``; ``sums`` ``(2, batch, size)`` the integrals ``int V dt`` and, with
    ``weighted``, ``int exp(-(t - t0)/T) V dt`` (mV ms; else 0); ``k`` and ``dk`` ``(2,
    n_arrivals)`` each arrival's ``K_a`` and ``dK_a/dt_a`` for both weightings (see the
    module; the second 0 without ``weighted``).
    """
    p = param_tuple(par, 0)
    batch, size = state[0].shape
    span = t1 - t0
    k, dk = np.zeros((2, ev[0].size)), np.zeros((2, ev[0].size))
    sums = np.zeros((2, batch, size))
    new = (np.empty((batch, size)), np.empty((batch, size)), np.empty((batch, size)))
    for b in numba.prange(batch):
        _free_part(p, e, state, span, weighted, new, sums, b)
        for m in range(ev_off[b], ev_off[b + 1]):
            q, x = _unit_response(p, t1 - ev[0][m], ev[2][m], span, weighted, k, dk, m)
            current = new[1] if ev[2][m] == 0 else new[2]
            r, k0, k1 = ev[1][m], k[0, m], k[1, m]
            for j in range(size):
                w = wcat[r, j]
                new[0][b, j] += w * q
                current[b, j] += w * x
                sums[0, b, j] += w * k0
                sums[1, b, j] += w * k1
    return new, sums, k, dk


@numba.njit(cache=True, inline="always")
def _unit_response(p, d, channel, span, weighted, k, dk, m):
    """``K_a`` and ``dK_a/dt_a`` of arrival ``m`` (``d = t1 - t_a`` before the end, on
    ``channel``) into ``k[:, m]``, ``dk[:, m]``; returns ``(q_x(d), exp(-d/tau_x))``, its unit
    response's voltage and current at ``t1``.

    ``K = int_0^d u q_x = (int_0^d u exp(-s/tau_x) ds / cm - u(d) q_x(d)) / (1/tau_m +
    gamma)`` (from ``dV/dt = -V/tau_m + I/cm``), with ``u(s) = exp(-gamma s)`` and ``gamma =
    1/T`` for the weighted integral, whose weight at ``t_a`` is ``exp(-(T - d)/T)``.
    """
    em, ae, ai, qe, qi = flow(p, d)
    q, x = (qe, ae) if channel == 0 else (qi, ai)
    inv_tau = p[IT_E] if channel == 0 else p[IT_I]
    k[0, m] = (p[INV_CM] * _e1(inv_tau, d, x) - q) / p[IT_M]
    dk[0, m] = -q
    if weighted:
        gamma = 1.0 / span
        end, scale = math.exp(-gamma * d), math.exp(-(span - d) * gamma)
        c = p[INV_CM] * _e1(inv_tau + gamma, d, x * end) - q * end
        k[1, m] = scale * c / (p[IT_M] + gamma)
        dk[1, m] = -scale * end * q - gamma * k[1, m]
    return q, x


@numba.njit(cache=True, inline="always")
def _e1(alpha, d, x):
    """``int_0^d exp(-alpha s) ds`` from ``x = exp(-alpha d)`` where ``alpha d > 1/2`` (no
    cancellation in ``1 - x``), else :func:`.closed_form.e1`."""
    return (1.0 - x) / alpha if alpha * d > 0.5 else e1(alpha, d)


@numba.njit(cache=True, inline="always")
def _free_part(p, e, state, span, weighted, new, sums, b):
    """Sample ``b``'s free evolution from its state at ``t0`` over ``span``: the state at
    ``t1`` into ``new``, its integrals into ``sums``."""
    free = flow(p, span)
    uniform = integral_coefs(p, e, span, 0.0)
    decaying = integral_coefs(p, e, span, 1.0 / span)
    for j in range(state[0].shape[1]):
        v0, ie0, ii0 = state[0][b, j], state[1][b, j], state[2][b, j]
        v1, ie1, ii1 = advance(p, v0, ie0, ii0, e, *free)
        new[0][b, j], new[1][b, j], new[2][b, j] = v1, ie1, ii1
        sums[0, b, j] = integral_from(p, v0, ie0, ii0, v1, uniform)
        if weighted:
            sums[1, b, j] = integral_from(p, v0, ie0, ii0, v1, decaying)


@numba.njit(cache=True, parallel=True)
def linear_backward(wcat, ev_off, ev, widx_row, k, dk, g_mean, span, dldt, grads):
    """Gradients of a layer run by :func:`linear_layer` (see the module's equations).

    ``ev = (t, row, channel, src)``; ``g_mean = (dL/dS_u, dL/dS_e)`` ``(batch, size)`` of the
    two voltage means, matching the rows of ``k`` and ``dk``; ``span = T``.  ``dL/dw`` (and,
    when ``grads[1]`` is not empty, ``dL/dt_a`` per weight: the delay gradient) are added to
    ``grads`` at the flat index ``widx_row[row] + j``; ``dL/dt_a`` summed over the neurons to
    the spike that caused the arrival, ``dldt[src]``.  Samples are summed in blocks of
    consecutive samples, then the blocks in order, as in
    :func:`.shared_adjoint.backward_shared`: the result does not depend on the number of
    threads.
    """
    batch, size = g_mean[0].shape
    rows = wcat.shape[0]
    n_blocks = reduction_blocks(batch, rows * size)
    part = np.empty((n_blocks, 2 if grads[1].size else 1, rows, size))
    used = np.zeros((n_blocks, rows), np.bool_)
    g_u, g_e = g_mean[0], g_mean[1]
    for blk in numba.prange(n_blocks):
        lo, hi = blk * batch // n_blocks, (blk + 1) * batch // n_blocks
        acc = part[blk]
        clear_rows(ev[1], ev_off[lo], ev_off[hi], acc, used[blk])
        for b in range(lo, hi):
            for m in range(ev_off[b], ev_off[b + 1]):
                r = ev[1][m]
                k_u, k_e = k[0, m] / span, k[1, m] / span
                dk_u, dk_e = dk[0, m] / span, dk[1, m] / span
                total = 0.0
                for j in range(size):
                    acc[0, r, j] += g_u[b, j] * k_u + g_e[b, j] * k_e
                    total += wcat[r, j] * (g_u[b, j] * dk_u + g_e[b, j] * dk_e)
                if acc.shape[0] > 1:
                    for j in range(size):
                        acc[1, r, j] += wcat[r, j] * (g_u[b, j] * dk_u + g_e[b, j] * dk_e)
                dldt[ev[3][m]] += total
    add_block_rows(part, used, widx_row, grads)
