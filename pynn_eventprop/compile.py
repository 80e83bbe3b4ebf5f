"""Compile the PyNN objects of a simulation into a :class:`~pynn_eventprop.network.CompiledNetwork`.

Every Population becomes one :class:`CompiledPopulation` (same position as in
``state.populations``) holding its parameters and initial values as ``(size,)`` float arrays in
PyNN units.  Every PyNN Projection becomes one or more :class:`CompiledProjection`:

* a Projection between Assemblies or PopulationViews is split by (presynaptic population,
  postsynaptic population), with indices mapped to positions inside those populations;
* the dense ``(n_pre, n_post)`` form holds one weight and one delay per neuron pair, so
  connections between the same pair (multapses, e.g. from ``with_replacement=True``) are merged:
  equal delays by summing their weights (the engine adds ``w a**phi`` per connection, so this is
  exact), different delays by putting each further delay into an extra compiled projection.
  Short-term plastic synapses (``TsodyksMarkramSynapse``) merge only when ``U``, ``tau_rec``
  and ``tau_facil`` are equal too (their efficacies then follow the same spikes identically).

Delays stay in ms; an engine on a time grid converts them to steps (and rejects delays that are
not whole multiples of its step).
"""

from __future__ import annotations

import numpy as np
from pyNN import common

from .network import SOURCE_MODEL, CompiledNetwork, CompiledPopulation, CompiledProjection


def compile_network(state) -> tuple[CompiledNetwork, list[list[int]]]:
    """Compile ``state.populations`` and ``state.projections``.

    Returns
    -------
    network : CompiledNetwork
    projection_map : list, per PyNN Projection (in ``state.projections`` order), of the indices
        of the compiled projections it became.
    """
    network = CompiledNetwork()
    for population in state.populations:
        network.populations.append(compile_population(population))
    projection_map = []
    for k, projection in enumerate(state.projections):
        compiled = compile_projection(projection, k)
        projection_map.append(
            list(range(len(network.projections), len(network.projections) + len(compiled)))
        )
        network.projections.extend(compiled)
    return network, projection_map


def compile_population(population) -> CompiledPopulation:
    """Parameters (PyNN names and units) and initial values of one Population."""
    celltype = population.celltype
    if celltype.is_spike_source:
        return CompiledPopulation(population.label, population.size, SOURCE_MODEL)
    params = {
        name: np.array(values, dtype=float).reshape(population.size)
        for name, values in population._parameters.items()
    }
    return CompiledPopulation(
        population.label,
        population.size,
        celltype.compiled_model,
        params=params,
        initial=population._initial_value_arrays(),
    )


def network_indices(neurons, indices) -> tuple[np.ndarray, np.ndarray]:
    """Map indices into a Population, PopulationView or Assembly to (population, neuron) pairs.

    Returns two int arrays of the same length as ``indices``: the position of the owning
    Population in ``state.populations`` and the neuron's index within it.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(neurons, common.Assembly):
        pop = np.empty_like(indices)
        local = np.empty_like(indices)
        bounds = np.cumsum([0] + [member.size for member in neurons.populations])
        which = np.searchsorted(bounds, indices, side="right") - 1
        for k, member in enumerate(neurons.populations):
            sel = which == k
            pop[sel], local[sel] = network_indices(member, indices[sel] - bounds[k])
        return pop, local
    if isinstance(neurons, common.PopulationView):
        return (
            np.full_like(indices, neurons.grandparent._index),
            np.asarray(neurons.index_in_grandparent(indices), dtype=np.int64),
        )
    return np.full_like(indices, neurons._index), indices


def compile_projection(projection, number: int) -> list[CompiledProjection]:
    """Dense compiled projections of one PyNN Projection (see the module docstring)."""
    pre_pop, pre = network_indices(projection.pre, projection._pre_idx)
    post_pop, post = network_indices(projection.post, projection._post_idx)
    delays = np.asarray(projection._delays, dtype=float) if len(projection) else np.zeros(0)
    weights = np.asarray(projection._weights, dtype=float)
    label = projection.label or f"projection{number}"
    trainable = bool(getattr(projection.synapse_type, "trainable", False))
    extra = {name: projection._attribute(name) for name in _short_term_names(projection)}
    compiled = []
    pairs = sorted(set(zip(pre_pop.tolist(), post_pop.tolist(), strict=True)))
    for a, b in pairs:
        sel = (pre_pop == a) & (post_pop == b)
        n_pre = projection_population_size(projection.pre, a)
        n_post = projection_population_size(projection.post, b)
        selected = {name: values[sel] for name, values in extra.items()}
        layers = _dense_layers(pre[sel], post[sel], weights[sel], delays[sel], n_pre, n_post,
                               selected)  # fmt: skip
        for k, (w, d, mask, stp) in enumerate(layers):
            suffix = "" if len(pairs) == 1 else f"[{a}->{b}]"
            suffix += "" if k == 0 else f"#delay{k}"
            compiled.append(
                CompiledProjection(
                    label=label + suffix,
                    pre=int(a),
                    post=int(b),
                    receptor=projection.receptor_type,
                    weights=w,
                    delays=d,
                    mask=mask,
                    trainable=trainable,
                    short_term=stp or None,
                )
            )
    return compiled


def projection_population_size(neurons, index: int) -> int:
    """Size of the Population at position ``index`` reached through ``neurons``."""
    if isinstance(neurons, common.Assembly):
        for member in neurons.populations:
            owner = member.grandparent if isinstance(member, common.PopulationView) else member
            if owner._index == index:
                return owner.size
    if isinstance(neurons, common.PopulationView):
        return neurons.grandparent.size
    return neurons.size


#: Per-connection parameters of short-term plastic synapse types, compiled densely.
SHORT_TERM_PARAMETERS = ("U", "tau_rec", "tau_facil")


def _short_term_names(projection) -> tuple:
    names = getattr(projection, "_extra", ())
    return SHORT_TERM_PARAMETERS if set(SHORT_TERM_PARAMETERS) <= set(names) else ()


def _dense_layers(i, j, w, d, n_pre, n_post, extra=None):
    """Merge connections into dense ``(weights, delays, mask, extra)`` layers (see module
    docstring); ``extra``: further per-connection parameters, which must match to merge."""
    if i.size == 0:
        return []
    extra = extra or {}
    # sum the weights of connections sharing (i, j, delay, extra); indices are exact as floats
    columns = [i.astype(float), j.astype(float), np.asarray(d, float)]
    key = np.stack(columns + [np.asarray(v, float) for v in extra.values()])
    unique, inverse = np.unique(key, axis=1, return_inverse=True)
    w_sum = np.bincount(inverse.ravel(), weights=w, minlength=unique.shape[1])
    ui, uj, ud = unique[0].astype(np.int64), unique[1].astype(np.int64), unique[2]
    # np.unique sorts by (i, j, d): the k-th distinct delay of a pair goes to layer k
    pair = ui * n_post + uj
    start = np.r_[0, np.flatnonzero(np.diff(pair)) + 1]
    run_length = np.diff(np.r_[start, pair.size])
    layer = np.arange(pair.size) - np.repeat(start, run_length)
    layers = []
    for k in range(int(layer.max()) + 1):
        sel = layer == k
        weights = np.zeros((n_pre, n_post))
        delays = np.zeros((n_pre, n_post))
        mask = np.zeros((n_pre, n_post), dtype=bool)
        weights[ui[sel], uj[sel]] = w_sum[sel]
        delays[ui[sel], uj[sel]] = ud[sel]
        mask[ui[sel], uj[sel]] = True
        dense = {}
        for m, name in enumerate(extra, start=3):
            dense[name] = np.zeros((n_pre, n_post))
            dense[name][ui[sel], uj[sel]] = unique[m][sel]
        layers.append((weights, delays, mask, dense))
    return layers
