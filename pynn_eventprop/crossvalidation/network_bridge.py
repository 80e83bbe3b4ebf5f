"""Conversion between pynn_eventprop's CompiledNetwork and brian2_reference's NetworkSpec.

:func:`network_spec` describes a network as the PyNN layer compiles it
(:class:`pynn_eventprop.network.CompiledNetwork`, plain arrays in PyNN units) for the Brian2
reference: the spike source becomes ``"input"``, the ``IF_curr_exp`` populations become layers
in an order where every projection goes forward (the output last), and every compiled
projection becomes one :class:`~brian2_reference.ProjectionSpec` per delay.  Networks the
reference cannot express (recurrent loops, ``IF_cond_exp``, several spike sources, nonzero
initial synaptic currents) are rejected with a message naming the population or projection.
:func:`compiled_network` goes the other way (for random networks).  Only the data classes of
``pynn_eventprop.network`` are used, never the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brian2_reference.description import (
    IF_CURR_EXP_DEFAULTS,
    INPUT,
    LayerSpec,
    NetworkSpec,
    ProjectionSpec,
)

from ..network import CompiledNetwork, CompiledPopulation, CompiledProjection


@dataclass(frozen=True)
class Correspondence:
    """How a CompiledNetwork maps onto the NetworkSpec built from it.

    Attributes
    ----------
    input_index : int
        Population index of the spike source (``"input"`` in the spec).
    layer_indices : tuple of int
        Population index of ``spec.layers[k]``.
    projections : tuple of (int, int)
        For spec projection ``k``: the compiled projection and the delay (steps) it holds.
    labels : tuple of str
        Label of spec projection ``k`` (the compiled label, plus the delay if it was split).
    """

    input_index: int
    layer_indices: tuple
    projections: tuple
    labels: tuple


def _layer_names(network, indices) -> dict[int, str]:
    """Population labels as spec names, made unique and different from ``"input"``."""
    names, used = {}, {INPUT}
    for i in indices:
        name = network.populations[i].label or f"population{i}"
        if name in used:
            name = f"{name}[{i}]"
        names[i] = name
        used.add(name)
    return names


def resolve_input(network, input_index=None) -> int:
    """Index of the input population: ``input_index`` checked, or the only spike source with
    outgoing projections."""
    pops = network.populations
    used = [i for i, p in enumerate(pops) if p.is_source and network.outgoing(i)]
    if input_index is None:
        if len(used) != 1:
            raise ValueError(
                "brian2_reference takes exactly one input (spike source) population with "
                f"projections; this network has {len(used)}: {[pops[i].label for i in used]}"
            )
        return used[0]
    if not pops[input_index].is_source:
        raise ValueError(
            f"input population '{pops[input_index].label}' must be a spike source, "
            f"got {pops[input_index].model}"
        )
    others = [pops[i].label for i in used if i != input_index]
    if others:
        raise ValueError(
            f"brian2_reference takes one input population; spike sources {others} also "
            "project into the network"
        )
    return input_index


def _on_loop(node, edges) -> bool:
    """Whether ``node`` can reach itself along ``edges``."""
    seen, todo = set(), [b for a, b in edges if a == node]
    while todo:
        current = todo.pop()
        if current == node:
            return True
        if current not in seen:
            seen.add(current)
            todo += [b for a, b in edges if a == current]
    return False


def _feed_forward_order(network, neurons, output) -> list[int]:
    """Neuron populations in an order where every projection goes forward; output last."""
    edges = [(p.pre, p.post) for p in network.projections if p.pre in neurons]
    remaining, order = list(neurons), []
    while remaining:
        ready = [i for i in remaining if not any(b == i and a in remaining for a, b in edges)]
        if not ready:
            labels = [network.populations[i].label for i in remaining if _on_loop(i, edges)]
            raise ValueError(
                "brian2_reference and the adjoint support feed-forward networks only; "
                f"populations {labels} form a recurrent loop"
            )
        pick = next((i for i in ready if i != output), ready[0])
        order.append(pick)
        remaining.remove(pick)
    return order


def _layer_spec(pop, name) -> LayerSpec:
    for state in ("isyn_exc", "isyn_inh"):
        if np.any(np.asarray(pop.initial.get(state, 0.0)) != 0):
            raise ValueError(
                f"population '{pop.label}': brian2_reference starts synaptic currents at 0, "
                f"got initial {state}={pop.initial[state]!r}"
            )
    params = {k: pop.params[k] for k in IF_CURR_EXP_DEFAULTS}
    return LayerSpec(name, pop.size, **params, v_init=pop.initial["v"])


def network_spec(
    network, dt: float, n_steps: int, input_index=None, output_index=None
) -> tuple[NetworkSpec, Correspondence]:
    """Describe a CompiledNetwork for ``brian2_reference``.

    Parameters
    ----------
    network : pynn_eventprop.network.CompiledNetwork
        Feed-forward, ``IF_curr_exp`` neurons, one spike source projecting into it.
    dt : float
        Time step (ms).
    n_steps : int
        Simulated steps ``N``.
    input_index, output_index : int, optional
        Population indices of the input (default: the only spike source with projections) and
        of the output layer on which the loss is evaluated (default: the only neuron population
        without outgoing projections); the output must not project anywhere.

    Returns
    -------
    spec : NetworkSpec
        Layers named by the population labels (made unique), the source named ``"input"``, one
        ProjectionSpec per (compiled projection, delay).
    correspondence : Correspondence
    """
    pops = network.populations
    input_index = resolve_input(network, input_index)
    neurons = [i for i, p in enumerate(pops) if not p.is_source]
    for i in neurons:
        if pops[i].model != "IF_curr_exp":
            raise ValueError(
                f"brian2_reference simulates IF_curr_exp populations only; population "
                f"'{pops[i].label}' is {pops[i].model}"
            )
    if output_index is None:
        sinks = [i for i in neurons if not network.outgoing(i)]
        if len(sinks) != 1:
            raise ValueError(
                "cannot tell the output population: neuron populations without outgoing "
                f"projections are {[pops[i].label for i in sinks]}; name it (output_index)"
            )
        output_index = sinks[0]
    elif output_index not in neurons or network.outgoing(output_index):
        raise ValueError(
            f"the output population '{pops[output_index].label}' must be an IF_curr_exp "
            "population without outgoing projections"
        )
    order = _feed_forward_order(network, neurons, output_index)
    names = _layer_names(network, order) | {input_index: INPUT}
    layers = [_layer_spec(pops[i], names[i]) for i in order]
    projections, origin, labels = [], [], []
    for k, p in enumerate(network.projections):
        if p.pre != input_index and p.pre not in names:
            raise ValueError(
                f"projection '{p.label}' comes from spike source '{pops[p.pre].label}', which is "
                "not the input population"
            )
        steps = np.rint(np.asarray(p.delays, float) / dt).astype(np.int64)
        delays = np.unique(steps[p.mask])
        for d in delays:
            sel = p.mask & (steps == d)
            w = np.where(sel, p.weights, 0.0)
            projections.append(
                ProjectionSpec(names[p.pre], names[p.post], w, p.receptor, int(d), sel)
            )
            origin.append((k, int(d)))
            labels.append(p.label if len(delays) == 1 else f"{p.label} (delay {int(d)})")
    spec = NetworkSpec(pops[input_index].size, layers, projections, dt, n_steps)
    return spec, Correspondence(input_index, tuple(order), tuple(origin), tuple(labels))


def compiled_network(spec: NetworkSpec, merge_delays: bool = False) -> CompiledNetwork:
    """The CompiledNetwork of a NetworkSpec: population 0 is the input, then the layers.

    Delays become ms (``delay * dt``).  With ``merge_delays``, projections between the same
    layers onto the same receptor (each with its own delay and disjoint connections) become one
    compiled projection whose connections have different delays.
    """
    populations = [CompiledPopulation(INPUT, spec.n_inputs, "spike_source")]
    for layer in spec.layers:
        params = {k: layer.param(k) for k in IF_CURR_EXP_DEFAULTS}
        zeros = np.zeros(layer.size)
        initial = {"v": layer.param("v_init"), "isyn_exc": zeros, "isyn_inh": zeros.copy()}
        populations.append(
            CompiledPopulation(layer.name, layer.size, "IF_curr_exp", params, initial)
        )
    index = {INPUT: 0} | {layer.name: k + 1 for k, layer in enumerate(spec.layers)}
    projections = [
        CompiledProjection(
            f"{p.pre}->{p.post} {p.receptor} d{p.delay} #{k}",
            index[p.pre],
            index[p.post],
            p.receptor,
            np.where(p.mask, p.weights, 0.0),
            np.where(p.mask, p.delay * spec.dt, 0.0),
            p.mask.copy(),
            True,
        )
        for k, p in enumerate(spec.projections)
    ]
    if merge_delays:
        projections = _merge_delays(projections)
    return CompiledNetwork(populations, projections)


def _merge_delays(projections: list) -> list:
    """One projection per (pre, post, receptor): connections keep their own delays."""
    merged = {}
    for p in projections:
        key = (p.pre, p.post, p.receptor)
        if key not in merged:
            label = f"{p.label.split(' d')[0]} mixed delays"
            merged[key] = CompiledProjection(
                label,
                p.pre,
                p.post,
                p.receptor,
                p.weights.copy(),
                p.delays.copy(),
                p.mask.copy(),
                True,
            )
            continue
        m = merged[key]
        if np.any(m.mask & p.mask):
            raise ValueError(f"projections onto {key} share connections: cannot merge them")
        m.weights[p.mask] = p.weights[p.mask]
        m.delays[p.mask] = p.delays[p.mask]
        m.mask[p.mask] = True
    return list(merged.values())
