"""Arrivals in flight into a population that advances one grid step at a time.

The populations of a recurrent component advance step by step (:mod:`.simulation`): at each
step they take the arrivals due in it, and their new spikes add arrivals due at least one step
later.  Kept in one flat list, every arrival still in flight was read and copied twice per
step, so a step cost time in proportion to the spikes of the last ``max_delay`` ms, whatever
it received itself.

:class:`StepQueue` files each arrival under the step it is due in when it is sent: the first
step ``k`` with ``t <= ends[k]``, ``ends[k]`` the end of step ``k`` exactly as the caller
computes it.  A step takes out only its own, in the order they were filed, which is the order
the flat list had them in, so everything computed from them is the same.

Storage: the fields of every arrival filed, in one array per field; each push groups its
arrivals by step (a stable counting sort) and adds one *segment* (start, end) to each step it
has arrivals for.  Taking a step copies its segments, in the order they were added.

The recurrent steps use two shortcuts with the same results: a step's new spikes are filed
without listing their arrivals first (:meth:`StepQueue.push_spikes`), and a step's arrivals
are taken already gathered per neuron and sorted by time (:meth:`StepQueue.take_by_neuron`),
as :func:`.arrivals.gather` would gather them.
"""

from __future__ import annotations

import numba
import numpy as np

from .arrivals import empty_pending, sort_segments, time_order


class StepQueue:
    """Arrivals ``(b, j, t, w, c, widx, src)`` in flight, filed by the step they are due in.

    Parameters
    ----------
    ends : float array ``(n_steps,)``, the end of each step (ms), increasing.
    pending : arrivals already in flight (filed first).
    store : the arrays of an earlier queue's store (``StepQueue.store``), reused (their
        contents are overwritten: the earlier queue is done) instead of new ones; a run's
        store holds every arrival of the run, and fresh memory costs a page fault per page.
    """

    def __init__(self, ends, pending: tuple, store: tuple | None = None):
        self.ends = np.ascontiguousarray(ends, np.float64)
        steps = self.ends.size + 1  # the last: due after the run
        needed = max(2 * pending[0].size, 256)
        if store is None or store[0].size < needed or store[3].dtype != pending[3].dtype:
            store = empty_pending(pending[3].dtype, needed)
        self.store = store
        self.filled = 0
        self.segments = np.empty((steps, 8, 2), np.int64)
        self.n_segments = np.zeros(steps, np.int64)
        self.step = 0  # the next step to be taken
        self.push(pending)

    def push(self, arrivals: tuple) -> None:
        """File ``arrivals`` (``(b, j, t, w, c, widx, src)``, in their order).  One due in a step
        already taken is filed under the next step to be taken."""
        n = arrivals[0].size
        if n == 0:
            return
        self._make_room(n)
        _file(self.store, self.filled, arrivals, self.ends, self.step, self.segments,
              self.n_segments)  # fmt: skip
        self.filled += n

    def push_spikes(self, incoming) -> None:
        """File every arrival of the spikes in ``incoming`` (all in flight), as :meth:`push`
        files :func:`.arrivals.gather`'s late list of them, without building that list.

        ``incoming``: ``(spikes, src0, w, delay, mask, chan, widx0)`` per projection, as
        :func:`.arrivals.gather` takes them.  The arrivals come by projection, sample, spike
        time and postsynaptic neuron (the order of the late list: it decides how arrivals at
        equal times are summed).
        """
        for (sp_t, sp_n, sp_off), src0, w, delay, mask, chan, widx0 in incoming:
            if sp_t.size:
                by_time = time_order(sp_t, sp_off)
                self._make_room(_count_fan_out(sp_n, mask))
                self.filled = _file_fan_out(
                    self.store, self.filled, (sp_t, sp_n, sp_off), src0, w, delay, mask, chan,
                    widx0, by_time, self.ends, self.step, self.segments, self.n_segments
                )  # fmt: skip

    def _make_room(self, n: int) -> None:
        """Room for ``n`` more arrivals and one more segment in every step."""
        if self.filled + n > self.store[0].size:
            self._grow_store(self.filled + n)
        if self.n_segments.max() == self.segments.shape[1]:
            grown = np.empty((self.segments.shape[0], 2 * self.segments.shape[1], 2), np.int64)
            grown[:, : self.segments.shape[1]] = self.segments
            self.segments = grown

    def take(self, k: int) -> tuple:
        """The arrivals due in step ``k`` (steps are taken in order, each once)."""
        if k != self.step:
            raise ValueError(f"step {k} taken out of order (next: {self.step})")
        self.step = k + 1
        return _segments(self.store, self.segments, self.n_segments, k, k + 1)

    def take_by_neuron(self, k: int, batch: int, size: int) -> tuple:
        """:meth:`take` ``(k)`` gathered per neuron, as :func:`.arrivals.gather` gathers
        arrivals due by ``ends[k]`` with nothing else incoming: ``(offsets, (t, w, c, widx,
        src))``, row ``b * size + j`` sorted by time, ties in filing order.  Every arrival of
        step ``k`` is due in it (that is how it was filed), so none stays in flight."""
        if k != self.step:
            raise ValueError(f"step {k} taken out of order (next: {self.step})")
        self.step = k + 1
        return _by_neuron(self.store, self.segments[k], self.n_segments[k], batch * size, size)

    def rest(self) -> tuple:
        """Every arrival not taken yet, by step, then in filing order."""
        steps = self.n_segments.size
        return _segments(self.store, self.segments, self.n_segments, self.step, steps)

    def _grow_store(self, needed: int) -> None:
        store = empty_pending(self.store[3].dtype, max(needed, 2 * self.store[0].size))
        for new, old in zip(store, self.store, strict=True):
            new[: self.filled] = old[: self.filled]
        self.store = store


@numba.njit(cache=True, inline="always")
def _due_step(t, ends, dt, first):
    """The step an arrival at ``t`` is due in: the first ``k`` with ``t <= ends[k]``
    (``ends.size`` after the run), at least ``first``; ``dt`` the mean step, for a guess."""
    last = ends.size
    k = min(max(int((t - ends[0]) / dt) + 1, 0), last)  # a guess, then exact:
    while k > 0 and t <= ends[k - 1]:
        k -= 1
    while k < last and t > ends[k]:
        k += 1
    return max(k, first)


@numba.njit(cache=True, inline="always")
def _mean_step(ends):
    """The mean step (ms) of the step ends ``ends``, for :func:`_due_step`'s guess."""
    last = ends.size
    return (ends[-1] - ends[0]) / (last - 1) if last > 1 else 1.0


@numba.njit(cache=True, inline="always")
def _add_segments(count, base, segments, n_segments):
    """``count[k + 1]``: arrivals filed under step ``k``.  Adds a segment for each step that
    got some and turns ``count[k]`` into the first position of step ``k``'s (from 0)."""
    for k in range(count.size - 1):
        if count[k + 1] > 0:
            segments[k, n_segments[k], 0] = base + count[k]
            segments[k, n_segments[k], 1] = base + count[k] + count[k + 1]
            n_segments[k] += 1
        count[k + 1] += count[k]


@numba.njit(cache=True)
def _file(store, base, arrivals, ends, first, segments, n_segments):
    """Write ``arrivals`` into ``store`` from ``base`` on, grouped by the step each is due in
    (at least ``first``; ``ends.size`` for after the run), keeping their order within a step,
    and add a segment for each step that got some."""
    n = arrivals[0].size
    step = np.empty(n, np.int64)
    count, dt = np.zeros(ends.size + 2, np.int64), _mean_step(ends)
    for m in range(n):
        step[m] = _due_step(arrivals[2][m], ends, dt, first)
        count[step[m] + 1] += 1
    _add_segments(count, base, segments, n_segments)
    for m in range(n):
        r = base + count[step[m]]
        count[step[m]] += 1
        store[0][r], store[1][r], store[2][r] = arrivals[0][m], arrivals[1][m], arrivals[2][m]
        store[3][r], store[4][r], store[5][r] = arrivals[3][m], arrivals[4][m], arrivals[5][m]
        store[6][r] = arrivals[6][m]


@numba.njit(cache=True)
def _count_fan_out(sp_n, mask):
    """The number of arrivals of spikes of presynaptic neurons ``sp_n``."""
    n = 0
    for s in range(sp_n.size):
        for j in range(mask.shape[1]):
            n += mask[sp_n[s], j]
    return n


@numba.njit(cache=True)
def _file_fan_out(store, base, spikes, src0, w, delay, mask, chan, widx0, by_time, ends, first,
                  segments, n_segments):  # fmt: skip
    """:func:`_file` of the arrivals of one projection's spikes (spike ``s`` of neuron ``i``
    reaches neuron ``j`` at ``t_s + delay[i, j]``), without listing them first; returns the
    new fill."""
    sp_t, sp_n, sp_off = spikes
    size = delay.shape[1]
    count, dt = np.zeros(ends.size + 2, np.int64), _mean_step(ends)
    step = np.empty(by_time.size * size, np.int64)  # of arrival (spike k, neuron j)
    for k in range(by_time.size):
        s = by_time[k]
        for j in range(size):
            if mask[sp_n[s], j]:
                step[k * size + j] = _due_step(sp_t[s] + delay[sp_n[s], j], ends, dt, first)
                count[step[k * size + j] + 1] += 1
    _add_segments(count, base, segments, n_segments)
    for b in range(sp_off.size - 1):
        for k in range(sp_off[b], sp_off[b + 1]):
            s = by_time[k]
            i = sp_n[s]
            for j in range(size):
                if mask[i, j]:
                    r = base + count[step[k * size + j]]
                    count[step[k * size + j]] += 1
                    store[0][r], store[1][r] = b, j
                    store[2][r], store[3][r] = sp_t[s] + delay[i, j], w[i, j]
                    store[4][r], store[5][r] = chan, widx0 + i * size + j
                    store[6][r] = src0 + s
    return base + count[-1]  # the total


@numba.njit(cache=True)
def _segments(store, segments, n_segments, k0, k1):
    """The arrivals of steps ``k0 .. k1 - 1``, step by step, each in filing order."""
    n = 0
    for k in range(k0, k1):
        for q in range(n_segments[k]):
            n += segments[k, q, 1] - segments[k, q, 0]
    out = (np.empty(n, store[0].dtype), np.empty(n, store[1].dtype), np.empty(n, store[2].dtype),
           np.empty(n, store[3].dtype), np.empty(n, store[4].dtype), np.empty(n, store[5].dtype),
           np.empty(n, store[6].dtype))  # fmt: skip
    m = 0
    for k in range(k0, k1):
        for q in range(n_segments[k]):
            lo, hi = segments[k, q, 0], segments[k, q, 1]
            size = hi - lo
            out[0][m : m + size], out[1][m : m + size] = store[0][lo:hi], store[1][lo:hi]
            out[2][m : m + size], out[3][m : m + size] = store[2][lo:hi], store[3][lo:hi]
            out[4][m : m + size], out[5][m : m + size] = store[4][lo:hi], store[5][lo:hi]
            out[6][m : m + size] = store[6][lo:hi]
            m += size
    return out


@numba.njit(cache=True)
def _by_neuron(store, segments, n_segments, rows, size):
    """The arrivals of one step's segments (in order) per neuron row ``b * size + j``, each
    row sorted by time (:func:`.arrivals.sort_segments`; ties keep the order)."""
    off = np.zeros(rows + 1, np.int64)
    for q in range(n_segments):
        for m in range(segments[q, 0], segments[q, 1]):
            off[store[0][m] * size + store[1][m] + 1] += 1
    for r in range(rows):
        off[r + 1] += off[r]
    n = off[rows]
    out = (np.empty(n), np.empty(n, store[3].dtype), np.empty(n, np.int8), np.empty(n, np.int64),
           np.empty(n, np.int64))  # fmt: skip
    cur = off[:-1].copy()
    for q in range(n_segments):
        for m in range(segments[q, 0], segments[q, 1]):
            r = cur[store[0][m] * size + store[1][m]]
            cur[store[0][m] * size + store[1][m]] = r + 1
            out[0][r], out[1][r], out[2][r] = store[2][m], store[3][m], store[4][m]
            out[3][r], out[4][r] = store[5][m], store[6][m]
    sort_segments(off, out)
    return off, out
