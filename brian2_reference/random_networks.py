"""Random feed-forward networks, inputs and losses for cross-validation suites.

:func:`random_network` draws, from one integer seed, a network that exercises every part of the
scheme (docs/equations.md, docs/validation.md): 1-3 hidden layers of 2-7 neurons and 2-4
outputs, 2-6 inputs; ``dt`` of 0.1, 0.25, 0.5 or 1 ms; 25-59 steps; batch 1-3; skip
connections, both receptors, delays of 1-3 steps, masks, refractory periods of 0, 1 or 3 steps,
per-neuron parameters (heterogeneous ``tau_syn`` in every third network unless told otherwise),
``tau_syn_E = tau_m`` sometimes, input spikes on and off the grid (including step 0), a random
linear loss ``L = sum c_phi phi s + sum c_V V`` on the output (and sometimes on a hidden layer)
and random class labels for the classification losses.

Weights are drawn to reach the threshold from a few coincident inputs and are then scaled up
(excitatory projections onto silent layers, x1.5 at a time) until every layer spikes, so that
spike phases, the adjoint's jumps and the error pathways are all exercised.  Which layers spike
is decided by a simulator passed in as ``layer_spikes`` (any implementation of the scheme gives
the same network; the default is this package's Brian2 forward pass).  Nothing here imports
``pynn_eventprop``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .coefficients import LayerConstants, layer_constants
from .description import INPUT, LayerSpec, NetworkSpec, ProjectionSpec, SpikeInput

#: ``layer_spikes(spec, inputs)`` -> {layer name: whether any neuron of the layer spiked}.
LayerSpikes = Callable[[NetworkSpec, SpikeInput], Mapping[str, bool]]


@dataclass(frozen=True)
class RandomNetwork:
    """A random test case.

    Attributes
    ----------
    seed : int
    spec : NetworkSpec
    times : list over samples of lists over input neurons of spike-time arrays (ms)
    inputs : SpikeInput
        ``times`` on the grid.
    dL_dphase, dL_dV : dict layer name -> array ``(n_steps + 1, batch, size)``
        Coefficients of the random linear loss, i.e. its gradients (grid steps 0..N).
    labels : int array ``(batch,)``
        Random classes in ``[0, output size)`` for the classification losses.
    """

    seed: int
    spec: NetworkSpec
    times: list
    inputs: SpikeInput
    dL_dphase: dict
    dL_dV: dict
    labels: np.ndarray


def brian2_layer_spikes(spec: NetworkSpec, inputs: SpikeInput) -> dict[str, bool]:
    """Which layers spike, with this package's Brian2 forward pass."""
    from .forward import forward

    fwd = forward(spec, inputs)
    return {name: bool(trace.spikes.any()) for name, trace in fwd.layers.items()}


def _peak_response(k: LayerConstants, x: str, steps: int = 400) -> np.ndarray:
    """Largest ``V`` after a unit current jump on receptor ``x`` (per neuron, mV/nA)."""
    a, p = getattr(k, f"a_{x}"), getattr(k, f"p_{x}")
    v, i, peak = 0.0, 1.0, 0.0
    for _ in range(steps):
        v, i = k.b * v + p * i, a * i
        peak = np.maximum(peak, v)
    return peak


def _random_layer(rng, name: str, size: int, dt: float, uniform_syn: bool) -> LayerSpec:
    """Random ``IF_curr_exp`` parameters; each is per-neuron with probability 0.3 (``tau_syn``
    only if not ``uniform_syn``); ``tau_syn_E = tau_m`` sometimes (equal time constants)."""

    def draw(lo, hi, per_neuron_allowed=True):
        if per_neuron_allowed and rng.random() < 0.3:
            return rng.uniform(lo, hi, size)
        return float(rng.uniform(lo, hi))

    tau_m = draw(4.0, 30.0)
    equal = np.ndim(tau_m) == 0 and rng.random() < 0.15
    v_rest = float(rng.uniform(-70, -60))
    return LayerSpec(
        name,
        size,
        tau_m=tau_m,
        cm=draw(0.2, 2.0),
        tau_syn_E=tau_m if equal else draw(1.0, 10.0, not uniform_syn),
        tau_syn_I=draw(1.0, 10.0, not uniform_syn),
        v_rest=v_rest,
        v_thresh=v_rest + draw(2.0, 15.0),
        v_reset=v_rest - draw(0.0, 3.0),
        tau_refrac=float(rng.choice([0.0, dt, 2.6 * dt])),
        i_offset=draw(-0.05, 0.1),
        v_init=v_rest + draw(-1.0, 1.0),
    )


def _random_projections(rng, layers, n_in, dt, delay_rng=None) -> list[ProjectionSpec]:
    """One projection per (pre, post, receptor), or, with ``delay_rng``, one per delay: every
    connection then draws its own delay of 1-5 steps (the mixed-delay family)."""
    names = [INPUT] + [layer.name for layer in layers]
    sizes = [n_in] + [layer.size for layer in layers]
    projections = []
    for post in range(1, len(names)):
        k = layer_constants(layers[post - 1], dt)
        pres = [post - 1] + [p for p in range(post - 1) if rng.random() < 0.3]
        for pre in pres:
            for receptor in ["excitatory"] + (["inhibitory"] if rng.random() < 0.5 else []):
                x = "E" if receptor == "excitatory" else "I"
                scale = np.mean(k.theta / _peak_response(k, x)) / np.sqrt(sizes[pre])
                mean = 1.2 if receptor == "excitatory" else -0.3
                w = scale * rng.normal(mean, 1.0, (sizes[pre], sizes[post]))
                mask = rng.random(w.shape) < 0.85 if rng.random() < 0.3 else None
                delay = int(rng.integers(1, 4))
                if delay_rng is None:
                    projections.append(
                        ProjectionSpec(names[pre], names[post], w, receptor, delay, mask)
                    )
                    continue
                base = np.ones(w.shape, bool) if mask is None else mask
                delays = delay_rng.integers(1, 6, w.shape)
                for d in np.unique(delays[base]):
                    sel = base & (delays == d)
                    projections.append(
                        ProjectionSpec(names[pre], names[post], w, receptor, int(d), sel)
                    )
    return projections


def _make_active(spec: NetworkSpec, inputs: SpikeInput, layer_spikes: LayerSpikes) -> NetworkSpec:
    """Scale the excitatory input of silent layers by 1.5 until every layer spikes."""
    for _ in range(20):
        silent = {name for name, spiked in layer_spikes(spec, inputs).items() if not spiked}
        if not silent:
            return spec
        spec = spec.with_weights(
            [
                p.weights * (1.5 if p.post in silent and p.receptor == "excitatory" else 1.0)
                for p in spec.projections
            ]
        )
    raise RuntimeError(f"could not make every layer spike (still silent: {sorted(silent)})")


def random_network(
    seed: int,
    uniform_syn: bool | None = None,
    layer_spikes: LayerSpikes | None = None,
    mixed_delays: bool = False,
) -> RandomNetwork:
    """The random test case number ``seed`` (see the module docstring).

    Parameters
    ----------
    seed : int
        Seeds everything; the same seed always gives the same network.
    uniform_syn : bool, optional
        True: one ``tau_syn_E`` and one ``tau_syn_I`` per layer; False: they may be per-neuron;
        default: per-neuron allowed for every third seed (``seed % 3 == 0``).
    layer_spikes : callable, optional
        ``layer_spikes(spec, inputs) -> {layer name: spiked?}``, the simulator used to make
        every layer spike (default :func:`brian2_layer_spikes`).
    mixed_delays : bool
        Give every connection its own delay of 1-5 steps, so that the connections between two
        layers (one projection, for an engine that merges them) have several delays; the
        network is otherwise that of the same seed.
    """
    rng = np.random.default_rng(seed)
    uniform_syn = seed % 3 != 0 if uniform_syn is None else uniform_syn
    dt = float(rng.choice([0.1, 0.25, 0.5, 1.0]))
    n_steps = int(rng.integers(25, 60))
    sizes = [int(s) for s in rng.integers(2, 8, size=rng.integers(1, 4))]
    sizes.append(int(rng.integers(2, 5)))
    layers = [
        _random_layer(rng, f"layer{index}", size, dt, uniform_syn)
        for index, size in enumerate(sizes)
    ]
    n_in = int(rng.integers(2, 7))
    delay_rng = np.random.default_rng([seed, 2]) if mixed_delays else None
    projections = _random_projections(rng, layers, n_in, dt, delay_rng)
    batch = int(rng.integers(1, 4))
    times = [
        [
            (np.sort(rng.choice(int(0.7 * n_steps), 4, replace=False)) + 1 - rng.uniform(0, 1, 4))
            * dt
            for _ in range(n_in)
        ]
        for _ in range(batch)
    ]
    times[0][0] = np.array([0.0, dt, 2 * dt])  # on the grid, including step 0
    inputs = SpikeInput.from_times(times, dt)
    spec = NetworkSpec(n_in, layers, projections, dt, n_steps)
    spec = _make_active(spec, inputs, layer_spikes or brian2_layer_spikes)
    out = layers[-1]
    shape = (n_steps + 1, batch, out.size)
    dL_dphase = {out.name: rng.normal(size=shape)}
    dL_dV = {out.name: rng.normal(size=shape) / n_steps}
    if len(layers) > 1 and rng.random() < 0.5:  # a loss term on a hidden layer too
        hidden = layers[0]
        dL_dV[hidden.name] = rng.normal(size=(n_steps + 1, batch, hidden.size)) / n_steps
    labels = np.random.default_rng([seed, 1]).integers(0, out.size, batch)
    return RandomNetwork(seed, spec, times, inputs, dL_dphase, dL_dV, labels)
