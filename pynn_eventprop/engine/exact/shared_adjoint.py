"""Reverse sweep of a shared-event layer (see :mod:`.shared`), vectorised over neurons.

Between two arrivals of a sample the adjoint ``(lambda_V, lambda_E, lambda_I)`` of every neuron
is carried back with one propagator; a neuron with private events in that interval (spikes,
ends of refractoriness, its ``v_max``) is swept on its own by :func:`_private_backward`, which
is :func:`.adjoint.backward_neuron` reduced to an arrival-free interval.  At each arrival every
neuron adds ``dL/dw = lambda_x`` to the arrival's weight row and its term of ``dL/dt`` to the
spike that caused it.  Results equal the general path's to rounding.

A sample's sweep starts at the arrival after its adjoint's latest source (a spike with a
non-zero ``dL/dt``, a ``v_max``): later than that the adjoint is exactly 0 and adds nothing
(with a first-spike loss, most of a run after the outputs' first spikes).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .adjoint import add_source, adjoint_apply, reduction_blocks, source_coefs
from .closed_form import INV_CM, IT_E, IT_I, THETA, V_RESET, flow
from .forward import EV_SPIKE, VMAX_STATE, param_tuple
from .shared import marked


@numba.njit(cache=True, parallel=True)
def backward_shared(par, wcat, ev_off, ev, widx_row, tape, spk_off, dldt, src0, g_first,
                    g_vmax, vm, g_mean, ref_end, t0, t1, grads, arrival_times=True):  # fmt: skip
    """Reverse sweep of a shared-event layer (see :func:`forward_shared`).

    ``ev = (t, row, channel, src)``; ``widx_row`` the flat gradient index of each weight row's
    first column; ``tape`` the private events; ``g_first`` ``dL/d(first spike time)``;
    ``g_vmax`` ``dL/dv_max`` with ``vm = (time, kind, slope, arrival)`` of each ``v_max``
    (arrays of size 0 when none); ``g_mean`` ``dL/dS_u``, ``dL/dS_e`` of the voltage means
    (``S = (1/T) int ...`` of :func:`forward_shared`'s integrals; arrays of size 0 when none).
    ``dL/dw`` and ``dL/dt_a`` summed per weight are added to
    ``grads`` (``dL/dt_a``, the delay gradient, only when ``grads[1]`` is not empty),
    ``dL/dt`` of each presynaptic spike to ``dldt`` (only with ``arrival_times`` or delay
    gradients: without, when the presynaptic spikes are a spike source's whose ``dL/dt``
    nobody reads, the arrivals cost a third of what they cost with).

    The samples are swept in parallel by blocks of consecutive samples
    (:func:`reduction_blocks`, a number fixed by the batch and layer sizes); each block sums
    its samples' gradients in order, and the blocks are then added in order: the result does
    not depend on the number of threads (adding the blocks' untouched rows, which are 0, is
    left out: it would change no bit, since ``x + 0.0 == x`` for every ``x`` but ``-0.0``,
    which no sum starting from ``0.0`` becomes).
    """
    batch, size = ref_end.shape
    rows = wcat.shape[0]
    p = param_tuple(par, 0)
    n_blocks = reduction_blocks(batch, rows * size)
    want_delays = grads[1].size > 0
    times = arrival_times or want_delays
    part = np.empty((n_blocks, 2 if want_delays else 1, rows, size))
    used = np.zeros((n_blocks, rows), np.bool_)  # rows of part[blk] in use (set to 0 first)
    for blk in numba.prange(n_blocks):
        lo, hi = blk * batch // n_blocks, (blk + 1) * batch // n_blocks
        clear_rows(ev[1], ev_off[lo], ev_off[hi], part[blk], used[blk])
        for b in range(lo, hi):
            _backward_sample(p, wcat, ev_off, ev, tape, spk_off, dldt, src0, g_first, g_vmax, vm,
                             g_mean, ref_end, t0, t1, b, part[blk], _scratch(size),
                             times)  # fmt: skip
    add_block_rows(part, used, widx_row, grads)


@numba.njit(cache=True, inline="always")
def add_block_rows(part, used, widx_row, grads):
    """Add the blocks' gradient rows ``part`` ``(blocks, 1 or 2, rows, size)`` to ``grads``
    at the flat indices ``widx_row[row] + j``, block after block (the rows not ``used`` by a
    block are left out: they would add 0)."""
    size = part.shape[3]
    for r in numba.prange(part.shape[2]):
        for blk in range(part.shape[0]):
            if used[blk, r]:
                for j in range(size):
                    grads[0][widx_row[r] + j] += part[blk, 0, r, j]
                if part.shape[1] > 1:
                    for j in range(size):
                        grads[1][widx_row[r] + j] += part[blk, 1, r, j]


@numba.njit(cache=True, inline="always")
def clear_rows(row_of, lo, hi, acc, used):
    """Set to 0 the rows of ``acc`` ``(1 or 2, rows, size)`` that arrivals ``lo:hi`` (weight
    rows ``row_of``) add to, and mark them in ``used``: a layer with many presynaptic neurons
    (an image's pixels) receives from few of them per batch, and neither clearing nor summing
    the rest is needed."""
    for m in range(lo, hi):
        r = row_of[m]
        if not used[r]:
            used[r] = True
            acc[:, r, :] = 0.0


@numba.njit(cache=True, _nrt=False)  # no reference counting: see _scratch
def _backward_sample(p, wcat, ev_off, ev, tape, spk_off, dldt, src0, g_first, g_vmax, vm,
                     g_mean, ref_end, t0, t1, b, acc, scratch, times):  # fmt: skip
    """Sample ``b`` of :func:`backward_shared`, gradients added to ``acc = (dL/dw, dL/dt_a)``
    ``(2, rows, size)`` (or ``(dL/dw,)``, ``(1, rows, size)``, without delay gradients).
    Between arrivals the adjoint of all neurons is carried back with one propagator; a neuron
    with private events (or its ``v_max``) in an interval is swept by
    :func:`_private_backward`.  The voltage means are sources of density ``sigma_u =
    (dL/dS_u)/T`` and ``sigma_e = (dL/dS_e)/T exp(-(t - t0)/T)`` in ``lambda_V``'s equation.
    ``scratch``: the work arrays of :func:`_scratch` (compiled without reference counting, as
    :func:`.shared._forward_sample`); ``times``: whether ``dL/dt_a`` is wanted (see
    :func:`_shared_arrival`)."""
    size = ref_end.shape[1]
    want_mean, gamma = g_mean[0].size > 0, 1.0 / (t1 - t0)
    # which of the means has a gradient in this sample (the other's sources are 0)
    mean_u = want_mean and _any_nonzero(g_mean[0], b)
    mean_e = want_mean and _any_nonzero(g_mean[1], b)
    src_u, src_e, weight_e = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0
    lv, le, li, carry, refractory, last, vm_g, kink, latest, d_t, busy, busy_words, visit = scratch
    # vm_g: dL/dv_max still to be added at an interior time (0: none); kink: at an arrival
    for j in range(size):
        refractory[j] = ref_end[b, j] > t1
        last[j] = tape[5][b * size + j + 1] - 1
        if g_vmax.size and g_vmax[b, j] != 0.0 and vm[1][b, j] == VMAX_STATE:
            if vm[3][b, j] >= 0.0:
                kink[j] = g_vmax[b, j]
            else:
                vm_g[j] = g_vmax[b, j]
    # the latest private event of each neuron not yet swept (-inf: none)
    for j in range(size):
        if last[j] >= tape[5][b * size + j]:
            latest[j] = tape[1][last[j]]
    # no sources, no v_max: free neurons in one vectorised pass (not worth its set-up for
    # a handful of neurons)
    plain = size >= 16 and not want_mean and not np.any(vm_g) and not np.any(kink)
    t_src = math.inf
    if not want_mean:  # a voltage mean is a source everywhere
        t_src = _latest_source(tape, b, size, dldt, src0, spk_off, g_first, vm_g, kink, vm)
    top, cur = _skip_tail(ev, ev_off, b, t_src, t1, tape, size, last, latest, refractory)
    for m in range(top, ev_off[b] - 2, -1):
        te = ev[0][m] if m >= ev_off[b] else t0
        if te < cur or m < ev_off[b]:  # not the empty interval between coincident arrivals
            em, ae, ai, qe, qi = flow(p, cur - te)
            if mean_u:
                src_u = source_coefs(p, cur - te, 0.0, em)
            if mean_e:
                src_e = source_coefs(p, cur - te, gamma, em)
                weight_e = gamma * math.exp(-(te - t0) * gamma)
            n_visit = size
            if plain:  # the others are carried by _free_back
                _free_back(lv, le, li, refractory, latest, te, em, ae, ai, qe, qi, busy)
                n_visit = marked(busy, busy_words, visit)
            for c in range(n_visit):
                j = visit[c] if plain else c
                row = b * size + j
                g_u = g_mean[0][b, j] if want_mean else 0.0
                g_e = g_mean[1][b, j] if want_mean else 0.0
                lo = last[j] + 1
                while lo > tape[5][row] and tape[1][lo - 1] > te:
                    lo -= 1
                vm_here = vm_g[j] != 0.0 and te < vm[0][b, j] <= cur
                if lo <= last[j] or vm_here:  # private events (or v_max) in (te, cur]
                    first = spk_off[row] if spk_off[row + 1] > spk_off[row] else -1
                    lam = (lv[j], le[j], li[j], carry[j])
                    vm_t = vm[0][b, j] if vm_here else math.nan
                    lv[j], le[j], li[j], carry[j] = _private_backward(
                        p, tape, lo, last[j] + 1, dldt, src0, first, g_first[b, j], te, cur,
                        refractory[j], lam, vm_t, vm_g[j], (g_u, g_e, t0, gamma),
                    )  # fmt: skip
                    if lo <= last[j]:
                        refractory[j] = tape[0][lo] != EV_SPIKE
                    last[j] = lo - 1
                    latest[j] = tape[1][lo - 1] if lo - 1 >= tape[5][row] else -math.inf
                else:
                    lam3 = adjoint_apply(p, lv[j], le[j], li[j], cur - te, refractory[j], 0.0, 0.0,
                                         0.0, em, ae, ai, qe, qi)  # fmt: skip
                    if g_u != 0.0 and not refractory[j]:
                        lam3 = add_source(*lam3, g_u * gamma, src_u)
                    if g_e != 0.0 and not refractory[j]:
                        lam3 = add_source(*lam3, g_e * weight_e, src_e)
                    lv[j], le[j], li[j] = lam3
        if m >= ev_off[b]:
            _shared_arrival(p, wcat, ev, m, lv, le, li, refractory, dldt, acc, kink, vm, b,
                            not plain, d_t, times)  # fmt: skip
        cur = te


@numba.njit(cache=True, inline="always")
def _scratch(size):
    """Work arrays of :func:`_backward_sample`, which cannot allocate: ``(lambda_V, lambda_E,
    lambda_I, carry, refractory, last, vm_g, kink, latest, d_t, busy, busy_words, visit)``;
    ``busy_words`` is ``busy`` (zero padded to whole words) seen as 64-bit words
    (:func:`.shared.marked`)."""
    busy = np.zeros(-(-size // 8) * 8, np.bool_)
    return (np.zeros(size), np.zeros(size), np.zeros(size), np.zeros(size),
            np.empty(size, np.bool_), np.empty(size, np.int64), np.zeros(size), np.zeros(size),
            np.full(size, -math.inf), np.empty(size), busy, busy.view(np.uint64),
            np.empty(size, np.int64))  # fmt: skip


@numba.njit(cache=True, inline="always")
def _any_nonzero(x, b):
    """Whether row ``b`` of ``x`` has an entry other than 0."""
    for j in range(x.shape[1]):
        if x[b, j] != 0.0:
            return True
    return False


@numba.njit(cache=True, inline="always")
def _latest_source(tape, b, size, dldt, src0, spk_off, g_first, vm_g, kink, vm):
    """Time of the latest source of sample ``b``'s adjoint (-inf: none): a spike whose
    ``dL/dt`` is not 0 (from the arrivals it caused, or the first-spike readout), or a
    ``v_max`` jump.  Between sources the adjoint equations are linear and homogeneous, so
    after the latest one (in the reverse sweep: before reaching it) the adjoint is exactly 0.
    """
    t_src = -math.inf
    for j in range(size):
        row = b * size + j
        if vm_g[j] != 0.0 or kink[j] != 0.0:
            t_src = max(t_src, vm[0][b, j])
        first = spk_off[row] if spk_off[row + 1] > spk_off[row] else -1
        for m in range(tape[5][row + 1] - 1, tape[5][row] - 1, -1):  # latest first
            if tape[1][m] <= t_src:
                break
            if tape[0][m] == EV_SPIKE:
                s = tape[4][m]
                if dldt[src0 + s] != 0.0 or (s == first and g_first[b, j] != 0.0):
                    t_src = tape[1][m]
                    break
    return t_src


@numba.njit(cache=True, inline="always")
def _skip_tail(ev, ev_off, b, t_src, t1, tape, size, last, latest, refractory):
    """Where sample ``b``'s reverse sweep starts: the arrivals later than ``t_src``
    (:func:`_latest_source`) and every private event after the earliest of them are passed
    over, as the sweep would leave them: the adjoint is 0 there, so they add nothing to any
    gradient.  The neurons' bookkeeping (``last``, ``latest``, ``refractory``) is moved past
    the private events passed over.  Returns ``(first arrival to sweep, its interval's end)``.
    """
    m, cur = ev_off[b + 1] - 1, t1
    while m >= ev_off[b] and ev[0][m] > t_src:
        cur = ev[0][m]
        m -= 1
    if cur < t1:
        for j in range(size):
            row = b * size + j
            lo = last[j] + 1
            while lo > tape[5][row] and tape[1][lo - 1] > cur:
                lo -= 1
            if lo <= last[j]:
                refractory[j] = tape[0][lo] != EV_SPIKE
                last[j] = lo - 1
                latest[j] = tape[1][lo - 1] if lo - 1 >= tape[5][row] else -math.inf
    return m, cur


@numba.njit(cache=True, inline="always")  # one call site, once per interval
def _free_back(lv, le, li, refractory, latest, te, em, ae, ai, qe, qi, busy):
    """:func:`.adjoint.adjoint_apply` without sources over ``(te, cur]`` for every neuron
    without private events there (``latest <= te``), the others left as they are and marked
    in ``busy``: a branch-free loop (the compiler vectorises it), the same operations, so the
    same results.  A refractory neuron's ``lambda_V`` does not feed its currents' adjoint:
    ``-0.0`` is added instead of ``q_x lambda_V``, which leaves every value as it is (``x +
    (-0.0) == x``, signed zeros included), so both cases are one expression and the loop has
    a single select per variable (nested selects halved its speed)."""
    for j in range(lv.size):
        keep = latest[j] > te
        busy[j] = keep
        a, e, i = lv[j], le[j], li[j]
        ref = refractory[j]
        a1 = 0.0 if ref else em * a
        e1 = ae * e + (-0.0 if ref else qe * a)
        i1 = ai * i + (-0.0 if ref else qi * a)
        lv[j] = a if keep else a1
        le[j] = e if keep else e1
        li[j] = i if keep else i1


@numba.njit(cache=True, inline="always")
def _private_backward(p, tape, lo, hi, dldt, src0, first, g_first, te, cur, refractory, lam,
                      vm_t, vm_g, means):  # fmt: skip
    """Carry one neuron's adjoint from ``cur`` back to ``te`` through its private events
    ``lo:hi`` (spikes and ends of refractoriness) and, when ``vm_t`` is not NaN, the jump
    ``lambda_V += vm_g`` at the time ``vm_t`` of its ``v_max``: :func:`.adjoint.backward_neuron`
    without arrivals or sampling.  ``lam = (lambda_V, lambda_E, lambda_I, dL/dt_end)`` at
    ``cur``; returns it at ``te``.  ``means = (dL/dS_u, dL/dS_e, t0, 1/T)`` of the voltage
    means (see :func:`_backward_sample`).
    """
    lv, le, li, carry = lam
    g_u, g_e, t0, gamma = means
    t = cur
    for m in range(hi - 1, lo - 2, -1):
        tm = tape[1][m] if m >= lo else te
        if tm < vm_t <= t:
            lv, le, li = _flow_back(p, (lv, le, li), t, vm_t, refractory, means)
            lv += vm_g
            t = vm_t
        lv, le, li = _flow_back(p, (lv, le, li), t, tm, refractory, means)
        t = tm
        if m < lo:
            break
        if tape[0][m] == EV_SPIKE:
            s = tape[4][m]
            total = dldt[src0 + s] + carry - lv * tape[3][m]
            if g_u != 0.0 or g_e != 0.0:  # V jumps from theta to v_reset in the integrands
                sig = gamma * (g_u + g_e * math.exp(-(tm - t0) * gamma))
                total += sig * (p[THETA] - p[V_RESET])
            if s == first:
                total += g_first
            lv, carry, refractory = -total / tape[2][m], 0.0, False
        else:  # end of the refractory period
            lv, carry, refractory = 0.0, -lv * tape[2][m], True
    return lv, le, li, carry


@numba.njit(cache=True, inline="always")
def _flow_back(p, lam, t, te, refractory, means):
    """Carry ``lam = (lambda_V, lambda_E, lambda_I)`` from ``t`` back to ``te`` with the
    voltage-mean sources of ``means`` (see :func:`_private_backward`)."""
    g_u, g_e, t0, gamma = means
    em, ae, ai, qe, qi = flow(p, t - te)
    sig_e = g_e * gamma * math.exp(-(te - t0) * gamma) if g_e != 0.0 else 0.0
    return adjoint_apply(p, lam[0], lam[1], lam[2], t - te, refractory, g_u * gamma, sig_e,
                         gamma, em, ae, ai, qe, qi)  # fmt: skip


@numba.njit(cache=True, inline="always")
def _shared_arrival(p, wcat, ev, m, lv, le, li, refractory, dldt, acc, kink, vm, b, kinks, d_t,
                    times):  # fmt: skip
    """Arrival ``m`` at every neuron: ``dL/dw = lambda_x`` and (when ``acc`` has room for it)
    ``dL/dt_a`` into ``acc`` at the arrival's weight row, ``dL/dt_a`` summed to the spike
    (with ``times``, which the delay gradients need too; without, ``dL/dw`` only); a
    ``v_max`` at this arrival (``kink``) adds ``dL/dv_max`` to ``lambda_V`` and ``dL/dv_max
    dV/dt(t_a-)`` to ``dL/dt_a`` (``kinks``: whether any ``kink`` may be set).

    ``dL/dt_a = w (lambda_x/tau_x - lambda_V/cm)`` (the second term 0 while refractory) of
    every neuron goes through ``d_t`` (scratch, one entry per neuron): its loops have no
    branches and no running sum, so the compiler vectorises them, and the sum over the
    neurons (:func:`lane_sum`) adds four interleaved partial sums.
    """
    r, c = ev[1][m], ev[2][m]
    inv_tau, inv_cm = (p[IT_E] if c == 0 else p[IT_I]), p[INV_CM]
    lam = le if c == 0 else li
    if times or kinks:
        for j in range(lv.size):
            w = wcat[r, j]
            leak = w * lv[j] * inv_cm
            d_t[j] = w * lam[j] * inv_tau - (0.0 if refractory[j] else leak)
    if kinks:
        for j in range(lv.size):
            if kink[j] != 0.0 and vm[3][b, j] == m:
                d_t[j] += kink[j] * vm[2][b, j]
                lv[j] += kink[j]
    for j in range(lv.size):
        acc[0, r, j] += lam[j]
    if acc.shape[0] > 1:  # the delay gradients are wanted
        for j in range(lv.size):
            acc[1, r, j] += d_t[j]
    if times:
        dldt[ev[3][m]] += lane_sum(d_t)


@numba.njit(cache=True, inline="always")
def lane_sum(x):
    """``sum(x)`` as four partial sums of every fourth entry, ``(s_0 + s_1) + (s_2 + s_3)``:
    a fixed order (the same result on any machine and thread count) whose four additions per
    step are independent, where one running sum waits for each addition in turn."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = x.size - x.size % 4
    for j in range(0, n4, 4):
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
    for j in range(n4, x.size):
        s0 += x[j]
    return (s0 + s1) + (s2 + s3)
