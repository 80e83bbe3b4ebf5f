"""Exact discrete adjoint of the forward pass (``forward.py``), run by Brian2.

With ``lambda = dL/d(state)``, for every layer, from ``n = N`` down to 0 (zero beyond ``N``),
and for a spike of ``j`` at ``n`` reaching ``i`` (projection ``P``: weights ``W``, receptor
``x``, delay ``d``) with amplitudes ``A_ji = a_x,i**phi_j[n]`` on ``I_x`` and
``Q_ji = q_x,i(phi_j[n])`` on ``U`` at step ``n + d``::

    phibar[n]     = s[n] (dL/dphi[n] + sum_P sum_i W_ji (lambda_i_x,i[n+d] dA_ji/dphi
                                                       + lambda_u,i[n+d] dQ_ji/dphi))
    lambda_i_x[n] = a_x lambda_i_x[n+1] + p_x lambda_u[n+1]
    lambda_v[n]   = dL/dV[n] + b lambda_u[n+1] + jump_V[n]
    lambda_u[n]   = (not s[n] and not refractory[n]) lambda_v[n] + phibar[n] dphi/dU[n]
    jump_V[n-1]   = phibar[n] dphi/dV[n-1]
    dL/dW_ji      = sum_n sum_batch s_j[n] (lambda_i_x,i[n+d] A_ji + lambda_u,i[n+d] Q_ji)

with ``dphi/dU[n] = (theta - V[n-1])/(U[n] - V[n-1])**2``,
``dphi/dV[n-1] = (U[n] - theta)/(U[n] - V[n-1])**2``, ``dA/dphi = ln(a) a**phi`` and
``dQ/dphi = (dt/cm) b**phi (ln(b) phi S(phi kappa) + exp(-phi kappa))`` (``coefficients.py``).
This is docs/equations.md section 3 plus the terms of the arrival's voltage response ``Q``.

How Brian2 runs it
------------------
A second Brian2 network runs forward in *reversed-step* time: Brian2 step ``k`` (``k = 0 ..
N``) is grid step ``n = N - k``.  The forward recording enters as 2-d ``TimedArray`` tables
indexed by ``k`` (spikes, phases, ``U[n]``, ``V[n-1]``, the "V follows U" flag, ``dL/dV``,
``dL/dphi``).  One ``NeuronGroup`` with the forward layout (``layout.py``) holds
``lambda_v, lambda_u, lambda_i_E, lambda_i_I``; the error pathways are ``Synapses`` with the
forward connectivity and weights (one per source kind, delay and receptor).  Schedule of step
``k`` (grid ``n``):

* ``'thresholds'``: the group *replays* the forward spikes: its threshold condition is
  ``spiked(t, i) > 0.5``; the input's ``SpikeGeneratorGroup`` replays the input spikes at
  ``k = N - m`` for a spike emitted at step ``m``.
* ``'synapses'``: for every replayed spike of presynaptic ``j`` at ``n`` the pathway executes
  ``on_pre`` (no Brian2 delay): it reads ``lambda_i_x[n + d]`` and ``lambda_u[n + d]`` of the
  postsynaptic neuron (the variables themselves for ``d = 1``, because the postsynaptic update
  of grid step ``n`` comes later in the step; for ``d >= 2`` shift registers run in
  ``'resets'``), accumulates the weight gradient ``g += lambda_i_x A + lambda_u Q`` in the
  synapse and sends the error ``w (lambda_i_x dA/dphi + lambda_u dQ/dphi)`` (the ``xbar``
  term) to the presynaptic neuron's ``phibar``.  Errors thus travel from each layer to the one
  before, and only at the presynaptic spike times.
* ``'end'``: the group's ``run_regularly`` operation performs the recursion above for grid
  step ``n`` (``lambda_u`` still holds ``lambda_u[n+1]``, ``jump_v`` the jump computed one
  Brian2 step earlier) and clears ``phibar``; a ``StateMonitor`` (order 1) records it.

The recursion is first order and linear between the jumps, so Brian2's ODE updaters, which
integrate continuous time, do not express it; the exact discrete update is written as abstract
code that Brian2 generates and runs every step, while the spike replay, the synaptic transport
of the errors and the gradient accumulation are Brian2's own event machinery.  ``A``, ``Q`` and
their derivatives are evaluated per synapse with the postsynaptic neuron's constants, which is
exact also when ``tau_syn`` differs between the neurons of a layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2
import numpy as np
from brian2 import ms

from .brian_tools import (
    HISTORY_SLOT,
    SCHEDULE,
    delayed,
    history_update,
    history_variables,
    numpy_codegen,
    timed_array,
)
from .coefficients import layer_constants
from .description import INPUT
from .forward import ForwardResult
from .layout import Layout, Pathway, connect, pathways, projection_sum

ADJOINT_MODEL = """
lambda_v : 1     # dL/dV[n] (1/mV)
lambda_u : 1     # dL/dU[n] (1/mV)
lambda_i_E : 1   # dL/dI_E[n] (1/nA)
lambda_i_I : 1   # dL/dI_I[n] (1/nA)
jump_v : 1       # phibar[n+1] dphi[n+1]/dV[n], added to lambda_v in the next Brian2 step
phibar : 1       # error on this step's spike phase received from the outgoing synapses
b : 1 (constant)
a_E : 1 (constant)
a_I : 1 (constant)
p_E : 1 (constant)
p_I : 1 (constant)
kappa_E : 1 (constant)
kappa_I : 1 (constant)
dt_over_cm : 1 (constant)
theta : 1 (constant)
"""
CONSTANTS = ("b", "a_E", "a_I", "p_E", "p_I", "kappa_E", "kappa_I", "dt_over_cm", "theta")

#: Recursion for grid step n = N - k, run in the 'end' slot of Brian2 step k.  ``den`` is
#: ``(U[n] - V[n-1])**2`` at spikes; the ``1 - s`` keeps it nonzero where ``phi_bar = 0``.
ADJOINT_STEP = """
s = spiked(t, i)
phi_bar = s * (dL_dphase(t, i) + phibar)
den = (U_rec(t, i) - V_prev(t, i))**2 + (1 - s)
lambda_i_E = a_E * lambda_i_E + p_E * lambda_u
lambda_i_I = a_I * lambda_i_I + p_I * lambda_u
lambda_v = dL_dV(t, i) + b * lambda_u + jump_v
lambda_u = follows(t, i) * lambda_v + phi_bar * (theta - V_prev(t, i)) / den
jump_v = phi_bar * (U_rec(t, i) - theta) / den
phibar = 0
"""
RECORDED = ("lambda_v", "lambda_u", "lambda_i_E", "lambda_i_I")
TABLES = ("spiked", "phase", "U_rec", "V_prev", "follows", "dL_dV", "dL_dphase")


@dataclass(frozen=True)
class AdjointTrace:
    """Adjoint variables of one layer on the grid ``n = 0 .. n_steps``.

    Arrays of shape ``(n_steps + 1, batch, size)``: ``lambda_v = dL/dV`` and
    ``lambda_u = dL/dU`` in 1/mV (``lambda_u[0]`` is 0: there is no ``U[0]``), ``lambda_i_E``
    and ``lambda_i_I`` = ``dL/dI_x`` in 1/nA.
    """

    lambda_v: np.ndarray
    lambda_u: np.ndarray
    lambda_i_E: np.ndarray
    lambda_i_I: np.ndarray


@dataclass(frozen=True)
class AdjointResult:
    """Adjoint traces per layer and ``dL/dW`` per projection (``(n_pre, n_post)``, L per nA).

    Gradients are summed over the batch and are zero where a projection's mask is False.
    """

    layers: dict[str, AdjointTrace]
    gradients: tuple[np.ndarray, ...]


def _loss_table(fwd: ForwardResult, name: str, given: dict) -> np.ndarray:
    shape = (fwd.spec.n_steps + 1, fwd.batch_size, fwd.spec.layer(name).size)
    if given.get(name) is None:
        return np.zeros(shape)
    arr = np.asarray(given[name], dtype=float)
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"loss gradient for layer {name!r} must be finite with shape {shape} "
            f"(n_steps + 1, batch, size), got shape {arr.shape}"
        )
    return arr


def _as_dict(fwd: ForwardResult, value) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        for name in value:
            fwd.spec.layer(name)
        return value
    return {fwd.spec.output.name: value}


def _reversed_tables(fwd: ForwardResult, layout: Layout, dl_dphase, dl_dv) -> dict:
    """TimedArrays of the forward record, ``(N + 1, group size)``, row ``k`` = grid ``N - k``."""
    tables = {key: {} for key in TABLES}
    for name, trace in fwd.layers.items():
        v_prev = np.zeros_like(trace.V)
        v_prev[1:] = trace.V[:-1]
        follows = ~(trace.spikes | trace.refractory)
        follows[0] = False
        tables["spiked"][name] = trace.spikes.astype(float)
        tables["phase"][name] = trace.phase
        tables["U_rec"][name] = np.where(trace.spikes, trace.U, 0.0)
        tables["V_prev"][name] = np.where(trace.spikes, v_prev, 0.0)
        tables["follows"][name] = follows.astype(float)
        tables["dL_dV"][name] = _loss_table(fwd, name, dl_dv)
        tables["dL_dphase"][name] = _loss_table(fwd, name, dl_dphase)
    return {
        key: timed_array(layout.join(per_layer)[::-1], fwd.spec.dt)
        for key, per_layer in tables.items()
    }


def _adjoint_group(layout: Layout, paths: list[Pathway], tables: dict) -> brian2.NeuronGroup:
    spec = layout.spec
    const = {layer.name: layer_constants(layer, spec.dt) for layer in spec.layers}
    depths = {
        f"lambda_i_{x}": max((p.delay for p in paths if p.suffix == x), default=1) for x in "EI"
    }
    depths["lambda_u"] = max((p.delay for p in paths), default=1)
    model = ADJOINT_MODEL + "".join(history_variables(v, depth) for v, depth in depths.items())
    group = brian2.NeuronGroup(
        layout.size,
        model,
        threshold="spiked(t, i) > 0.5",
        reset="",
        dt=spec.dt * ms,
        namespace=dict(tables),
        name="adj_neurons*",
    )
    for name in CONSTANTS:
        setattr(group, name, layout.per_neuron({k: getattr(c, name) for k, c in const.items()}))
    group.run_regularly(ADJOINT_STEP, when="end", order=0)
    when, order = HISTORY_SLOT
    for var, depth in depths.items():
        if depth > 1:
            group.run_regularly(history_update(var, depth), when=when, order=order)
    return group


def _replayed_input(fwd: ForwardResult, layout: Layout):
    """The input spikes at reversed steps ``N - m`` and their phases as a reversed table."""
    spec = fwd.spec
    step, sample, neuron = np.nonzero(fwd.input_spikes)
    group = brian2.SpikeGeneratorGroup(
        spec.n_inputs * layout.batch,
        layout.index(INPUT, sample, neuron),
        (spec.n_steps - step) * spec.dt * ms,
        dt=spec.dt * ms,
        name="adj_input*",
    )
    phase = np.zeros((spec.n_steps + 1, layout.batch * spec.n_inputs))
    phase[:-1] = fwd.input_phase.reshape(spec.n_steps, -1)
    return group, timed_array(phase[::-1], spec.dt)


def _error_synapses(layout, path, neurons, inputs, phase_table) -> brian2.Synapses:
    """Error pathway: gradient ``g`` per synapse and ``phibar`` of the presynaptic neuron."""
    x, d = path.suffix, path.delay
    code = f"""
    phase = phase_table(t, i)
    li = {delayed(f"lambda_i_{x}", d)}_post
    lu = {delayed("lambda_u", d)}_post
    amp_i = a_{x}_post ** phase
    b_phi = b_post ** phase
    s_phi = exprel(-phase * kappa_{x}_post)
    g += li * amp_i + lu * b_phi * phase * dt_over_cm_post * s_phi
    """
    if not path.from_input:
        code += f"""
    dq = dt_over_cm_post * b_phi * (log(b_post) * phase * s_phi + exp(-phase * kappa_{x}_post))
    phibar_pre += w * (li * log(a_{x}_post) * amp_i + lu * dq)
    """
    return brian2.Synapses(
        inputs if path.from_input else neurons,
        neurons,
        "w : 1 (constant)\ng : 1",
        on_pre=code,
        dt=layout.spec.dt * ms,
        namespace={"phase_table": phase_table},
        name=f"adj_{'input' if path.from_input else 'neurons'}_d{d}{x}*",
    )


def backward(fwd: ForwardResult, dL_dphase=None, dL_dV=None) -> AdjointResult:
    """Exact adjoint of :func:`forward` for the loss gradients ``dL_dphase`` and ``dL_dV``.

    Parameters
    ----------
    fwd : ForwardResult
    dL_dphase, dL_dV : array ``(n_steps + 1, batch, size)`` or dict of layer name -> array
        ``dL/dphi[n]`` (only read where the neuron spiked; ``dL/dphi = -dt dL/dt_spike``) and
        ``dL/dV[n]`` (1/mV).  A bare array refers to the output layer; ``None`` means zero.

    Returns
    -------
    AdjointResult
        ``lambda_v, lambda_u, lambda_i_E, lambda_i_I`` per layer and ``dL/dW`` per projection.
    """
    spec = fwd.spec
    layout = Layout(spec, fwd.batch_size)
    paths = pathways(spec)
    tables = _reversed_tables(fwd, layout, _as_dict(fwd, dL_dphase), _as_dict(fwd, dL_dV))
    with numpy_codegen():
        neurons = _adjoint_group(layout, paths, tables)
        source, input_phase = _replayed_input(fwd, layout)
        monitor = brian2.StateMonitor(neurons, RECORDED, record=True, when="end", order=1)
        synapses, ranges = [], {}
        for path in paths:
            table = input_phase if path.from_input else tables["phase"]
            syn = _error_synapses(layout, path, neurons, source, table)
            synapses.append(syn)
            ranges.update({k: (syn, r) for k, r in connect(syn, layout, path).items()})
        net = brian2.Network(neurons, source, monitor, *synapses)
        net.schedule = SCHEDULE
        net.run((spec.n_steps + 1) * spec.dt * ms, namespace={})
        recorded = {
            var: layout.split(np.asarray(getattr(monitor, var)).T[::-1]) for var in RECORDED
        }
        gradients = tuple(
            projection_sum(spec, layout.batch, k, ranges[k][0].g[:][ranges[k][1]])
            for k in range(len(spec.projections))
        )
    layers = {
        layer.name: AdjointTrace(*(recorded[var][layer.name] for var in RECORDED))
        for layer in spec.layers
    }
    return AdjointResult(layers, gradients)
