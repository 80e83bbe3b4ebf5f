"""The arrivals of a step's new spikes (:func:`fan_out`) against :func:`gather`'s late list.

A recurrent component sends the spikes of every step to the step queue; all their arrivals
are due at least one step later.  ``fan_out`` must list them exactly as ``gather`` lists late
arrivals (same arrays, same dtypes, same order: the order decides how arrivals at equal times
are summed): random projections with connection masks, delays that differ per connection,
several samples, spikes out of time order within a sample, and two projections.
"""

from __future__ import annotations

import numpy as np
import pytest

from pynn_eventprop.engine.exact.arrivals import empty_pending, fan_out, gather


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


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fan_out_lists_the_late_arrivals_of_gather(seed, dtype):
    rng = np.random.default_rng(seed)
    batch, size = 3, 5
    incoming = [
        _projection(rng, 4, size, batch, 0, 0, 0, dtype),
        _projection(rng, 6, size, batch, 100, 1, 20, dtype),
    ]
    late = gather(batch, size, 2.0, incoming, empty_pending(dtype), dtype)[2]  # t1: none due
    sent = fan_out(incoming, dtype)
    assert sent[0].size == late[0].size > 0
    for ours, theirs in zip(sent, late, strict=True):
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype


def test_fan_out_of_no_spikes_is_empty():
    rng = np.random.default_rng(0)
    proj = _projection(rng, 4, 5, 3, 0, 0, 0, np.float64)
    silent = ((np.zeros(0), np.zeros(0, np.int64), np.zeros(4, np.int64)), *proj[1:])
    assert all(x.size == 0 for x in fan_out([silent], np.float64))
    assert all(x.size == 0 for x in fan_out([], np.float64))
