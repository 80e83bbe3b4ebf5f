"""The engine's view of a brian2_reference network, and the engine's results in one form.

:func:`compiled_network` turns a :class:`brian2_reference.NetworkSpec` into the
:class:`~pynn_eventprop.network.CompiledNetwork` the engines run (population 0 is the input,
then the layers in order; one trainable projection per spec projection, delays in ms).
:func:`run_engine` runs it on the exact reference engine through the Engine interface
(``make_engine("reference", ...)``: ``run``, ``readouts``, ``backward``) with one of the three
losses of :mod:`pynn_eventprop.training.losses` and returns an :class:`EngineRun`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brian2_reference import INPUT, NetworkSpec, SpikeInput
from brian2_reference.description import IF_CURR_EXP_DEFAULTS

from ..engine.interface import SpikeTrains
from ..engine.platforms import make_engine
from ..network import CompiledNetwork, CompiledPopulation, CompiledProjection
from ..training.losses import AverageVoltageCrossEntropy, MaxVoltageCrossEntropy, TTFSCrossEntropy

#: The engine's losses by brian2_reference's names (same definitions, see docs/losses.md).
ENGINE_LOSSES = {
    "ttfs": TTFSCrossEntropy,
    "max_voltage": MaxVoltageCrossEntropy,
    "mean_voltage": AverageVoltageCrossEntropy,
}


def compiled_network(spec: NetworkSpec) -> CompiledNetwork:
    """The CompiledNetwork of ``spec``: population 0 the input, then the layers."""
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
            f"{p.pre}->{p.post} {p.receptor} #{k}",
            index[p.pre],
            index[p.post],
            p.receptor,
            p.weights.copy(),
            p.delays.copy(),
            p.mask.copy(),
            True,
        )
        for k, p in enumerate(spec.projections)
    ]
    return CompiledNetwork(populations, projections)


@dataclass
class EngineRun:
    """The exact engine's results, per layer name: ``spikes`` (list over samples of lists over
    neurons of spike times, ms), ``V`` ``(n, batch, size)`` at ``t = dt .. T`` (mV relative to
    ``v_rest``), ``lam_V``, ``lam_E`` ``(n + 1, batch, size)`` at ``t = 0 .. T`` (layers outside
    recurrent loops: the engine samples no adjoints inside them); the loss value,
    ``readout_grad`` (``dL/dreadout`` of the output), ``gradients`` and ``delay_gradients``
    per projection."""

    spikes: dict
    V: dict
    lam_V: dict
    lam_E: dict
    loss: float
    readout_grad: np.ndarray
    gradients: list
    delay_gradients: list
    dt: float


def engine_spikes(spec, inputs, dt: float, network=None) -> dict:
    """Spike times per layer (as in :class:`EngineRun`) of a forward run of the engine."""
    network = network or compiled_network(spec)
    engine = make_engine("reference", network, dt, inputs.batch_size, np.float64)
    result = engine.run(_steps(spec, dt), sources={0: _trains(inputs)})
    return _spikes(spec, result, inputs.batch_size)


def run_engine(spec: NetworkSpec, inputs: SpikeInput, loss: str, labels, dt: float) -> EngineRun:
    """Forward, ``loss`` (a name of :data:`ENGINE_LOSSES`) on the output and backward on the
    exact reference engine with grid step ``dt`` (ms; it only sets where ``v`` and the
    adjoints are sampled)."""
    network = compiled_network(spec)
    batch, out = inputs.batch_size, len(spec.layers)
    engine = make_engine("reference", network, dt, batch, np.float64)
    record = {k + 1: ("v",) for k in range(len(spec.layers))}
    result = engine.run(
        _steps(spec, dt), sources={0: _trains(inputs)}, record=record, keep_for_backward=True
    )
    loss_fn = ENGINE_LOSSES[loss]()
    readouts = engine.readouts(result, out, loss_fn.requires)
    value = loss_fn.evaluate(readouts, np.asarray(labels), spec.duration)
    grads = engine.backward(result, {out: value.readout_grads}, adjoints=True)
    names = [layer.name for layer in spec.layers]
    rest = {name: spec.layer(name).param("v_rest") for name in names}
    # the engine samples no adjoints in recurrent populations (they advance step by step)
    sampled = [(k, n) for k, n in enumerate(names) if k + 1 in grads.adjoints]
    return EngineRun(
        spikes=_spikes(spec, result, batch),
        V={n: result.signals[k + 1]["v"] - rest[n] for k, n in enumerate(names)},
        lam_V={n: grads.adjoints[k + 1]["lambda_v"] for k, n in sampled},
        lam_E={n: grads.adjoints[k + 1]["lambda_i"] for k, n in sampled},
        loss=value.loss,
        readout_grad=value.readout_grads[loss_fn.requires[0]],
        gradients=[np.asarray(g, float) for g in grads.weights],
        delay_gradients=[np.asarray(g, float) for g in grads.delays],
        dt=dt,
    )


def _steps(spec: NetworkSpec, dt: float) -> int:
    n = int(round(spec.duration / dt))
    if abs(n * dt - spec.duration) > 1e-9 * spec.duration:
        raise ValueError(f"duration {spec.duration} ms must be a whole multiple of dt={dt} ms")
    return n


def _trains(inputs: SpikeInput) -> SpikeTrains:
    return SpikeTrains.from_lists([list(sample) for sample in inputs.times])


def _spikes(spec, result, batch) -> dict:
    return {
        layer.name: [result.spikes[k + 1].per_neuron(b) for b in range(batch)]
        for k, layer in enumerate(spec.layers)
    }
