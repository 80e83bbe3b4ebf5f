"""Build PyNN populations and projections on this backend from a NIR graph.

Supported nodes: ``Input`` (a ``SpikeSourceArray`` population without spikes; set
``spike_times`` before running), ``CubaLIF`` (an ``IF_curr_exp`` population, parameters as in
:mod:`pynn_eventprop.interop.nir_mapping`), ``Linear``, ``Affine`` with a zero bias,
``Delay`` and ``Output``.  Every other node type (``LIF``, ``IF``, ``LI``,
``CubaLI``, ``I``, ``Threshold``, ``Scale``, ``Conv1d``/``Conv2d``, ``Flatten``, pooling,
nested ``NIRGraph``) is refused with an error naming the node and its type.

A connection is a path from a source (``Input`` or ``CubaLIF``) through ``Delay`` nodes
and at most one ``Linear``/``Affine`` node to a ``CubaLIF``; without a weight
node the path connects neuron ``k`` to neuron ``k`` with weight 1.  Its delay is the sum of
the ``Delay`` nodes on it (a ``Delay`` before the weights has one value per presynaptic
neuron, after them one per postsynaptic neuron).  A path without ``Delay`` nodes has delay
zero in NIR, which no PyNN connection can have: it gets the ``delay`` of its weight node's
metadata (written by :func:`~pynn_eventprop.interop.export_nir`) or the smallest delay of
the session (``min_delay``, by default the time step).  Paths between the same two
populations with the same receptor become one ``Projection`` (``FromListConnector``,
``StaticSynapse``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyNN.connectors import FromListConnector

from .. import simulator
from ..populations import Population
from ..projections import Projection
from ..standardmodels.cells import IF_curr_exp, SpikeSourceArray
from ..standardmodels.delays import default_delay
from ..standardmodels.synapses import StaticSynapse
from .nir_mapping import (
    FIELDS,
    NIRConversionError,
    if_curr_exp_parameters,
    input_scale,
    require_nir,
)


@dataclass
class ImportedNetwork:
    """What :func:`import_nir` built.

    Attributes
    ----------
    populations : dict of node name -> Population
    projections : list of Projection
    inputs : list of str
        Names of the ``Input`` nodes (``SpikeSourceArray`` populations).
    outputs : dict of Output node name -> name of the population it reads
    """

    populations: dict = field(default_factory=dict)
    projections: list = field(default_factory=list)
    inputs: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)


@dataclass
class _Path:
    """One route from a source population to a target, with what it passed through."""

    source: str
    size: int
    weight_node: str | None = None
    weight: np.ndarray | None = None
    pre_delay: np.ndarray | None = None
    post_delay: np.ndarray | None = None
    delay_nodes: tuple = ()
    visited: tuple = ()


def import_nir(graph) -> ImportedNetwork:
    """Create the populations and projections of a NIR graph in the current session.

    Parameters
    ----------
    graph : nir.NIRGraph, str or Path
        The graph, or an HDF5 file written by ``nir.write``.

    Returns
    -------
    ImportedNetwork

    Raises
    ------
    NIRConversionError
        Before anything is created, for an unsupported node (named with its type), a
        non-zero ``Affine`` bias, shapes that do not match along an edge, an edge to a node
        that does not exist, invalid ``CubaLIF`` parameters, or a delay below ``min_delay``
        (by default the time step), each naming the node and the value.
    """
    nir = require_nir()
    if isinstance(graph, str | Path):
        graph = nir.read(graph)
    _check_nodes(nir, graph)
    paths, outputs = _trace(nir, graph)
    lif = {n: node for n, node in graph.nodes.items() if isinstance(node, nir.CubaLIF)}
    params = {n: _neuron_parameters(n, node) for n, node in lif.items()}
    scales = {n: input_scale(node, n) for n, node in lif.items()}
    connections = [_connections(graph, path, target, scales[target]) for path, target in paths]
    result = ImportedNetwork(outputs=outputs)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            size = int(np.prod(_shape(node.input_type["input"])))
            result.populations[name] = Population(size, SpikeSourceArray(), label=name)
            result.inputs.append(name)
        elif name in lif:
            result.populations[name] = _lif_population(name, node, params[name])
    for (source, target, receptor, label), rows in _group(graph, paths, connections).items():
        result.projections.append(
            Projection(
                result.populations[source],
                result.populations[target],
                _from_list(rows),
                StaticSynapse(),
                receptor_type=receptor,
                label=label,
            )
        )
    return result


# --- checks ----------------------------------------------------------------------------------
def _check_nodes(nir, graph) -> None:
    """Refuse unsupported node types, non-zero biases, bad shapes and dangling edges."""
    supported = (nir.Input, nir.Output, nir.CubaLIF, nir.Linear, nir.Affine, nir.Delay)
    for name, node in graph.nodes.items():
        if not isinstance(node, supported):
            raise NIRConversionError(
                f"node '{name}': NIR type {type(node).__name__} is not supported; supported: "
                f"{', '.join(t.__name__ for t in supported)}"
            )
        if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
            bias = np.asarray(node.bias, float).ravel()
            raise NIRConversionError(
                f"Affine node '{name}': bias {float(bias[bias != 0][0])!r} is not supported "
                "(PyNN projections have no bias; only a zero bias is accepted)"
            )
        _check_shape(nir, name, node)
    for edge in graph.edges:
        for end in edge:
            if end not in graph.nodes:
                raise NIRConversionError(f"edge {tuple(edge)!r}: no node named '{end}'")


def _check_shape(nir, name: str, node) -> None:
    if isinstance(node, nir.Linear | nir.Affine):
        if np.ndim(node.weight) != 2:
            raise NIRConversionError(
                f"{type(node).__name__} node '{name}': weight must be 2-D (n_out, n_in), got "
                f"shape {np.shape(node.weight)}"
            )
    elif isinstance(node, nir.CubaLIF):
        shapes = {key: np.shape(getattr(node, key)) for key in FIELDS}
        if len(set(shapes.values())) != 1 or len(shapes["tau_mem"]) != 1:
            raise NIRConversionError(
                f"CubaLIF node '{name}': parameters must be 1-D arrays of one shape, got {shapes}"
            )
    elif isinstance(node, nir.Delay) and np.ndim(node.delay) != 1:
        raise NIRConversionError(
            f"Delay node '{name}': delay must be a 1-D array, got shape {np.shape(node.delay)}"
        )


def _shape(value) -> tuple:
    return tuple(int(x) for x in np.atleast_1d(np.asarray(value)))


def _size(nir, name: str, node) -> int:
    """Number of neurons of a source or target node."""
    if isinstance(node, nir.CubaLIF):
        return int(np.size(node.tau_mem))
    shape = _shape(node.input_type["input"])
    if len(shape) != 1:
        raise NIRConversionError(
            f"{type(node).__name__} node '{name}': shape must be 1-D (neurons), got {shape}"
        )
    return shape[0]


# --- tracing paths ---------------------------------------------------------------------------
def _trace(nir, graph):
    """All source-to-target paths, and the populations the Output nodes read."""
    successors: dict[str, list] = {name: [] for name in graph.nodes}
    for a, b in graph.edges:
        successors[a].append(b)
    paths, outputs = [], {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input | nir.CubaLIF):
            start = _Path(source=name, size=_size(nir, name, node), visited=(name,))
            for nxt in successors[name]:
                _walk(nir, graph, successors, start, nxt, paths, outputs)
    return paths, outputs


def _walk(nir, graph, successors, path: _Path, name: str, paths, outputs) -> None:
    node = graph.nodes[name]
    if isinstance(node, nir.CubaLIF):
        _check_size(path, name, _size(nir, name, node))
        paths.append((path, name))
        return
    if isinstance(node, nir.Output):
        _check_size(path, name, _size(nir, name, node))
        if path.weight_node is not None or path.delay_nodes:
            raise NIRConversionError(
                f"Output node '{name}' reads '{path.source}' through "
                f"'{path.weight_node or path.delay_nodes[0]}'; only populations can be outputs"
            )
        outputs[name] = path.source
        return
    if name in path.visited:
        raise NIRConversionError(
            f"node '{name}': cycle without a neuron node ({' -> '.join(path.visited)} -> {name})"
        )
    path = _step(nir, path, name, node)
    for nxt in successors[name]:
        _walk(nir, graph, successors, path, nxt, paths, outputs)


def _step(nir, path: _Path, name: str, node) -> _Path:
    """The path extended by one Delay or weight node."""
    visited = (*path.visited, name)
    if isinstance(node, nir.Delay):
        delay = np.asarray(node.delay, float)
        _check_size(path, name, delay.size)
        before = path.weight_node is None
        key = "pre_delay" if before else "post_delay"
        total = delay if getattr(path, key) is None else getattr(path, key) + delay
        return _replace(
            path, visited=visited, delay_nodes=(*path.delay_nodes, name), **{key: total}
        )
    if path.weight_node is not None:
        raise NIRConversionError(
            f"weight nodes '{path.weight_node}' and '{name}' in series after '{path.source}' "
            "are not supported (one Linear/Affine per connection)"
        )
    weight = np.asarray(node.weight, float)
    _check_size(path, name, weight.shape[1])
    return _replace(path, visited=visited, weight_node=name, weight=weight, size=weight.shape[0])


def _replace(path: _Path, **changes) -> _Path:
    return _Path(**{**path.__dict__, **changes})


def _check_size(path: _Path, name: str, size: int) -> None:
    if size != path.size:
        via = path.visited[-1]
        raise NIRConversionError(
            f"shape mismatch on edge '{via}' -> '{name}': '{via}' gives {path.size} values, "
            f"'{name}' takes {size}"
        )


# --- building --------------------------------------------------------------------------------
def _neuron_parameters(name: str, node) -> dict:
    params = if_curr_exp_parameters(node, name, cm_hint=_metadata(node, "cm"))
    refrac = _metadata(node, "tau_refrac")
    if refrac is not None:
        params["tau_refrac"] = np.broadcast_to(np.asarray(refrac, float), params["cm"].shape)
    return params


def _lif_population(name: str, node, params: dict):
    values = {key: _scalar_or_array(v) for key, v in params.items()}
    population = Population(params["cm"].size, IF_curr_exp(**values), label=name)
    initial = {"v": _metadata(node, "v_init", params["v_rest"])}
    for state in ("isyn_exc", "isyn_inh"):
        if _metadata(node, f"{state}_init") is not None:
            initial[state] = _metadata(node, f"{state}_init")
    population.initialize(**{k: _scalar_or_array(v) for k, v in initial.items()})
    return population


def _scalar_or_array(values):
    values = np.asarray(values, float)
    return float(values.ravel()[0]) if np.all(values == values.ravel()[0]) else values


def _connections(graph, path: _Path, target: str, scale: np.ndarray) -> np.ndarray:
    """Rows ``(i, j, weight nA, delay ms)`` of one path, delays checked."""
    n_post = scale.size
    weight = np.eye(n_post) if path.weight is None else path.weight
    j, i = np.nonzero(weight)
    w = weight[j, i] * scale[j]
    low = default_delay(simulator.state)
    if path.delay_nodes:
        pre = np.zeros(path.weight.shape[1] if path.weight is not None else n_post)
        pre = pre if path.pre_delay is None else path.pre_delay
        post = np.zeros(n_post) if path.post_delay is None else path.post_delay
        d = pre[i] + post[j]
        bad = d < low - 1e-12
        if bad.any():
            raise NIRConversionError(
                f"Delay node{'s' if len(path.delay_nodes) > 1 else ''} "
                f"{', '.join(repr(n) for n in path.delay_nodes)} between '{path.source}' and "
                f"'{target}': delay {float(d[bad][0])!r} ms is below the time step / min_delay "
                f"{low!r} ms"
            )
    else:
        node = None if path.weight_node is None else graph.nodes[path.weight_node]
        hint = None if node is None else _metadata(node, "delay")
        if hint is not None and float(hint) < low - 1e-12:
            raise NIRConversionError(
                f"{type(node).__name__} node '{path.weight_node}': delay {float(hint)!r} ms "
                f"(metadata) is below the time step / min_delay {low!r} ms"
            )
        d = np.full(i.shape, low if hint is None else float(hint))
    return np.column_stack([i, j, w, d]).astype(float)


def _group(graph, paths, connections) -> dict:
    """Connection rows per (source, target, receptor, label), in the order paths were found.

    Receptor and label come from the weight node's metadata (``receptor_type``,
    ``pynn_projection``) when present, else ``"excitatory"`` and ``"<source>-<target>"``; with
    one synaptic time constant per CubaLIF the receptor changes nothing but the name of the
    state variable the current is recorded in.
    """
    groups: dict = {}
    for (path, target), rows in zip(paths, connections, strict=True):
        receptor, label = "excitatory", f"{path.source}-{target}"
        if path.weight_node is not None:
            node = graph.nodes[path.weight_node]
            receptor = _metadata(node, "receptor_type", receptor)
            receptor = receptor if receptor in ("excitatory", "inhibitory") else "excitatory"
            label = _metadata(node, "pynn_projection", label)
        groups.setdefault((path.source, target, receptor, label), []).append(rows)
    return {key: np.concatenate(rows) for key, rows in groups.items()}


def _from_list(rows: np.ndarray):
    return FromListConnector(rows, column_names=["weight", "delay"])


def _metadata(node, key: str, default=None):
    """A metadata entry, with byte strings (as HDF5 returns them) decoded."""
    value = (node.metadata or {}).get(key, default)
    if isinstance(value, bytes):
        return value.decode("utf8")
    return value
