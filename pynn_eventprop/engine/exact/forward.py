"""Event-driven forward integration of ``IF_curr_exp`` neurons over a chunk ``(t0, t1]``.

Every neuron is integrated on its own from its sorted arrivals (:mod:`.arrivals`): between
events the closed form of :mod:`.closed_form`; events, in time order, are threshold crossings
(spike, reset to ``v_reset``, refractory until ``t* + tau_refrac`` with ``V`` clamped and the
currents decaying), ends of refractoriness, arrivals (``I_x += w``) and grid points (where the
external current may change and where recorded variables are sampled).  Nothing is rounded to
the grid.

Each neuron writes its spikes and, for the backward pass, a *tape*: one entry per event in time
order (kind, time, two numbers and an index, see the ``EV_*`` constants).

Readouts over the chunk (``T = t1 - t0``): first spike time; ``v_max`` over continuous time
(interior maxima where ``dV/dt = 0``, interval ends, ``theta`` at a spike, ``v_reset`` while
refractory) with its time; ``S_u = (1/T) int V dt`` and ``S_e = (1/T) int exp(-(t-t0)/T) V dt``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .closed_form import (
    IT_E,
    IT_I,
    T_REF,
    THETA,
    V_RESET,
    advance,
    e1,
    first_crossing,
    flow,
    interval_max,
    propagate,
    vdot,
    weighted_integral,
)

#: Tape kinds.  ``a``/``b``/``idx`` per kind:
#: arrival: a = 1 if refractory at the arrival else 0, idx = arrival index;
#: spike: a = dV/dt just before, b = dV/dt just after the reset if ``tau_refrac == 0`` else 0,
#: idx = spike index; refractory end: a = dV/dt just after, idx = -1.
EV_ARRIVAL, EV_SPIKE, EV_REF_END = 0, 1, 2

#: v_max kinds: the maximum is a state value (adjoint jump at its time) or a constant
#: (``theta`` at a spike, ``v_reset`` while refractory: no gradient).
VMAX_STATE, VMAX_CONSTANT = 0, 1

#: Option flags (int array ``opts``): ``OPT_VMAX`` v_max and its time, ``OPT_VMEAN`` the
#: voltage means (each costs work on every interval, so only what is read is computed).
OPT_GRID, OPT_RECORD, OPT_VMAX, OPT_VMEAN, OPT_TAPE = range(5)


@numba.njit(cache=True, inline="always")
def _vmax_update(acc, value, t, kind, slope, arrival):
    """Keep the largest candidate: ``acc = [value, time, kind, slope, arrival]``."""
    if value > acc[0]:
        acc[0] = value
        acc[1] = t
        acc[2] = kind
        acc[3] = slope
        acc[4] = arrival


@numba.njit(cache=True, inline="always")
def _free_readouts(p, v, ie, ii, e, t, d, v_end, acc, t0, big_t, tol, opts):
    """Readout accumulators over a free interval ``[t, t + d]`` starting from ``(v, ie, ii)``.

    ``acc[0:5]`` v_max candidate (interior maxima; with ``opts[OPT_VMAX]``, searched only
    while below ``theta``: nothing exceeds a spike's ``theta``), ``acc[5]`` ``int V``,
    ``acc[6]`` ``int exp(-(t - t0)/T) V`` (both unnormalised; with ``opts[OPT_VMEAN]``).
    """
    if opts[OPT_VMAX] and acc[0] < p[THETA]:
        val, z = interval_max(p, v, ie, ii, e, d, tol)
        _vmax_update(acc, val, t + z, VMAX_STATE, 0.0, -1.0)
    if opts[OPT_VMEAN]:
        s_u, s_e = free_integrals(p, v, ie, ii, e, t, d, v_end, t0, 1.0 / big_t)
        acc[5] += s_u
        acc[6] += s_e


@numba.njit(cache=True, inline="always")
def _clamped_readouts(p, t, d, acc, t0, big_t, opts):
    """Readout accumulators over a refractory interval (``V = v_reset``)."""
    if opts[OPT_VMAX]:
        _vmax_update(acc, p[V_RESET], t, VMAX_CONSTANT, 0.0, -1.0)
    if opts[OPT_VMEAN]:
        s_u, s_e = clamped_integrals(p, t, d, t0, 1.0 / big_t)
        acc[5] += s_u
        acc[6] += s_e


@numba.njit(cache=True)
def free_integrals(p, v, ie, ii, e, t, d, v_end, t0, gamma):
    """``(int V, int exp(-(s - t0) gamma) V)`` over a free interval ``[t, t + d]`` from
    ``(v, ie, ii)`` to ``V = v_end`` (mV ms)."""
    weight = math.exp(-(t - t0) * gamma)
    return (weighted_integral(p, v, ie, ii, e, d, v_end, 0.0),
            weight * weighted_integral(p, v, ie, ii, e, d, v_end, gamma))  # fmt: skip


@numba.njit(cache=True)
def clamped_integrals(p, t, d, t0, gamma):
    """:func:`free_integrals` over a refractory interval (``V = v_reset``)."""
    return p[V_RESET] * d, p[V_RESET] * math.exp(-(t - t0) * gamma) * e1(gamma, d)


@numba.njit(cache=True)
def param_tuple(par, j):
    """Parameter row ``j`` as a tuple (passed by value to the scalar kernels)."""
    return (
        par[j, 0], par[j, 1], par[j, 2], par[j, 3], par[j, 4],
        par[j, 5], par[j, 6], par[j, 7], par[j, 8], par[j, 9], par[j, 10],
    )  # fmt: skip


#: Contiguous chunks of neurons of :func:`forward_layer` per thread (the result does not depend
#: on the number of chunks; each costs a call of :func:`_forward_rows`).
CHUNKS_PER_THREAD = 4


@numba.njit(cache=True, parallel=True)
def forward_layer(
    par, ext, state, arr_off, arr, t0, dt, n_steps, opts, rec, spk, tape, ro, tol, chunks
):
    """Integrate every neuron of one population for every sample over ``(t0, t0 + n_steps dt]``.

    Parameters
    ----------
    par : ``(size, n_params)`` parameter rows.
    ext : ``(n_steps, 1 or batch, size)`` external current (nA, ``i_offset`` included).
    state : ``(v, i_E, i_I, ref_end)`` arrays ``(batch, size)`` updated in place.
    arr_off : ``(batch * size + 1,)`` arrival offsets of neuron ``(b, j)`` at ``b * size + j``.
    arr : ``(times, weights, channels)``.
    rec : ``(v, i_E, i_I)`` arrays ``(n_steps, batch, size)`` (or empty when not recording).
    spk : ``(times, neurons, offsets)``: buffers for the spikes; offsets ``(batch * size + 1,)``.
    tape : ``(kind, t, a, b, idx, offsets)``; offsets ``(batch * size + 1,)``.
    ro : ``(first, v_max, v_max_time, v_max_kind, v_max_slope, v_max_arrival, s_u, s_e)``
        arrays ``(batch, size)``.
    chunks : the number of chunks of neurons (:data:`CHUNKS_PER_THREAD` times the threads).

    The neurons (rows ``b * size + j``) are integrated in parallel, in contiguous chunks each
    writing into its own share of scratch buffers, then concatenated in row order: the result
    does not depend on the number of threads.

    Returns the number of spikes, or -1 / -2 when the spike / tape buffer is too small (state
    is then left half-updated: callers pass copies and retry with larger buffers).
    """
    batch, size = state[0].shape
    rows = batch * size
    n_chunks = max(1, min(rows, chunks))
    bounds = np.empty(n_chunks + 1, np.int64)
    cap_s, cap_t = np.empty(n_chunks + 1, np.int64), np.empty(n_chunks + 1, np.int64)
    bounds[0], cap_s[0], cap_t[0] = 0, 0, 0
    spare_t = max(tape[1].size - arr_off[rows], 0)  # tape room beyond the arrivals
    for c in range(n_chunks):
        r0, r1 = c * rows // n_chunks, (c + 1) * rows // n_chunks
        bounds[c + 1] = r1
        cap_s[c + 1] = cap_s[c] + spk[0].size * (r1 - r0) // rows + (r1 - r0) + 8
        extra = spare_t * (r1 - r0) // rows + (r1 - r0) + 16
        cap_t[c + 1] = cap_t[c] + (arr_off[r1] - arr_off[r0] if spare_t > 0 else 0) + extra
    s_t, s_n = np.empty(cap_s[-1]), np.empty(cap_s[-1], np.int64)
    t_buf = (np.empty(cap_t[-1], np.int8), np.empty(cap_t[-1]), np.empty(cap_t[-1]),
             np.empty(cap_t[-1]), np.empty(cap_t[-1], np.int64))  # fmt: skip
    counts = np.empty((n_chunks, 2), np.int64)
    for c in numba.prange(n_chunks):
        a, z = cap_t[c], cap_t[c + 1]
        ns, nt = _forward_rows(
            par, ext, state, arr_off, arr, t0, dt, n_steps, opts, rec, bounds[c], bounds[c + 1],
            (s_t[cap_s[c] : cap_s[c + 1]], s_n[cap_s[c] : cap_s[c + 1]], spk[2]),
            (t_buf[0][a:z], t_buf[1][a:z], t_buf[2][a:z], t_buf[3][a:z], t_buf[4][a:z], tape[5]),
            ro, tol, np.empty(7),
        )  # fmt: skip
        counts[c, 0], counts[c, 1] = ns, nt
    return _concatenate_chunks(counts, bounds, cap_s, cap_t, s_t, s_n, t_buf, spk, tape)


@numba.njit(cache=True)
def overflow(counts):
    """-1 if a part's spike buffer overflowed (``counts[:, 0] < 0``), -2 if its tape did
    (``counts[:, 1] < 0``), checked part by part in order; 0 if none did."""
    for c in range(counts.shape[0]):
        if counts[c, 0] < 0:
            return -1
        if counts[c, 1] < 0:
            return -2
    return 0


@numba.njit(cache=True)
def _concatenate_chunks(counts, bounds, cap_s, cap_t, s_t, s_n, t_buf, spk, tape):
    """Move each chunk's spikes and tape from the scratch buffers into ``spk`` and ``tape`` in
    row order, shifting offsets and spike indices; the number of spikes, -1 / -2 if a chunk's
    or the final buffer is too small."""
    n_chunks, rows = counts.shape[0], spk[2].size - 1
    full = overflow(counts)
    if full < 0:
        return full
    base_s, base_t = counts[:, 0].sum(), counts[:, 1].sum()
    if base_s > spk[0].size:
        return -1
    if base_t > tape[1].size:
        return -2
    base_s, base_t = 0, 0
    for c in range(n_chunks):
        ns, nt = counts[c, 0], counts[c, 1]
        for q in range(ns):
            spk[0][base_s + q], spk[1][base_s + q] = s_t[cap_s[c] + q], s_n[cap_s[c] + q]
        for q in range(nt):
            src, dst = cap_t[c] + q, base_t + q
            kind = t_buf[0][src]
            tape[0][dst], tape[1][dst], tape[2][dst], tape[3][dst] = (
                kind, t_buf[1][src], t_buf[2][src], t_buf[3][src]
            )  # fmt: skip
            tape[4][dst] = t_buf[4][src] + base_s if kind == EV_SPIKE else t_buf[4][src]
        for row in range(bounds[c], bounds[c + 1]):
            spk[2][row] += base_s
            tape[5][row] += base_t
        base_s, base_t = base_s + ns, base_t + nt
    spk[2][rows] = base_s
    tape[5][rows] = base_t
    return base_s


@numba.njit(cache=True, _nrt=False)  # no reference counting (see below): it allocates nothing
def _forward_rows(par, ext, state, arr_off, arr, t0, dt, n_steps, opts, rec, r0, r1, spk, tape,
                  ro, tol, acc):  # fmt: skip
    """Integrate neurons ``r0:r1`` (row ``b * size + j``: neuron ``j`` of sample ``b``) of
    :func:`forward_layer` over ``(t0, t0 + n_steps dt]``, into ``spk = (times, neurons,
    offsets)`` and ``tape`` from their starts (offsets relative to them, at the rows' global
    positions); returns ``(ns, nt)``, one of them -1 when a buffer is full.

    Each neuron goes from event to event in time order: its arrivals ``arr[k][arr_off[row]:
    arr_off[row + 1]]`` (sorted), grid points (with ``opts[OPT_GRID]``: the external current
    ``ext[k, b or 0, j]`` changes there, and with ``opts[OPT_RECORD]`` the state is sampled
    into ``rec`` ``(n_steps, batch, size)``), threshold crossings and ends of refractoriness;
    readouts accumulate in ``acc`` (see :func:`_free_readouts`).

    The loop over neurons is written out here, not as a function called per neuron: numba
    takes and releases a reference (two atomic operations) to every array bound inside a
    called function, even an inlined one, on each call, and with the sixteen arrays a neuron
    uses that cost four times the arithmetic of a neuron's step.  What counting remained (arrays
    reached through tuples) is left out altogether: the function is compiled without it, every
    array belonging to the caller (``acc``: work array of 7).
    """
    size = state[0].shape[1]
    spk_t, spk_n, spk_off = spk
    tape_kind, tape_t, tape_a, tape_b, tape_idx, tape_off = tape
    arr_t, arr_w, arr_c = arr
    use_grid, use_tape = opts[OPT_GRID], opts[OPT_TAPE]
    use_ro = opts[OPT_VMAX] or opts[OPT_VMEAN]
    t1 = t0 + n_steps * dt
    big_t = t1 - t0
    span = n_steps * dt  # the means' normalisation

    def push(n, kind, t, a, b, idx):  # inner functions are inlined: no array passing
        if n < 0 or n >= tape_t.size:
            return -1
        tape_kind[n], tape_t[n], tape_a[n], tape_b[n], tape_idx[n] = kind, t, a, b, idx
        return n + 1

    ns, nt = 0, 0
    for row in range(r0, r1):
        b, j = row // size, row % size
        eb = b if ext.shape[1] > 1 else 0
        spk_off[row] = ns
        tape_off[row] = nt
        p = param_tuple(par, j)
        v, ie, ii, ref = state[0][b, j], state[1][b, j], state[2][b, j], state[3][b, j]
        if use_ro:
            for m in range(7):
                acc[m] = 0.0
            acc[0] = -math.inf
            if ref <= t0:  # the start of the run is a v_max candidate
                _vmax_update(acc, v, t0, VMAX_STATE, 0.0, -1.0)
        n0, lo, hi = ns, arr_off[row], arr_off[row + 1]
        t, k, a = t0, 0, lo
        e = ext[0, eb, j]
        while True:
            tg = t0 + (k + 1) * dt if use_grid else t1
            tn = min(tg, arr_t[a]) if a < hi else tg
            if ref > t:  # refractory: V clamped, currents decay
                tn = min(tn, ref)
                d = tn - t
                ie *= math.exp(-d * p[IT_E])
                ii *= math.exp(-d * p[IT_I])
                if use_ro and d > 0.0:
                    _clamped_readouts(p, t, d, acc, t0, big_t, opts)
                t = tn
                if t == ref and use_tape:
                    nt = push(nt, EV_REF_END, t, vdot(p, v, ie, ii, e), 0.0, -1)
            else:
                d = tn - t
                v1, ie1, ii1 = advance(p, v, ie, ii, e, *flow(p, d))
                s = -1.0
                if d > 0.0:
                    s = first_crossing(p, v, ie, ii, e, d, v1, vdot(p, v1, ie1, ii1, e), tol)
                if s >= 0.0:
                    v1, ie1, ii1 = propagate(p, v, ie, ii, e, s)
                    if use_ro:
                        _free_readouts(p, v, ie, ii, e, t, s, p[THETA], acc, t0, big_t, tol,
                                       opts)  # fmt: skip
                        _vmax_update(acc, p[THETA], t + s, VMAX_CONSTANT, 0.0, -1.0)
                    t = t + s
                    if ns >= spk_t.size:
                        return -1, nt
                    spk_t[ns] = t
                    slope_in = vdot(p, p[THETA], ie1, ii1, e)
                    v, ie, ii = p[V_RESET], ie1, ii1
                    slope_out = vdot(p, v, ie, ii, e) if p[T_REF] == 0.0 else 0.0
                    if use_tape:
                        nt = push(nt, EV_SPIKE, t, slope_in, slope_out, ns)
                    ns += 1
                    ref = t + p[T_REF]
                    if nt < 0:
                        break
                    continue
                if use_ro:
                    _free_readouts(p, v, ie, ii, e, t, d, v1, acc, t0, big_t, tol, opts)
                    if v1 > acc[0] and opts[OPT_VMAX]:
                        arrival = a if a < hi and arr_t[a] == tn else -1
                        _vmax_update(acc, v1, tn, VMAX_STATE, vdot(p, v1, ie1, ii1, e), arrival)
                v, ie, ii = v1, ie1, ii1
                t = tn
            while a < hi and arr_t[a] <= t:
                if use_tape:
                    nt = push(nt, EV_ARRIVAL, t, 1.0 if ref > t else 0.0, 0.0, a)
                if arr_c[a] == 0:
                    ie += arr_w[a]
                else:
                    ii += arr_w[a]
                a += 1
            if nt < 0:
                break
            if t >= tg:
                if not use_grid:
                    break
                if opts[OPT_RECORD]:
                    rec[0][k, b, j] = v
                    rec[1][k, b, j] = ie
                    rec[2][k, b, j] = ii
                k += 1
                if k >= n_steps:
                    break
                e = ext[k, eb, j]
        if nt < 0:
            return ns, nt
        for m in range(n0, ns):
            spk_n[m] = j
        state[0][b, j], state[1][b, j], state[2][b, j], state[3][b, j] = v, ie, ii, ref
        ro[0][b, j] = spk_t[n0] - t0 if ns > n0 else math.inf
        if use_ro:
            for m in range(5):
                ro[1 + m][b, j] = acc[m]
            ro[6][b, j] = acc[5] / span
            ro[7][b, j] = acc[6] / span
    return ns, nt
