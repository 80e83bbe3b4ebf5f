"""Forward pass: the precisely timed exact-integration scheme, simulated by Brian2.

Equations (EventProp frame, per neuron, grid ``t_n = n dt``; ``j`` runs over the spikes
arriving at step ``n``, i.e. emitted at ``n - d`` with phase ``phi_j``)::

    I_x[n] = a_x I_x[n-1] + sum_j w_j a_x**phi_j
    U[n]   = b V[n-1] + p_E I_E[n-1] + p_I I_I[n-1] + c e + sum_j w_j q_x(phi_j)
    s[n]   = U[n] >= theta and not refractory[n]
    phi[n] = (U[n] - theta) / (U[n] - V[n-1])            (spike time (n - phi[n]) dt)
    V[n]   = v_r if s[n] or refractory[n] else U[n]

(``coefficients.py`` defines ``a, b, c, p, q``.)  Below threshold this is the exact solution of
PyNN's ``IF_curr_exp`` for any spike times: ``a**phi`` is the current and ``q(phi)`` the voltage
at ``t_n`` of a current jump ``phi`` steps before ``t_n``; the threshold crossing is linearly
interpolated inside the step and the reset happens on the grid.

How Brian2 runs it
------------------
One ``NeuronGroup`` holds every neuron of every layer and sample (``layout.py``); the input is a
``SpikeGeneratorGroup``; each (source kind, delay, receptor) combination of projections is one
``Synapses`` object.  Brian2 step ``n`` (time ``n dt``) *is* grid step ``n``; the network runs
``n_steps + 1`` steps (``n = 0 .. n_steps``) with the schedule ``FORWARD_SCHEDULE`` = start,
groups, synapses, thresholds, resets, end:

* ``'synapses'``: Brian2's synaptic pathways deliver the spikes emitted at ``n - d`` (Brian2
  queues a spike in the step after its emission, so the Brian2 delay is ``(d - 1) dt``).
  ``on_pre`` adds ``w a_x**phi`` to ``I_x`` (which holds ``a_x I_x[n-1]`` at this point) and
  ``w q_x(phi)`` to ``U`` (which holds the free response ``U[n]`` without arrivals).  Brian2
  evaluates ``on_pre`` at arrival, so for ``d >= 2`` the presynaptic phase is read from a shift
  register (``brian_tools.history_update``, run in ``'resets'`` with order -1); input phases
  come from a ``TimedArray`` read at ``t - d dt``.
* ``'thresholds'``: a ``run_regularly`` operation (order -1) sets ``V = U`` (or ``v_r`` while
  refractory), then the group's thresholder emits the spikes ``U >= theta and is_ref < 0.5``
  (``s[n]``); the ``SpikeGeneratorGroup`` emits the input spikes of step ``n``.
* ``'resets'``: the reset of the spiking neurons computes ``phi[n]`` from ``U[n]`` and
  ``V[n-1]``, sets ``V[n] = v_r`` and starts the refractory count.
* ``'end'``: monitors record ``V[n], U[n], I_x[n]`` and the spikes with their phases (order
  -1); then a ``run_regularly`` operation (order 0) performs the part of step ``n + 1`` that
  needs no arrivals: ``U = b V[n] + p_E I_E[n] + p_I I_I[n] + c e``, ``I_x <- a_x I_x[n]`` and
  the refractory flag of ``n + 1``.

Brian2's ODE state updaters are not used because the scheme is not an ODE integrator: it is the
exact propagator of the linear dynamics over one step plus precisely timed spikes.  The
propagator is written as Brian2 abstract code with per-neuron constants; Brian2 generates and
runs that code every step, detects threshold crossings, resets, keeps the refractory count,
queues and delivers the delayed spikes through its synapses and records everything with its
monitors.  Step 0 is the initial state (``V[0] = v_init - v_rest < theta``: no spike).
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2
import numpy as np
from brian2 import ms

from .brian_tools import (
    FORWARD_SCHEDULE,
    HISTORY_SLOT,
    delayed,
    history_update,
    history_variables,
    numpy_codegen,
    spike_steps,
    timed_array,
)
from .coefficients import LayerConstants, layer_constants
from .description import INPUT, PHASE_MAX, NetworkSpec, SpikeInput
from .layout import Layout, Pathway, connect, pathways

NEURON_MODEL = """
V : 1          # membrane potential relative to v_rest after the reset (mV)
U : 1          # membrane potential before threshold and reset (mV)
V_prev : 1     # V of the previous step (mV)
I_E : 1        # excitatory synaptic current (nA)
I_I : 1        # inhibitory synaptic current (nA)
phi : 1        # phase of the latest spike, in [0, 1)
is_ref : 1     # 1 if the neuron is refractory (clamped) in this step
ref_left : 1   # refractory steps still to come
b : 1 (constant)
a_E : 1 (constant)
a_I : 1 (constant)
p_E : 1 (constant)
p_I : 1 (constant)
c : 1 (constant)
kappa_E : 1 (constant)
kappa_I : 1 (constant)
dt_over_cm : 1 (constant)
i_ext : 1 (constant)
theta : 1 (constant)
v_r : 1 (constant)
n_ref : 1 (constant)
"""
CONSTANTS = (
    "b",
    "a_E",
    "a_I",
    "p_E",
    "p_I",
    "c",
    "kappa_E",
    "kappa_I",
    "dt_over_cm",
    "i_ext",
    "theta",
    "v_r",
    "n_ref",
)

#: The part of the next grid step that needs no arrivals, run in the 'end' slot.
PROPAGATE = """
V_prev = V
U = b * V + p_E * I_E + p_I * I_I + c * i_ext
I_E = a_E * I_E
I_I = a_I * I_I
is_ref = int(ref_left > 0)
ref_left = ref_left - is_ref
"""
#: After the arrivals, before the threshold test ('thresholds' slot, order -1).
FOLLOW = "V = U * (1 - is_ref) + v_r * is_ref"
THRESHOLD = "U >= theta and is_ref < 0.5"
RESET = """
phi = clip((U - theta) / (U - V_prev), 0, phase_max)
V = v_r
ref_left = n_ref
"""
RECORDED = ("V", "U", "I_E", "I_I", "is_ref")


@dataclass(frozen=True)
class LayerTrace:
    """Forward recording of one layer on the grid ``n = 0 .. n_steps``.

    Every array has shape ``(n_steps + 1, batch, size)``.  ``spikes`` is ``s[n]``, ``phase``
    is ``phi[n]`` (0 where there is no spike), ``V`` the membrane potential after the reset
    relative to ``v_rest`` (mV), ``U`` before threshold and reset (``U[0]`` is set to ``V[0]``),
    ``I_E``, ``I_I`` the synaptic currents (nA), ``refractory`` the clamped steps.
    """

    spikes: np.ndarray
    phase: np.ndarray
    V: np.ndarray
    U: np.ndarray
    I_E: np.ndarray
    I_I: np.ndarray
    refractory: np.ndarray
    v_rest: np.ndarray

    @property
    def v(self) -> np.ndarray:
        """PyNN's recorded ``v = V + v_rest`` (mV)."""
        return self.V + self.v_rest


@dataclass(frozen=True)
class ForwardResult:
    """Everything the adjoint needs: the network, the input raster and every layer's trace.

    ``input_spikes`` and ``input_phase`` have shape ``(n_steps, batch, n_inputs)`` (emission
    steps ``0 .. n_steps - 1``).
    """

    spec: NetworkSpec
    batch_size: int
    input_spikes: np.ndarray
    input_phase: np.ndarray
    layers: dict[str, LayerTrace]


def _constants(spec: NetworkSpec) -> dict[str, LayerConstants]:
    return {layer.name: layer_constants(layer, spec.dt) for layer in spec.layers}


def _neuron_group(layout: Layout, paths: list[Pathway]) -> brian2.NeuronGroup:
    spec = layout.spec
    const = _constants(spec)
    depth = max((p.delay for p in paths if not p.from_input), default=1)
    group = brian2.NeuronGroup(
        layout.size,
        NEURON_MODEL + history_variables("phi", depth),
        threshold=THRESHOLD,
        reset=RESET,
        dt=spec.dt * ms,
        namespace={"phase_max": PHASE_MAX},
        name="fwd_neurons*",
    )
    for name in CONSTANTS:
        setattr(group, name, layout.per_neuron({k: getattr(c, name) for k, c in const.items()}))
    group.V = group.U = layout.per_neuron({k: c.v_init for k, c in const.items()})
    group.run_regularly(PROPAGATE, when="end", order=0)
    group.run_regularly(FOLLOW, when="thresholds", order=-1)
    if depth > 1:
        when, order = HISTORY_SLOT
        group.run_regularly(history_update("phi", depth), when=when, order=order)
    return group


def _input_group(layout: Layout, spikes: np.ndarray) -> brian2.SpikeGeneratorGroup:
    spec = layout.spec
    step, sample, neuron = np.nonzero(spikes)
    return brian2.SpikeGeneratorGroup(
        spec.n_inputs * layout.batch,
        layout.index(INPUT, sample, neuron),
        step * spec.dt * ms,
        dt=spec.dt * ms,
        name="fwd_input*",
    )


def _synapses(layout, path, neurons, inputs, input_phase) -> brian2.Synapses:
    x, dt = path.suffix, layout.spec.dt
    if path.from_input:
        # the phase of the spike emitted d steps ago, looked up in the input raster
        phase = "input_phase(t - delay_time, i)"
        namespace = {"input_phase": input_phase, "delay_time": path.delay * dt * ms}
    else:
        phase = f"{delayed('phi', path.delay)}_pre"
        namespace = {}
    on_pre = f"""
    phase = {phase}
    I_{x}_post += w * a_{x}_post ** phase
    U_post += w * b_post ** phase * phase * dt_over_cm_post * exprel(-phase * kappa_{x}_post)
    """
    syn = brian2.Synapses(
        inputs if path.from_input else neurons,
        neurons,
        "w : 1 (constant)",
        on_pre=on_pre,
        delay=(path.delay - 1) * dt * ms,
        dt=dt * ms,
        namespace=namespace,
        name=f"fwd_{'input' if path.from_input else 'neurons'}_d{path.delay}{x}*",
    )
    connect(syn, layout, path)
    return syn


def forward(spec: NetworkSpec, inputs: SpikeInput) -> ForwardResult:
    """Simulate ``spec`` driven by ``inputs`` for ``spec.n_steps`` steps with Brian2.

    Returns the traces of every layer on the grid ``n = 0 .. n_steps`` (see
    :class:`LayerTrace`).
    """
    layout = Layout(spec, inputs.batch_size)
    in_spikes, in_phase = inputs.raster(spec.n_steps, spec.n_inputs)
    paths = pathways(spec)
    with numpy_codegen():
        neurons = _neuron_group(layout, paths)
        source = _input_group(layout, in_spikes)
        states = brian2.StateMonitor(neurons, RECORDED, record=True, when="end", order=-1)
        spikes = brian2.SpikeMonitor(neurons, variables=["phi"], when="end", order=-1)
        phase_table = timed_array(in_phase.reshape(spec.n_steps, -1), spec.dt)
        synapses = [_synapses(layout, p, neurons, source, phase_table) for p in paths]
        net = brian2.Network(neurons, source, states, spikes, *synapses)
        net.schedule = FORWARD_SCHEDULE
        net.run((spec.n_steps + 1) * spec.dt * ms, namespace={})
        traces = _traces(layout, states, spikes)
    return ForwardResult(spec, inputs.batch_size, in_spikes, in_phase, traces)


def _traces(layout: Layout, states, spikes_mon) -> dict[str, LayerTrace]:
    spec = layout.spec
    shape = (spec.n_steps + 1, layout.size)
    rec = {name: np.asarray(getattr(states, name)).T for name in RECORDED}
    if rec["V"].shape != shape:
        raise RuntimeError(f"Brian2 recorded {rec['V'].shape[0]} steps, expected {shape[0]}")
    spikes, phase = np.zeros(shape, bool), np.zeros(shape)
    steps = spike_steps(spikes_mon, spec.dt)
    spikes[steps, spikes_mon.i[:]] = True
    phase[steps, spikes_mon.i[:]] = np.asarray(spikes_mon.phi)
    split = {name: layout.split(table) for name, table in rec.items()}
    spikes, phase = layout.split(spikes), layout.split(phase)
    return {
        layer.name: LayerTrace(
            spikes=spikes[layer.name],
            phase=phase[layer.name],
            V=split["V"][layer.name],
            U=split["U"][layer.name],
            I_E=split["I_E"][layer.name],
            I_I=split["I_I"][layer.name],
            refractory=split["is_ref"][layer.name] > 0.5,
            v_rest=layer_constants(layer, spec.dt).v_rest,
        )
        for layer in spec.layers
    }
