"""Batched forward simulation of a compiled network on the time grid (docs/equations.md §2).

Populations are simulated one strongly connected component at a time in topological order.  A
component without recurrence (every layer of a feed-forward network) is integrated over a whole
chunk at once: its input currents for all steps come from matrix products over time, the
synaptic currents from a linear filter, and only the threshold/reset recursion on ``V`` loops
over time with elementwise operations.  Recurrent components loop over steps with the matrix
products inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from ..discretisation import LIFDiscretisation
from ..network import CompiledNetwork
from . import kernels
from .dynamics import RECEPTOR_KEYS, CurrentLIF, make_model
from .graph import is_recurrent, simulation_order
from .raster import Raster
from .workspace import Workspace


@dataclass
class LayerTrajectory:
    """What the backward pass needs of one neuron population over a chunk (EventProp frame).

    ``spikes`` is the population's :class:`Raster`; ``u`` the pre-reset voltage ``U[n]``,
    ``v_prev`` the voltage ``V[n-1]`` at the start of each step, ``v`` the post-reset ``V[n]``,
    ``clamped`` where the neuron was refractory; all of shape ``(n_steps, batch, size)``.
    """

    spikes: Raster
    u: np.ndarray
    v_prev: np.ndarray
    v: np.ndarray
    clamped: np.ndarray | None


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
        Use the compiled kernels for feed-forward current-based layers (default); ``False``
        runs the vectorised numpy path everywhere (a reference for tests).
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
        discretisation,
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
        self.edges = [(p.pre, p.post) for p in network.projections]
        self.order = simulation_order(len(network.populations), self.edges)
        self.delay_groups = [list(p.delay_groups()) for p in network.projections]
        for k, proj in enumerate(network.projections):
            if network.populations[proj.post].is_source:
                raise ValueError(f"projection '{proj.label}' targets a spike source")
            if proj.receptor not in RECEPTOR_KEYS:
                raise ValueError(
                    f"projection '{proj.label}' has receptor_type {proj.receptor!r}; "
                    f"allowed: {sorted(RECEPTOR_KEYS)}"
                )
            self.delay_groups[k] = [(d, W.astype(self.dtype)) for d, W in self.delay_groups[k]]
        self.reset()

    # --- state ------------------------------------------------------------------------------
    def reset(self):
        """Return to the initial state at step 0 (initial values from the compiled network)."""
        self.n = 0
        self.state = {
            i: _State(m, self.network.populations[i], self.batch) for i, m in self.models.items()
        }
        self.pending = {}  # (post, receptor key) -> arrivals at steps n+1, n+2, ...

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
        self.delay_groups[proj] = [(d, W.astype(self.dtype)) for d, W in p.delay_groups()]

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
            Also return :class:`LayerTrajectory` per neuron population under key ``"trajectory"``.

        Returns
        -------
        dict pop index -> dict name -> array (steps ``n+1 .. n+n_steps``) or Raster.
        """
        n_steps = int(n_steps)
        sources, currents, record = sources or {}, currents or {}, record or {}
        rasters, out = {}, {i: {} for i in record}
        for i, pop in enumerate(self.network.populations):
            if pop.is_source:
                r = sources.get(i) or Raster.empty(n_steps, self.batch, pop.size, self.dtype)
                if r.spikes.shape != (n_steps, self.batch, pop.size):
                    raise ValueError(
                        f"source raster for '{pop.label}' has shape {r.spikes.shape}, expected "
                        f"{(n_steps, self.batch, pop.size)}"
                    )
                rasters[i] = r
                if "spikes" in record.get(i, ()):
                    out[i]["spikes"] = r
        trajectories = {}
        for comp in self.order:
            comp = [i for i in comp if i in self.models]
            if not comp:
                continue
            arrivals = {i: self._external_arrivals(i, comp, rasters, n_steps) for i in comp}
            if is_recurrent(comp, self.edges):
                results = self._run_recurrent(comp, arrivals, currents, n_steps)
            else:
                i = comp[0]
                layer = self._run_layer(i, arrivals[i], currents, n_steps, record.get(i, ()))
                results = {i: layer}
            for i, (raster, traj, syn_hist) in results.items():
                rasters[i] = raster
                if keep_trajectory:
                    trajectories[i] = traj
                self._store_pending(i, arrivals[i], n_steps)
                if i in record:
                    out[i].update(self._recorded(i, record[i], raster, traj, syn_hist))
        self.n += n_steps
        if keep_trajectory:
            out["trajectory"] = trajectories
            out["rasters"] = rasters
        return out

    # --- inputs -----------------------------------------------------------------------------
    def _external_arrivals(self, post, comp, rasters, n_steps):
        """Arrival array per receptor key, length ``n_steps + max delay``, from earlier components.

        Index ``j`` is step ``n + 1 + j``.  A neuron spike at raster index ``k`` (step
        ``n+1+k``) arrives at index ``k + d``; a source spike (step ``n+k``) at ``k + d - 1``.
        """
        incoming = [k for k, p in enumerate(self.network.projections) if p.post == post]
        max_d = max((d for k in incoming for d, _ in self.delay_groups[k]), default=1)
        model = self.models[post]
        shape = (n_steps + max_d, self.batch, model.size)
        arr = {x: self.workspace.zeros(("arrivals", post, x), shape, self.dtype) for x in "EI"}
        for x in "EI":
            carried = self.pending.get((post, x))
            if carried is not None:
                arr[x][: len(carried)] += carried
        for k in incoming:
            proj = self.network.projections[k]
            if proj.pre in comp:
                continue
            x = RECEPTOR_KEYS[proj.receptor]
            pre_shape = rasters[proj.pre].phase.shape
            amp = rasters[proj.pre].amplitude(
                model.a[x], self.workspace.empty(("amplitude", k), pre_shape, self.dtype)
            )
            offset = -1 if self.network.populations[proj.pre].is_source else 0
            contrib = self.workspace.empty(("contribution", k), (n_steps,) + shape[1:], self.dtype)
            for d, W in self.delay_groups[k]:
                np.matmul(amp, W, out=contrib)
                start = d + offset
                arr[x][start : start + n_steps] += contrib
        return arr

    def _store_pending(self, post, arrivals, n_steps):
        for x, arr in arrivals.items():
            rest = arr[n_steps:]
            self.pending[(post, x)] = rest.copy() if np.any(rest) else None

    def _external_current(self, i, currents, n_steps):
        model = self.models[i]
        e = np.broadcast_to(model.i_offset, (n_steps, 1, model.size)).astype(self.dtype)
        extra = currents.get(i)
        if extra is not None:
            extra = np.asarray(extra, self.dtype)
            e = e + (extra[:, None, :] if extra.ndim == 2 else extra)
        return e

    # --- feed-forward layer: vectorised over time -------------------------------------------
    def _run_layer(self, i, arrivals, currents, n_steps, record_names=()):
        model, st = self.models[i], self.state[i]
        ext = self._external_current(i, currents, n_steps)
        if self.compiled and isinstance(model, CurrentLIF):
            store = bool(set(record_names) & set(model.synaptic_state))
            return self._run_layer_compiled(i, model, st, arrivals, ext, n_steps, store)
        syn_hist, syn_prev = {}, {}
        for x in "EI":
            a = model.a[x]
            hist, _ = lfilter(
                [1.0], [1.0, -a], arrivals[x][:n_steps], axis=0, zi=(a * st.syn[x])[None]
            )
            hist = hist.astype(self.dtype, copy=False)
            syn_prev[x] = np.concatenate([st.syn[x][None], hist[:-1]])
            syn_hist[x] = hist
            st.syn[x] = hist[-1].copy()
        drive = model.prepare(syn_prev, ext)
        u, v_prev, v, spikes, clamped = self._threshold_loop(model, st, drive, n_steps)
        phase = np.where(spikes, model_phase(model, u, v_prev), 0.0).astype(self.dtype)
        raster = Raster(spikes, phase)
        return raster, LayerTrajectory(raster, u, v_prev, v, clamped), syn_hist

    def _run_layer_compiled(self, i, model, st, arrivals, ext, n_steps, store_currents):
        ws, shape = self.workspace, (n_steps, self.batch, model.size)
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
            arrivals["E"][:n_steps],
            arrivals["I"][:n_steps],
            np.ascontiguousarray(ext),
            st.v,
            st.syn["E"],
            st.syn["I"],
            st.countdown,
            params,
            out,
        )
        u, v, spikes, phase, clamped, i_e, i_i = out
        v_prev[1:] = v[:-1]
        raster = Raster(spikes, phase)
        clamped = clamped if model.has_refractory else None
        return raster, LayerTrajectory(raster, u, v_prev, v, clamped), {"E": i_e, "I": i_i}

    def _threshold_loop(self, model, st, drive, n_steps):
        """The only recursion in ``V``: ``U = membrane(V)``, spike, reset, refractory clamp."""
        shape = (n_steps, self.batch, model.size)
        u = np.empty(shape, self.dtype)
        v = np.empty(shape, self.dtype)
        spikes = np.empty(shape, bool)
        clamped = np.zeros(shape, bool) if model.has_refractory else None
        vk = st.v
        for k in range(n_steps):
            uk = model.membrane(vk, k, drive)
            u[k] = uk
            if model.has_refractory:
                vk, spikes[k], clamped[k] = self._spike_refractory(model, st, uk)
            else:
                np.greater_equal(uk, model.theta, out=spikes[k])
                vk = np.where(spikes[k], model.v_reset, uk)
            v[k] = vk
        v_prev = np.concatenate([st.v[None], v[:-1]])
        st.v = vk.copy()
        return u, v_prev, v, spikes, clamped

    @staticmethod
    def _spike_refractory(model, st, uk):
        clamp = st.countdown > 0
        spike = (uk >= model.theta) & ~clamp
        vk = np.where(spike | clamp, model.v_reset, uk)
        st.countdown = np.where(spike, model.refractory_steps, st.countdown - clamp)
        return vk, spike, clamp

    # --- recurrent component: step by step --------------------------------------------------
    def _run_recurrent(self, comp, arrivals, currents, n_steps):
        internal = [
            k for k, p in enumerate(self.network.projections) if p.pre in comp and p.post in comp
        ]
        shape = {i: (n_steps, self.batch, self.models[i].size) for i in comp}
        u = {i: np.empty(shape[i], self.dtype) for i in comp}
        v = {i: np.empty(shape[i], self.dtype) for i in comp}
        v_prev = {i: np.empty(shape[i], self.dtype) for i in comp}
        spikes = {i: np.zeros(shape[i], bool) for i in comp}
        phase = {i: np.zeros(shape[i], self.dtype) for i in comp}
        clamped = {i: np.zeros(shape[i], bool) for i in comp}
        syn_hist = {i: {x: np.empty(shape[i], self.dtype) for x in "EI"} for i in comp}
        ext = {i: self._external_current(i, currents, n_steps) for i in comp}
        for k in range(n_steps):
            for i in comp:
                model, st = self.models[i], self.state[i]
                drive = model.prepare({x: st.syn[x][None] for x in "EI"}, ext[i][k : k + 1])
                uk = model.membrane(st.v, 0, drive)
                v_prev[i][k], u[i][k] = st.v, uk
                vk, spikes[i][k], clamped[i][k] = self._spike_refractory(model, st, uk)
                phase[i][k] = np.where(spikes[i][k], model_phase(model, uk, st.v), 0.0)
                st.v = vk
                v[i][k] = vk
                for x in "EI":
                    st.syn[x] = model.a[x] * st.syn[x] + arrivals[i][x][k]
                    syn_hist[i][x][k] = st.syn[x]
            for kp in internal:
                proj = self.network.projections[kp]
                model = self.models[proj.post]
                x = RECEPTOR_KEYS[proj.receptor]
                s = spikes[proj.pre][k]
                if not s.any():
                    continue
                amp = np.where(s, np.power(model.a[x], phase[proj.pre][k]), 0.0)
                for d, W in self.delay_groups[kp]:
                    arrivals[proj.post][x][k + d] += amp @ W
        results = {}
        for i in comp:
            raster = Raster(spikes[i], phase[i])
            traj = LayerTrajectory(raster, u[i], v_prev[i], v[i], clamped[i])
            results[i] = (raster, traj, syn_hist[i])
        return results

    # --- recording --------------------------------------------------------------------------
    def _recorded(self, i, names, raster, traj, syn_hist):
        model = self.models[i]
        out = {}
        for name in names:
            if name == "spikes":
                out[name] = raster
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


def model_phase(model, u, v_prev):
    """Spike phase of docs/equations.md §2 for a model's threshold."""
    return LIFDiscretisation.spike_phase(u, v_prev, model.theta)
