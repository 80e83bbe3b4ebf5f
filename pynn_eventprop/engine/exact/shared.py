"""Layers whose neurons all receive the same spikes at the same times, vectorised over neurons.

When every incoming projection connects all-to-all with a delay that depends only on the
presynaptic neuron, and the neurons share their parameters, every neuron of a sample sees the
same event times (the arrivals; only the weights differ).  Then the propagator of each interval
between arrivals is computed once per sample and applied to all neurons in one loop; a neuron
leaves that loop for an interval only when it may cross threshold or is refractory, and is then
integrated on its own over that interval by :func:`_private` (spikes, resets, ends of
refractoriness at their exact times, recorded in its *private* tape); the backward pass
(:mod:`.shared_adjoint`) mirrors this.  :func:`_private` is the general path's neuron loop
(:func:`.forward._forward_rows`) reduced to an arrival-free interval without readouts (a small
scalar kernel: the general one, inlined with all its buffers, costs twice as much per call).
Before that, the first crossings of the neurons that certainly cross in the interval are
located together (:func:`_first_crossings`, in the power form): one root at a time spends
most of its time waiting for its own divisions.  Results equal the general path's to rounding.

The helpers that take arrays are inlined into their callers (``inline="always"``, here and in
:mod:`.shared_adjoint`): numba passes an array to a function it calls out of line with an
atomic increment and decrement of the array's reference count, which cost as much as the
arithmetic of an interval for a small layer.  Inlined, numba still counts references to the
arrays it reaches through tuples (the tape, the state) on every use, so the per-sample kernel
:func:`_forward_sample` is compiled without reference counting (``_nrt=False``): every array
it touches belongs to its caller, which also allocates its work arrays (:func:`_scratch`).
That took the counting's 15 % out of a hidden layer's forward pass.

Besides the first spike time, the path can read out ``v_max`` (with its time): the same
candidates as the general path (the start of the run, interior maxima and ends of free
intervals, ``theta`` at a spike, ``v_reset`` while refractory), searched only until the neuron
first spikes (no later candidate can exceed ``theta``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .arrivals import empty_pending
from .closed_form import (
    INV_CM,
    IT_E,
    IT_I,
    IT_M,
    K_E,
    K_I,
    POW,
    R_M,
    T_REF,
    THETA,
    V_RESET,
    advance,
    first_crossing,
    flow,
    integral_coefs,
    integral_from,
    interval_max,
    power_bracket,
    power_form,
    power_roots,
    power_starts,
    propagate,
    slopes,
    vdot,
)
from .forward import (
    EV_REF_END,
    EV_SPIKE,
    VMAX_CONSTANT,
    VMAX_STATE,
    clamped_integrals,
    free_integrals,
    overflow,
    param_tuple,
)


@numba.njit(cache=True)
def _gather(buf, index):
    """``buf`` (five event arrays) taken at ``index``."""
    out = (np.empty(index.size), np.empty(index.size, np.int64), np.empty(index.size, np.int8),
           np.empty(index.size, np.int64), np.empty(index.size, np.int64))  # fmt: skip
    for m in range(index.size):
        k = index[m]
        out[0][m], out[1][m], out[2][m], out[3][m], out[4][m] = (
            buf[0][k], buf[1][k], buf[2][k], buf[3][k], buf[4][k]
        )  # fmt: skip
    return out


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
def _order(sample, t, batch, t1, sort_due=True):
    """Stable order of the events by sample then time, those due by ``t1`` first (then those
    due later, also by sample then time; without ``sort_due`` the due ones of a sample stay in
    the order they come in).

    Returns ``(offsets of the due events per sample, order, number due)``.
    """
    off = np.zeros(batch + 1, np.int64)
    late_off = np.zeros(batch + 1, np.int64)
    for m in range(t.size):
        if t[m] <= t1:
            off[sample[m] + 1] += 1
        else:
            late_off[sample[m] + 1] += 1
    for b in range(batch):
        off[b + 1] += off[b]
        late_off[b + 1] += late_off[b]
    n_due = off[batch]
    order, cur, cur_late = np.empty(t.size, np.int64), off[:-1].copy(), late_off[:-1] + n_due
    for m in range(t.size):
        if t[m] <= t1:
            order[cur[sample[m]]] = m
            cur[sample[m]] += 1
        else:
            order[cur_late[sample[m]]] = m
            cur_late[sample[m]] += 1
    for b in range(batch):
        if sort_due:
            _sort_segment(order, t, off[b], off[b + 1])
        _sort_segment(order, t, n_due + late_off[b], n_due + late_off[b + 1])
    return off, order, n_due


@numba.njit(cache=True)
def _sort_segment(order, t, lo, hi):
    """Stable sort of ``order[lo:hi]`` by ``t``: a stable counting sort into as many buckets
    of equal width as there are events, then an insertion sort, which only has to reorder
    events within a bucket (linear time for spread-out times; exact: it compares the times)."""
    n = hi - lo
    if n > 8:
        seg = order[lo:hi].copy()
        t_lo, t_hi = t[seg[0]], t[seg[0]]
        for x in seg:
            t_lo, t_hi = min(t_lo, t[x]), max(t_hi, t[x])
        if t_hi > t_lo:
            scale = n / (t_hi - t_lo)
            start = np.zeros(n + 1, np.int64)
            for x in seg:
                start[min(int((t[x] - t_lo) * scale), n - 1) + 1] += 1
            for k in range(n):
                start[k + 1] += start[k]
            for x in seg:
                k = min(int((t[x] - t_lo) * scale), n - 1)
                order[lo + start[k]] = x
                start[k] += 1
    for m in range(lo + 1, hi):
        x, q = order[m], m - 1
        while q >= lo and t[order[q]] > t[x]:
            order[q + 1] = order[q]
            q -= 1
        order[q + 1] = x


@numba.njit(cache=True, inline="always")
def _quiet(p, v, ie, ii, e, d, v1, ie1, ii1, tol):
    """Whether a free interval certainly has no crossing (cheap test first)."""
    if v1 >= p[THETA]:
        return False
    return first_crossing(p, v, ie, ii, e, d, v1, vdot(p, v1, ie1, ii1, e), tol, False) < 0.0


@numba.njit(cache=True, parallel=True)
def forward_shared(par, wcat, ev_off, ev, e, state, t0, t1, spk, tape, vm, vs, tol, stop):
    """Integrate a shared-event layer over ``(t0, t1]`` (no grid events).

    ``wcat`` ``(rows, size)`` weights; ``ev = (t, row, channel)`` sorted per sample;
    ``e`` the (uniform) external current; ``state = (v, i_E, i_I, ref_end)`` ``(batch, size)``
    updated in place.  ``spk = (times, neurons, offsets)`` and ``tape = (kind, t, a, b, idx,
    offsets)`` as in :func:`.forward.forward_layer`, the tape holding only private events.
    ``vm = (v_max, time, kind, slope, arrival)`` arrays ``(batch, size)`` filled as the general
    path's readouts (``arrival``: index of the event the maximum sits at, -1 if none), or
    arrays of size 0 for no ``v_max``.  ``vs = (int V dt, int exp(-(t - t0)/T) V dt)``
    arrays ``(batch, size)`` (mV ms, ``T = t1 - t0``) accumulate the voltage integrals, or are
    of size 0 for none (the second alone: only ``int V dt``, which is always computed when any
    mean is).  With ``stop`` (and no voltage means) a sample ends at the first arrival after
    every neuron has spiked: its first spike times and ``v_max`` are final then, while its
    later spikes, private events and state are left out (see :func:`_forward_sample`).

    The samples are integrated in parallel (:func:`_forward_sample`, each into its own rows of
    scratch buffers, a share of the capacity of ``spk`` and ``tape``), then regrouped per
    neuron, in parallel too, each sample at the place the samples before it end: the result
    does not depend on the number of threads.
    Returns the number of spikes, -1 / -2 when a buffer is too small.
    """
    batch, size = state[0].shape
    p = param_tuple(par, 0)
    cap_s, cap_t = spk[0].size // batch + size, tape[1].size // batch + size
    sub_spk, sub_spk_who = np.empty((batch, cap_s)), np.empty((batch, cap_s), np.int64)
    sub = (np.empty((batch, cap_t), np.int8), np.empty((batch, cap_t)), np.empty((batch, cap_t)),
           np.empty((batch, cap_t)), np.empty((batch, cap_t), np.int64))  # fmt: skip
    sub_who = np.empty((batch, cap_t), np.int64)
    counts = np.empty((batch, 2), np.int64)
    for b in numba.prange(batch):
        sub_b = (sub[0][b], sub[1][b], sub[2][b], sub[3][b], sub[4][b])
        ns, nt = _forward_sample(p, wcat, ev_off, ev, e, state, t0, t1, vm, vs, b, sub_spk[b],
                                 sub_spk_who[b], sub_b, sub_who[b], tol, stop,
                                 _scratch(size))  # fmt: skip
        counts[b, 0], counts[b, 1] = ns, nt
    full = overflow(counts)
    if full < 0:
        return full
    start = np.zeros((batch + 1, 2), np.int64)  # where each sample's spikes and events go
    for b in range(batch):
        start[b + 1, 0], start[b + 1, 1] = start[b, 0] + counts[b, 0], start[b, 1] + counts[b, 1]
    ns_all, nt_all = start[batch, 0], start[batch, 1]
    if ns_all > spk[0].size:
        return -1
    if nt_all > tape[1].size:
        return -2
    for b in numba.prange(batch):
        sub_b = (sub[0][b], sub[1][b], sub[2][b], sub[3][b], sub[4][b])
        _by_neuron(b, size, counts[b, 0], counts[b, 1], sub_spk[b], sub_spk_who[b], sub_b,
                   sub_who[b], spk, tape, start[b, 0], start[b, 1])  # fmt: skip
    spk[2][batch * size] = ns_all
    tape[5][batch * size] = nt_all
    return ns_all


@numba.njit(cache=True, inline="always")
def _scratch(size):
    """Work arrays of :func:`_forward_sample`, which cannot allocate: ``(acc, sums, nxt, hard,
    hard_words, index, first, rows, flags, fired)``; ``hard_words`` is ``hard`` (zero padded
    to whole words) seen as 64-bit words, 8 flags each (:func:`marked`)."""
    hard = np.zeros(-(-size // 8) * 8, np.bool_)
    return (np.empty(5), np.zeros(2), np.empty((3, size)), hard, hard.view(np.uint64),
            np.empty((3, size), np.int64), np.empty(size), np.empty((9, size)),
            np.empty((2, size), np.bool_), np.zeros(size, np.bool_))  # fmt: skip


@numba.njit(cache=True, inline="always")
def marked(flags, words, out):
    """The indices of the set ``flags`` in increasing order, into ``out``; returns their
    number.  ``words``: ``flags`` (zero padded to whole words) seen as 64-bit words, so that
    8 unset flags are passed over at once (a layer's interval has a handful of neurons to
    visit among hundreds)."""
    n = 0
    for w in range(words.size):
        if words[w] != 0:
            for j in range(8 * w, 8 * w + 8):
                if flags[j]:
                    out[n] = j
                    n += 1
    return n


@numba.njit(cache=True, _nrt=False)  # no reference counting: see the module's notes
def _forward_sample(p, wcat, ev_off, ev, e, state, t0, t1, vm, vs, b, sub_spk, sub_spk_who,
                    sub, sub_who, tol, stop, scratch):  # fmt: skip
    """Sample ``b`` of :func:`forward_shared`: spikes into ``sub_spk`` and private events into
    ``sub`` in time order, the neuron of each in ``sub_spk_who`` / ``sub_who``.

    With ``stop`` the sample ends once every neuron has spiked, after the arrival that ends
    the interval of the last first spike (received, so that the state is that of a time
    between events).  Nothing read from a first-spike loss changes: the first spike times and
    ``v_max`` (searched only until a neuron's first spike) are final, and the adjoint is 0
    after the latest first spike (the reverse sweep starts there, :mod:`.shared_adjoint`).

    ``scratch``: the work arrays of :func:`_scratch`.  Returns ``(ns, nt)``, the numbers of
    spikes and private events (-1 when a buffer is full).
    """
    size = state[0].shape[1]
    want_vm, want_mean, gamma = vm[0].size > 0, vs[0].size > 0, 1.0 / (t1 - t0)
    weighted = vs[1].size > 0  # the exponentially weighted integral too
    no_coefs = (0.0, 0.0, 0.0, 0.0, 0.0)
    acc, sums, nxt3, hard, hard_words, index, first, rows, flags, fired = scratch
    nxt = (nxt3[0], nxt3[1], nxt3[2])  # the state at the end of an interval, per neuron
    v, ie, ii, ref = state[0][b], state[1][b], state[2][b], state[3][b]
    plain = not want_vm  # nothing more to do for a neuron without events than _screen does
    ns, nt, t = 0, 0, t0
    stop = stop and not want_mean  # a mean needs the whole run
    n_fired = 0  # how many neurons have spiked (with stop)
    if want_vm:
        _vm_start(p, vm, b, v, ref, t0)
    for m in range(ev_off[b], ev_off[b + 1] + 1):
        tn = ev[0][m] if m < ev_off[b + 1] else t1
        at = float(m) if m < ev_off[b + 1] else -1.0
        d = tn - t
        if d == 0.0 and m < ev_off[b + 1]:  # coincident arrivals: an empty interval
            _receive(wcat, ev[1][m], ie if ev[2][m] == 0 else ii)
            continue
        em, ae, ai, qe, qi = flow(p, d)
        means = (no_coefs, no_coefs, 0.0)
        if want_mean:
            means = (integral_coefs(p, e, d, 0.0),
                     integral_coefs(p, e, d, gamma) if weighted else no_coefs,
                     math.exp(-(t - t0) * gamma) if weighted else 0.0)  # fmt: skip
        _screen(p, v, ie, ii, ref, e, t, (em, ae, ai, qe, qi), nxt, hard, plain, vs, b, means)
        n_private = 0
        # plain: only the neurons that need more than _screen, which moved the others on
        n_visit = marked(hard, hard_words, index[2]) if plain else size
        for c in range(n_visit):
            j = index[2, c] if plain else c
            searching = want_vm and vm[0][b, j] < p[THETA] and d > 0.0
            if not hard[j]:  # no crossing, not refractory, no interior maximum
                if searching and nxt[0][j] > vm[0][b, j]:
                    _vm_end(p, vm, b, j, e, t + d, nxt[0][j], nxt[1][j], nxt[2][j], at)
                if want_mean:
                    _mean_free(p, vs, b, j, v[j], ie[j], ii[j], nxt[0][j], means)
                v[j], ie[j], ii[j] = nxt[0][j], nxt[1][j], nxt[2][j]
                continue
            if ref[j] <= t:
                v1, ie1, ii1 = nxt[0][j], nxt[1][j], nxt[2][j]
                if d == 0.0 or _quiet(p, v[j], ie[j], ii[j], e, d, v1, ie1, ii1, tol):
                    if want_mean:
                        _mean_free(p, vs, b, j, v[j], ie[j], ii[j], v1, means)
                    if searching:
                        _vm_free(p, vm, b, j, v[j], ie[j], ii[j], e, t, d, v1, ie1, ii1, at,
                                 tol)  # fmt: skip
                    v[j], ie[j], ii[j] = v1, ie1, ii1
                    continue
            index[0, n_private] = j  # integrated on its own, below
            n_private += 1
        if n_private:
            _first_crossings(p, (v, ie, ii, ref), e, t, d, em, nxt, index, n_private, first,
                             rows, flags, tol)  # fmt: skip
        for h in range(n_private):
            j = index[0, h]
            searching = want_vm and vm[0][b, j] < p[THETA] and d > 0.0
            if searching:
                for q in range(5):
                    acc[q] = vm[q][b, j]
            else:
                acc[0] = math.nan  # no search
            sums[0] = sums[1] = math.nan  # no integrals
            if want_mean:
                sums[0], sums[1] = vs[0][b, j], vs[1][b, j] if weighted else 0.0
            n0, k0 = ns, nt
            ns, nt, st = _private(p, e, (v[j], ie[j], ii[j], ref[j]), t, d,
                                  (em, ae, ai, qe, qi), first[h], sub_spk, ns, sub, nt, acc,
                                  at, sums, t0, gamma, tol)  # fmt: skip
            if searching:
                for q in range(5):
                    vm[q][b, j] = acc[q]
            if want_mean:
                vs[0][b, j] = sums[0]
            if weighted:
                vs[1][b, j] = sums[1]
            if ns < 0 or nt < 0:
                return ns, nt
            v[j], ie[j], ii[j], ref[j] = st
            if stop and ns > n0 and not fired[j]:
                fired[j] = True
                n_fired += 1
            for q in range(n0, ns):
                sub_spk_who[q] = j
            for q in range(k0, nt):
                sub_who[q] = j
        if m < ev_off[b + 1]:
            _receive(wcat, ev[1][m], ie if ev[2][m] == 0 else ii)
        t = tn
        if n_fired == size > 0:
            break
    return ns, nt


@numba.njit(cache=True, inline="always")
def _screen(p, v, ie, ii, ref, e, t, coefs, nxt, hard, commit, vs, b, means):
    """Every neuron's state at the end of a free interval from ``t`` (propagator ``coefs``)
    into ``nxt``, and in ``hard`` whether it needs more than that: refractory at ``t``, or a
    crossing or an interior maximum not excluded by the cheap test of
    :func:`.closed_form.first_crossing` (``V`` ends below ``theta`` and does not rise then
    fall; with two synaptic time constants and currents of both signs ``V`` may have two
    extrema, and the full test decides).  With ``commit``, every neuron that is not ``hard``
    is moved on to ``nxt`` too, after its voltage integrals over the interval (``vs``, from
    ``means`` as in :func:`_mean_free`) when they are wanted.

    The first loop is branch-free (the compiler vectorises it: every neuron's state is
    stored, its old value where it stays, a select rather than a conditional store, which
    made the loop scalar and 2.4 times slower); both do the operations of
    :func:`.closed_form.advance` and :func:`_mean_free`, so the same results.
    """
    em, ae, ai, qe, qi = coefs
    ext = e * p[R_M] * (1.0 - em)
    two_taus = p[K_E] != p[K_I]
    want_mean = vs[0].size > 0
    move = commit and not want_mean  # else moved on in the second loop, after the integrals
    for j in range(v.size):
        v0, ie0, ii0 = v[j], ie[j], ii[j]
        v1 = v0 * em + ie0 * qe + ii0 * qi + ext
        ie1, ii1 = ie0 * ae, ii0 * ai
        rise = -v0 * p[IT_M] + (ie0 + ii0 + e) * p[INV_CM] > 0.0
        fall = -v1 * p[IT_M] + (ie1 + ii1 + e) * p[INV_CM] < 0.0
        two_extrema = two_taus & (ie0 * ii0 < 0.0)
        h = (ref[j] > t) | (v1 >= p[THETA]) | (rise & fall) | two_extrema
        hard[j] = h
        nxt[0][j], nxt[1][j], nxt[2][j] = v1, ie1, ii1
        stay = h | (not move)  # a select, not a branch: the store is unconditional
        v[j], ie[j], ii[j] = (v0, ie0, ii0) if stay else (v1, ie1, ii1)
    if commit and want_mean:
        weighted = vs[1].size > 0
        for j in range(v.size):
            if not hard[j]:
                v1 = nxt[0][j]
                vs[0][b, j] += integral_from(p, v[j], ie[j], ii[j], v1, means[0])
                if weighted:
                    vs[1][b, j] += means[2] * integral_from(p, v[j], ie[j], ii[j], v1, means[1])
                v[j], ie[j], ii[j] = v1, nxt[1][j], nxt[2][j]


@numba.njit(cache=True, inline="always")
def _first_crossings(p, st, e, t, d, em, nxt, index, n, first, rows, flags, tol):
    """``first[h]``: the first crossing (ms after ``t``) of neuron ``index[0, h]``, ``h <
    n``, when it is not refractory at ``t`` and ``V`` ends the interval at or above ``theta``
    in the power form (:func:`.closed_form.power_form`), where it is certain; NaN for the
    others.  ``st = (v, i_E, i_I, ref_end)``, ``nxt`` the state at the interval's end, ``em =
    exp(-d/tau_m)``; ``rows`` ``(9, size)``, ``flags`` ``(2, size)`` and ``index[1]``:
    scratch.

    The same roots as :func:`.closed_form.first_crossing`, bit for bit (``em`` is its
    ``x_end``), found for all these neurons at once (:func:`.closed_form.power_roots`).
    """
    v, ie, ii, ref = st
    for h in range(n):
        first[h] = math.nan
    if p[POW] < 2.0:
        return
    theta, it_m = p[THETA], p[IT_M]
    m = 0
    for h in range(n):
        j = index[0, h]
        v1 = nxt[0][j]
        if ref[j] <= t and v1 >= theta:
            slope_end = vdot(p, v1, nxt[1][j], nxt[2][j], e)
            a1, ak, _, c = power_form(p, v[j], ie[j], ii[j], e)
            rows[0, m], rows[1, m], rows[2, m] = a1, ak, c - theta
            lo, hi, f_lo, f_hi, d_lo, d_hi = power_bracket(p, v[j], ie[j], ii[j], e, em, v1,
                                                           slope_end)  # fmt: skip
            rows[4, m], rows[5, m], rows[3, m], rows[6, m] = lo, hi, f_lo, f_hi
            rows[7, m], rows[8, m] = d_lo, d_hi
            flags[0, m] = v1 - theta < 0.0
            index[1, m] = h
            m += 1
    if m:
        power_starts(rows, m)  # the first iterates, in row 3
        power_roots(int(p[POW]), rows, flags, tol * it_m * em, m)
    for r in range(m):
        first[index[1, r]] = -math.log(rows[3, r]) / it_m


@numba.njit(cache=True, inline="always")
def _receive(wcat, row, current):
    """An arrival at every neuron: ``I_x += w``, ``w`` the row ``row`` of ``wcat``."""
    for j in range(current.size):
        current[j] += wcat[row, j]


@numba.njit(cache=True, inline="always")
def _candidate(acc, value, t, kind, slope, arrival):
    """Keep the larger ``v_max`` candidate in ``acc = [value, time, kind, slope, arrival]``
    (a NaN value: no search)."""
    if value > acc[0]:
        acc[0], acc[1], acc[2], acc[3], acc[4] = value, t, kind, slope, arrival


@numba.njit(cache=True, inline="always")
def _vm_start(p, vm, b, v, ref, t0):
    """Start sample ``b``'s ``v_max`` search: the start of the run is a candidate."""
    for j in range(v.size):
        vm[0][b, j] = -math.inf
        vm[1][b, j], vm[2][b, j], vm[3][b, j], vm[4][b, j] = 0.0, 0.0, 0.0, -1.0
        if ref[j] <= t0:
            vm[0][b, j], vm[1][b, j], vm[2][b, j] = v[j], t0, VMAX_STATE


@numba.njit(cache=True, inline="always")
def _vm_free(p, vm, b, j, v, ie, ii, e, t, d, v1, ie1, ii1, at, tol):
    """``v_max`` candidates of a free interval ``(t, t + d]`` without a crossing: its
    interior maximum, then its end (at event ``at``, -1 for the end of the run).

    With at most one extremum (currents of one sign, or equal synaptic time constants) there
    is an interior maximum only if ``dV/dt`` goes from positive to negative: decided from the
    ends before any search.
    """
    slope_end = vdot(p, v1, ie1, ii1, e)
    a, be, bi = slopes(p, v, ie, ii, e)
    if not ((be * bi >= 0.0 or p[K_E] == p[K_I]) and (a <= 0.0 or slope_end >= 0.0)):
        val, z = interval_max(p, v, ie, ii, e, d, tol)
        if val > vm[0][b, j]:
            vm[0][b, j], vm[1][b, j], vm[2][b, j], vm[3][b, j], vm[4][b, j] = (
                val, t + z, VMAX_STATE, 0.0, -1.0
            )  # fmt: skip
    if v1 > vm[0][b, j]:
        _vm_end(p, vm, b, j, e, t + d, v1, ie1, ii1, at)


@numba.njit(cache=True, inline="always")
def _vm_end(p, vm, b, j, e, t, v, ie, ii, at):
    """The end of a free interval, at time ``t`` and event ``at``, is the new ``v_max``."""
    vm[0][b, j], vm[1][b, j], vm[2][b, j] = v, t, VMAX_STATE
    vm[3][b, j], vm[4][b, j] = vdot(p, v, ie, ii, e), at


@numba.njit(cache=True, inline="always")
def _mean_free(p, vs, b, j, v, ie, ii, v_end, means):
    """Add a free interval's voltage integrals to ``vs[:][b, j]`` from the interval's
    ``means = (coefficients, coefficients weighted, exp(-(t - t0) gamma))`` (the weighted
    one only when ``vs[1]`` is not empty)."""
    vs[0][b, j] += integral_from(p, v, ie, ii, v_end, means[0])
    if vs[1].size:
        vs[1][b, j] += means[2] * integral_from(p, v, ie, ii, v_end, means[1])


@numba.njit(cache=True, inline="always")
def _mean_add(sums, integrals):
    sums[0] += integrals[0]
    sums[1] += integrals[1]


@numba.njit(cache=True, inline="always")
def _push(tape, n, kind, t, a, b, idx):
    """Append an event to ``tape = (kind, t, a, b, idx)`` at ``n``; the new fill, -1 if full."""
    if n < 0 or n >= tape[1].size:
        return -1
    tape[0][n], tape[1][n], tape[2][n], tape[3][n], tape[4][n] = kind, t, a, b, idx
    return n + 1


@numba.njit(cache=True, inline="always")
def _private(p, e, st, t, d, coefs, s_first, spk, ns, tape, nt, acc, at, sums, t0, gamma, tol):
    """One neuron over an arrival-free interval ``(t, t + d]`` whose propagator is ``coefs``
    and whose first crossing, if already located (:func:`_first_crossings`), is at ``t +
    s_first`` (NaN: not located):
    the neuron loop of :func:`.forward._forward_rows` without arrivals or grid (the same
    operations, so the same results), spikes into ``spk`` and private events into ``tape``;
    ``v_max`` candidates into ``acc`` (see :func:`_candidate`; ``at`` the event ending the
    interval); the voltage integrals (weights 1 and ``exp(-(s - t0) gamma)``) added to
    ``sums`` unless it is NaN.

    Returns ``(ns, nt, state)``, ``ns = -1`` / ``nt = -1`` when a buffer is full.
    """
    v, ie, ii, ref = st
    t_end = t + d
    while True:
        if ref > t:  # refractory: V clamped, currents decay
            tn = min(t_end, ref)
            if tn > t:
                _candidate(acc, p[V_RESET], t, VMAX_CONSTANT, 0.0, -1.0)
                if not math.isnan(sums[0]):
                    _mean_add(sums, clamped_integrals(p, t, tn - t, t0, gamma))
            ie *= math.exp(-(tn - t) * p[IT_E])
            ii *= math.exp(-(tn - t) * p[IT_I])
            t = tn
            if t == ref:
                nt = _push(tape, nt, EV_REF_END, t, vdot(p, v, ie, ii, e), 0.0, -1)
            if nt < 0 or t >= t_end:
                return ns, nt, (v, ie, ii, ref)
        else:
            span = t_end - t
            em, ae, ai, qe, qi = coefs if span == d else flow(p, span)
            v1, ie1, ii1 = advance(p, v, ie, ii, e, em, ae, ai, qe, qi)
            s = -1.0
            if not math.isnan(s_first):  # located already (its first pass: span == d)
                s, s_first = s_first, math.nan
            elif span > 0.0:
                s = first_crossing(p, v, ie, ii, e, span, v1, vdot(p, v1, ie1, ii1, e), tol)
            if not math.isnan(sums[0]):
                _mean_add(sums, free_integrals(p, v, ie, ii, e, t, span if s < 0.0 else s,
                                               v1 if s < 0.0 else p[THETA], t0, gamma))  # fmt: skip
            if s < 0.0:
                if span > 0.0 and acc[0] < p[THETA]:
                    val, z = interval_max(p, v, ie, ii, e, span, tol)
                    _candidate(acc, val, t + z, VMAX_STATE, 0.0, -1.0)
                    if v1 > acc[0]:
                        _candidate(acc, v1, t_end, VMAX_STATE, vdot(p, v1, ie1, ii1, e), at)
                return ns, nt, (v1, ie1, ii1, ref)
            if acc[0] < p[THETA]:
                val, z = interval_max(p, v, ie, ii, e, s, tol)
                _candidate(acc, val, t + z, VMAX_STATE, 0.0, -1.0)
                _candidate(acc, p[THETA], t + s, VMAX_CONSTANT, 0.0, -1.0)
            v1, ie1, ii1 = propagate(p, v, ie, ii, e, s)
            t += s
            if ns >= spk.size:
                return -1, nt, st
            spk[ns] = t
            slope_in = vdot(p, p[THETA], ie1, ii1, e)
            v, ie, ii = p[V_RESET], ie1, ii1
            slope_out = vdot(p, v, ie, ii, e) if p[T_REF] == 0.0 else 0.0
            nt = _push(tape, nt, EV_SPIKE, t, slope_in, slope_out, ns)
            ns += 1
            ref = t + p[T_REF]
            if nt < 0:
                return ns, nt, (v, ie, ii, ref)


@numba.njit(cache=True)
def _by_neuron(b, size, ns, nt, sub_spk, sub_spk_who, sub, sub_who, spk, tape, ns_all, nt_all):
    """Write one sample's spikes and private events into ``spk`` and ``tape`` from ``ns_all``
    and ``nt_all`` on (the caller checked the room), regrouped per neuron (counting sort,
    stable, so each neuron's events stay in time order)."""
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


@numba.njit(cache=True)
def first_spike_times(times, offsets, t0, shape):
    """``(batch, size)`` time of each neuron's first spike after ``t0`` (ms; inf if silent)
    from spikes grouped per neuron (``offsets`` per ``(b, j)`` at ``b * size + j``)."""
    first = np.full(shape, np.inf)
    flat = first.ravel()
    for row in range(flat.size):
        if offsets[row + 1] > offsets[row]:
            flat[row] = times[offsets[row]] - t0
    return first


class InFlightLater:
    """Events due after a shared-event run, turned into per-neuron arrivals in flight
    (:func:`in_flight`) only if a later run or ``get_state`` asks for them (a training step
    resets the engine before the next batch and never does)."""

    def __init__(self, late, wcat, widx_row, dtype):
        self.late, self.wcat, self.widx_row, self.dtype = late, wcat, widx_row, dtype
        self.constant = False  # set when the run they came from is over: no gradient

    def build(self):
        """The arrivals in flight ``(b, j, t, w, c, widx, src)``."""
        out = in_flight(self.late, self.wcat, self.widx_row, self.dtype)
        if self.constant:
            out[5][:] = -1
            out[6][:] = -1
        return out


def in_flight(late, wcat, widx_row, dtype):
    """Events due after the run as arrivals in flight to every neuron, ``(b, j, t, w, c,
    widx, src)`` (``late = (t, row, channel, src, sample)`` from
    :func:`.shared_run.arrival_events`)."""
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
