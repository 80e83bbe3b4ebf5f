"""Where a benchmark's time goes: the wall-clock time spent in named calls.

Used by the benchmarks' breakdowns (``train_randman.py --breakdown``, ``mpi_scaling.py
--phases``); a call costs about a microsecond more while it is timed.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter


@contextlib.contextmanager
def timed_calls(targets):
    """While active, every call of ``targets`` (label -> (owner, attribute)) adds its wall-clock
    time to the yielded Counter (label -> seconds); the originals are restored after."""
    spent, originals = Counter(), []

    def timed(function, label):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start

        return call

    for label, (owner, name) in targets.items():
        originals.append((owner, name, getattr(owner, name)))
        setattr(owner, name, timed(originals[-1][2], label))
    try:
        yield spent
    finally:
        for owner, name, function in reversed(originals):
            setattr(owner, name, function)
