"""The arrivals of a step's new spikes filed straight into the step queue
(:meth:`StepQueue.push_spikes`) against :func:`gather`'s late list of them, pushed.

A recurrent component sends the spikes of every step to the step queue; all their arrivals
are due at least one step later.  ``push_spikes`` must file them exactly as the queue files
``gather``'s late arrivals (same arrays, same dtypes, same order within each step: the order
decides how arrivals at equal times are summed): random projections with connection masks,
delays that differ per connection, several samples, spikes out of time order within a
sample, two projections, arrivals at a step's end, and arrivals already in the queue.
"""

from __future__ import annotations

import numpy as np
import pytest

from pynn_eventprop.engine.exact.arrivals import empty_pending, gather
from pynn_eventprop.engine.exact.step_queue import StepQueue


def _projection(rng, n_pre, size, batch, src0, chan, widx0, dtype):
    """``(spikes, src0, w, delay, mask, chan, widx0)`` with spikes in ``(1, 2]`` ms."""
    counts = rng.integers(0, 4, batch)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = int(offsets[-1])
    times = 1.0 + rng.uniform(0.0, 1.0, n)  # within a sample not sorted by time
    times[rng.random(n) < 0.3] = 1.5  # ties
    spikes = (times, rng.integers(0, n_pre, n).astype(np.int64), offsets)
    w = rng.normal(size=(n_pre, size)).astype(dtype)
    delay = rng.choice([1.0, 1.25, 2.0, 3.5], size=(n_pre, size))  # mixed, at least 1 ms
    mask = rng.random((n_pre, size)) < 0.7
    return spikes, src0, w, delay, mask, chan, widx0


ENDS = np.array([2.5, 2.75, 3.0, 3.5, 4.0, 5.0])  # arrivals in (2, 5.5] ms: some due in step 0


def _queues(incoming, dtype):
    """Two queues holding the same earlier arrivals; the second also gets ``gather``'s late
    list of ``incoming`` (``t1`` before every arrival: none due), pushed."""
    earlier = gather(3, 5, 0.0, [incoming[0]], empty_pending(dtype), dtype)[2]
    ours, theirs = StepQueue(ENDS, earlier), StepQueue(ENDS, earlier)
    theirs.take(0), ours.take(0)  # step 0 is gone: what is due in it comes with step 1
    theirs.push(gather(3, 5, 2.0, incoming, empty_pending(dtype), dtype)[2])
    return ours, theirs


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spikes_are_filed_as_gather_lists_their_arrivals(seed, dtype):
    rng = np.random.default_rng(seed)
    batch, size = 3, 5
    incoming = [
        _projection(rng, 4, size, batch, 0, 0, 0, dtype),
        _projection(rng, 6, size, batch, 100, 1, 20, dtype),
    ]
    ours, theirs = _queues(incoming, dtype)
    ours.push_spikes(incoming)
    assert ours.filled == theirs.filled > 0
    for k in range(1, ENDS.size):
        for a, b in zip(ours.take(k), theirs.take(k), strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
    assert all(np.array_equal(a, b) for a, b in zip(ours.rest(), theirs.rest(), strict=True))


def test_no_spikes_file_nothing():
    rng = np.random.default_rng(0)
    proj = _projection(rng, 4, 5, 3, 0, 0, 0, np.float64)
    silent = ((np.zeros(0), np.zeros(0, np.int64), np.zeros(4, np.int64)), *proj[1:])
    queue = StepQueue(ENDS, empty_pending(np.float64))
    queue.push_spikes([silent])
    queue.push_spikes([])
    assert queue.filled == 0 and queue.rest()[0].size == 0
