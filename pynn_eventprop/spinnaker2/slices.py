"""What one PE computes with: the network of its neuron slice, on the reference engine's maths.

A PE holding neurons ``start:stop`` of population ``k`` sees a small network of its own:
every presynaptic population of ``k`` as a spike source (the spikes it receives as packets), and
its slice as the only neuron population, with the incoming projections cut to the slice's
columns (the weights and delays the mapping places in its SRAM).  The PE integrates it with
the exact engine (:class:`~pynn_eventprop.engine.exact.ExactSimulation`), so the model has one
definition of the maths; nothing of another PE's state enters.

:func:`slice_backward` is the reverse sweep of that network with the ``dL/dt`` of the slice's
own spikes given (summed from the error packets of the PEs downstream).  The exact engine has
no public entry point for this (its ``backward`` starts from ``dL/dt = 0`` for every spike and
sweeps the downstream populations itself), so this adapter repeats the dispatch of
:meth:`ExactSimulation.backward` for a single feed-forward population: the kernels are the
engine's, called with the engine's own arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.exact import ExactSimulation
from ..network import CompiledNetwork, CompiledPopulation, CompiledProjection

#: Empty buffers of the exact backward kernel: no grid sampling, no adjoint carried in.


@dataclass(frozen=True)
class SliceNetwork:
    """The network one PE integrates.

    Attributes
    ----------
    network : CompiledNetwork
        Sources first (one per presynaptic population, full size), the slice last.
    pre : list of int
        Global index of the presynaptic population behind each local source.
    projections : list of int
        Global index of each local projection (same order as the global incoming list).
    local : int
        Local index of the slice population (``len(pre)``).
    """

    network: CompiledNetwork
    pre: list
    projections: list
    local: int

    def source_of(self, global_pop: int) -> int:
        return self.pre.index(global_pop)


def _slice_population(pop: CompiledPopulation, start: int, stop: int) -> CompiledPopulation:
    def cut(values):
        return {k: np.broadcast_to(np.asarray(v), (pop.size,))[start:stop].copy()
                for k, v in values.items()}  # fmt: skip

    return CompiledPopulation(
        f"{pop.label}[{start}:{stop}]", stop - start, pop.model, cut(pop.params), cut(pop.initial)
    )


def slice_network(network: CompiledNetwork, k: int, start: int, stop: int) -> SliceNetwork:
    """The network of the PE holding neurons ``start:stop`` of population ``k``."""
    incoming = network.incoming(k)
    pre = list(dict.fromkeys(network.projections[i].pre for i in incoming))
    pops = [
        CompiledPopulation(network.populations[q].label, network.populations[q].size,
                           "spike_source")
        for q in pre
    ]  # fmt: skip
    pops.append(_slice_population(network.populations[k], start, stop))
    cols = slice(start, stop)
    projs = [
        CompiledProjection(
            p.label, pre.index(p.pre), len(pre), p.receptor, np.array(p.weights[:, cols]),
            np.array(np.asarray(p.delays)[:, cols]), np.array(p.mask[:, cols]), p.trainable,
        )
        for p in (network.projections[i] for i in incoming)
    ]  # fmt: skip
    return SliceNetwork(CompiledNetwork(pops, projs), pre, incoming, len(pre))


def slice_simulation(sn: SliceNetwork, dt: float, batch: int, dtype, readouts) -> ExactSimulation:
    """The exact engine on a slice network; ``readouts``: whether the slice computes the
    voltage readouts (as the reference engine does for the population it belongs to)."""
    return ExactSimulation(
        sn.network, dt, batch, dtype, readout_populations=[sn.local] if readouts else []
    )


def slice_backward(sim: ExactSimulation, result, local: int, readout_grads, spike_grads):
    """Reverse sweep of a slice network with ``dL/dt`` of the slice's own spikes given.

    Parameters
    ----------
    sim : the PE's :class:`ExactSimulation` (its weights, its tape)
    result : RunResult of ``sim`` kept for backward
    local : local index of the slice population
    readout_grads : list of ``{local: {readout name: (batch, size)}}`` (summed)
    spike_grads : float64 ``(n_spikes,)``: ``dL/dt`` of the slice's spikes, in the order of
        ``result.spikes[local]`` (the downstream terms, from error packets).

    Returns
    -------
    weights : list over local projections of ``(n_pre, slice size)`` arrays
    source_grads : ``{local source: dL/dt of every spike it received, in SpikeTrains order}``
    """
    summed = {}  # the readout gradients of every source, non-finite entries (silent) as 0
    for grads in readout_grads:
        for name, value in (grads or {}).get(local, {}).items():
            summed[name] = summed.get(name, 0.0) + np.where(np.isfinite(value), value, 0.0)
    out = sim.backward(result, {local: summed}, spike_grads={local: spike_grads}, delays=False)
    sources = {i: out.spike_times[i] for i in result.spikes if i != local}
    return out.weights, sources
