"""Mapping a compiled network onto SpiNNaker2 processing elements (PEs).

Each population is split into contiguous *slices* of neurons, one slice per PE, as large as the
PE's SRAM allows.  The whole network is then *replicated*: replica ``r`` is an independent copy
on its own PEs that processes ``local_batch`` samples of every batch concurrently
(batch-parallel training as in Bena et al. 2024, arXiv:2412.15021).  Replicas are packed whole
onto chips when a replica fits on one chip, otherwise PEs are filled in order.

SRAM budget of one PE holding ``n`` neurons of a population (bytes; ``B`` = local batch,
``K`` = ``max_spikes_per_neuron``; see ``docs/spinnaker2.md``)::

    fixed             code + runtime + receive buffer                  (hardware figures)
    parameters        9 float32 per neuron (b, a_E, a_I, p_E, p_I, c, theta, v_r, e)
    weights           per incoming connection: 4 (dense, one delay) or 8 (sparse: weight,
                      16-bit index, 8-bit delay, 8-bit receptor)
    neuron_state      4 words per neuron and sample (V, I_E, I_I, refractory count)
    input_ring        2 receptors x max incoming delay words per neuron and sample
    spike_schedule    sources only: K records of 8 bytes (step, phase) per neuron and sample
  training only:
    gradients         1 float32 per trainable incoming connection
    optimizer         optimizer_words float32 per trainable connection, update PE only
    adjoint_state     4 words per neuron and sample (lambda_V, lambda_I_E, lambda_I_I, dL/dt_end)
    spike_tape        K records of 12 bytes (time, dV/dt before and after) per neuron and sample:
                      what the exact backward pass needs of each spike; the arrivals it needs
                      are the presynaptic spikes of the spike log (times + delays)
    error_ring        (max outgoing delay + 1) words per neuron and sample (partial errors)
    spike_log         K records of 8 bytes per presynaptic neuron and sample, per distinct
                      presynaptic population whose spikes the backward pass needs
    loss_scratch      output populations: 1 word per neuron and sample (dL/dreadout of the
                      slice) + 1 word per sample (the label)
    loss_rows         output populations: LOSS_READOUTS words per neuron of the whole layer
                      and sample (the loss program holds whole rows of the readouts it reads)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..network import CompiledNetwork
from .hardware import Spinnaker2Hardware

WORD = 4  # bytes per float32 / int32
PARAMETER_WORDS = 9
STATE_WORDS = 4
ADJOINT_WORDS = 4
RECORD_BYTES = 8
TAPE_BYTES = 12
LOSS_READOUTS = 2  # readouts a loss reads at most (first spike time and v_max)


class MappingError(ValueError):
    """The network does not fit: carries the ``limit``, what was needed and the capacity."""

    def __init__(self, limit: str, need, capacity, detail: str = ""):
        self.limit, self.need, self.capacity = limit, need, capacity
        msg = f"does not fit SpiNNaker2: {limit}: need {need}, capacity {capacity}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class Slice:
    """Neurons ``start:stop`` of population ``population``; ``index`` counts slices."""

    population: int
    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Placement:
    """One PE: where it is and what it holds.

    Attributes
    ----------
    pe : int
        Index of this PE in :attr:`Mapping.placements` (the model's PE id).
    chip, core : int
        Chip index in the machine and core (PE) index on that chip; QPE is ``core // 4``.
    replica : int
    slice : Slice
    update : bool
        True on the PE that applies the weight update for its slice: replica 0's PE of a
        slice with trainable incoming weights.
    sram : dict of str -> int
        Bytes used, by item (see the module docstring).
    """

    pe: int
    chip: int
    core: int
    replica: int
    slice: Slice
    update: bool
    sram: dict

    @property
    def sram_used(self) -> int:
        return int(sum(self.sram.values()))


@dataclass(frozen=True)
class TrainingFlow:
    """Which parts of the network take part in the backward pass.

    Attributes
    ----------
    loss_populations : tuple of int
    backward : bool array (n_populations,)
        Populations whose adjoint is needed (they run the backward program).
    error : bool array (n_projections,)
        Projections along which error packets flow back (post -> pre).
    gradient : bool array (n_projections,)
        Trainable projections whose weight gradient is computed.
    """

    loss_populations: tuple[int, ...]
    backward: np.ndarray
    error: np.ndarray
    gradient: np.ndarray


def training_flow(network: CompiledNetwork, loss_populations=None, training=True) -> TrainingFlow:
    """Derive which populations run the backward program and where errors flow.

    A population's adjoint is needed if it is downstream-connected to a loss population and
    either a trainable projection ends on it or one of its presynaptic populations needs its
    adjoint.  Errors flow back along a projection when both ends need their adjoint.
    """
    pops, projs = network.populations, network.projections
    if loss_populations is None:
        loss_populations = [
            k for k, p in enumerate(pops) if not p.is_source and not network.outgoing(k)
        ]
    loss_populations = tuple(int(k) for k in loss_populations)
    for k in loss_populations:
        if not 0 <= k < len(pops) or pops[k].is_source:
            raise ValueError(
                f"loss_populations must index neuron populations (0..{len(pops) - 1}), got {k}"
            )
    n = len(pops)
    reaches = np.array([k in loss_populations for k in range(n)]) & training
    backward = np.zeros(n, bool)
    changed = True
    while changed:
        changed = False
        for p in projs:
            if reaches[p.post] and not pops[p.pre].is_source and not reaches[p.pre]:
                reaches[p.pre] = changed = True
        for p in projs:
            needs = reaches[p.post] and (p.trainable or backward[p.pre])
            if needs and not backward[p.post]:
                backward[p.post] = changed = True
    error = np.array([backward[p.pre] and backward[p.post] for p in projs], bool)
    gradient = np.array([p.trainable and backward[p.post] for p in projs], bool)
    return TrainingFlow(loss_populations, backward, error, gradient)


@dataclass
class _PopulationBudget:
    """SRAM budget terms of one population (see the module docstring).

    ``items`` maps a name to ``("per_neuron" | "fixed", bytes)``; connection-dependent terms
    use, per incoming projection, the cumulative connection counts over postsynaptic neurons.
    """

    items: dict
    conn_cumsum: list
    conn_bytes: list  # per incoming projection: (weight bytes, gradient bytes) per connection
    conn_optimizer_bytes: list  # per incoming projection: optimizer bytes per connection

    def breakdown(self, hw, start, stop, update) -> dict:
        """Bytes by item for neurons ``start:stop`` (``update``: the PE holds optimizer state)."""
        n = stop - start
        out = {"fixed": hw.fixed_pe_bytes}
        for name, (kind, value) in self.items.items():
            out[name] = value if kind == "fixed" else value * n
        w = g = o = 0
        for cum, (wb, gb), ob in zip(
            self.conn_cumsum, self.conn_bytes, self.conn_optimizer_bytes, strict=True
        ):
            c = int(cum[stop] - cum[start])
            w, g, o = w + c * wb, g + c * gb, o + (c * ob if update else 0)
        out["weights"], out["gradients"], out["optimizer"] = w, g, o
        return {k: int(v) for k, v in out.items()}

    def total(self, hw, start, stop, update=True) -> int:
        return sum(self.breakdown(hw, start, stop, update).values())


def _budget_items(network, steps, k, flow, n_steps, local_batch, max_spikes, training):
    """The slice-size-dependent and fixed SRAM items of population ``k`` (bytes).

    ``steps`` holds every projection's delays in ticks (see :func:`delay_ticks`).
    """
    pop = network.populations[k]
    B, K = local_batch, max_spikes
    incoming = network.incoming(k)
    items = {}
    if pop.is_source:
        items["spike_schedule"] = ("per_neuron", K * RECORD_BYTES * B)
        return items
    max_in = max((int(steps[i].max(initial=1)) for i in incoming), default=0)
    items["parameters"] = ("per_neuron", PARAMETER_WORDS * WORD)
    items["neuron_state"] = ("per_neuron", STATE_WORDS * WORD * B)
    items["input_ring"] = ("per_neuron", 2 * max_in * WORD * B)
    if training and flow.backward[k]:
        out_err = [i for i in network.outgoing(k) if flow.error[i]]
        max_out = max((int(steps[i].max(initial=1)) for i in out_err), default=0)
        items["adjoint_state"] = ("per_neuron", ADJOINT_WORDS * WORD * B)
        items["spike_tape"] = ("per_neuron", K * TAPE_BYTES * B)
        if out_err:
            items["error_ring"] = ("per_neuron", (max_out + 1) * WORD * B)
        logged = sorted(
            {network.projections[i].pre for i in incoming if flow.gradient[i] or flow.error[i]}
        )
        n_pre = sum(network.populations[q].size for q in logged)
        if n_pre:
            items["spike_log"] = ("fixed", n_pre * K * RECORD_BYTES * B)
    if training and k in flow.loss_populations:
        items["loss_scratch_neurons"] = ("per_neuron", WORD * B)
        items["loss_scratch_samples"] = ("fixed", WORD * B)
        items["loss_rows"] = ("fixed", LOSS_READOUTS * WORD * B * pop.size)
    return items


def _population_budget(
    network, steps, k, flow, n_steps, local_batch, max_spikes, training, optimizer_words
):
    items = _budget_items(network, steps, k, flow, n_steps, local_batch, max_spikes, training)
    cum, conn_bytes, opt_bytes = [], [], []
    for i in network.incoming(k):
        p = network.projections[i]
        dense = bool(p.mask.all()) and np.unique(steps[i][p.mask]).size <= 1
        per_conn = WORD if dense else 2 * WORD
        grad = WORD if (training and flow.gradient[i]) else 0
        cum.append(np.concatenate([[0], np.cumsum(p.mask.sum(axis=0))]))
        conn_bytes.append((per_conn, grad))
        opt_bytes.append(optimizer_words * WORD if grad else 0)
    return _PopulationBudget(items, cum, conn_bytes, opt_bytes)


def _slice_population(hw, budget, size, label):
    """Contiguous slices, as few as the SRAM allows, balanced in size when that still fits.

    Returns the neuron boundaries ``[0, stop_0, ..., size]``.  The budget is checked for the
    update PE (the largest: it also holds the optimizer state).
    """

    def fits(start, stop):
        return budget.total(hw, start, stop) <= hw.sram_per_pe

    cap = int(hw.max_neurons_per_pe)
    bounds, start = [0], 0
    while start < size:
        if not fits(start, start + 1):
            raise MappingError(
                "SRAM per PE",
                f"{budget.total(hw, start, start + 1)} bytes",
                f"{hw.sram_per_pe} bytes",
                f"one neuron (index {start}) of population {label!r}; budget "
                f"{budget.breakdown(hw, start, start + 1, True)}",
            )
        lo, hi = start + 1, min(start + cap, size)
        while lo < hi:  # largest stop in [lo, hi] that fits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(start, mid) else (lo, mid - 1)
        bounds.append(lo)
        start = lo
    n_slices = len(bounds) - 1
    balanced = np.linspace(0, size, n_slices + 1).round().astype(int)
    if all(fits(int(a), int(b)) for a, b in zip(balanced[:-1], balanced[1:], strict=True)):
        return [int(b) for b in balanced]
    return bounds


@dataclass
class Mapping:
    """Where every neuron lives.  Build with :func:`map_network`.

    Attributes
    ----------
    network : CompiledNetwork
    hardware : Spinnaker2Hardware
    n_steps, batch_size, replicas, local_batch : int
        Steps per sample; samples per batch; network copies; samples each copy runs
        concurrently (``ceil(batch_size / replicas)``).  Sample ``b`` runs on replica
        ``b // local_batch``.
    training : bool
    max_spikes_per_neuron, optimizer_words : int
    flow : TrainingFlow
    slices : list (per population) of list of Slice
    placements : list of Placement, indexed by PE id
    pe_table : int array (replicas, n_slices_total)
        PE id of global slice ``g`` in replica ``r``; ``slice_offset[k] + s`` is the global
        index of slice ``s`` of population ``k``.
    delay_steps : list of int arrays ``(n_pre, n_post)``
        Every projection's delays in ticks.
    """

    network: CompiledNetwork
    hardware: Spinnaker2Hardware
    n_steps: int
    batch_size: int
    replicas: int
    local_batch: int
    training: bool
    max_spikes_per_neuron: int
    optimizer_words: int
    flow: TrainingFlow
    slices: list
    placements: list
    pe_table: np.ndarray
    slice_offset: np.ndarray = field(repr=False)
    delay_steps: list = field(repr=False, default_factory=list)

    @property
    def n_pes(self) -> int:
        return len(self.placements)

    @property
    def chips_used(self) -> int:
        return len({pl.chip for pl in self.placements})

    @property
    def pes_per_replica(self) -> int:
        return self.pe_table.shape[1]

    def bounds(self, k: int) -> np.ndarray:
        """Neuron boundaries of population ``k``'s slices: ``[0, stop_0, stop_1, ..., size]``."""
        return np.array([0] + [s.stop for s in self.slices[k]])

    def pe(self, replica: int, population: int, slice_index: int) -> int:
        return int(self.pe_table[replica, self.slice_offset[population] + slice_index])

    def population_pes(self, population: int) -> np.ndarray:
        """PE ids ``(replicas, n_slices)`` of one population."""
        o = self.slice_offset[population]
        return self.pe_table[:, o : o + len(self.slices[population])]

    def sram_used(self) -> np.ndarray:
        return np.array([pl.sram_used for pl in self.placements])

    def connection_counts(self, projection: int, delay: int | None = None) -> np.ndarray:
        """Connections of each presynaptic neuron into each postsynaptic slice.

        Returns an int array ``(n_pre, n_post_slices)``; with ``delay``, only the connections
        of that delay (steps).
        """
        p = self.network.projections[projection]
        sel = p.mask if delay is None else p.mask & (self.delay_steps[projection] == delay)
        starts = self.bounds(p.post)[:-1]
        return np.add.reduceat(sel.astype(np.int64), starts, axis=1)

    def delays(self, projection: int) -> list[int]:
        """The distinct delays (steps) of a projection's connections."""
        p = self.network.projections[projection]
        return [int(d) for d in np.unique(self.delay_steps[projection][p.mask])]


def map_network(
    network: CompiledNetwork,
    n_steps: int,
    batch_size: int = 1,
    *,
    hardware: Spinnaker2Hardware | None = None,
    replicas: int | None = None,
    training: bool = True,
    loss_populations=None,
    max_spikes_per_neuron: int = 8,
    optimizer_words: int = 2,
    dt: float = 1.0,
) -> Mapping:
    """Split populations into per-PE slices, replicate for the batch and place on chips.

    Parameters
    ----------
    network : CompiledNetwork
    n_steps : int
        Time steps per sample (recorded in the mapping; the event-based budget does not depend
        on it).
    batch_size : int
    hardware : Spinnaker2Hardware, optional
    replicas : int, optional
        Network copies running samples in parallel; default ``batch_size`` (one sample each).
    training : bool
        Reserve the training memory (histories, adjoints, gradients) and plan the backward pass.
    loss_populations : sequence of int, optional
        Populations the loss reads; default: neuron populations without outgoing projections.
    max_spikes_per_neuron : int
        Capacity of the per-neuron spike records (source schedules, the backward pass's log of
        presynaptic spikes); runs that exceed it are flagged by the packet counter.
    optimizer_words : int
        float32 words of optimizer state per trainable weight on the update PE (Adam: 2).
    dt : float
        Time step (ms): one tick of the machine; delays (ms) become whole ticks.

    Raises
    ------
    MappingError
        When one neuron's budget exceeds a PE's SRAM, the PEs exceed the machine, or the key
        space is too small; the message names the limit, the need and the capacity.
    """
    hw = hardware if hardware is not None else Spinnaker2Hardware()
    for name, value, low in (
        ("n_steps", n_steps, 1),
        ("batch_size", batch_size, 1),
        ("max_spikes_per_neuron", max_spikes_per_neuron, 1),
        ("optimizer_words", optimizer_words, 0),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    replicas = batch_size if replicas is None else replicas
    if int(replicas) != replicas or not 1 <= replicas <= batch_size:
        raise ValueError(
            f"replicas must be an integer in 1..batch_size={batch_size}, got {replicas}"
        )
    local_batch = -(-batch_size // replicas)
    flow = training_flow(network, loss_populations, training)
    steps = delay_ticks(network, dt)

    slices, budgets = [], []
    for k, pop in enumerate(network.populations):
        budget = _population_budget(
            network,
            steps,
            k,
            flow,
            n_steps,
            local_batch,
            max_spikes_per_neuron,
            training,
            optimizer_words,
        )
        b = _slice_population(hw, budget, pop.size, pop.label)
        slices.append([Slice(k, s, b[s], b[s + 1]) for s in range(len(b) - 1)])
        budgets.append(budget)

    per_replica = sum(len(s) for s in slices)
    total = per_replica * replicas
    capacity = hw.max_chips * hw.pes_per_chip
    if total > capacity:
        raise MappingError(
            "PEs",
            total,
            capacity,
            f"{replicas} replicas x {per_replica} PEs; {hw.max_chips} chips of "
            f"{hw.pes_per_chip} PEs; use fewer replicas or more boards",
        )
    if per_replica <= hw.pes_per_chip:
        per_chip = hw.pes_per_chip // per_replica

        def where(r, i):
            return r // per_chip, (r % per_chip) * per_replica + i
    else:

        def where(r, i):
            return divmod(r * per_replica + i, hw.pes_per_chip)

    placements = []
    pe_table = np.zeros((replicas, per_replica), np.int64)
    offsets = np.cumsum([0] + [len(s) for s in slices])[:-1]
    learns = [any(flow.gradient[i] for i in network.incoming(k)) for k in range(len(slices))]
    for r in range(replicas):
        g = 0
        for per_pop, budget in zip(slices, budgets, strict=True):
            for sl in per_pop:
                chip, core = where(r, g)
                update = r == 0 and learns[sl.population]
                sram = budget.breakdown(hw, sl.start, sl.stop, update)
                pe_table[r, g] = len(placements)
                placements.append(Placement(len(placements), chip, core, r, sl, update, sram))
                g += 1
    return Mapping(
        network=network,
        hardware=hw,
        n_steps=int(n_steps),
        batch_size=int(batch_size),
        replicas=int(replicas),
        local_batch=int(local_batch),
        training=bool(training),
        max_spikes_per_neuron=int(max_spikes_per_neuron),
        optimizer_words=int(optimizer_words),
        flow=flow,
        slices=slices,
        placements=placements,
        pe_table=pe_table,
        slice_offset=offsets,
        delay_steps=steps,
    )


def delay_ticks(network: CompiledNetwork, dt: float) -> list[np.ndarray]:
    """Delays of every projection in whole ticks of ``dt`` ms (0 where unconnected)."""
    return [
        np.where(p.mask, np.rint(np.asarray(p.delays, float) / dt), 0).astype(np.int64)
        for p in network.projections
    ]
