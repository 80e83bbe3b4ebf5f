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

import numba

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def max_threads() -> int:
    """The most threads the kernels can use (numba's ``NUMBA_NUM_THREADS``)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def set_threads(threads=None) -> int:
    """Use ``threads`` threads in the calling thread's kernel calls (None: all of them).

    Raises
    ------
    ValueError
        ``threads`` is not an integer between 1 and :func:`max_threads`.
    """
    top = max_threads()
    if threads is None:
        threads = top
    try:
        count = None if isinstance(threads, bool) else operator.index(threads)
    except TypeError:
        count = None
    if count is None or not 1 <= count <= top:
        raise ValueError(
            f"threads must be an integer from 1 to {top} (the cores numba may use; set "
            f"NUMBA_NUM_THREADS before starting Python for more), got {threads!r}"
        )
    numba.set_num_threads(count)
    return count


def get_threads() -> int:
    """The number of threads the calling thread's kernel calls use."""
    return int(numba.get_num_threads())
