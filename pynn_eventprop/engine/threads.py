"""How many threads the engine's kernels use.

The exact engine integrates the samples of a batch in parallel (numba ``prange``), and sums
their gradients in blocks whose number depends only on the batch and layer sizes, so results
are the same for any thread count.  The default is every core numba sees (its
``NUMBA_NUM_THREADS``, the number of CPUs unless that variable is set before the first
import), or this process's share of them when several processes (MPI ranks) run on the same
machine (:func:`share_cores`); :func:`set_threads` (or ``setup(threads=N)`` in the PyNN
layer) changes it for the calling thread.

numba runs parallel kernels on its preferred threading layer: Intel's TBB (the ``tbb``
package, a dependency on x86-64, where it has wheels), else OpenMP.  Idle TBB workers spin
briefly and then yield their core, so waking them is cheap and another process on a core costs
little; the kernels then use every thread for calls with as little work as :func:`serial_work`
says.  OpenMP lets idle workers spin between parallel regions by default,
which on a machine whose cores are busy with other processes costs milliseconds per kernel
call; unless the environment says otherwise, OpenMP's workers here wait passively
(``OMP_WAIT_POLICY=PASSIVE``; set before numba starts its threads), and waking a passive worker
takes long enough that calls with little work run on one thread.  On a machine the run has to
itself, letting OpenMP's workers spin briefly (``GOMP_SPINCOUNT=30000``, or
``OMP_WAIT_POLICY=ACTIVE``, set before Python starts) lowers that threshold too; with another
process on a core it makes training several times slower.  ``NUMBA_THREADING_LAYER=omp``
(set before Python starts) chooses OpenMP where TBB is installed.
"""

from __future__ import annotations

import contextlib
import operator
import os
import warnings

import numba
from threadpoolctl import threadpool_limits

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def serial_work(environ=None, layer=None) -> int:
    """The work below which a kernel call runs on one thread (:class:`threads_for`), in
    neuron-intervals (neurons times the events they go through): 2,000 on TBB, and on OpenMP
    when the environment lets idle workers spin (``OMP_WAIT_POLICY=ACTIVE`` or a
    ``GOMP_SPINCOUNT`` other than 0); 30,000 when they wait passively (OpenMP's default here,
    and numba's own ``workqueue`` layer, whose workers sleep).  ``layer``: numba's threading
    layer (default: :func:`threading_layer`).

    Measured with ``benchmarks/train_yinyang.py --threads 1 --threads 2`` on 2 cores: with
    passive OpenMP workers the twin network (about 16,000 per forward call) trained faster on
    one thread, the default one (about 60,000) on two; on TBB, or with spinning OpenMP
    workers, both train faster on two.
    """
    environ = os.environ if environ is None else environ
    layer = threading_layer() if layer is None else layer
    if layer == "tbb":
        return 2_000
    policy = environ.get("OMP_WAIT_POLICY", "").strip().upper()
    spins = environ.get("GOMP_SPINCOUNT", "").strip()
    spinning = layer == "omp" and (policy == "ACTIVE" or spins not in ("", "0"))
    return 2_000 if spinning else 30_000


def threading_layer() -> str:
    """numba's threading layer (``"tbb"``, ``"omp"`` or ``"workqueue"``), starting its
    threads if they have not started yet."""
    numba.get_num_threads()  # launches the thread pool, which chooses the layer
    return numba.threading_layer()


#: Variables by which a user fixes the thread counts of numba and of BLAS themselves:
#: :func:`share_cores` leaves a count alone when its variable is set.
NUMBA_VARIABLE = "NUMBA_NUM_THREADS"
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_processes_per_machine = 1  # processes sharing this machine's cores (share_cores)
_set_here: set[str] = set()  # BLAS variables share_cores set (not the user's choice)


def _blas_fixed_by_user() -> bool:
    return any(v in os.environ and v not in _set_here for v in BLAS_VARIABLES)


def max_threads() -> int:
    """The most threads the kernels can use (numba's ``NUMBA_NUM_THREADS``)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def default_threads() -> int:
    """What ``set_threads(None)`` uses: :func:`max_threads`, divided among the processes
    that share this machine's cores (:func:`share_cores`) unless ``NUMBA_NUM_THREADS`` fixes
    the count (at least 1)."""
    if NUMBA_VARIABLE in os.environ:
        return max_threads()
    return max(1, max_threads() // _processes_per_machine)


def share_cores(processes: int) -> int:
    """Make this process one of ``processes`` that run on this machine at once (the MPI
    ranks of one node): the kernels' default thread count, and the threads of the BLAS
    library behind numpy, become :func:`default_threads`.

    Without this every rank would start a thread per core for the kernels and another for
    BLAS, and on a machine with as many cores as ranks the threads that wait for work take
    the cores from the ranks that compute (``mpiexec -n 2`` on 2 cores ran at half the speed
    of one process).  A count the user fixed in the environment (``NUMBA_NUM_THREADS``;
    ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS`` for BLAS) is left
    as it is.  Returns the kernels' count.
    """
    global _processes_per_machine
    _processes_per_machine = max(1, int(processes))
    count = set_threads(None)
    if _processes_per_machine > 1 and not _blas_fixed_by_user():
        for variable in BLAS_VARIABLES[1:]:  # read by BLAS libraries loaded later (scipy's)
            os.environ[variable] = str(count)
            _set_here.add(variable)
        threadpool_limits(count, user_api="blas")  # those loaded now, for the process
    return count


@contextlib.contextmanager
def blas_on_one_thread():
    """Run the enclosed code (a training epoch) with the BLAS library behind numpy on one
    thread, unless the environment fixes its count (``OMP_NUM_THREADS`` ...).

    Training calls BLAS only for a few vector norms per batch, but OpenBLAS lets the threads
    of a multi-threaded call spin for a while afterwards, taking the cores from the kernels'
    threads: a 784-350-10 batch on 2 cores took 30-35 ms instead of 22-23 ms.
    """
    if _blas_fixed_by_user():
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def set_threads(threads=None) -> int:
    """Use ``threads`` threads in the calling thread's kernel calls (None: the default,
    :func:`default_threads`: every core, or this process's share of them).

    More threads than :func:`max_threads` (as a script written for NEST's ``setup(threads=8)``
    may ask for) are reduced to it, with a warning.  Returns the count in use.

    Raises
    ------
    ValueError
        ``threads`` is not an integer >= 1.
    """
    top = max_threads()
    if threads is None:
        threads = default_threads()
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
#: through) run on one thread: waking the others costs more than they save; None until the
#: first call, which sets it from :func:`serial_work`.
SERIAL_WORK: int | None = None


def serial_threshold() -> int:
    """:data:`SERIAL_WORK`, set from :func:`serial_work` on first use."""
    global SERIAL_WORK
    if SERIAL_WORK is None:
        SERIAL_WORK = serial_work()
    return SERIAL_WORK


class threads_for:  # noqa: N801  (a context manager, named like contextlib's)
    """Run the enclosed kernel call on one thread when ``work`` is below :data:`SERIAL_WORK`
    (results do not depend on the thread count, so this changes only the speed)."""

    __slots__ = ("work", "restore")

    def __init__(self, work):
        self.work = work
        self.restore = 0

    def __enter__(self):
        if self.work < serial_threshold():
            count = numba.get_num_threads()
            if count > 1:
                numba.set_num_threads(1)
                self.restore = count

    def __exit__(self, *exc):
        if self.restore:
            numba.set_num_threads(self.restore)
