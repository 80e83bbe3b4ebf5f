"""The Engine contract: what every simulation engine of the package offers, and nothing more.

An engine runs a :class:`~pynn_eventprop.network.CompiledNetwork` for a batch of independent
samples, differentiates a loss of what it ran with EventProp, and reports or restores its
dynamic state.  The PyNN layer (:mod:`pynn_eventprop.simulator`), the training core
(:mod:`pynn_eventprop.training`), the benchmarks and the validation code use engines through
this interface only; engines are built by :func:`pynn_eventprop.engine.platforms.make_engine`.

Units are PyNN's: times and delays in ms, voltages in mV, currents and current-based weights in
nA, conductances and conductance-based weights in uS.  Nothing in the contract assumes a time
grid: spikes in and out are exact times, losses read per-neuron *readouts* and an engine turns
readout gradients into weight gradients however it integrates.

Contract
--------
``run(n_steps, sources=None, currents=None, record=None, keep_for_backward=False, ...)``
    Advance ``n_steps`` steps of the engine's step ``dt`` from the current time ``t0``.
    ``sources``: {population index: :class:`SpikeTrains`} with absolute spike times (ms) in
    ``[t0, t0 + n_steps dt)``; ``currents``: {population index: array ``(n_steps, size)`` or
    ``(n_steps, batch, size)``} of nA, constant over each step ``[t0 + k dt, t0 + (k+1) dt)``;
    ``record``: {population index: names among :data:`RECORDABLE`}.  Returns a
    :class:`RunResult`.  With ``keep_for_backward`` the result carries the engine's tape.
    The keyword ``readouts_only`` (default ``()``) names populations (not recorded,
    projecting nowhere) of which only the readouts ``first_spike_time``, ``v_max`` and
    ``v_max_time`` (and their gradients) will be read: an engine may stop integrating a
    sample of them once these are final (every neuron has spiked); their later spikes are then
    missing from the result, and the engine refuses to run on or report its state until
    :meth:`reset`.  An engine may ignore it.
``readouts(result, pop, names)``
    Per-neuron summaries of a run made with ``keep_for_backward``, :data:`READOUTS`, each an
    array ``(batch, size)``; computed only for the names asked for, and cached in
    ``result.readouts``.
``backward(result, readout_grads, extra_grads=None, adjoints=False, delays=True,
source_times=True)``
    Exact gradients of a loss ``L`` of the readouts of a run made with ``keep_for_backward``
    from the engine's initial state: ``readout_grads`` is ``{pop: {readout name: dL/dreadout
    (batch, size)}}``; ``extra_grads`` has the same form and is added (regularisers whose
    gradient is not part of the loss).  With ``adjoints`` the result also carries the adjoint
    signals on the grid.  ``delays=False`` says that the delay gradients will not be read: an
    engine may then leave them out (``Gradients.delays`` None); ``source_times=False``, that
    ``dL/dt`` of the spike sources' spikes will not be read (an engine that reports spike-time
    gradients may leave those out).  Returns :class:`Gradients`.
``get_state()`` / ``set_state(state)``
    The dynamic state as an :class:`EngineState` in PyNN units; an engine built for a network
    that extends the one ``state`` came from (populations and projections appended) continues
    the simulation exactly from it.
``get_weights(k)`` / ``set_weights(k, w, take=False)``, ``get_delays(k)`` / ``set_delays(k, d)``
    Dense ``(n_pre, n_post)`` weights and delays (ms) of compiled projection ``k``; entries
    where the projection has no connection are 0 and ignored when set.  The engine owns copies:
    the compiled network it was given is never modified.  ``take=True`` hands ``w`` over (the
    caller never uses it again, as the training step does with the array ``get_weights`` gave
    it): an engine may then keep it without a copy.
``reset()``, ``set_initial(pop, name, values)``
    Back to ``t = 0`` with the initial values; change an initial value (PyNN units) for this and
    every later reset.
``check_trainable()``
    Raise ``ValueError`` naming the reason when :meth:`backward` does not support the network
    (e.g. recurrent loops, conductance-based neurons), before any training starts.

Attributes every engine has: ``network`` (the CompiledNetwork, read-only), ``dt`` (ms),
``batch`` (samples per run), ``dtype`` and ``n`` (steps run since the last reset).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numba
import numpy as np

#: Names a :meth:`Engine.readouts` call accepts (see :class:`Engine`).
READOUTS = (
    "first_spike_time",
    "v_max",
    "v_max_time",
    "v_mean_uniform",
    "v_mean_exponential",
)

#: Names ``run(record=...)`` accepts; which apply depends on the neuron model.
RECORDABLE = ("spikes", "v", "isyn_exc", "isyn_inh", "gsyn_exc", "gsyn_inh")


@dataclass(frozen=True)
class SpikeTrains:
    """Spikes of one population for every sample of a batch, in compressed rows (CSR).

    Sample ``b`` owns entries ``offsets[b]:offsets[b+1]`` of ``times`` (ms) and ``neurons``
    (indices into the population).  Several spikes per neuron are allowed, in any order.

    Attributes
    ----------
    times : float64 array ``(n,)``
    neurons : int64 array ``(n,)``
    offsets : int64 array ``(batch + 1,)``, non-decreasing, ``offsets[0] = 0``
    size : int
        Neurons in the population.
    """

    times: np.ndarray
    neurons: np.ndarray
    offsets: np.ndarray
    size: int

    def __post_init__(self):
        if self.times.shape != self.neurons.shape or self.offsets[-1] != self.times.size:
            raise ValueError(
                f"SpikeTrains needs times and neurons of equal length and offsets ending at it, "
                f"got {self.times.shape}, {self.neurons.shape}, offsets[-1]={self.offsets[-1]}"
            )

    @property
    def batch(self) -> int:
        return self.offsets.size - 1

    @property
    def sample_index(self) -> np.ndarray:
        """Sample of every entry, int64 ``(n,)``."""
        return np.repeat(np.arange(self.batch), np.diff(self.offsets))

    @classmethod
    def empty(cls, batch: int, size: int) -> SpikeTrains:
        return cls(np.zeros(0), np.zeros(0, np.int64), np.zeros(batch + 1, np.int64), size)

    @classmethod
    def from_arrays(cls, sample, neurons, times, batch: int, size: int) -> SpikeTrains:
        """Build from unsorted entries: the sample, neuron and time (ms) of every spike."""
        sample = np.asarray(sample, np.int64)
        order = np.argsort(sample, kind="stable")
        counts = np.bincount(sample, minlength=batch)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(
            np.asarray(times, np.float64)[order],
            np.asarray(neurons, np.int64)[order],
            offsets,
            int(size),
        )

    @classmethod
    def from_matrix(cls, times, batch: int | None = None) -> SpikeTrains:
        """One spike or none per neuron: ``times`` ``(n, size)`` in ms, NaN for none; ``batch``
        (>= n, default n) pads the batch with silent samples.

        Raises ``ValueError`` for infinite or negative times (the encoders' output is checked
        here, before it reaches an engine).
        """
        t = np.asarray(times, dtype=np.float64)
        if t.ndim != 2:
            raise ValueError(f"times must have shape (batch, size), got {t.shape}")
        batch = t.shape[0] if batch is None else int(batch)
        if batch < t.shape[0]:
            raise ValueError(f"batch must be >= the {t.shape[0]} samples given, got {batch}")
        entries, neurons, offsets = _matrix_entries(np.ascontiguousarray(t), batch)
        if offsets[0] < 0:
            raise ValueError("spike times must be finite and >= 0 ms (NaN for no spike)")
        return cls(entries, neurons, offsets, t.shape[1])

    @classmethod
    def from_lists(cls, per_sample) -> SpikeTrains:
        """From a list over samples of lists over neurons of 1-D arrays of times (ms)."""
        sample, neurons, times = [], [], []
        for b, per_neuron in enumerate(per_sample):
            for j, t in enumerate(per_neuron):
                t = np.atleast_1d(np.asarray(t, float))
                sample.append(np.full(t.size, b))
                neurons.append(np.full(t.size, j))
                times.append(t)
        size = len(per_sample[0]) if per_sample else 0
        if not times:
            return cls.empty(len(per_sample), size)
        return cls.from_arrays(
            np.concatenate(sample),
            np.concatenate(neurons),
            np.concatenate(times),
            len(per_sample),
            size,
        )

    def sample(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """``(neurons, times)`` of sample ``b``."""
        lo, hi = self.offsets[b], self.offsets[b + 1]
        return self.neurons[lo:hi], self.times[lo:hi]

    def per_neuron(self, b: int = 0) -> list[np.ndarray]:
        """Sorted spike times of every neuron of sample ``b``."""
        neurons, times = self.sample(b)
        order = np.lexsort((times, neurons))
        neurons, times = neurons[order], times[order]
        bounds = np.searchsorted(neurons, np.arange(self.size + 1))
        return [times[bounds[j] : bounds[j + 1]] for j in range(self.size)]


#: Input spikes have the same form as output spikes.
SpikeInput = SpikeTrains


@dataclass
class RunResult:
    """What :meth:`Engine.run` returns.

    Attributes
    ----------
    t_start : float
        Time (ms) at which the run started.
    n_steps : int
    spikes : mapping pop index -> :class:`SpikeTrains`
        Absolute spike times of every neuron population and spike source (engines may fill it
        lazily on access).
    signals : dict pop index -> dict name -> array ``(n_steps, batch, size)``
        Recorded variables at the grid points ``t_start + dt .. t_start + n_steps dt``.
    readouts : dict pop index -> dict name -> array ``(batch, size)``
        Filled by :meth:`Engine.readouts`.
    tape : object or None
        What :meth:`Engine.backward` needs, private to the engine; None unless the run was made
        with ``keep_for_backward``.
    """

    t_start: float
    n_steps: int
    spikes: Any
    signals: dict = field(default_factory=dict)
    readouts: dict = field(default_factory=dict)
    tape: Any = None


@dataclass
class Gradients:
    """What :meth:`Engine.backward` returns.

    Attributes
    ----------
    weights : list over compiled projections of arrays ``(n_pre, n_post)``
        ``dL/dw`` (per nA, or per uS), 0 where unconnected.
    delays : list of arrays ``(n_pre, n_post)`` or None
        ``dL/d(delay)`` (per ms) where the engine computes it.
    adjoints : dict pop index -> dict name -> array ``(n_steps + 1, batch, size)`` or None
        ``"lambda_v"`` (1/mV) and ``"lambda_i"`` (excitatory current, 1/nA) at the grid points
        ``t_start .. t_start + n_steps dt``, when asked for.
    """

    weights: list
    delays: list | None = None
    adjoints: dict | None = None


@dataclass
class PopulationState:
    """Dynamic state of one neuron population, arrays ``(batch, size)`` in PyNN units.

    Attributes
    ----------
    v : membrane potential (mV).
    synaptic : dict state name -> array: ``isyn_exc``/``isyn_inh`` (nA) or
        ``gsyn_exc``/``gsyn_inh`` (uS).
    refractory : refractory time left (ms).
    """

    v: np.ndarray
    synaptic: dict
    refractory: np.ndarray


@dataclass
class InFlight:
    """Spikes sent but not yet arrived at one target population (arrays ``(n,)``).

    ``arrival`` (absolute time, ms), ``sample`` (batch index), ``target`` (neuron),
    ``receptor`` (``"excitatory"`` or ``"inhibitory"``), ``weight`` (nA or uS, as sent).
    """

    arrival: np.ndarray
    sample: np.ndarray
    target: np.ndarray
    receptor: np.ndarray
    weight: np.ndarray


@dataclass
class EngineState:
    """Everything an engine needs to continue a simulation (PyNN units).

    Attributes
    ----------
    step : int
        Steps run since the last reset; the time is ``t = step * dt`` (ms).
    t : float
    populations : dict pop index -> :class:`PopulationState`
    in_flight : dict target pop index -> :class:`InFlight`
    """

    step: int
    t: float
    populations: dict
    in_flight: dict


@runtime_checkable
class Engine(Protocol):
    """A simulation engine (see the module docstring for the contract)."""

    network: Any
    dt: float
    batch: int
    dtype: Any
    n: int

    def run(
        self, n_steps, sources=None, currents=None, record=None, keep_for_backward=False,
        readouts_only=(),
    ) -> RunResult: ...  # fmt: skip

    def readouts(self, result: RunResult, pop: int, names) -> dict: ...

    def backward(
        self, result: RunResult, readout_grads: dict, extra_grads=None, adjoints=False,
        delays=True, source_times=True,
    ) -> Gradients: ...  # fmt: skip

    def get_state(self) -> EngineState: ...

    def set_state(self, state: EngineState) -> None: ...

    def get_weights(self, k: int) -> np.ndarray: ...

    def set_weights(self, k: int, weights, take: bool = False) -> None: ...

    def get_delays(self, k: int) -> np.ndarray: ...

    def set_delays(self, k: int, delays) -> None: ...

    def reset(self) -> None: ...

    def set_initial(self, pop: int, name: str, values) -> None: ...

    def check_trainable(self) -> None: ...


def check_readouts_only(network, populations, record=None) -> frozenset:
    """Validate ``run(readouts_only=...)``: indices of populations of ``network`` that are no
    spike source, project to no population and are not in ``record``.  Returns them as a
    frozenset."""
    chosen, n = frozenset(populations), len(network.populations)
    for i in chosen:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(f"readouts_only: population indices in [0, {n}), got {i!r}")
        pop = network.populations[i]
        if pop.is_source or any(p.pre == i for p in network.projections) or i in (record or {}):
            raise ValueError(
                f"readouts_only: population {i} ('{pop.label}') is a spike source, projects to "
                "other populations or is recorded, so more than its readouts is read"
            )
    return chosen


def check_readouts(names) -> tuple[str, ...]:
    """Validate readout names; return them as a tuple."""
    names = tuple(names)
    unknown = [n for n in names if n not in READOUTS]
    if unknown:
        raise ValueError(f"unknown readout(s) {unknown}; engines provide {list(READOUTS)}")
    return names


@numba.njit(cache=True)
def _matrix_entries(t, batch):
    """``(times, neurons, offsets)`` of the non-NaN entries of ``t`` ``(n, size)`` in
    row-major order, with ``batch - n`` silent samples appended; ``offsets[0] = -1`` when an
    entry is infinite or negative."""
    n, size = t.shape
    offsets = np.zeros(batch + 1, np.int64)
    for b in range(n):
        for j in range(size):
            x = t[b, j]
            if not math.isnan(x):
                if math.isinf(x) or x < 0.0:
                    offsets[0] = -1
                    return np.zeros(0), np.zeros(0, np.int64), offsets
                offsets[b + 1] += 1
    for b in range(batch):
        offsets[b + 1] += offsets[b]
    times, neurons = np.empty(offsets[batch]), np.empty(offsets[batch], np.int64)
    k = 0
    for b in range(n):
        for j in range(size):
            if not math.isnan(t[b, j]):
                times[k], neurons[k] = t[b, j], j
                k += 1
    return times, neurons, offsets
