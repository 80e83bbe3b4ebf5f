"""The arrivals queue of recurrent components against a flat list filtered at every step.

A recurrent population takes, at each grid step, the arrivals in flight that are due by the
step's end (``t <= ends[k]``), in the order they were sent; that is what the engine did with a
flat list before :class:`StepQueue`.  The reference below is that flat list, so the check is
exact (the same arrays, the same order); random pushes cover ties, arrivals exactly at a
step's end, arrivals sent too late for their step, arrivals after the run, and enough pushes
per step to grow the queue's storage.
"""

from __future__ import annotations

import numpy as np
import pytest

from pynn_eventprop.engine.exact.arrivals import gather
from pynn_eventprop.engine.exact.step_queue import StepQueue


def _arrivals(rng, n, times):
    """``n`` arrivals ``(b, j, t, w, c, widx, src)`` with times drawn from ``times``."""
    return (
        rng.integers(0, 4, n),
        rng.integers(0, 5, n),
        rng.choice(times, n),
        rng.normal(size=n),
        rng.integers(0, 2, n).astype(np.int8),
        rng.integers(-1, 50, n),
        np.arange(n) + rng.integers(0, 10**6),  # unique: the order is visible
    )


class FlatList:
    """The reference: every arrival in flight in one list, in the order it was sent."""

    def __init__(self, pending):
        self.items = pending

    def push(self, arrivals):
        pairs = zip(self.items, arrivals, strict=True)
        self.items = tuple(np.concatenate([a, b]) for a, b in pairs)

    def take(self, end):
        due = self.items[2] <= end
        out = tuple(x[due] for x in self.items)
        self.items = tuple(x[~due] for x in self.items)
        return out


def _equal(a, b):
    return all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("seed", range(5))
def test_steps_take_what_a_flat_list_gives(seed):
    rng = np.random.default_rng(seed)
    dt, t0, n_steps = 0.1, 3.0, 30
    ends = np.array([t0 + k * dt + dt for k in range(n_steps)])
    # step ends themselves (ties with the boundary), a few shared times, and the run's tail
    times = np.concatenate([ends, rng.uniform(t0, t0 + (n_steps + 5) * dt, 40)])
    before = _arrivals(rng, 30, times)
    queue, flat = StepQueue(ends, before), FlatList(before)
    for k in range(n_steps):
        for _ in range(rng.integers(0, 4)):  # sometimes more than 8 pushes reach one step
            sent = _arrivals(rng, int(rng.integers(0, 20)), times[times > ends[k] - 2 * dt])
            queue.push(sent)
            flat.push(sent)
        assert _equal(queue.take(k), flat.take(ends[k])), f"step {k}"
    rest, left = queue.rest(), flat.items
    order = np.lexsort((np.arange(left[0].size), np.searchsorted(ends, left[2])))
    assert _equal(rest, tuple(x[order] for x in left))  # by step, then as sent


def test_an_arrival_due_in_a_taken_step_comes_with_the_next():
    ends = np.array([1.0, 2.0, 3.0])
    values, dtypes = (0, 0, 1.5, 0.1, 0, 0, 7), (int, int, float, float, np.int8, int, int)
    one = tuple(np.array([v], dtype) for v, dtype in zip(values, dtypes, strict=True))
    queue = StepQueue(ends, tuple(x[:0] for x in one))
    assert queue.take(0)[0].size == 0
    assert queue.take(1)[0].size == 0
    queue.push(one)  # due at 1.5, but step 1 (ending at 2.0) is gone
    assert queue.take(2)[6].tolist() == [7]
    with pytest.raises(ValueError, match="out of order"):
        queue.take(1)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_step_by_neuron_is_what_gather_makes_of_it(seed, dtype):
    """``take_by_neuron(k)`` (the step's segments gathered per neuron in one pass) equals
    :func:`gather` of ``take(k)`` with nothing else incoming: the same offsets, arrays, dtypes
    and order within each neuron (by time, ties in the order sent), and nothing late."""
    rng = np.random.default_rng(seed)
    dt, t0, n_steps, batch, size = 0.5, 1.0, 12, 4, 5
    ends = np.array([t0 + k * dt + dt for k in range(n_steps)])
    times = np.concatenate([ends, rng.uniform(t0, t0 + n_steps * dt, 15)])  # ties, boundaries

    def arrivals(n, low):
        a = _arrivals(rng, n, times[times > low])
        return a[:3] + (a[3].astype(dtype),) + a[4:]

    before = arrivals(25, t0)
    queue, reference = StepQueue(ends, before), StepQueue(ends, before)
    for k in range(n_steps):
        for _ in range(rng.integers(0, 3)):
            sent = arrivals(int(rng.integers(0, 30)), ends[k] - 2 * dt)
            queue.push(sent)
            reference.push(sent)
        off, out = queue.take_by_neuron(k, batch, size)
        expected_off, expected, late = gather(batch, size, ends[k], [], reference.take(k), dtype)
        assert late[0].size == 0
        assert np.array_equal(off, expected_off), f"step {k}"
        assert _equal(out, expected), f"step {k}"


def test_a_queue_on_an_earlier_queues_store_takes_what_a_fresh_one_takes():
    """The engine hands each run's queue the store of the run before (no fresh pages): what
    is left in it must not show, and a store too small for the arrivals in flight is not
    reused."""
    rng = np.random.default_rng(7)
    ends = np.array([1.0 + 0.5 * k for k in range(10)])
    times = rng.uniform(0.5, 6.0, 40)
    earlier = StepQueue(ends, _arrivals(rng, 300, times))
    for k in range(4):
        earlier.push(_arrivals(rng, 50, times[times > ends[k]]))
        earlier.take(k)
    before = _arrivals(rng, 20, times)
    reused, fresh = StepQueue(ends, before, earlier.store), StepQueue(ends, before)
    assert reused.store is earlier.store
    for k in range(ends.size):
        sent = _arrivals(rng, int(rng.integers(0, 30)), times[times > ends[k] - 0.5])
        reused.push(sent)
        fresh.push(sent)
        assert _equal(reused.take(k), fresh.take(k)), f"step {k}"
    assert _equal(reused.rest(), fresh.rest())
    many = _arrivals(rng, earlier.store[0].size, times)  # needs twice as many places
    assert StepQueue(ends, many, earlier.store).store is not earlier.store
