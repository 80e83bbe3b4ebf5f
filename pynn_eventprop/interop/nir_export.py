"""Export the PyNN network of the current simulator session as a NIR graph.

Nodes and edges
---------------
* a spike source population (``SpikeSourceArray``, ``SpikeSourcePoisson``) -> ``nir.Input``
  of shape ``(size,)``; its spike times or rates are data, not part of the graph;
* an ``IF_curr_exp`` population -> ``nir.CubaLIF`` (parameters and units:
  :mod:`pynn_eventprop.interop.nir_mapping`);
* a Projection -> ``nir.Linear`` nodes with weights ``(n_post, n_pre)`` in nA, read through
  PyNN (``Projection.get(["weight", "delay"], format="list")``), so a trained network must
  have its weights written back (the ``Trainer`` does so at the end of ``fit()``);
* delays: a projection whose delays are all equal gets no delay node by default; its delay
  (ms) goes into the ``Linear`` node's metadata (``delay``), which :func:`import_nir` reads
  back (``uniform_delays="node"`` writes a ``nir.Delay`` node instead).  Other projections get
  ``nir.Delay`` nodes in front of their ``Linear`` nodes: one node with a delay per
  presynaptic neuron when the delays depend on the presynaptic neuron only, otherwise one
  ``Delay -> Linear`` pair per distinct delay value;
* populations listed in ``outputs`` (default: the LIF populations without outgoing
  projections) get a ``nir.Output`` node named ``<population>_out``.

Node names are the PyNN labels with every character other than letters, digits and ``_``
replaced by ``_`` (made unique); projection nodes are ``w<k>_<pre>_<post>`` and
``delay<k>_<pre>_<post>`` for the k-th Projection.
"""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np

from .. import simulator
from ..compile import compile_population, network_indices
from .nir_mapping import UNITS, NIRConversionError, cuba_lif_fields, require_nir

UNIFORM_DELAYS = ("metadata", "node")


def export_nir(outputs=None, uniform_delays: str = "metadata"):
    """The network of the current session as a ``nir.NIRGraph`` (``nir.write`` stores it).

    Parameters
    ----------
    outputs : list of Population, optional
        Populations that get a ``nir.Output`` node; default: every ``IF_curr_exp`` population
        without outgoing projections.
    uniform_delays : ``"metadata"`` or ``"node"``
        Where a projection's single delay goes: the ``Linear`` node's metadata (readers that
        ignore metadata see a delay of zero; most PyTorch-based NIR readers cannot run
        ``Delay`` nodes) or a ``nir.Delay`` node.

    Returns
    -------
    nir.NIRGraph

    Raises
    ------
    NIRConversionError
        For an empty session, a population of another cell type, a current source,
        ``i_offset != 0``, or a population receiving both receptors with
        ``tau_syn_E != tau_syn_I``; the message names the population or source and the value.
    ValueError
        For an unknown ``uniform_delays``.

    Warns
    -----
    UserWarning
        For ``tau_refrac > 0`` (NIR's CubaLIF has no refractory period; the value is kept in
        the node's metadata only).
    """
    nir = require_nir()
    if uniform_delays not in UNIFORM_DELAYS:
        raise ValueError(f"uniform_delays must be one of {UNIFORM_DELAYS}, got {uniform_delays!r}")
    state = simulator.state
    if not state.populations:
        raise NIRConversionError("nothing to export: the current session has no populations")
    _check_current_sources(state)
    names = _unique_names([p.label or f"population{k}" for k, p in enumerate(state.populations)])
    receptors = _incoming_receptors(state)
    nodes, edges = {}, []
    for k, population in enumerate(state.populations):
        nodes[names[k]] = _population_node(nir, population, receptors.get(k, set()))
    for k, projection in enumerate(state.projections):
        _add_projection(nir, nodes, edges, names, k, projection, uniform_delays)
    for k in _output_indices(state, outputs):
        name = _fresh(nodes, f"{names[k]}_out")
        nodes[name] = nir.Output(output_type=np.array([state.populations[k].size]))
        edges.append((names[k], name))
    metadata = {"source": "pynn_eventprop", "timestep": float(state.dt), **UNITS}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def scale_for_unit_spikes(graph, dt: float):
    """A copy of ``graph`` for readers whose spikes are 1 per time step instead of Dirac pulses.

    NIR's equations take input spikes as Dirac pulses (area 1), which on a grid of step ``dt``
    are samples of height ``1 / dt``.  snnTorch and Norse pass spikes of height 1, so a
    ``CubaLIF`` there steps its current by ``dt w_in W / tau_syn``.  Multiplying every
    ``w_in`` by ``1 / dt`` (``dt`` in the graph's time unit, ms) restores steps of
    ``w_in W / tau_syn``.
    """
    nir = require_nir()
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number of ms > 0, got {dt!r}")
    scaled = copy.deepcopy(graph)
    for node in scaled.nodes.values():
        if isinstance(node, nir.CubaLIF):
            node.w_in = np.asarray(node.w_in, float) / dt
    return scaled


def _check_current_sources(state) -> None:
    for source in state.current_sources:
        raise NIRConversionError(
            f"current source {type(source).__name__} cannot be exported: NIR has no current "
            "injection node (remove it, or export before injecting)"
        )


def _unique_names(labels) -> list[str]:
    """Labels made into distinct names of letters, digits and ``_``."""
    names, seen = [], set()
    for label in labels:
        base = re.sub(r"\W", "_", str(label), flags=re.ASCII) or "population"
        name, n = base, 1
        while name in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def _fresh(nodes: dict, name: str) -> str:
    """``name``, with ``_`` appended until no node has it."""
    while name in nodes:
        name += "_"
    return name


def _incoming_receptors(state) -> dict[int, set]:
    """Receptor types used by the projections into each population (by position)."""
    found: dict[int, set] = {}
    for projection in state.projections:
        posts = np.unique(network_indices(projection.post, np.arange(projection.post.size))[0])
        for b in posts.tolist():
            found.setdefault(b, set()).add(projection.receptor_type)
    return found


def _population_node(nir, population, receptors: set):
    """``nir.Input`` for a spike source, ``nir.CubaLIF`` for ``IF_curr_exp``."""
    celltype = population.celltype
    if celltype.is_spike_source:
        return nir.Input(input_type=np.array([population.size]))
    model = getattr(celltype, "compiled_model", type(celltype).__name__)
    if model != "IF_curr_exp":
        raise NIRConversionError(
            f"population '{population.label}' has cell type {type(celltype).__name__}; NIR "
            "export supports IF_curr_exp (nir.CubaLIF) and spike sources (nir.Input)"
        )
    compiled = compile_population(population)
    params, initial = compiled.params, compiled.initial
    offset = params["i_offset"]
    if np.any(offset != 0):
        raise NIRConversionError(
            f"population '{population.label}': i_offset={float(offset[offset != 0][0])!r} nA "
            "cannot be exported (NIR's CubaLIF has no bias current)"
        )
    fields = cuba_lif_fields(params, _synaptic_time_constant(population, params, receptors))
    return nir.CubaLIF(**fields, metadata=_neuron_metadata(population, params, initial))


def _synaptic_time_constant(population, params, receptors: set) -> np.ndarray:
    tau_e, tau_i = params["tau_syn_E"], params["tau_syn_I"]
    if receptors == {"inhibitory"}:
        return tau_i
    if "inhibitory" in receptors and not np.array_equal(tau_e, tau_i):
        k = int(np.flatnonzero(tau_e != tau_i)[0])
        raise NIRConversionError(
            f"population '{population.label}' receives excitatory and inhibitory projections "
            f"with tau_syn_E={float(tau_e[k])!r} != tau_syn_I={float(tau_i[k])!r} ms "
            f"(neuron {k}); NIR's CubaLIF has one synaptic time constant"
        )
    return tau_e


def _neuron_metadata(population, params, initial) -> dict:
    """What CubaLIF cannot hold: cm (exact float), tau_refrac, non-default initial values."""
    metadata = {"pynn_cell_type": "IF_curr_exp", "cm": params["cm"].copy()}
    refrac = params["tau_refrac"]
    if np.any(refrac > 0):
        warnings.warn(
            f"population '{population.label}': tau_refrac={float(refrac.max())!r} ms is not "
            "part of NIR's CubaLIF; it goes into the node's metadata, which other NIR readers "
            "ignore (their neurons are not refractory)",
            UserWarning,
            stacklevel=3,
        )
        metadata["tau_refrac"] = refrac.copy()
    if not np.array_equal(initial["v"], params["v_rest"]):
        metadata["v_init"] = initial["v"].copy()
    for name in ("isyn_exc", "isyn_inh"):
        if np.any(initial.get(name, 0.0) != 0):
            metadata[f"{name}_init"] = initial[name].copy()
    return metadata


def _add_projection(nir, nodes, edges, names, k, projection, uniform_delays) -> None:
    """``[Delay ->] Linear`` nodes of Projection ``k`` for each (pre, post) population pair."""
    if len(projection) == 0:
        return
    kind = type(projection.synapse_type).__name__
    if kind == "TsodyksMarkramSynapse":  # NIR has no short-term plasticity node
        raise NIRConversionError(
            f"projection '{projection.label}' is a {kind}: NIR has no node for short-term "
            "plasticity (export static or EventProp synapses only)"
        )
    rows = np.asarray(projection.get(["weight", "delay"], format="list"), dtype=float)
    pre_pop, pre = network_indices(projection.pre, rows[:, 0].astype(np.int64))
    post_pop, post = network_indices(projection.post, rows[:, 1].astype(np.int64))
    pairs = sorted(set(zip(pre_pop.tolist(), post_pop.tolist(), strict=True)))
    state = simulator.state
    for a, b in pairs:
        sel = (pre_pop == a) & (post_pop == b)
        n_pre, n_post = state.populations[a].size, state.populations[b].size
        groups = delay_groups(pre[sel], post[sel], rows[sel, 2], rows[sel, 3], n_pre, n_post)
        base = f"{k}_{names[a]}_{names[b]}"
        meta = {"pynn_projection": str(projection.label), "receptor_type": projection.receptor_type}
        for g, (weight, delay) in enumerate(groups):
            suffix = "" if len(groups) == 1 else f"_d{g}"
            linear = _fresh(nodes, f"w{base}{suffix}")
            uniform = len(groups) == 1 and np.ndim(delay) == 0
            metadata = {**meta, "delay": float(delay)} if uniform else dict(meta)
            if uniform and uniform_delays == "metadata":
                nodes[linear] = nir.Linear(weight=weight, metadata=metadata)
                edges.append((names[a], linear))
            else:
                delay_node = _fresh(nodes, f"delay{base}{suffix}")
                nodes[delay_node] = nir.Delay(delay=np.broadcast_to(delay, (n_pre,)).copy())
                nodes[linear] = nir.Linear(weight=weight, metadata=dict(meta))
                edges += [(names[a], delay_node), (delay_node, linear)]
            edges.append((linear, names[b]))


def delay_groups(i, j, w, d, n_pre: int, n_post: int) -> list:
    """Split connections into ``(weight (n_post, n_pre), delay)`` groups NIR can express.

    ``delay`` is a float when all connections share it, an array ``(n_pre,)`` when the delays
    depend on the presynaptic neuron only (neurons without connections get the smallest
    delay), else one group per distinct delay value.  Connections sharing ``(i, j, delay)``
    are summed (exact for the engine, which adds each connection's weight to the same current).
    """
    i, j, w, d = (np.asarray(x) for x in (i, j, w, d))
    values = np.unique(d)
    if values.size == 1:
        return [(_dense(i, j, w, n_pre, n_post), float(values[0]))]
    per_pre = np.full(n_pre, values[0])
    per_pre[i] = d
    if np.array_equal(per_pre[i], d):
        return [(_dense(i, j, w, n_pre, n_post), per_pre)]
    return [(_dense(i[d == v], j[d == v], w[d == v], n_pre, n_post), float(v)) for v in values]


def _dense(i, j, w, n_pre: int, n_post: int) -> np.ndarray:
    weight = np.zeros((n_post, n_pre))
    np.add.at(weight, (j.astype(np.int64), i.astype(np.int64)), w)
    return weight


def _output_indices(state, outputs) -> list[int]:
    if outputs is None:
        sources = {
            int(p)
            for projection in state.projections
            for p in np.unique(network_indices(projection.pre, np.arange(projection.pre.size))[0])
        }
        return [
            k
            for k, population in enumerate(state.populations)
            if not population.celltype.is_spike_source and k not in sources
        ]
    indices = []
    for population in outputs:
        found = [k for k, p in enumerate(state.populations) if p is population]
        if not found:
            raise NIRConversionError(
                f"outputs: {population!r} is not a Population of the current simulation"
            )
        indices.append(found[0])
    return indices
