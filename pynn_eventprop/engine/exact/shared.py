"""Layers whose neurons all receive the same spikes at the same times, vectorised over neurons.

When every incoming projection connects all-to-all with a delay that depends only on the
presynaptic neuron, and the neurons share their parameters, every neuron of a sample sees the
same event times (the arrivals; only the weights differ).  Then the propagator of each interval
between arrivals is computed once per sample and applied to all neurons in one loop; a neuron
leaves that loop for an interval only when it may cross threshold or is refractory, and is then
integrated on its own by :func:`.forward.run_neuron` over that interval (spikes, resets, ends
of refractoriness at their exact times, recorded in its *private* tape).  The backward pass
mirrors this with :func:`.adjoint.backward_neuron` for the private events.  Results equal the
general path's to rounding.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .adjoint import adjoint_apply, backward_neuron
from .arrivals import empty_pending
from .closed_form import INV_CM, IT_E, IT_I, THETA, advance, first_crossing, flow, vdot
from .forward import EV_SPIKE, param_tuple, run_neuron

#: Option flags for the per-neuron integration of a single interval: tape only.
INTERVAL_OPTS = np.array([0, 0, 0, 0, 1], np.int64)


def shared_events(incoming, batch, t1):
    """Arrival events common to all neurons, due by ``t1``, sorted by time within each sample.

    ``incoming``: list of ``((times, neurons, offsets), src0, row_delay, row0, channel)`` per
    projection (``row_delay`` the delay of each presynaptic neuron, ``row0`` its first row in
    the concatenated weights).  Returns ``(offsets, (t, row, channel, src), late)`` with
    ``late = (t, row, channel, src, sample)`` the events due after ``t1``.
    """
    n = sum(x[0][0].size for x in incoming)
    buf = (np.empty(n), np.empty(n, np.int64), np.empty(n, np.int8), np.empty(n, np.int64),
           np.empty(n, np.int64))  # fmt: skip
    pos = 0
    for (times, neurons, offsets), src0, row_delay, row0, channel in incoming:
        pos = _collect(times, neurons, offsets, src0, row_delay, row0, channel, buf, pos)
    off, order, n_due = _order(buf[4], buf[0], batch, t1)
    due, late = order[:n_due], order[n_due:]
    if late.size:  # also by sample then time, as the arrivals they become are sorted later
        late = late[np.lexsort((buf[0][late], buf[4][late]))]
    return off, tuple(x[due] for x in buf[:4]), tuple(x[late] for x in buf)


@numba.njit(cache=True)
def _collect(times, neurons, offsets, src0, row_delay, row0, channel, buf, pos):
    """Write one projection's events ``(t, row, channel, src, sample)`` into ``buf`` from
    ``pos`` on; return the new fill."""
    for b in range(offsets.size - 1):
        for s in range(offsets[b], offsets[b + 1]):
            buf[0][pos] = times[s] + row_delay[neurons[s]]
            buf[1][pos] = row0 + neurons[s]
            buf[2][pos] = channel
            buf[3][pos] = src0 + s
            buf[4][pos] = b
            pos += 1
    return pos


@numba.njit(cache=True)
def _order(sample, t, batch, t1):
    """Stable order of the events by sample then time, those due by ``t1`` first.

    Returns ``(offsets of the due events per sample, order, number due)``.
    """
    off = np.zeros(batch + 1, np.int64)
    for m in range(t.size):
        if t[m] <= t1:
            off[sample[m] + 1] += 1
    for b in range(batch):
        off[b + 1] += off[b]
    order, cur, n_late = np.empty(t.size, np.int64), off[:-1].copy(), 0
    for m in range(t.size):
        if t[m] <= t1:
            order[cur[sample[m]]] = m
            cur[sample[m]] += 1
        else:
            order[off[batch] + n_late] = m
            n_late += 1
    for b in range(batch):
        seg = order[off[b] : off[b + 1]]
        order[off[b] : off[b + 1]] = seg[np.argsort(t[seg], kind="mergesort")]
    return off, order, off[batch]


@numba.njit(cache=True)
def _quiet(p, v, ie, ii, e, d, v1, ie1, ii1, tol):
    """Whether a free interval certainly has no crossing (cheap test first)."""
    if v1 >= p[THETA]:
        return False
    return first_crossing(p, v, ie, ii, e, d, v1, vdot(p, v1, ie1, ii1, e), tol, False) < 0.0


@numba.njit(cache=True)
def forward_shared(par, wcat, ev_off, ev, e, state, t0, t1, spk, tape, tol):
    """Integrate a shared-event layer over ``(t0, t1]`` (no grid events, no readouts).

    ``wcat`` ``(rows, size)`` weights; ``ev = (t, row, channel)`` sorted per sample;
    ``e`` the (uniform) external current; ``state = (v, i_E, i_I, ref_end)`` ``(batch, size)``
    updated in place.  ``spk = (times, neurons, offsets)`` and ``tape = (kind, t, a, b, idx,
    offsets)`` as in :func:`.forward.forward_layer`, the tape holding only private events.
    Returns the number of spikes, -1 / -2 when a buffer is too small.
    """
    batch, size = state[0].shape
    p = param_tuple(par, 0)
    ext = np.full((1, 1, size), e)
    none = (np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
    rec = (np.zeros((0, 1, 1)), np.zeros((0, 1, 1)), np.zeros((0, 1, 1)))
    acc = np.zeros(7)
    cache = np.full((1, 6), np.nan)  # the interval's propagator, for run_neuron's first flow
    sub_t, sub_spk = np.empty(tape[1].size), np.empty(spk[0].size)  # one sample, time order
    sub_who, sub_spk_who = np.empty(tape[1].size, np.int64), np.empty(spk[0].size, np.int64)
    sub = (np.empty(tape[1].size, np.int8), sub_t, np.empty(tape[1].size), np.empty(tape[1].size),
           np.empty(tape[1].size, np.int64))  # fmt: skip
    ns_all, nt_all = 0, 0
    for b in range(batch):
        v, ie, ii, ref = state[0][b], state[1][b], state[2][b], state[3][b]
        ns, nt, t = 0, 0, t0
        for m in range(ev_off[b], ev_off[b + 1] + 1):
            tn = ev[0][m] if m < ev_off[b + 1] else t1
            d = tn - t
            em, ae, ai, qe, qi = flow(p, d)
            cache[0, 0], cache[0, 1], cache[0, 2] = d, em, ae
            cache[0, 3], cache[0, 4], cache[0, 5] = ai, qe, qi
            for j in range(size):
                if ref[j] <= t:
                    v1, ie1, ii1 = advance(p, v[j], ie[j], ii[j], e, em, ae, ai, qe, qi)
                    if d == 0.0 or _quiet(p, v[j], ie[j], ii[j], e, d, v1, ie1, ii1, tol):
                        v[j], ie[j], ii[j] = v1, ie1, ii1
                        continue
                n0, k0 = ns, nt
                ns, nt, st = run_neuron(p, ext, 0, 0, j, (v[j], ie[j], ii[j], ref[j]), none, 0, 0,
                                       t, d, 1, INTERVAL_OPTS, rec, sub_spk, ns, sub, nt, acc,
                                       tol, cache)  # fmt: skip
                if ns < 0:
                    return -1
                if nt < 0:
                    return -2
                v[j], ie[j], ii[j], ref[j] = st
                sub_spk_who[n0:ns] = j
                sub_who[k0:nt] = j
            if m < ev_off[b + 1]:
                r = ev[1][m]
                for j in range(size):
                    if ev[2][m] == 0:
                        ie[j] += wcat[r, j]
                    else:
                        ii[j] += wcat[r, j]
            t = tn
        ns_all, nt_all = _by_neuron(b, size, ns, nt, sub_spk, sub_spk_who, sub, sub_who,
                                    spk, tape, ns_all, nt_all)  # fmt: skip
        if ns_all < 0:
            return ns_all
    spk[2][batch * size] = ns_all
    tape[5][batch * size] = nt_all
    return ns_all


@numba.njit(cache=True)
def _by_neuron(b, size, ns, nt, sub_spk, sub_spk_who, sub, sub_who, spk, tape, ns_all, nt_all):
    """Append one sample's spikes and private events regrouped per neuron (counting sort,
    stable, so each neuron's events stay in time order); return the new fills."""
    if ns_all + ns > spk[0].size:
        return -1, nt_all
    if nt_all + nt > tape[1].size:
        return -2, nt_all
    spk_pos, tape_pos = np.zeros(size + 1, np.int64), np.zeros(size + 1, np.int64)
    for s in range(ns):
        spk_pos[sub_spk_who[s] + 1] += 1
    for q in range(nt):
        tape_pos[sub_who[q] + 1] += 1
    for j in range(size):
        spk_pos[j + 1] += spk_pos[j]
        tape_pos[j + 1] += tape_pos[j]
        spk[2][b * size + j] = ns_all + spk_pos[j]
        tape[5][b * size + j] = nt_all + tape_pos[j]
    new_index = np.empty(ns, np.int64)
    for s in range(ns):
        k = ns_all + spk_pos[sub_spk_who[s]]
        spk_pos[sub_spk_who[s]] += 1
        spk[0][k], spk[1][k] = sub_spk[s], sub_spk_who[s]
        new_index[s] = k
    for q in range(nt):
        k = nt_all + tape_pos[sub_who[q]]
        tape_pos[sub_who[q]] += 1
        tape[0][k], tape[1][k], tape[2][k], tape[3][k] = sub[0][q], sub[1][q], sub[2][q], sub[3][q]
        tape[4][k] = new_index[sub[4][q]] if sub[0][q] == EV_SPIKE else sub[4][q]
    return ns_all + ns, nt_all + nt


@numba.njit(cache=True)
def backward_shared(par, wcat, ev_off, ev, widx_row, tape, spk_off, dldt, src0, g_first,
                    ref_end, t0, t1, grads):  # fmt: skip
    """Reverse sweep of a shared-event layer (see :func:`forward_shared`).

    ``ev = (t, row, channel, src)``; ``widx_row`` the flat gradient index of each weight row's
    first column; ``tape`` the private events; ``g_first`` ``dL/d(first spike time)``.
    Between arrivals the adjoint of all neurons is carried back with one propagator; a neuron
    with private events in an interval is swept by :func:`.adjoint.backward_neuron`.
    """
    batch, size = ref_end.shape
    p = param_tuple(par, 0)
    carried = (np.zeros((batch, size)), np.zeros((batch, size)), np.zeros((batch, size)),
               np.zeros((batch, size)))  # fmt: skip
    arrivals = (np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64))
    no_adj = (np.zeros((0, 0, 0)), np.zeros((0, 0, 0)))
    cache, no_vmax = np.zeros((0, 6)), (0.0, 0.0, 0.0, 0.0)
    refractory, last = np.empty(size, np.bool_), np.empty(size, np.int64)
    for b in range(batch):
        lv, le, li = carried[0][b], carried[1][b], carried[2][b]
        for j in range(size):
            refractory[j] = ref_end[b, j] > t1
            last[j] = tape[5][b * size + j + 1] - 1
        cur = t1
        for m in range(ev_off[b + 1] - 1, ev_off[b] - 2, -1):
            te = ev[0][m] if m >= ev_off[b] else t0
            em, ae, ai, qe, qi = flow(p, cur - te)
            for j in range(size):
                row = b * size + j
                lo = last[j] + 1
                while lo > tape[5][row] and tape[1][lo - 1] > te:
                    lo -= 1
                if lo <= last[j]:  # private events in (te, cur]
                    first = spk_off[row] if spk_off[row + 1] > spk_off[row] else -1
                    backward_neuron(p, tape, lo, last[j] + 1, arrivals, dldt, src0, first,
                                    (g_first[b, j], 0.0, 0.0, 0.0), no_vmax, te, cur,
                                    cur + 1.0 if refractory[j] else -math.inf, grads, cache,
                                    no_adj, b, j, 1.0, carried)  # fmt: skip
                    refractory[j] = tape[0][lo] != EV_SPIKE
                    last[j] = lo - 1
                else:
                    lv[j], le[j], li[j] = adjoint_apply(p, lv[j], le[j], li[j], cur - te,
                                                        refractory[j], 0.0, 0.0, 0.0, em, ae,
                                                        ai, qe, qi)  # fmt: skip
            if m >= ev_off[b]:
                _shared_arrival(p, wcat, ev, m, widx_row, lv, le, li, refractory, dldt, grads)
            cur = te


@numba.njit(cache=True)
def _shared_arrival(p, wcat, ev, m, widx_row, lv, le, li, refractory, dldt, grads):
    """Arrival ``m`` at every neuron: ``dL/dw = lambda_x``, ``dL/dt_a`` summed to the spike."""
    r, c = ev[1][m], ev[2][m]
    inv_tau = p[IT_E] if c == 0 else p[IT_I]
    total = 0.0
    for j in range(lv.size):
        w = wcat[r, j]
        lam_x = le[j] if c == 0 else li[j]
        d_t = w * lam_x * inv_tau
        if not refractory[j]:
            d_t -= w * lv[j] * p[INV_CM]
        k = widx_row[r] + j
        grads[0][k] += lam_x
        grads[1][k] += d_t
        total += d_t
    dldt[ev[3][m]] += total


def in_flight(late, wcat, widx_row, dtype):
    """Events due after the run as arrivals in flight to every neuron, ``(b, j, t, w, c,
    widx, src)`` (``late = (t, row, channel, src, sample)`` from :func:`shared_events`)."""
    t, row, chan, src, sample = late
    if not t.size:
        return empty_pending(dtype)
    size = wcat.shape[1]
    return (
        np.repeat(sample, size),
        np.tile(np.arange(size), t.size),
        np.repeat(t, size),
        wcat[row].ravel().astype(dtype),
        np.repeat(chan, size),
        (widx_row[row][:, None] + np.arange(size)).ravel(),
        np.repeat(src, size),
    )
