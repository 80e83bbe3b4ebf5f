"""Random network families for the convergence study, with a conditioning check.

Every family draws, from one seed, a feed-forward network of ``IF_curr_exp`` layers (5 inputs,
hidden layer(s), 3 outputs, a batch of 2, 30 ms) whose connections each carry their own
real-valued delay, so that every projection mixes delays.  The families stress one feature
each, on top of that:

``mixed_delays``  delays of 0.5-4 ms, one spike or two per neuron;
``multi_spike``   strong drive: hidden neurons fire several times (the reset term of the adjoint);
``refractory``    strong drive and refractory periods of 1-3 ms (the clamp and its end term);
``inhibition``    inhibitory projections (negative weights on the inhibitory current) into the
                  hidden and the output layer, ``tau_syn_I != tau_syn_E``;
``per_neuron``    two hidden layers, every parameter drawn per neuron (``tau_m``, ``cm``, both
                  ``tau_syn``, thresholds, resets, refractory periods, ``i_offset``,
                  initial ``v``), a skip projection input -> output;
``recurrent``     the hidden layer also projects onto itself, excitatory and inhibitory
                  (delays 0.5-2.5 ms), so errors travel around a loop in both passes.

Each case comes in two variants of its output layer: spiking (for the time-to-first-spike and
the mean-voltage losses) and non-spiking (``v_thresh`` out of reach, no inhibitory input, for
the max-voltage loss, whose readout W&P define on non-spiking outputs and which then has a
smooth maximum).

**Conditioning.**  Brian2's spikes are detected on its grid, so its arrivals are off by up to a
step or two.  A network in which such a shift changes the spike pattern (a crossing that grazes
the threshold appears or vanishes) or moves a spike by much more than the shift (a crossing
with a tiny slope) would fail the comparison for a reason that is not an error of either
method.  :func:`conditioning` measures this on the exact engine: it jitters every delay and
every input spike time by up to :data:`JITTER` ms and rejects the network if any spike count
changes or any spike moves by more than :data:`GAIN` times the jitter, or if a spike falls
within the last millisecond of the run.  Rejected draws are replaced by the next draw of the
same random stream, so a seed always gives the same network, chosen by this check and not by
hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from brian2_reference import INPUT, LayerSpec, NetworkSpec, ProjectionSpec, SpikeInput

from .network_bridge import compiled_network, engine_spikes

FAMILIES = ("mixed_delays", "multi_spike", "refractory", "inhibition", "per_neuron", "recurrent")
DURATION = 30.0  # ms, a whole multiple of every Brian2 step of the study
N_INPUTS, N_HIDDEN, N_OUTPUTS, BATCH = 5, 6, 3, 2
JITTER = 0.1  # ms: the largest Brian2 step of the study
GAIN = 4.0
DRAWS = 3
ENGINE_DT = 0.1  # ms: where the engine samples v and the adjoints
MAX_ATTEMPTS = 60


@dataclass(frozen=True)
class Case:
    """A drawn network: ``spec`` (spiking output), ``readout_spec`` (non-spiking output),
    ``inputs``, ``labels`` and how many draws the conditioning check rejected first."""

    family: str
    seed: int
    spec: NetworkSpec
    readout_spec: NetworkSpec
    inputs: SpikeInput
    labels: np.ndarray
    rejected: int


def _layer(rng, family, name, size, strong_refractory) -> LayerSpec:
    per = family == "per_neuron"

    def draw(lo, hi):
        return rng.uniform(lo, hi, size) if per else float(rng.uniform(lo, hi))

    tau_ref = (
        draw(0.5, 2.5) if per else (float(rng.uniform(1.0, 3.0)) if strong_refractory else 0.0)
    )
    return LayerSpec(
        name,
        size,
        tau_m=draw(10.0, 20.0),
        cm=draw(0.7, 1.3) if per else 1.0,
        tau_syn_E=draw(3.0, 6.0),
        tau_syn_I=draw(1.5, 2.5) if family in ("inhibition", "per_neuron") else draw(3.0, 6.0),
        v_rest=-65.0,
        v_reset=-65.0 - draw(0.0, 3.0) if per else -65.0,
        v_thresh=-65.0 + draw(8.0, 12.0) if per else -55.0,
        tau_refrac=tau_ref,
        i_offset=draw(0.0, 0.3) if per else 0.0,
        v_init=-65.0 + draw(-2.0, 2.0) if per else None,
    )


def _psp_peak(layer: LayerSpec, receptor: str) -> float:
    """Mean over neurons of the peak of ``V`` after a unit current jump (mV/nA)."""
    tau_m, tau_s = layer.param("tau_m"), layer.param("tau_syn_" + receptor[0].upper())
    t = np.linspace(0.0, 60.0, 601)[:, None]
    r = tau_m / layer.param("cm")
    v = r * tau_s / (tau_s - tau_m) * (np.exp(-t / tau_s) - np.exp(-t / tau_m))
    return float(v.max(axis=0).mean())


def _projection(rng, pre, post, n_pre, layer, receptor, scale, delays) -> ProjectionSpec:
    theta = float(np.mean(layer.param("v_thresh") - layer.param("v_rest")))
    w = scale * theta / _psp_peak(layer, receptor) * rng.uniform(0.2, 1.0, (n_pre, layer.size))
    if receptor == "inhibitory":
        w = -w
    mask = rng.random(w.shape) < 0.9
    return ProjectionSpec(pre, post, w, rng.uniform(*delays, w.shape), receptor, mask)


def _network(rng, family) -> NetworkSpec:
    strong = family in ("multi_spike", "refractory")
    sizes = [N_HIDDEN, N_HIDDEN] if family == "per_neuron" else [N_HIDDEN]
    names = [f"hidden{k}" for k in range(len(sizes))] + ["output"]
    layers = [
        _layer(rng, family, n, s, family == "refractory")
        for n, s in zip(names, [*sizes, N_OUTPUTS], strict=True)
    ]
    delays = (0.5, 4.0) if family == "mixed_delays" else (0.5, 2.5)
    drive = 1.0 if strong else 0.5
    pres = [(INPUT, N_INPUTS)] + [(n, s) for n, s in zip(names[:-1], sizes, strict=True)]
    projections = []
    for (pre, n_pre), layer in zip(pres, layers, strict=True):
        scale = drive * 2.0 / np.sqrt(n_pre) * (1.0 if pre == INPUT else 0.6)
        projections.append(
            _projection(rng, pre, layer.name, n_pre, layer, "excitatory", scale, delays)
        )
        if family in ("inhibition", "per_neuron"):
            projections.append(
                _projection(rng, pre, layer.name, n_pre, layer, "inhibitory", scale, delays)
            )
    if family == "per_neuron":
        projections.append(
            _projection(rng, INPUT, "output", N_INPUTS, layers[-1], "excitatory", 0.5, delays)
        )
    if family == "recurrent":
        hidden = layers[0]
        for receptor in ("excitatory", "inhibitory"):
            projections.append(
                _projection(rng, hidden.name, hidden.name, N_HIDDEN, hidden, receptor, 0.3, delays)
            )
    return NetworkSpec(N_INPUTS, layers, projections, DURATION)


def _inputs(rng) -> SpikeInput:
    """One to three spikes per input neuron in the first 12 ms, at least 1 ms apart."""
    times = []
    for _ in range(BATCH):
        sample = []
        for _ in range(N_INPUTS):
            n = int(rng.integers(1, 4))
            sample.append(np.sort(rng.uniform(0.0, 10.0, n)) + np.arange(n))
        times.append(sample)
    return SpikeInput(times)


def _activate(spec: NetworkSpec, inputs: SpikeInput) -> NetworkSpec:
    """Scale the excitatory weights onto a layer by 1.25 until every neuron of it spikes in
    at least one sample (so that every neuron carries a gradient)."""
    for _ in range(12):
        spikes = engine_spikes(spec, inputs, ENGINE_DT)
        silent = {
            name
            for name, per_sample in spikes.items()
            if not all(any(len(s[i]) for s in per_sample) for i in range(len(per_sample[0])))
        }
        if not silent:
            break
        spec = replace(
            spec,
            projections=tuple(
                replace(p, weights=p.weights * 1.25)
                if p.post in silent and p.receptor == "excitatory"
                else p
                for p in spec.projections
            ),
        )
    return spec


def conditioning(spec: NetworkSpec, inputs: SpikeInput, rng) -> str | None:
    """``None`` if ``spec`` is well conditioned (module docstring), else the reason."""
    network = compiled_network(spec)
    base = engine_spikes(spec, inputs, ENGINE_DT, network)
    late = [t for per in base.values() for s in per for n in s for t in n if t > DURATION - 1.0]
    if late:
        return f"a spike at {late[0]:.3f} ms, within 1 ms of the end of the run"
    for _ in range(DRAWS):
        jittered = compiled_network(spec)
        for p in jittered.projections:
            p.delays[p.mask] += rng.uniform(-JITTER, JITTER, p.mask.sum())
        times = [
            [np.clip(t + rng.uniform(-JITTER, JITTER, t.size), 0.0, None) for t in sample]
            for sample in inputs.times
        ]
        moved = engine_spikes(spec, SpikeInput(times), ENGINE_DT, jittered)
        for name, per_sample in base.items():
            for b, per_neuron in enumerate(per_sample):
                for i, t in enumerate(per_neuron):
                    u = moved[name][b][i]
                    if u.size != t.size:
                        return f"{name}[{i}] (sample {b}) fires {u.size} times instead of {t.size}"
                    if t.size and np.abs(u - t).max() > GAIN * JITTER:
                        return f"{name}[{i}] (sample {b}) moves by {np.abs(u - t).max():.3f} ms"
    return None


def _readout_variant(spec: NetworkSpec) -> NetworkSpec:
    out = spec.output
    silent = replace(out, v_thresh=out.param("v_rest") + 1000.0)
    projections = tuple(
        p for p in spec.projections if not (p.post == out.name and p.receptor == "inhibitory")
    )
    return replace(spec, layers=(*spec.layers[:-1], silent), projections=projections)


def draw_case(family: str, seed: int) -> Case:
    """The network of ``family`` number ``seed`` (deterministic; see the module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    rng = np.random.default_rng([FAMILIES.index(family), seed])
    for attempt in range(MAX_ATTEMPTS):
        spec, inputs = _network(rng, family), _inputs(rng)
        spec = _activate(spec, inputs)
        readout = _readout_variant(spec)
        reason = conditioning(spec, inputs, rng) or conditioning(readout, inputs, rng)
        if reason is None:
            labels = rng.integers(0, N_OUTPUTS, BATCH)
            return Case(family, seed, spec, readout, inputs, labels, attempt)
    raise RuntimeError(
        f"no well-conditioned {family} network in {MAX_ATTEMPTS} draws (seed {seed}); "
        f"last rejection: {reason}"
    )
