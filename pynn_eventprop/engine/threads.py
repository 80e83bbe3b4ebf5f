"""How many threads the engine's kernels use.

The exact engine integrates the samples of a batch in parallel (numba ``prange``), and sums
their gradients in blocks whose number depends only on the batch and layer sizes, so results
are the same for any thread count.  The default is every core numba sees (its
``NUMBA_NUM_THREADS``, the number of CPUs unless that variable is set before the first
import); :func:`set_threads` (or ``setup(threads=N)`` in the PyNN layer) changes it for the
calling thread.

OpenMP, numba's usual threading layer, lets idle workers spin between parallel regions by
default, which on a machine whose cores are busy with other processes costs milliseconds per
kernel call; unless the environment says otherwise, the workers here wait passively
(``OMP_WAIT_POLICY=PASSIVE``; set before numba starts its threads).
"""

from __future__ import annotations

import operator
import os
import warnings

import numba

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def max_threads() -> int:
    """The most threads the kernels can use (numba's ``NUMBA_NUM_THREADS``)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def set_threads(threads=None) -> int:
    """Use ``threads`` threads in the calling thread's kernel calls (None: all of them).

    More threads than :func:`max_threads` (as a script written for NEST's ``setup(threads=8)``
    may ask for) are reduced to it, with a warning.  Returns the count in use.

    Raises
    ------
    ValueError
        ``threads`` is not an integer >= 1.
    """
    top = max_threads()
    if threads is None:
        threads = top
    try:
        count = None if isinstance(threads, bool) else operator.index(threads)
    except TypeError:
        count = None
    if count is None or count < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if count > top:
        warnings.warn(
            f"threads={count}: the kernels can use at most {top} threads here (numba's "
            f"NUMBA_NUM_THREADS, set before starting Python for more); using {top}",
            stacklevel=2,
        )
        count = top
    numba.set_num_threads(count)
    return count


def get_threads() -> int:
    """The number of threads the calling thread's kernel calls use."""
    return int(numba.get_num_threads())


#: Kernel calls with less work than this (neuron-intervals: neurons times the events they go
#: through) run on one thread: waking the others costs more than they save.  Measured with
#: ``benchmarks/train_yinyang.py --threads 1 --threads 2``: the twin network (about 16,000
#: per forward call) trained faster on one thread, the default one (about 60,000) on two.
SERIAL_WORK = 30_000


class threads_for:  # noqa: N801  (a context manager, named like contextlib's)
    """Run the enclosed kernel call on one thread when ``work`` is below :data:`SERIAL_WORK`
    (results do not depend on the thread count, so this changes only the speed)."""

    __slots__ = ("work", "restore")

    def __init__(self, work):
        self.work = work
        self.restore = 0

    def __enter__(self):
        if self.work < SERIAL_WORK:
            count = numba.get_num_threads()
            if count > 1:
                numba.set_num_threads(1)
                self.restore = count

    def __exit__(self, *exc):
        if self.restore:
            numba.set_num_threads(self.restore)
