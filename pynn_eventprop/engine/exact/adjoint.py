"""Exact adjoint of :mod:`.forward`: reverse sweep over each neuron's tape.

The forward pass is a composition of closed-form flows between events and event maps; its
reverse-mode derivative is Wunderlich & Pehle's continuous adjoint with every jump term.
With ``lambda = (lambda_V, lambda_E, lambda_I)`` the adjoint of ``(V, I_E, I_I)``:

* **between events** (free), over a length ``D`` from its end back to its start::

      lambda_V <- exp(-D/tau_m) lambda_V + sum_w sigma_w E(1/tau_m + gamma_w)
      lambda_x <- exp(-D/tau_x) lambda_x + q_x(D) lambda_V + sum_w sigma_w J_x(gamma_w)

  where the sums are the voltage-mean readouts ``S_w = (1/T) int w(t) V dt`` (``w = 1``:
  ``gamma = 0``; ``w = exp(-(t - t0)/T)``: ``gamma = 1/T``), ``sigma_w = (dL/dS_w) w(t_start)
  / T``, ``E`` and ``J_x`` their closed-form integrals (:mod:`.closed_form`).  While
  refractory ``V`` is clamped: ``lambda_V = 0``, ``lambda_x`` only decays.
* **arrival** of weight ``w`` on channel ``x`` at ``t_a``: ``dL/dw += lambda_x(t_a+)`` and
  ``dL/dt_a = lambda(t_a+) . (f- - f+) = w lambda_x/tau_x - w lambda_V/cm`` (the ``lambda_V``
  term is absent while refractory).  ``dL/dt_a`` is sent to the presynaptic spike time and is
  the delay gradient.
* **spike** at ``t*`` (``V(t*-) = theta``, ``dV/dt(t*-) = Vdot-``): the reset map ``Dg =
  diag(0, 1, 1)`` and the implicit dependence of ``t*`` on the state give ::

      lambda_V(t*-) = -(dL/dt*) / Vdot-,     lambda_x(t*-) = lambda_x(t*+)
      dL/dt* = (loss and downstream terms) + dL/dt_end - lambda_V(t*+) Vdot+
               + sum_w (dL/dS_w) w(t*) (theta - v_reset) / T

  with ``Vdot+ = dV/dt(t*+)`` when ``tau_refrac = 0`` (0 otherwise: the clamp has ``dV/dt =
  0`` on both sides) and ``dL/dt_end = -lambda_V(t_end+) dV/dt(t_end+)`` from the end of the
  refractory period ``t_end = t* + tau_refrac``.
* **maximum** ``v_max`` (state kind): ``lambda_V += dL/dv_max`` at its time (no time term:
  ``dV/dt = 0`` at an interior maximum, the time is fixed at the ends of the run); when it is
  at an arrival (a kink), also ``dL/dt_a += (dL/dv_max) dV/dt(t_a-)``.

The terms ``dL/dt*``, ``dL/dv_max`` and the voltage means are the only sources: the sweep
of a neuron starts at its latest source (``skip_tail`` in :func:`_backward_rows`), the
adjoint being exactly 0 after it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .closed_form import (
    INV_CM,
    IT_E,
    IT_I,
    IT_M,
    K_E,
    K_I,
    THETA,
    V_RESET,
    e1,
    flow,
    psc_weighted_integral,
)
from .forward import EV_ARRIVAL, EV_REF_END, EV_SPIKE, VMAX_STATE, param_tuple


@numba.njit(cache=True)
def adjoint_apply(p, lv, le, li, d, refractory, sig_u, sig_e, gamma, em, ae, ai, qe, qi):
    """Carry ``(lambda_V, lambda_E, lambda_I)`` back over an interval of length ``d`` whose
    propagator entries are ``em, ae, ai, qe, qi`` (:func:`.closed_form.flow`), with the
    voltage-mean sources ``sig_u`` (uniform) and ``sig_e`` (weight ``exp(-gamma s)`` from the
    interval's start) of :func:`source_coefs`."""
    if refractory:
        return 0.0, ae * le, ai * li
    lv, le, li = em * lv, ae * le + qe * lv, ai * li + qi * lv
    if sig_u != 0.0:
        lv, le, li = add_source(lv, le, li, sig_u, source_coefs(p, d, 0.0, em))
    if sig_e != 0.0:
        lv, le, li = add_source(lv, le, li, sig_e, source_coefs(p, d, gamma, em))
    return lv, le, li


@numba.njit(cache=True)
def source_coefs(p, d, gamma, em):
    """What a voltage-mean source of density 1 (weight ``exp(-gamma s)``) adds to
    ``(lambda_V, lambda_E, lambda_I)`` over an interval of length ``d``: ``int_0^d exp(-gamma
    s) (exp(-s/tau_m), q_E(s), q_I(s)) ds`` (``q_I = q_E`` for equal time constants); ``em =
    exp(-d/tau_m)``, as :func:`.closed_form.flow` computes it."""
    q_e = psc_weighted_integral(p, p[IT_E], p[K_E], d, gamma, em)
    q_i = q_e if p[IT_I] == p[IT_E] else psc_weighted_integral(p, p[IT_I], p[K_I], d, gamma, em)
    return e1(p[IT_M] + gamma, d), q_e, q_i


@numba.njit(cache=True)
def add_source(lv, le, li, sig, c):
    """``lambda += sig c`` for the :func:`source_coefs` ``c``."""
    return lv + sig * c[0], le + sig * c[1], li + sig * c[2]


@numba.njit(cache=True)
def _sources(g, te, t0, big_t):
    """Voltage-mean source densities ``(sigma_u, sigma_e)`` at the start ``te`` of an interval."""
    sig_u = g[2] / big_t
    sig_e = g[3] / big_t * math.exp(-(te - t0) / big_t) if g[3] != 0.0 else 0.0
    return sig_u, sig_e


@numba.njit(cache=True)
def _flow_to(p, lam, t, te, refractory, g, t0, big_t, coefs):
    """Carry ``lam`` from ``t`` back to ``te`` (propagator entries ``coefs``)."""
    sig_u, sig_e = _sources(g, te, t0, big_t)
    em, ae, ai, qe, qi = coefs
    lv, le, li = lam
    return adjoint_apply(p, lv, le, li, t - te, refractory, sig_u, sig_e, 1.0 / big_t,
                         em, ae, ai, qe, qi)  # fmt: skip


@numba.njit(cache=True, inline="always")
def _flow_sampled(p, lam, t, te, refractory, g, t0, big_t, adj, b, j, dt):
    """:func:`_flow_to`, recording ``lambda_V`` and ``lambda_E`` at the grid points
    ``t0 + k dt`` in ``[te, t)`` into ``adj`` when it is not empty."""
    if adj[0].shape[0] == 0:
        return _flow_to(p, lam, t, te, refractory, g, t0, big_t, flow(p, t - te))
    k = int((t - t0) / dt) + 1
    while k > 0 and t0 + k * dt >= t:
        k -= 1
    while k >= 0 and t0 + k * dt >= te:
        tg = t0 + k * dt
        lam = _flow_to(p, lam, t, tg, refractory, g, t0, big_t, flow(p, t - tg))
        adj[0][k, b, j], adj[1][k, b, j] = lam[0], lam[1]
        t = tg
        k -= 1
    return _flow_to(p, lam, t, te, refractory, g, t0, big_t, flow(p, t - te))


@numba.njit(cache=True, _nrt=False)  # no reference counting: it allocates nothing
def _backward_rows(par, tape, arr, dldt, src0, spk_off, grads_in, vmax, t0, t1, ref_end, grads,
                   adj, dt, carried, b0, b1):  # fmt: skip
    """Reverse sweep of every neuron of samples ``b0:b1`` (:func:`backward_layer`'s arguments;
    ``grads = (dL/dw, dL/dd)`` this block's flat buffers, indexed by the arrivals' ``widx``).

    Per neuron (row ``b * size + j``): its events ``tape[k][tape[5][row]:tape[5][row + 1]]``
    (kind, t, a, b, idx) from the last back; ``arr = (w, c, widx, src)`` of the population's
    arrivals; ``dldt`` the global ``dL/dt`` of every spike of the run (this population's start
    at ``src0``), read for the neuron's spikes and incremented for the presynaptic ones;
    ``grads_in = (dL/dfirst, dL/dv_max, dL/dS_u, dL/dS_e)`` and ``vmax = (time, kind, slope,
    arrival)`` arrays ``(batch, size)``; ``ref_end`` the end of the refractory period after
    the run (refractory at ``t1`` if > t1); ``adj = (lambda_V, lambda_E)`` arrays ``(n_steps +
    1, batch, size)`` to sample on the grid (step ``dt``), or empty; ``carried = (lambda_V,
    lambda_E, lambda_I, dL/dt_end)`` arrays ``(batch, size)``: the adjoint at ``t1`` and the
    pending refractory-end term, read at the start and replaced by their values at ``t0`` (a
    sweep over consecutive windows), or empty arrays.

    The loop over neurons is written out here, not as a function called per neuron: numba
    takes and releases a reference (two atomic operations) to every array bound inside a
    called function, even an inlined one, on each call (see :func:`.forward._forward_rows`).
    """
    size = ref_end.shape[1]
    big_t = t1 - t0

    def skip_tail(lo, hi, first, g, vmax, t, refractory):  # inlined: no array passing
        """Pass over the events of a neuron's tape ``lo:hi`` later than the latest source of its
        adjoint (a spike whose ``dL/dt`` is not 0, from downstream or the first-spike readout, or
        its ``v_max``): between sources the adjoint equations are linear and homogeneous, so the
        adjoint is exactly 0 there and those events add nothing to any gradient (with a
        first-spike loss, most of a run after the first spike).

        Returns ``(end, t, refractory)``: the sweep goes on with the events ``lo:end`` from time
        ``t``, in the refractory state it would have reached there.
        """
        t_src = vmax[0] if g[1] != 0.0 and vmax[1] == VMAX_STATE else -math.inf
        end = hi
        while end > lo and tape[1][end - 1] > t_src:
            kind = tape[0][end - 1]
            if kind == EV_SPIKE:
                s = tape[4][end - 1]
                if dldt[src0 + s] != 0.0 or (s == first and g[0] != 0.0):
                    break
                refractory = False
            elif kind == EV_REF_END:
                refractory = True
            t = tape[1][end - 1]
            end -= 1
        return end, t, refractory

    for b in range(b0, b1):
        for j in range(size):
            row = b * size + j
            lo, hi = tape[5][row], tape[5][row + 1]
            first = spk_off[row] if spk_off[row + 1] > spk_off[row] else -1
            g = (grads_in[0][b, j], grads_in[1][b, j], grads_in[2][b, j], grads_in[3][b, j])
            vm = (vmax[0][b, j], vmax[1][b, j], vmax[2][b, j], vmax[3][b, j])
            p = param_tuple(par, j)
            resume = carried[0].shape[0] > 0
            lam = (0.0, 0.0, 0.0)
            carry = 0.0
            if resume:
                lam = (carried[0][b, j], carried[1][b, j], carried[2][b, j])
                carry = carried[3][b, j]
            t = t1
            refractory = ref_end[b, j] > t1
            vm_open = g[1] != 0.0 and vm[1] == VMAX_STATE
            sampling = adj[0].shape[0] > 0
            end = hi
            if not (resume or sampling or g[2] != 0.0 or g[3] != 0.0):
                end, t, refractory = skip_tail(lo, hi, first, g, vm, t, refractory)
            for m in range(end - 1, lo - 1, -1):
                te = tape[1][m]
                if vm_open and te < vm[0] <= t:
                    lam = _flow_sampled(p, lam, t, vm[0], refractory, g, t0, big_t, adj, b, j, dt)
                    lam = (lam[0] + g[1], lam[1], lam[2])
                    t = vm[0]
                    vm_open = False
                if sampling:
                    lv, le, li = _flow_sampled(
                        p, lam, t, te, refractory, g, t0, big_t, adj, b, j, dt
                    )
                else:
                    lv, le, li = _flow_to(p, lam, t, te, refractory, g, t0, big_t, flow(p, t - te))
                t = te
                kind = tape[0][m]
                if kind == EV_ARRIVAL:
                    a = tape[4][m]
                    x = arr[1][a]
                    w = arr[0][a]
                    lam_x = le if x == 0 else li
                    d_t = w * lam_x * (p[IT_E] if x == 0 else p[IT_I])
                    if tape[2][m] == 0.0:
                        d_t -= w * lv * p[INV_CM]
                    if vm_open and a == vm[3]:
                        d_t += g[1] * vm[2]
                        lv += g[1]
                        vm_open = False
                    if arr[2][a] >= 0:
                        grads[0][arr[2][a]] += lam_x
                        grads[1][arr[2][a]] += d_t
                    if arr[3][a] >= 0:
                        dldt[arr[3][a]] += d_t
                elif kind == EV_SPIKE:
                    s = tape[4][m]
                    total = dldt[src0 + s] + carry - lv * tape[3][m]
                    if g[2] != 0.0 or g[3] != 0.0:
                        sig = _sources(g, te, t0, big_t)
                        total += (sig[0] + sig[1]) * (p[THETA] - p[V_RESET])
                    if s == first:
                        total += g[0]
                    lv = -total / tape[2][m]
                    carry = 0.0
                    refractory = False
                else:  # end of the refractory period
                    carry = -lv * tape[2][m]
                    lv = 0.0
                    refractory = True
                lam = (lv, le, li)
            if resume:
                lam = _flow_to(p, lam, t, t0, refractory, g, t0, big_t, flow(p, t - t0))
                carried[0][b, j], carried[1][b, j], carried[2][b, j] = lam
                carried[3][b, j] = carry
            elif sampling:
                _flow_sampled(p, lam, t, t0, refractory, g, t0, big_t, adj, b, j, dt)


@numba.njit(cache=True, parallel=True)
def backward_layer(
    par,
    tape,
    arr,
    dldt,
    src0,
    spk_off,
    grads_in,
    vmax,
    t0,
    t1,
    ref_end,
    grads,
    adj,
    dt,
    carried,
):
    """Reverse sweep of every neuron of one population (see :func:`_backward_rows`).

    ``tape = (kind, t, a, b, idx, offsets)``; ``spk_off`` the per-neuron spike offsets;
    ``grads_in = (dL/dfirst, dL/dv_max, dL/dS_u, dL/dS_e)`` and ``vmax = (time, kind, slope,
    arrival)`` arrays ``(batch, size)``; ``ref_end`` ``(batch, size)``.

    Blocks of consecutive samples (:func:`reduction_blocks`) are swept in parallel, each adding
    its gradients into its own buffer; the blocks are then added to ``grads`` in order, so the
    result does not depend on the number of threads.  (``dldt`` is written per sample: every
    spike belongs to one.)  An empty ``grads[1]``: no delay gradients wanted.
    """
    batch, size = ref_end.shape
    lo, hi = _index_range(arr[2])
    n_blocks = reduction_blocks(batch, max(hi - lo, 1))
    part = np.empty((n_blocks, 2, grads[0].size))  # only [lo, hi) is touched
    for blk in numba.prange(n_blocks):
        part[blk, :, lo:hi] = 0.0
        _backward_rows(par, tape, arr, dldt, src0, spk_off, grads_in, vmax, t0, t1, ref_end,
                       (part[blk, 0], part[blk, 1]), adj, dt, carried,
                       blk * batch // n_blocks, (blk + 1) * batch // n_blocks)  # fmt: skip
    want_delays = grads[1].size > 0
    for k in numba.prange(lo, hi):
        for blk in range(n_blocks):
            grads[0][k] += part[blk, 0, k]
            if want_delays:
                grads[1][k] += part[blk, 1, k]


@numba.njit(cache=True)
def _index_range(widx):
    """``[lo, hi)`` of the gradient indices ``widx`` (-1 entries ignored; empty: ``(0, 0)``)."""
    lo, hi = 1 << 62, 0
    for k in widx:
        if k >= 0:
            lo, hi = min(lo, k), max(hi, k + 1)
    return (lo, hi) if hi > 0 else (0, 0)


#: Gradient elements (per block, both gradients) above which fewer reduction blocks are used.
REDUCTION_ELEMENTS = 1 << 21


@numba.njit(cache=True)
def reduction_blocks(batch, weights):
    """Number of blocks of consecutive samples whose gradients are summed separately (and in
    parallel) before they are added in order: one per sample while ``2 weights`` per block
    stays small; for large layers fewer, a power of two (at least one), which splits evenly
    over 2, 4, ... threads (784-350-10 at batch 32 gets 2 blocks: with 3, two threads
    waited on the third block, and every further block costs a pass over the rows it used).
    It depends only on the sizes, never on the number of threads."""
    fit = REDUCTION_ELEMENTS // (2 * weights)
    if fit >= batch:
        return batch
    blocks = 1
    while 2 * blocks <= fit:
        blocks *= 2
    return blocks
