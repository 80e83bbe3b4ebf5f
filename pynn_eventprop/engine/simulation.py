"""Batched forward simulation of a compiled network on the time grid (docs/equations.md §2).

Populations are simulated one strongly connected component at a time in topological order.  A
current-based component without recurrence (every layer of a feed-forward network) is
integrated over a whole chunk by one compiled loop, after the spikes of earlier components have
been delivered to it event by event.  Recurrent components, conductance-based neurons and the
reference mode (``compiled=False``) use the step-by-step numpy path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..discretisation import LIFDiscretisation
from ..network import CompiledNetwork
from . import kernels
from .dynamics import RECEPTOR_KEYS, CurrentLIF, make_model
from .graph import is_recurrent, simulation_order
from .raster import Raster
from .workspace import Workspace

ARRIVAL_KEYS = ("E", "I", "U")  # excitatory current, inhibitory current, voltage head start


@dataclass
class LayerTrajectory:
    """What the backward pass needs of one neuron population over a chunk (EventProp frame).

    ``spikes`` is the population's :class:`Raster`; ``u`` the pre-reset voltage ``U[n]``,
    ``v_prev`` the voltage ``V[n-1]`` at the start of each step, ``v`` the post-reset ``V[n]``,
    ``clamped`` where the neuron was refractory; all ``(n_steps, batch, size)``.
    """

    spikes: Raster
    u: np.ndarray
    v_prev: np.ndarray
    v: np.ndarray
    clamped: np.ndarray


class _State:
    """Dynamic state of one neuron population: ``v`` (frame), synaptic vars, refractory count."""

    def __init__(self, model, pop, batch):
        shape = (batch, pop.size)
        self.v = np.broadcast_to(model.initial_v(pop), shape).copy()
        self.syn = {x: np.broadcast_to(s, shape).copy() for x, s in model.initial_syn(pop).items()}
        self.countdown = np.zeros(shape, np.int64)


class Simulation:
    """Stateful, batched simulation of a :class:`CompiledNetwork`.

    Parameters
    ----------
    network : CompiledNetwork
    discretisation : LIFDiscretisation
    batch_size : int
        Independent copies of the network, each driven by its own input (training batches).
    dtype : numpy float type, ``float64`` (default) or ``float32``.
    compiled : bool
        Use the compiled layer loop for feed-forward current-based populations (default);
        ``False`` runs the numpy step path everywhere (a reference for tests).
    reuse_buffers : bool
        Reuse result arrays between runs (see :mod:`.workspace`): fast for training loops, but
        arrays returned by :meth:`run` are then overwritten by the next run.

    Notes
    -----
    Grid step ``n`` is time ``n * dt``; :attr:`n` is the last step computed (0 after reset).
    A run of ``N`` steps computes neuron steps ``n+1 .. n+N`` and emits source spikes of steps
    ``n .. n+N-1`` (a spike at step ``m`` reaches its targets at ``m + d``, ``d >= 1``).
    """

    def __init__(
        self,
        network: CompiledNetwork,
        discretisation: LIFDiscretisation,
        batch_size=1,
        dtype=np.float64,
        compiled=True,
        reuse_buffers=False,
    ):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.network = network
        self.disc = discretisation
        self.batch = int(batch_size)
        self.dtype = np.dtype(dtype).type
        self.compiled = compiled
        self.workspace = Workspace(reuse_buffers)
        self.models = {
            i: make_model(pop, discretisation, self.dtype)
            for i, pop in enumerate(network.populations)
            if not pop.is_source
        }
        for proj in network.projections:
            if network.populations[proj.post].is_source:
                raise ValueError(f"projection '{proj.label}' targets a spike source")
            if proj.receptor not in RECEPTOR_KEYS:
                raise ValueError(
                    f"projection '{proj.label}' has receptor_type {proj.receptor!r}; "
                    f"allowed: {sorted(RECEPTOR_KEYS)}"
                )
        self.edges = [(p.pre, p.post) for p in network.projections]
        self.order = simulation_order(len(network.populations), self.edges)
        self._delay_masks = [_delay_masks(p) for p in network.projections]
        self.delay_groups = [self._groups(k) for k in range(len(network.projections))]
        self.reset()

    def _groups(self, k):
        """``(delay, weights)`` per delay of projection ``k`` (weights zero elsewhere)."""
        weights = self.network.projections[k].weights
        return [
            (
                d,
                np.ascontiguousarray(
                    weights if mask is None else np.where(mask, weights, 0.0), self.dtype
                ),
            )
            for d, mask in self._delay_masks[k]
        ]

    def source_shift(self, proj_index: int, delay: int) -> int:
        """Raster index offset from a spike of the projection's source to its arrival index."""
        pre = self.network.projections[proj_index].pre
        return delay - 1 if self.network.populations[pre].is_source else delay

    # --- state ------------------------------------------------------------------------------
    def reset(self):
        """Return to the initial state at step 0 (initial values from the compiled network)."""
        self.n = 0
        self.state = {
            i: _State(m, self.network.populations[i], self.batch) for i, m in self.models.items()
        }
        self.pending = {}  # post index -> dict key -> arrivals at steps n+1, n+2, ...

    def set_initial(self, pop: int, name: str, values):
        """Set an initial value (PyNN units); applies now if at step 0 and after every reset."""
        p = self.network.populations[pop]
        p.initial[name] = np.broadcast_to(np.asarray(values, float), (p.size,)).copy()
        if self.n == 0:
            self.state[pop] = _State(self.models[pop], p, self.batch)

    def set_weights(self, proj: int, weights):
        """Replace a projection's weights (shape ``(n_pre, n_post)``, 0 where unconnected)."""
        p = self.network.projections[proj]
        p.weights = np.where(p.mask, np.asarray(weights, float), 0.0)
        self.delay_groups[proj] = self._groups(proj)

    # --- running ----------------------------------------------------------------------------
    def run(self, n_steps, sources=None, currents=None, record=None, keep_trajectory=False):
        """Advance ``n_steps`` steps.

        Parameters
        ----------
        sources : dict pop index -> Raster of shape ``(n_steps, batch, size)`` (emission steps
            ``n .. n+n_steps-1``); missing sources are silent.
        currents : dict pop index -> array ``(n_steps, size)`` or ``(n_steps, batch, size)``:
            external current (nA) in each step besides ``i_offset``.
        record : dict pop index -> iterable of names among ``spikes``, ``v`` (mV),
            ``isyn_exc``, ``isyn_inh`` (nA), ``gsyn_exc``, ``gsyn_inh`` (uS).
        keep_trajectory : bool
            Also return :class:`LayerTrajectory` per neuron population under key
            ``"trajectory"`` and every population's Raster under ``"rasters"``.

        Returns
        -------
        dict pop index -> dict name -> array (steps ``n+1 .. n+n_steps``) or Raster.
        """
        n_steps = int(n_steps)
        sources, currents, record = sources or {}, currents or {}, record or {}
        rasters, out = {}, {i: {} for i in record}
        for i, pop in enumerate(self.network.populations):
            if pop.is_source:
                rasters[i] = self._source_raster(i, sources.get(i), n_steps)
                if "spikes" in record.get(i, ()):
                    out[i]["spikes"] = rasters[i]
        trajectories = {}
        for comp in self.order:
            comp = [i for i in comp if i in self.models]
            if not comp:
                continue
            arrivals = {i: self._arrivals(i, comp, rasters, n_steps) for i in comp}
            model = self.models[comp[0]]
            layer = not is_recurrent(comp, self.edges)
            if layer and self.compiled and isinstance(model, CurrentLIF):
                names = record.get(comp[0], ())
                results = {
                    comp[0]: self._run_layer(comp[0], arrivals[comp[0]], currents, n_steps, names)
                }
            else:
                results = self._run_steps(comp, arrivals, currents, n_steps)
            for i, (traj, syn_hist) in results.items():
                rasters[i] = traj.spikes
                trajectories[i] = traj
                self.pending[i] = {x: arr[n_steps:].copy() for x, arr in arrivals[i].items()}
                if i in record:
                    out[i].update(self._recorded(i, record[i], traj, syn_hist))
        self.n += n_steps
        if keep_trajectory:
            out["trajectory"] = trajectories
            out["rasters"] = rasters
        return out

    def backward(self, trajectory, rasters, loss_grads):
        """Exact gradients of a loss for the last run (see :func:`.adjoint.backward`).

        A method so that engines built on this one (the SpiNNaker2 model) can account for the
        backward pass they run.
        """
        from .adjoint import backward

        return backward(self, trajectory, rasters, loss_grads)

    def _source_raster(self, i, raster, n_steps):
        pop = self.network.populations[i]
        if raster is None:
            return Raster.empty(n_steps, self.batch, pop.size, self.dtype)
        if raster.spikes.shape != (n_steps, self.batch, pop.size):
            raise ValueError(
                f"source raster for '{pop.label}' has shape {raster.spikes.shape}, expected "
                f"{(n_steps, self.batch, pop.size)}"
            )
        return Raster(raster.spikes, np.ascontiguousarray(raster.phase, self.dtype))

    # --- inputs -----------------------------------------------------------------------------
    def _arrivals(self, post, comp, rasters, n_steps):
        """Arrivals ``E``, ``I`` (nA) and ``U`` (mV) from earlier components and earlier chunks.

        Index ``j`` is step ``n + 1 + j``; the arrays run ``max delay`` steps past the chunk so
        that arrivals due later are carried to the next run.
        """
        incoming = self.network.incoming(post)
        max_d = max((d for k in incoming for d, _ in self.delay_groups[k]), default=1)
        model = self.models[post]
        shape = (n_steps + max_d, self.batch, model.size)
        arr = {
            x: self.workspace.zeros(("arrivals", post, x), shape, self.dtype) for x in ARRIVAL_KEYS
        }
        for x, carried in self.pending.get(post, {}).items():
            m = min(len(carried), shape[0])
            arr[x][:m] += carried[:m]
        for k in incoming:
            proj = self.network.projections[k]
            if proj.pre in comp:
                continue
            x = RECEPTOR_KEYS[proj.receptor]
            raster = rasters[proj.pre]
            for d, W in self.delay_groups[k]:
                kernels.deliver(
                    raster.spikes,
                    raster.phase,
                    W,
                    self.source_shift(k, d),
                    model.arrival[x],
                    arr[x],
                    arr["U"],
                )
        return arr

    def _external_current(self, i, currents, n_steps):
        model = self.models[i]
        e = np.broadcast_to(model.i_offset, (n_steps, 1, model.size)).astype(self.dtype)
        extra = currents.get(i)
        if extra is not None:
            extra = np.asarray(extra, self.dtype)
            e = e + (extra[:, None, :] if extra.ndim == 2 else extra)
        return np.ascontiguousarray(e)

    # --- feed-forward current-based layer: one compiled loop --------------------------------
    def _run_layer(self, i, arrivals, currents, n_steps, record_names):
        model, st, ws = self.models[i], self.state[i], self.workspace
        shape = (n_steps, self.batch, model.size)
        store_currents = bool(set(record_names) & set(model.synaptic_state))
        hist_shape = shape if store_currents else (0,) + shape[1:]
        out = (
            ws.empty(("u", i), shape, self.dtype),
            ws.empty(("v", i), shape, self.dtype),
            ws.empty(("spikes", i), shape, bool),
            ws.empty(("phase", i), shape, self.dtype),
            ws.empty(("clamped", i), shape, bool),
            ws.empty(("isyn_exc", i), hist_shape, self.dtype),
            ws.empty(("isyn_inh", i), hist_shape, self.dtype),
        )
        v_prev = ws.empty(("v_prev", i), shape, self.dtype)
        v_prev[0] = st.v
        params = (model.b, model.p["E"], model.p["I"], model.c, model.a["E"], model.a["I"])
        params += (model.theta, model.v_reset, model.refractory_steps)
        kernels.forward_layer(
            tuple(arrivals[x][:n_steps] for x in ARRIVAL_KEYS),
            self._external_current(i, currents, n_steps),
            (st.v, st.syn["E"], st.syn["I"], st.countdown),
            params,
            out,
        )
        u, v, spikes, phase, clamped, i_e, i_i = out
        v_prev[1:] = v[:-1]
        traj = LayerTrajectory(Raster(spikes, phase), u, v_prev, v, clamped)
        return traj, {"E": i_e, "I": i_i}

    # --- general component: numpy, step by step ---------------------------------------------
    def _run_steps(self, comp, arrivals, currents, n_steps):
        """Step-by-step integration of a component (any model, recurrence allowed)."""
        internal = [
            k for k, p in enumerate(self.network.projections) if p.pre in comp and p.post in comp
        ]
        hist = {
            i: {
                name: np.zeros((n_steps, self.batch, self.models[i].size), dtype)
                for name, dtype in (
                    ("u", self.dtype),
                    ("v", self.dtype),
                    ("v_prev", self.dtype),
                    ("phase", self.dtype),
                    ("E", self.dtype),
                    ("I", self.dtype),
                    ("spikes", bool),
                    ("clamped", bool),
                )
            }
            for i in comp
        }
        ext = {i: self._external_current(i, currents, n_steps) for i in comp}
        for k in range(n_steps):
            for i in comp:
                model, st, h = self.models[i], self.state[i], hist[i]
                uk = model.membrane(st.v, st.syn, ext[i][k], arrivals[i]["U"][k])
                h["v_prev"][k], h["u"][k] = st.v, uk
                clamp = st.countdown > 0
                spike = (uk >= model.theta) & ~clamp
                phase = LIFDiscretisation.spike_phase(uk, st.v, model.theta)
                h["phase"][k] = np.where(spike, phase, 0.0)
                h["spikes"][k], h["clamped"][k] = spike, clamp
                st.v = np.where(spike | clamp, model.v_reset, uk)
                st.countdown = np.where(spike, model.refractory_steps, st.countdown - clamp)
                h["v"][k] = st.v
                for x in "EI":
                    st.syn[x] = model.a[x] * st.syn[x] + arrivals[i][x][k]
                    h[x][k] = st.syn[x]
            for kp in internal:
                proj = self.network.projections[kp]
                h = hist[proj.pre]
                x = RECEPTOR_KEYS[proj.receptor]
                target = arrivals[proj.post]
                for d, W in self.delay_groups[kp]:
                    kernels.deliver(
                        h["spikes"][k : k + 1],
                        h["phase"][k : k + 1],
                        W,
                        k + d,
                        self.models[proj.post].arrival[x],
                        target[x],
                        target["U"],
                    )
        results = {}
        for i in comp:
            h = hist[i]
            traj = LayerTrajectory(
                Raster(h["spikes"], h["phase"]), h["u"], h["v_prev"], h["v"], h["clamped"]
            )
            results[i] = (traj, {"E": h["E"], "I": h["I"]})
        return results

    # --- recording --------------------------------------------------------------------------
    def _recorded(self, i, names, traj, syn_hist):
        model = self.models[i]
        out = {}
        for name in names:
            if name == "spikes":
                out[name] = traj.spikes
            elif name == "v":
                out[name] = traj.v + model.v_rest
            elif name in model.synaptic_state:
                out[name] = syn_hist["EI"[model.synaptic_state.index(name)]]
            else:
                allowed = ["spikes", "v", *model.synaptic_state]
                raise ValueError(
                    f"cannot record {name!r} from population "
                    f"'{self.network.populations[i].label}'; allowed: {allowed}"
                )
        return out


def _delay_masks(proj):
    """``(delay, mask)`` per delay of a projection; mask None when one delay covers it all."""
    groups = list(proj.delay_groups())
    if len(groups) == 1:
        return [(groups[0][0], None)]
    return [(d, proj.mask & (proj.delays == d)) for d, _ in groups]
