"""Synaptic arrivals of one postsynaptic population, sorted per neuron.

A spike of presynaptic neuron ``i`` at ``t`` reaches neuron ``j`` of the projection at
``t + d_ij`` (real-valued delay, ms) and adds ``w_ij`` to the current of the projection's
receptor (channel 0 excitatory, 1 inhibitory).  For one chunk ``(t0, t1]`` the arrivals due in
it are gathered per neuron ``(b, j)`` (row ``b * size + j``) in flat arrays sorted by time;
later ones are *in flight* and carried to the next chunk.

Every arrival keeps ``widx``, its connection's index in the engine's flat weight-gradient
buffer, and ``src``, the global index of the spike that caused it (both -1 for arrivals
carried over from an earlier run, which have no gradient within this run).
"""

from __future__ import annotations

import numba
import numpy as np

#: Segments longer than this are sorted with argsort instead of insertion sort.
INSERTION_SORT_MAX = 32


@numba.njit(cache=True)
def count_projection(sp_t, sp_n, sp_off, delay, mask, t1, counts):
    """Add the arrivals of one projection due by ``t1`` to ``counts``; return how many are late."""
    size = delay.shape[1]
    late = 0
    for b in range(sp_off.size - 1):
        for s in range(sp_off[b], sp_off[b + 1]):
            i = sp_n[s]
            for j in range(size):
                if mask[i, j]:
                    if sp_t[s] + delay[i, j] <= t1:
                        counts[b * size + j] += 1
                    else:
                        late += 1
    return late


@numba.njit(cache=True)
def fill_projection(
    sp_t, sp_n, sp_off, src0, w, delay, mask, chan, widx0, t1, cur, out, late, n_late, by_time
):
    """Write the arrivals of one projection at the cursors ``cur``; late ones into ``late``.

    ``out = (t, w, c, widx, src)``, ``late = (b, j, t, w, c, widx, src)``; returns the new late
    count.  Spikes are taken in the order ``by_time`` (per sample, by time), so that a neuron's
    arrivals from one projection come sorted when its delays do not depend on the presynaptic
    neuron (and :func:`sort_segments` has nothing to move).
    """
    size = delay.shape[1]
    for b in range(sp_off.size - 1):
        for k in range(sp_off[b], sp_off[b + 1]):
            s = by_time[k]
            i = sp_n[s]
            for j in range(size):
                if not mask[i, j]:
                    continue
                ta = sp_t[s] + delay[i, j]
                if ta <= t1:
                    r = cur[b * size + j]
                    cur[b * size + j] = r + 1
                    out[0][r] = ta
                    out[1][r] = w[i, j]
                    out[2][r] = chan
                    out[3][r] = widx0 + i * size + j
                    out[4][r] = src0 + s
                else:
                    late[0][n_late] = b
                    late[1][n_late] = j
                    late[2][n_late] = ta
                    late[3][n_late] = w[i, j]
                    late[4][n_late] = chan
                    late[5][n_late] = widx0 + i * size + j
                    late[6][n_late] = src0 + s
                    n_late += 1
    return n_late


@numba.njit(cache=True)
def count_pending(pend, size, t1, counts):
    """Count carried arrivals ``pend = (b, j, t, w, c, widx, src)`` due by ``t1``; return how
    many stay."""
    late = 0
    for m in range(pend[0].size):
        if pend[2][m] <= t1:
            counts[pend[0][m] * size + pend[1][m]] += 1
        else:
            late += 1
    return late


@numba.njit(cache=True)
def fill_pending(pend, size, t1, cur, out, late, n_late):
    """Write carried arrivals due by ``t1`` at the cursors, keep the others in ``late``."""
    for m in range(pend[0].size):
        if pend[2][m] <= t1:
            r = cur[pend[0][m] * size + pend[1][m]]
            cur[pend[0][m] * size + pend[1][m]] = r + 1
            out[0][r] = pend[2][m]
            out[1][r] = pend[3][m]
            out[2][r] = pend[4][m]
            out[3][r] = pend[5][m]
            out[4][r] = pend[6][m]
        else:
            late[0][n_late] = pend[0][m]
            late[1][n_late] = pend[1][m]
            late[2][n_late] = pend[2][m]
            late[3][n_late] = pend[3][m]
            late[4][n_late] = pend[4][m]
            late[5][n_late] = pend[5][m]
            late[6][n_late] = pend[6][m]
            n_late += 1
    return n_late


@numba.njit(cache=True)
def sort_segments(off, out):
    """Sort every segment ``off[r]:off[r+1]`` of ``out = (t, w, c, widx, src)`` by time."""
    for r in range(off.size - 1):
        lo, hi = off[r], off[r + 1]
        ordered = True
        for m in range(lo + 1, hi):
            if out[0][m] < out[0][m - 1]:
                ordered = False
                break
        if ordered:
            continue
        if hi - lo <= INSERTION_SORT_MAX:
            for m in range(lo + 1, hi):
                x = (out[0][m], out[1][m], out[2][m], out[3][m], out[4][m])
                q = m - 1
                while q >= lo and out[0][q] > x[0]:
                    out[0][q + 1] = out[0][q]
                    out[1][q + 1] = out[1][q]
                    out[2][q + 1] = out[2][q]
                    out[3][q + 1] = out[3][q]
                    out[4][q + 1] = out[4][q]
                    q -= 1
                out[0][q + 1], out[1][q + 1], out[2][q + 1] = x[0], x[1], x[2]
                out[3][q + 1], out[4][q + 1] = x[3], x[4]
        else:
            order = np.argsort(out[0][lo:hi], kind="mergesort") + lo
            out[0][lo:hi] = out[0][order]
            out[1][lo:hi] = out[1][order]
            out[2][lo:hi] = out[2][order]
            out[3][lo:hi] = out[3][order]
            out[4][lo:hi] = out[4][order]


@numba.njit(cache=True)
def time_order(times, offsets):
    """Order of spikes by sample (``offsets``), then by time, ties in index order."""
    order = np.empty(times.size, np.int64)
    for b in range(offsets.size - 1):
        lo, hi = offsets[b], offsets[b + 1]
        order[lo:hi] = np.argsort(times[lo:hi], kind="mergesort") + lo
    return order


def empty_pending(dtype, n=0):
    """Arrivals in flight ``(b, j, t, w, c, widx, src)`` (``n`` of them, uninitialised)."""
    return (
        np.empty(n, np.int64),
        np.empty(n, np.int64),
        np.empty(n, np.float64),
        np.empty(n, dtype),
        np.empty(n, np.int8),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
    )


def gather(batch, size, t1, incoming, pending, dtype):
    """Arrivals of one population due in the chunk ending at ``t1``, and those still in flight.

    Parameters
    ----------
    incoming : list of ``(spikes, src0, w, delay, mask, chan, widx0)`` with ``spikes =
        (times, neurons, offsets)`` of the presynaptic population in this chunk.
    pending : ``(b, j, t, w, c, widx, src)`` arrivals carried from earlier chunks.

    Returns ``(offsets, (t, w, c, widx, src), late)``.
    """
    counts = np.zeros(batch * size, np.int64)
    n_late = count_pending(pending, size, t1, counts)
    for (sp_t, sp_n, sp_off), _, _, delay, mask, _, _ in incoming:
        n_late += count_projection(sp_t, sp_n, sp_off, delay, mask, t1, counts)
    off = np.zeros(batch * size + 1, np.int64)
    np.cumsum(counts, out=off[1:])
    n = int(off[-1])
    out = (
        np.empty(n, np.float64),
        np.empty(n, dtype),
        np.empty(n, np.int8),
        np.empty(n, np.int64),
        np.empty(n, np.int64),
    )
    late = empty_pending(dtype, n_late)
    cur = off[:-1].copy()
    m = fill_pending(pending, size, t1, cur, out, late, 0)
    for (sp_t, sp_n, sp_off), src0, w, delay, mask, chan, widx0 in incoming:
        by_time = time_order(sp_t, sp_off)
        m = fill_projection(
            sp_t, sp_n, sp_off, src0, w, delay, mask, chan, widx0, t1, cur, out, late, m, by_time
        )
    sort_segments(off, out)
    return off, out, late
