"""The continuous adjoint (Wunderlich & Pehle 2021) integrated backward in time by Brian2.

With ``lambda = dL/d(state)`` (``lambda_V`` in 1/mV, ``lambda_x = dL/dI_x`` in 1/nA), running
backward from ``lambda = 0`` at ``t = T``:

* between events (``s = T - t`` the reversed time, ``S = (1/T) int V dt`` the mean voltage)::

      dlambda_V/ds = -lambda_V/tau_m + (dL/dS)/T        (lambda_V = 0 while refractory)
      dlambda_x/ds = -lambda_x/tau_x + lambda_V/cm

* an arrival of weight ``w`` on ``x`` at ``t_a = t_s + d`` (``I_x += w``)::

      dL/dw   += lambda_x(t_a+)
      dL/dt_a  = w (lambda_x/tau_x - lambda_V/cm)(t_a+)     (also added to dL/dd)

* a spike at ``t*`` (``Vdot-``/``Vdot+``: ``dV/dt`` before the crossing / after the reset)::

      dL/dt*       = dL/dt*|loss + sum of its arrivals' dL/dt_a - lambda_V(t*+) Vdot+
                     + dL/dt_end + (dL/dS) (theta - v_r)/T
      lambda_V(t*-) = -(dL/dt*)/Vdot-
      dL/dt_end    = -lambda_V(t_end+) dV/dt(t_end+)   at the end of the refractory period

  (with a refractory period ``Vdot+ = 0``: the clamp holds ``V``);
* ``v_max`` read at ``t_max``: ``lambda_V += dL/dv_max``.

How Brian2 runs it
------------------
A second Brian2 network runs on reversed time (its step ``j`` integrates from forward grid point
``m = N + P - j`` to ``m - 1``; ``P`` steps of padding come first).  A ``NeuronGroup`` with the
forward layout integrates the ODEs above with Brian2's ``exact`` state updater; the
``(dL/dS)/T`` source is switched on inside the run and ``free`` holds ``lambda_V`` during the
refractory clamp.  The recorded forward spikes (input and neurons) become a group of *events*
(one neuron per spike, firing ``P - 1`` steps before its reversed time) connected by three
``Synapses`` objects with whole-step delays, so that Brian2's spike queue applies, at the grid
points where the forward run had them:

* ``arrivals`` (one synapse per spike and outgoing connection): keeps ``dL/dw`` and
  ``dL/dt_a`` (the delay gradient) in the synapse and adds ``dL/dt_a`` to its event;
* ``refractory_ends``: stores ``dL/dt_end``, sets ``lambda_V = 0`` and starts the clamp;
* ``jumps``: the spike's jump of ``lambda_V`` and the end of the clamp.

A maximum ``v_max`` is an event of its own (``impulses``).  The forward quantities the jumps
need (``Vdot-``, ``Vdot+``, ``dV/dt`` at the end of the refractory period) come from the
forward recording at the Brian2 steps of the events.  Since spikes, arrivals and the
refractory clamp sit on Brian2's grid, the adjoint and the gradients converge at first order
in ``dt``, like the forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2
import numpy as np
from brian2 import ms

from .codegen import numpy_codegen
from .description import INPUT
from .forward import ForwardResult, delay_steps

ADJOINT_MODEL = """
dlam_V/dt = free * (act * src - lam_V) / tau_m : 1
dlam_E/dt = (k_E * lam_V - lam_E) / tau_E : 1
dlam_I/dt = (k_I * lam_V - lam_I) / tau_I : 1
free : 1
act : 1
tend : 1
src : 1 (constant)
eterm : 1 (constant)
k_E : 1 (constant)
k_I : 1 (constant)
c_m : 1 (constant)
tau_E_ms : 1 (constant)
tau_I_ms : 1 (constant)
tau_m : second (constant)
tau_E : second (constant)
tau_I : second (constant)
"""
EVENT_MODEL = """
fire_step : integer (constant)
acc : 1
dldt : 1 (constant)
vdot_minus : 1 (constant)
vdot_plus : 1 (constant)
vdot_end : 1 (constant)
amount : 1 (constant)
"""
FIRE = "timestep(t, dt) == fire_step"
ARRIVAL = """
lx = exc * lam_E_post + (1 - exc) * lam_I_post
g = lx
gd = w * (lx / (exc * tau_E_ms_post + (1 - exc) * tau_I_ms_post) - lam_V_post / c_m_post)
acc_pre += gd
"""
JUMP = """
tbar = dldt_pre + acc_pre + tend_post - lam_V_post * vdot_plus_pre + eterm_post
lam_V_post = -tbar / vdot_minus_pre
tend_post = 0
free_post = 1
"""
REFRACTORY_END = """
tend_post = -lam_V_post * vdot_end_pre
lam_V_post = 0
free_post = 0
"""
IMPULSE = "lam_V_post += amount_pre"
RECORDED = ("lam_V", "lam_E", "lam_I")


@dataclass(frozen=True)
class AdjointResult:
    """``dL/dW`` and ``dL/d(delay)`` per projection (``(n_pre, n_post)``, per nA and per ms,
    summed over the batch, 0 where not connected) and the adjoint traces ``lam_V``, ``lam_E``,
    ``lam_I`` ``(n_steps + 1, group)`` at the forward grid points ``t_m = m dt``."""

    gradients: tuple
    delay_gradients: tuple
    lam_V: np.ndarray
    lam_E: np.ndarray
    lam_I: np.ndarray
    forward: ForwardResult

    def trace(self, var: str) -> dict[str, np.ndarray]:
        """Layer name -> ``(n_steps + 1, batch, size)`` of ``"lam_V"``, ``"lam_E"``, ``"lam_I"``."""
        return self.forward.layout.split(getattr(self, var))


@dataclass(frozen=True)
class _Events:
    """Every forward spike as an adjoint event: inputs first, then the neurons' spikes."""

    source_is_input: np.ndarray
    index: np.ndarray
    step: np.ndarray

    @classmethod
    def of(cls, fwd: ForwardResult) -> _Events:
        n_in = fwd.input_index.size
        return cls(
            np.arange(n_in + fwd.spike_index.size) < n_in,
            np.concatenate([fwd.input_index, fwd.spike_index]),
            np.concatenate([fwd.input_step, fwd.spike_step]),
        )


def _arrival_pairs(fwd: ForwardResult, events: _Events):
    """One row per (event, outgoing connection): event, post index, projection, pre and post
    neuron, weight, receptor flag and Brian2 delay steps."""
    rows = []
    for k, proj in enumerate(fwd.spec.projections):
        pre, post, pre_n, post_n = fwd.layout.connections(k)
        own = np.nonzero(events.source_is_input == (proj.pre == INPUT))[0]
        order = np.argsort(pre, kind="stable")
        lo = np.searchsorted(pre[order], events.index[own], "left")
        hi = np.searchsorted(pre[order], events.index[own], "right")
        ev = np.repeat(own, hi - lo)
        conn = order[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)] or [[]])]
        conn = conn.astype(np.int64)
        rows.append(
            (
                ev,
                post[conn],
                np.full(ev.size, k),
                pre_n[conn],
                post_n[conn],
                proj.weights[pre_n[conn], post_n[conn]],
                np.full(ev.size, float(proj.suffix == "E")),
                delay_steps(proj.delays[pre_n[conn], post_n[conn]], fwd.dt),
            )
        )
    return [np.concatenate(col) for col in zip(*rows, strict=True)]


def _slopes(fwd: ForwardResult, g: np.ndarray, n: np.ndarray):
    """``(Vdot-, Vdot+, dV/dt at the end of refractoriness)`` (mV/ms) of spikes of group
    neurons ``g`` detected in Brian2 step ``n`` (from the forward recording)."""
    p, dt = fwd.params, fwd.dt
    decay = np.exp(-dt / p.tau_E[g]), np.exp(-dt / p.tau_I[g])
    i_before = fwd.I_E[n, g] * decay[0] + fwd.I_I[n, g] * decay[1]

    def slope(v, current):
        return (-v + p.R[g] * (current + p.i_ext[g])) / p.tau_m[g]

    clamped = p.ref_steps[g] >= 2
    vdot_minus = slope(p.theta[g], i_before)
    vdot_plus = np.where(clamped, 0.0, slope(p.v_r[g], fwd.I_E[n + 1, g] + fwd.I_I[n + 1, g]))
    end = np.minimum(n + p.ref_steps[g], fwd.n_steps)
    vdot_end = np.where(
        clamped & (n + p.ref_steps[g] <= fwd.n_steps),
        slope(p.v_r[g], fwd.I_E[end, g] + fwd.I_I[end, g]),
        0.0,
    )
    return vdot_minus, vdot_plus, vdot_end


def _loss_terms(fwd: ForwardResult, readout_grads: dict):
    """Per group neuron: ``dL/dt`` of its first spike, ``dL/dv_max`` and ``dL/dS``."""
    size = fwd.layout.size
    terms = {name: np.zeros(size) for name in ("first_spike_time", "v_max", "v_mean_uniform")}
    for layer, grads in readout_grads.items():
        for name, grad in grads.items():
            if name not in terms:
                raise ValueError(f"unknown readout {name!r}; the adjoint takes {sorted(terms)}")
            shape = (fwd.batch, fwd.spec.layer(layer).size)
            grad = np.asarray(grad, float)
            if grad.shape != shape or not np.all(np.isfinite(grad)):
                raise ValueError(f"dL/d{name} of layer {layer!r} must be finite, shape {shape}")
            block = fwd.layout.index(layer, np.arange(fwd.batch)[:, None], np.arange(shape[1]))
            terms[name][block.ravel()] += grad.ravel()
    return terms


def _event_group(fwd, events, terms, fire_offset):
    """The events as a NeuronGroup firing at ``N - n - 1`` (reversed step of the spike minus
    the padding), with the forward slopes and the loss's ``dL/dt`` of first spikes."""
    group = brian2.NeuronGroup(
        events.index.size, EVENT_MODEL, threshold=FIRE, reset="", dt=fwd.dt * ms, name="events*"
    )
    group.fire_step = fwd.n_steps - events.step - 1 + fire_offset
    neuron = ~events.source_is_input
    g, n = events.index[neuron], events.step[neuron]
    slopes = _slopes(fwd, g, n)
    for name, values in zip(("vdot_minus", "vdot_plus", "vdot_end"), slopes, strict=True):
        full = np.zeros(events.index.size)
        full[neuron] = values
        setattr(group, name, full)
    first = np.zeros(events.index.size)
    ids = np.nonzero(neuron)[0][np.lexsort((n, g))]
    keep = np.concatenate([[True], np.diff(events.index[ids]) != 0]) if ids.size else ids
    first[ids[keep]] = terms["first_spike_time"][events.index[ids[keep]]]
    group.dldt = first
    return group


def _adjoint_group(fwd: ForwardResult, terms, padding: int) -> brian2.NeuronGroup:
    p, duration = fwd.params, fwd.spec.duration
    group = brian2.NeuronGroup(
        fwd.layout.size, ADJOINT_MODEL, method="exact", dt=fwd.dt * ms, name="adjoint*"
    )
    group.free = 1.0
    group.src = p.tau_m * terms["v_mean_uniform"] / duration
    group.eterm = terms["v_mean_uniform"] * (p.theta - p.v_r) / duration
    group.k_E, group.k_I = p.tau_E / p.cm, p.tau_I / p.cm
    group.c_m, group.tau_E_ms, group.tau_I_ms = p.cm, p.tau_E, p.tau_I
    group.tau_m, group.tau_E, group.tau_I = p.tau_m * ms, p.tau_E * ms, p.tau_I * ms
    group.run_regularly(f"act = int(timestep(t, dt) >= {padding})", when="start")
    return group


def _pathway(source, target, code, i, j, delay_steps, name, model="", order=0):
    """Synapses ``i -> j`` running ``code`` after ``delay_steps`` whole steps (None if no
    ``i``); synapse ``k`` is connection ``(i[k], j[k])`` (checked)."""
    if not len(i):
        return None
    dt = source.clock.dt
    syn = brian2.Synapses(source, target, model, on_pre=code, dt=dt, order=order, name=name)
    syn.connect(i=np.asarray(i), j=np.asarray(j))
    if not (np.array_equal(syn.i[:], i) and np.array_equal(syn.j[:], j)):
        raise RuntimeError("Brian2 reordered the synapses; cannot map them back")
    syn.delay = np.broadcast_to(delay_steps, len(i)) * dt
    return syn


def backward(fwd: ForwardResult, readout_grads: dict) -> AdjointResult:
    """Adjoint of the Brian2 run ``fwd`` for ``readout_grads`` = ``{layer: {readout:
    dL/dreadout (batch, size)}}`` (readouts ``first_spike_time``, ``v_max``,
    ``v_mean_uniform``), integrated by Brian2 on reversed time; returns :class:`AdjointResult`.
    """
    terms = _loss_terms(fwd, readout_grads)
    events = _Events.of(fwd)
    ev, post, proj, pre_n, post_n, w, exc, d = _arrival_pairs(fwd, events)
    ref = fwd.params.ref_steps
    d_off = int(max(d.max(initial=0), ref.max(initial=1))) + 1
    padding = d_off + 1
    dt, total = fwd.dt, fwd.n_steps + padding
    with numpy_codegen():
        adjoint = _adjoint_group(fwd, terms, padding)
        monitor = brian2.StateMonitor(
            adjoint, RECORDED, record=True, when="end", order=10, name="adjoint_states*"
        )
        objects = [adjoint, monitor]
        arrivals = None
        if events.index.size:
            group = _event_group(fwd, events, terms, padding - 1 - d_off)
            neuron = np.nonzero(~events.source_is_input)[0]
            clamped = neuron[ref[events.index[neuron]] >= 2]
            arrivals = _pathway(
                group, adjoint, ARRIVAL, ev, post, d_off - d, "arrivals*",
                model="w : 1 (constant)\nexc : 1 (constant)\ng : 1\ngd : 1", order=-1,
            )  # fmt: skip
            if arrivals is not None:
                arrivals.w, arrivals.exc = w, exc
            g = events.index[clamped]
            objects += [group, arrivals]
            objects += [
                _pathway(group, adjoint, JUMP, neuron, events.index[neuron], d_off, "jumps*"),
                _pathway(group, adjoint, REFRACTORY_END, clamped, g, d_off - ref[g] + 1, "ends*"),
            ]
        objects += _impulses(fwd, terms, padding, adjoint)
        net = brian2.Network(*[x for x in objects if x is not None])
        net.run(total * dt * ms, namespace={})
        rows = fwd.n_steps + padding - 1 - np.arange(fwd.n_steps + 1)
        traces = {var: np.asarray(getattr(monitor, var)).T[rows] for var in RECORDED}
        per_synapse = {
            name: np.zeros(ev.size) if arrivals is None else np.asarray(getattr(arrivals, name)[:])
            for name in ("g", "gd")
        }
    sums = {name: [] for name in per_synapse}
    for k, spec in enumerate(fwd.spec.projections):
        sel = proj == k
        for name, values in per_synapse.items():
            total = np.zeros(spec.weights.shape)
            np.add.at(total, (pre_n[sel], post_n[sel]), values[sel])
            sums[name].append(total)
    return AdjointResult(tuple(sums["g"]), tuple(sums["gd"]), forward=fwd, **traces)


def _impulses(fwd: ForwardResult, terms, padding: int, adjoint) -> list:
    """``lambda_V += dL/dv_max`` at the grid point of every maximum read by the loss."""
    g = np.nonzero(terms["v_max"])[0]
    if not g.size:
        return []
    m = fwd.V[:, g].argmax(axis=0)
    group = brian2.NeuronGroup(
        g.size, EVENT_MODEL, threshold=FIRE, reset="", dt=fwd.dt * ms, name="max*"
    )
    group.fire_step = fwd.n_steps + padding - 1 - m
    group.amount = terms["v_max"][g]
    return [group, _pathway(group, adjoint, IMPULSE, np.arange(g.size), g, 0, "impulses*")]
