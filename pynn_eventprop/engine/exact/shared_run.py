"""Compiled calls of a shared-event layer's run.

:func:`arrival_events` turns the spikes of its presynaptic populations into the arrivals
(each presynaptic spike at ``t + delay``, sorted by time within each sample; those due after
the run kept apart), and :func:`run_shared_layer` does in one call the rest: the integration
by :func:`.shared.forward_shared` with buffers grown until they are large enough, and the
first spike time of every neuron.  For a small layer the Python between these steps cost as
much as the integration itself.
"""

from __future__ import annotations

import numba
import numpy as np

from .shared import (
    _collect,
    _gather,
    _order,
    _sort_segment,
    first_spike_times,
    forward_shared,
)


@numba.njit(cache=True)
def arrival_events(incoming, batch, t1, in_order=True):
    """Arrival events common to all neurons of a layer, those due by ``t1`` sorted by time
    within each sample (``in_order``; else in the order of ``incoming``, projection by
    projection, spike by spike, to be sorted by :func:`in_time_order` if need be).

    ``incoming``: tuple of ``((times, neurons, offsets), src0, row_delay, row0, channel)`` per
    projection (``row_delay`` the delay of each presynaptic neuron, ``row0`` its first row in
    the concatenated weights, ``src0`` the global index of its first spike).  Returns
    ``(offsets, (t, row, channel, src), late)``: offsets per sample of the due events, and
    ``late = (t, row, channel, src, sample)`` the events due after ``t1``, by sample then time.
    """
    n = 0
    for proj in numba.literal_unroll(incoming):
        n += proj[0][0].size
    buf = (np.empty(n), np.empty(n, np.int64), np.empty(n, np.int8), np.empty(n, np.int64),
           np.empty(n, np.int64))  # fmt: skip
    pos = 0
    for proj in numba.literal_unroll(incoming):
        (times, neurons, offsets), src0, row_delay, row0, channel = proj
        pos = _collect(times, neurons, offsets, src0, row_delay, row0, channel, buf, pos)
    off, order, n_due = _order(buf[4], buf[0], batch, t1, in_order)
    due, late = _gather(buf, order[:n_due]), _gather(buf, order[n_due:])
    return off, (due[0], due[1], due[2], due[3]), late


@numba.njit(cache=True)
def in_time_order(ev_off, ev):
    """The due events ``ev = (t, row, channel, src)`` of :func:`arrival_events` made without
    ``in_order``, each sample's (``ev_off``) sorted by time: the same order as with it."""
    order = np.arange(ev[0].size)
    for b in range(ev_off.size - 1):
        _sort_segment(order, ev[0], ev_off[b], ev_off[b + 1])
    return ev[0][order], ev[1][order], ev[2][order], ev[3][order]


@numba.njit(cache=True)
def run_shared_layer(par, wcat, arrivals, e, state, t0, t1, vm, vs, cap, tol, stop):
    """Integrate a shared-event layer over ``(t0, t1]`` from its arrivals.

    ``arrivals = (offsets, (t, row, channel, src))``, the due events of
    :func:`arrival_events`; ``par, wcat, e, vm, vs, tol`` as in
    :func:`.shared.forward_shared`; ``state = (v, i_E, i_I, ref_end)`` ``(batch, size)``, read
    only (the new state is returned, in float64); ``cap`` the first spike-buffer capacity to
    try (multiplied by 4 until the spikes and the tape fit); ``stop``: end each sample once
    every neuron has spiked (:func:`.shared.forward_shared`).

    Returns ``(n, cap, spk, tape, state, first)``: the number of spikes, the capacity that
    sufficed, the spikes ``(times, neurons, offsets per (b, j))`` and private tape of
    :func:`.shared.forward_shared`, the state at ``t1`` and the first spike time of every
    neuron after ``t0`` ((batch, size), ms, inf if silent).
    """
    batch, size = state[0].shape
    ev_off, ev = arrivals
    rows = batch * size + 1
    while True:
        new = (state[0].astype(np.float64), state[1].astype(np.float64),
               state[2].astype(np.float64), state[3].astype(np.float64))  # fmt: skip
        spk = (np.empty(cap), np.empty(cap, np.int64), np.empty(rows, np.int64))
        cap_t = 2 * cap + batch * size + 16
        tape = (np.empty(cap_t, np.int8), np.empty(cap_t), np.empty(cap_t), np.empty(cap_t),
                np.empty(cap_t, np.int64), np.zeros(rows, np.int64))  # fmt: skip
        for x in vs:
            x[:] = 0.0  # accumulators: a retry with larger buffers starts again
        n = forward_shared(par, wcat, ev_off, (ev[0], ev[1], ev[2]), e, new, t0, t1, spk, tape,
                           vm, vs, tol, stop)  # fmt: skip
        if n >= 0:
            first = first_spike_times(spk[0], spk[2], t0, (batch, size))
            return n, cap, spk, tape, new, first
        cap *= 4
