"""Data-parallel training over MPI ranks (mpi4py), with a fixed-order gradient reduction.

Every rank holds the whole network and the whole data set, draws the same global batches
(shuffled by generators seeded alike) and simulates only its slice of each: with ``P`` ranks
and a global batch of ``n`` samples (a matrix of first-spike times or a ``SpikeTrainBatch``,
sliced alike), rank ``r`` takes samples ``[r k, min((r + 1) k, n))``,
``k = ceil(n / P)``.  After the backward pass the batch-mean gradient of the global batch is

    g = (1 / n) sum_r n_r g_r,

``g_r`` being rank ``r``'s batch-mean gradient over its ``n_r`` samples.  Every entry is summed
in rank order (0, 1, ..., P - 1) by one rank (each rank owns a chunk of the entries: a
reduce-scatter, then an all-gather), so every rank applies the same update and the result
does not depend on how MPI would order a reduction.  Of a projection from the input
population only the rows of inputs that spike in the global batch are exchanged: the others
are 0 on every rank (an input without spikes adds no arrival), and stay 0.  Loss,
predictions and correctness are gathered from every rank in rank order, so every rank reports
the global batch.  With one
process nothing of this runs: :func:`make_step` returns a plain :class:`~.step.TrainingStep`.

Against one process with the same global batch the gradient differs only by rounding: the
engine sums per-sample terms in a different grouping (``n_0 g_0 + n_1 g_1`` instead of one
sum), about one unit in the last place of float64 per step.  Training amplifies such
differences over many steps, as it amplifies any rounding-level change (docs/training.md).

Every rank must make the same calls: ``forward`` and ``gradients`` exchange data between
ranks.

The ranks that run on one machine share its cores: each rank's engine threads, and the
threads of the BLAS library behind numpy, default to its share of them
(:func:`~pynn_eventprop.engine.threads.share_cores`).

MPI is used when the script was started by an MPI launcher (``mpiexec``/``mpirun``: the
environment has ``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE``, ``PMIX_RANK`` or ``MPI_LOCALNRANKS``)
and ``mpi4py`` is installed (``pip install pynn_eventprop[mpi]``).  ``PYNN_EVENTPROP_MPI=0``
turns it off, ``=1`` uses ``mpi4py`` even without a launcher.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from ..datasets.spike_trains import SpikeTrainBatch
from ..engine.threads import share_cores
from .step import Forward, TrainingStep, batch_inputs, silent_inputs

LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
"""Environment variables set by MPI launchers (MPICH/Hydra, Open MPI, PMIx, MPICH)."""


class Communicator:
    """The ranks that train together; one process when ``comm`` is None.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or None
        E.g. ``MPI.COMM_WORLD``; None for a single process (every operation is a no-op).
    """

    def __init__(self, comm=None):
        self.comm = comm
        self.size = 1 if comm is None else int(comm.Get_size())
        self.rank = 0 if comm is None else int(comm.Get_rank())

    @property
    def is_root(self) -> bool:
        """True on rank 0, the rank that prints, shows progress and writes files."""
        return self.rank == 0

    def __repr__(self):
        return f"Communicator(rank={self.rank}, size={self.size})"

    def local_batch(self, batch_size: int) -> int:
        """Samples a rank simulates of a global batch of ``batch_size``: ``ceil(B / P)``."""
        return -(-int(batch_size) // self.size)

    def part(self, n: int) -> slice:
        """This rank's contiguous slice of a global batch of ``n`` samples (may be empty)."""
        k = -(-int(n) // self.size)
        start = min(self.rank * k, n)
        return slice(start, min(start + k, n))

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (``obj`` itself with one process)."""
        return obj if self.comm is None else self.comm.bcast(obj, root=0)

    def shared_seed(self, seed: int | None) -> int | None:
        """``seed``, or with several ranks and ``seed=None`` a random seed drawn on rank 0.

        Every rank must shuffle the data identically, so an unseeded run still needs one
        seed for all ranks.
        """
        if seed is not None or self.size == 1:
            return seed
        return self.broadcast(int(np.random.SeedSequence().generate_state(1)[0]))

    def allgather(self, obj) -> list:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
        return [obj] if self.comm is None else self.comm.allgather(obj)

    def weighted_mean(self, arrays: list, weight: float, total: float) -> list:
        """``(1 / total) sum_r weight_r arrays_r``, summed in rank order, on every rank.

        ``arrays`` must have the same shapes on every rank; the sum is formed in float64 and
        each result has its input's dtype.  The concatenated arrays are cut into ``P``
        chunks; rank ``q`` receives chunk ``q`` of every rank (``Alltoall``), adds them in
        rank order ``0, 1, ..., P - 1`` and divides by ``total``, and every rank collects
        the ``P`` reduced chunks (``Allgather``).  Each entry is therefore the same rank-order
        sum whatever MPI's algorithms, and each rank sends and receives ``(P - 1) / P`` of
        the data twice, instead of one rank receiving and sending all of it ``P - 1`` times.
        """
        if self.comm is None:
            return [np.asarray(a) * (weight / total) for a in arrays]
        sizes = [np.size(a) for a in arrays]
        chunk = -(-sum(sizes) // self.size)
        mine = np.zeros(self.size * chunk)  # padded to P equal chunks
        np.concatenate([np.ravel(a) for a in arrays] or [np.zeros(0)], out=mine[: sum(sizes)])
        mine *= weight
        received = np.empty((self.size, chunk))
        self.comm.Alltoall(mine, received)
        reduced = received[0]
        for r in range(1, self.size):  # fixed order: the same sum on every run
            reduced += received[r]
        reduced /= total
        self.comm.Allgather(reduced, mine)
        parts = np.split(mine, np.cumsum(sizes))[:-1]  # the last: the padding
        return [
            part.reshape(np.shape(a)).astype(np.asarray(a).dtype, copy=False)
            for part, a in zip(parts, arrays, strict=True)
        ]


_WORLD: Communicator | None = None


def launched_by_mpi(environ=None) -> bool:
    """True when an MPI launcher started this process (or ``PYNN_EVENTPROP_MPI=1``)."""
    environ = os.environ if environ is None else environ
    switch = environ.get("PYNN_EVENTPROP_MPI", "").strip()
    if switch in ("0", "1"):
        return switch == "1"
    return any(name in environ for name in LAUNCHER_VARIABLES)


def world() -> Communicator:
    """The communicator of all ranks of this run (created once; one process without MPI).

    Raises
    ------
    ImportError
        When an MPI launcher started several ranks but ``mpi4py`` is not installed: each
        rank would otherwise train the whole problem alone and write the same files.
    """
    global _WORLD
    if _WORLD is None:
        comm = None
        if launched_by_mpi():
            try:
                from mpi4py import MPI
            except ImportError as error:
                size = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE")
                if size not in (None, "1"):
                    raise ImportError(
                        f"this script was started on {size} MPI ranks but mpi4py is not "
                        "installed: pip install 'pynn_eventprop[mpi]' (or set "
                        "PYNN_EVENTPROP_MPI=0 to run every rank on its own)"
                    ) from error
            else:
                comm = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
        if comm is not None:  # the ranks on this machine share its cores
            share_cores(comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size())
        _WORLD = Communicator(comm)
    return _WORLD


@dataclass
class DistributedForward(Forward):
    """A global batch run forward: ``loss`` over all ranks' samples, ``n`` the global count,
    ``result`` and ``local`` this rank's engine run and :class:`~.step.Forward`, ``share`` the
    number of real samples of this rank (0 when it ran a silent stand-in)."""

    local: Forward | None = None
    share: int = 0
    active: np.ndarray | None = None  # which input neurons spike in the global batch


class DistributedStep(TrainingStep):
    """A :class:`~.step.TrainingStep` whose batches are global batches split over ranks.

    Parameters
    ----------
    communicator : Communicator
    engine :
        Built with ``communicator.local_batch(global batch size)`` samples.  Its weights are
        replaced by rank 0's, so that all ranks start alike.
    *args, **kwargs
        As for :class:`~.step.TrainingStep`.

    Notes
    -----
    A rank whose slice of a short last batch is empty runs one silent sample and weights
    its terms by zero, so that every rank takes part in every reduction.  Regularisers see
    the rank's own slice (e.g. ``ReviveDead`` calls a neuron dead when it is silent on the
    rank's samples); monitors (warnings) run on rank 0 only, on its slice.
    """

    def __init__(self, communicator: Communicator, engine, *args, **kwargs):
        super().__init__(engine, *args, **kwargs)
        self.communicator = communicator
        if not communicator.is_root:  # monitors only warn: once, on rank 0's slice
            self.monitors = ()
        for c in range(len(engine.network.projections)):
            engine.set_weights(c, communicator.broadcast(engine.get_weights(c)))

    def forward(self, times, labels, context: str = "") -> DistributedForward:
        """Run this rank's slice of the global batch; the loss gathered over all ranks."""
        times, labels = batch_inputs(times), np.asarray(labels)
        part = self.communicator.part(len(labels))
        share = part.stop - part.start
        if share:
            local = super().forward(times[part], labels[part], context)
        else:  # a silent stand-in sample (never on rank 0), weighted by zero
            local = super().forward(silent_inputs(times, 1), labels[:1], context)
        mine = local.loss
        pieces = self.communicator.allgather(
            (share, float(mine.loss) * share, *(getattr(mine, a)[:share] for a in _GATHERED))
        )
        n = sum(p[0] for p in pieces)
        gathered = {a: np.concatenate([p[2 + i] for p in pieces]) for i, a in enumerate(_GATHERED)}
        loss = dataclasses.replace(
            mine, loss=sum(p[1] for p in pieces) / n, readout_grads={}, **gathered
        )
        return DistributedForward(local.result, loss, n, local, share, active_inputs(times))

    def gradients(self, forward: DistributedForward, regularise=False, adjoints=False, delays=True):
        """The global batch's mean gradient, the same on every rank (see the module notes);
        with ``delays=False`` without delay gradients (``delays`` None: this rank's alone
        are not the batch's, and reducing them would double the data exchanged)."""
        grads = super().gradients(forward.local, regularise, adjoints, delays)
        rows = self._spiking_rows(forward.active)
        weight, total = float(forward.share), float(forward.n)
        reduced = {"weights": self._mean(grads.weights, rows, weight, total)}
        if not delays:
            reduced["delays"] = None
        elif grads.delays is not None:
            reduced["delays"] = self._mean(grads.delays, rows, weight, total)
        return dataclasses.replace(grads, **reduced)

    def _spiking_rows(self, active) -> list:
        """Per compiled projection, the rows (presynaptic neurons) whose gradients may be
        non-zero: for a projection from the input population, the inputs that spike in the
        global batch (``active``, known alike on every rank); None (all) for the others."""
        network = self.engine.network
        rows = [active if p.pre == self.inputs else None for p in network.projections]
        return [None if r is not None and r.all() else r for r in rows]

    def _mean(self, arrays, rows, weight, total) -> list:
        """:meth:`Communicator.weighted_mean` of the ``rows`` of each array that may be
        non-zero (all where None); the other rows are 0 on every rank and stay 0.  An input
        that is silent in the whole global batch adds no arrival, hence no gradient, on any
        rank: 42 % of MNIST's 784 input rows in a batch of 32, not sent."""
        sent = [a if r is None else a[r] for a, r in zip(arrays, rows, strict=True)]
        means = self.communicator.weighted_mean(sent, weight, total)
        out = []
        for a, r, mean in zip(arrays, rows, means, strict=True):
            if r is not None:
                full = np.zeros_like(mean, shape=np.shape(a))
                full[r] = mean
                mean = full
            out.append(mean)
        return out


def active_inputs(times) -> np.ndarray:
    """Which input neurons spike in a batch (a matrix of spike times, NaN = none, or a
    :class:`~pynn_eventprop.datasets.SpikeTrainBatch`), as a boolean array."""
    if isinstance(times, SpikeTrainBatch):
        return np.bincount(times.neurons, minlength=times.n_inputs) > 0
    return np.isfinite(times).any(axis=0)


_GATHERED = ("per_sample", "predictions", "correct", "readout")


def make_step(communicator: Communicator, engine, *args, **kwargs) -> TrainingStep:
    """A :class:`DistributedStep` over several ranks, a plain ``TrainingStep`` on one."""
    if communicator.size == 1:
        return TrainingStep(engine, *args, **kwargs)
    return DistributedStep(communicator, engine, *args, **kwargs)
