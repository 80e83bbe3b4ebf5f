"""Plain description of a feed-forward network of PyNN ``IF_curr_exp`` layers.

Nothing here depends on PyNN or on ``pynn_eventprop``: a network is a few frozen dataclasses of
numbers and arrays, in PyNN's units (mV, ms, nF, nA).

* :class:`LayerSpec` -- one population of ``IF_curr_exp`` neurons (scalar or per-neuron
  parameters).
* :class:`ProjectionSpec` -- all-to-all (optionally masked) weights ``(n_pre, n_post)`` in nA
  onto the excitatory or inhibitory synaptic current, one delay in whole steps (>= 1).
* :class:`NetworkSpec` -- the spike-source population ``"input"`` (size ``n_inputs``), the
  layers in feed-forward order (the last one is the output), the projections, ``dt`` (ms) and
  the number of steps ``n_steps`` (the grid is ``t_n = n dt``, ``n = 0 .. n_steps``).
* :class:`SpikeInput` -- the input spikes of a batch as grid steps and phases: a spike at time
  ``t`` is emitted at step ``n = ceil(t/dt)`` with phase ``phi = n - t/dt`` in [0, 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

INPUT = "input"
RECEPTORS = ("excitatory", "inhibitory")
#: Largest spike phase (phases live in [0, 1)); the same clip as pynn_eventprop's engine,
#: representable in float32.
PHASE_MAX = 1.0 - 2.0**-20

#: PyNN's defaults for ``IF_curr_exp`` (mV, ms, nF, nA).
IF_CURR_EXP_DEFAULTS = {
    "tau_m": 20.0,
    "cm": 1.0,
    "tau_syn_E": 5.0,
    "tau_syn_I": 5.0,
    "v_rest": -65.0,
    "v_reset": -65.0,
    "v_thresh": -50.0,
    "tau_refrac": 0.1,
    "i_offset": 0.0,
}
_POSITIVE = ("tau_m", "cm", "tau_syn_E", "tau_syn_I")


def _per_neuron(name: str, value, size: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(f"{name} must be a scalar or have shape ({size},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


@dataclass(frozen=True)
class LayerSpec:
    """A population of PyNN ``IF_curr_exp`` neurons.

    Parameters are scalars or arrays of shape ``(size,)`` in PyNN units: ``tau_m``,
    ``tau_syn_E``, ``tau_syn_I``, ``tau_refrac`` (ms), ``cm`` (nF), ``v_rest``, ``v_reset``,
    ``v_thresh`` (mV), ``i_offset`` (nA).  ``v_init`` is the membrane potential at ``t = 0``
    (mV, default ``v_rest``).  Defaults are PyNN's.  Requirements: ``tau_m, cm, tau_syn_E,
    tau_syn_I > 0``, ``tau_refrac >= 0``, ``v_reset < v_thresh`` and ``v_init < v_thresh``
    (then the membrane is below threshold before every crossing and the spike phase is in
    [0, 1)).
    """

    name: str
    size: int
    tau_m: object = IF_CURR_EXP_DEFAULTS["tau_m"]
    cm: object = IF_CURR_EXP_DEFAULTS["cm"]
    tau_syn_E: object = IF_CURR_EXP_DEFAULTS["tau_syn_E"]
    tau_syn_I: object = IF_CURR_EXP_DEFAULTS["tau_syn_I"]
    v_rest: object = IF_CURR_EXP_DEFAULTS["v_rest"]
    v_reset: object = IF_CURR_EXP_DEFAULTS["v_reset"]
    v_thresh: object = IF_CURR_EXP_DEFAULTS["v_thresh"]
    tau_refrac: object = IF_CURR_EXP_DEFAULTS["tau_refrac"]
    i_offset: object = IF_CURR_EXP_DEFAULTS["i_offset"]
    v_init: object = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or self.name == INPUT:
            raise ValueError(
                f"layer name must be a non-empty string other than {INPUT!r}, got {self.name!r}"
            )
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(
                f"layer {self.name!r}: size must be an integer >= 1, got {self.size!r}"
            )
        for name in _POSITIVE:
            if np.any(self.param(name) <= 0):
                raise ValueError(
                    f"layer {self.name!r}: {name} must be > 0, got {getattr(self, name)!r}"
                )
        if np.any(self.param("tau_refrac") < 0):
            raise ValueError(
                f"layer {self.name!r}: tau_refrac must be >= 0, got {self.tau_refrac!r}"
            )
        thresh = self.param("v_thresh")
        if np.any(self.param("v_reset") >= thresh):
            raise ValueError(
                f"layer {self.name!r}: v_reset must be < v_thresh, got v_reset={self.v_reset!r}, "
                f"v_thresh={self.v_thresh!r}"
            )
        if np.any(self.param("v_init") >= thresh):
            raise ValueError(
                f"layer {self.name!r}: v_init must be < v_thresh, got v_init={self.v_init!r}, "
                f"v_thresh={self.v_thresh!r}"
            )

    def param(self, name: str) -> np.ndarray:
        """Parameter ``name`` as a float array of shape ``(size,)`` (PyNN units)."""
        if name == "v_init" and self.v_init is None:
            name = "v_rest"
        if name != "v_init" and name not in IF_CURR_EXP_DEFAULTS:
            raise KeyError(f"unknown IF_curr_exp parameter {name!r}")
        return _per_neuron(f"layer {self.name!r}: {name}", getattr(self, name), int(self.size))


@dataclass(frozen=True)
class ProjectionSpec:
    """Weights from ``pre`` (``"input"`` or a layer name) to the layer ``post``.

    ``weights`` has shape ``(n_pre, n_post)`` in nA (signed); a spike of presynaptic neuron
    ``j`` with phase ``phi`` adds ``weights[j, i] * a**phi`` to the ``receptor`` current of
    postsynaptic neuron ``i`` ``delay`` steps later (``a = exp(-dt/tau_syn)`` of that current).
    ``mask`` (bool, same shape, default all True) says which connections exist; gradients are
    reported as zero where it is False.
    """

    pre: str
    post: str
    weights: np.ndarray
    receptor: str = "excitatory"
    delay: int = 1
    mask: np.ndarray | None = None

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float)
        if w.ndim != 2 or not np.all(np.isfinite(w)):
            raise ValueError(
                f"projection {self.pre}->{self.post}: weights must be a finite 2-d array "
                f"(n_pre, n_post), got shape {w.shape}"
            )
        object.__setattr__(self, "weights", w)
        if self.receptor not in RECEPTORS:
            raise ValueError(
                f"projection {self.pre}->{self.post}: receptor must be one of {RECEPTORS}, "
                f"got {self.receptor!r}"
            )
        if int(self.delay) != self.delay or self.delay < 1:
            raise ValueError(
                f"projection {self.pre}->{self.post}: delay must be a whole number of steps "
                f">= 1, got {self.delay!r}"
            )
        object.__setattr__(self, "delay", int(self.delay))
        mask = np.ones(w.shape, bool) if self.mask is None else np.asarray(self.mask, bool)
        if mask.shape != w.shape:
            raise ValueError(
                f"projection {self.pre}->{self.post}: mask shape {mask.shape} differs from "
                f"weights shape {w.shape}"
            )
        object.__setattr__(self, "mask", mask)

    @property
    def suffix(self) -> str:
        """``"E"`` or ``"I"``: which synaptic current the projection feeds."""
        return "E" if self.receptor == "excitatory" else "I"


@dataclass(frozen=True)
class NetworkSpec:
    """A feed-forward network: input -> layers[0] -> ... -> layers[-1] (the output).

    Projections may skip layers but must go forward: ``pre`` comes before ``post`` in the
    order ``("input", *layer names)``.  The simulated grid is ``t_n = n dt`` (ms) for
    ``n = 0 .. n_steps``.
    """

    n_inputs: int
    layers: tuple[LayerSpec, ...]
    projections: tuple[ProjectionSpec, ...]
    dt: float
    n_steps: int

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "projections", tuple(self.projections))
        if int(self.n_inputs) != self.n_inputs or self.n_inputs < 1:
            raise ValueError(f"n_inputs must be an integer >= 1, got {self.n_inputs!r}")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be finite and > 0 (ms), got {self.dt!r}")
        if int(self.n_steps) != self.n_steps or self.n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {self.n_steps!r}")
        if not self.layers:
            raise ValueError("a network needs at least one layer")
        names = [INPUT] + [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique and not {INPUT!r}, got {names[1:]}")
        order = {name: k for k, name in enumerate(names)}
        for proj in self.projections:
            label = f"projection {proj.pre}->{proj.post}"
            if proj.pre not in order or proj.post not in order or proj.post == INPUT:
                raise ValueError(f"{label}: pre must be one of {names} and post one of {names[1:]}")
            if order[proj.pre] >= order[proj.post]:
                raise ValueError(
                    f"{label}: only feed-forward projections (pre before post in "
                    f"{names}) are supported"
                )
            shape = (self.size(proj.pre), self.size(proj.post))
            if proj.weights.shape != shape:
                raise ValueError(
                    f"{label}: weights must have shape {shape}, got {proj.weights.shape}"
                )

    def size(self, name: str) -> int:
        """Number of neurons of ``"input"`` or of a layer."""
        return int(self.n_inputs) if name == INPUT else int(self.layer(name).size)

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers are {[x.name for x in self.layers]}")

    @property
    def output(self) -> LayerSpec:
        return self.layers[-1]

    def incoming(self, name: str) -> list[int]:
        """Indices of the projections onto layer ``name``."""
        return [k for k, p in enumerate(self.projections) if p.post == name]

    def outgoing(self, name: str) -> list[int]:
        """Indices of the projections from ``name`` (a layer or ``"input"``)."""
        return [k for k, p in enumerate(self.projections) if p.pre == name]

    def with_weights(self, weights: Sequence[np.ndarray]) -> NetworkSpec:
        """The same network with new weight matrices (one per projection, same order)."""
        if len(weights) != len(self.projections):
            raise ValueError(f"need {len(self.projections)} weight matrices, got {len(weights)}")
        projections = tuple(
            ProjectionSpec(p.pre, p.post, w, p.receptor, p.delay, p.mask)
            for p, w in zip(self.projections, weights, strict=True)
        )
        return NetworkSpec(self.n_inputs, self.layers, projections, self.dt, self.n_steps)


@dataclass(frozen=True)
class SpikeInput:
    """Input spikes of a batch, one entry per spike, on the grid of ``dt``.

    Attributes
    ----------
    batch_size : int
    sample, neuron, step : int arrays
        Which sample of the batch, which input neuron, emission step ``n`` (``t_n = n dt``).
    phase : float array
        ``phi`` in [0, 1): the spike happened at ``(step - phase) dt``.
    """

    batch_size: int
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    neuron: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    step: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")
        arrays = [np.asarray(getattr(self, k)).ravel() for k in ("sample", "neuron", "step")]
        sample, neuron, step = (a.astype(np.int64) for a in arrays)
        phase = np.asarray(self.phase, dtype=float).ravel()
        if not (len(sample) == len(neuron) == len(step) == len(phase)):
            raise ValueError("sample, neuron, step and phase must have the same length")
        if np.any((sample < 0) | (sample >= self.batch_size)):
            raise ValueError(f"sample indices must be in [0, {self.batch_size}), got {sample}")
        if np.any(step < 0) or np.any(neuron < 0):
            raise ValueError("input spike steps and neuron indices must be >= 0")
        if np.any(~np.isfinite(phase)) or np.any((phase < 0) | (phase >= 1)):
            raise ValueError(f"input spike phases must be in [0, 1), got {phase}")
        if np.unique(np.stack([sample, neuron, step]), axis=1).shape[1] != len(step):
            raise ValueError(
                "an input neuron has two spikes in the same step of one sample; use a smaller dt"
            )
        for name, value in zip(
            ("sample", "neuron", "step", "phase"), (sample, neuron, step, phase), strict=True
        ):
            object.__setattr__(self, name, value)

    @classmethod
    def from_times(cls, times: Sequence[Sequence], dt: float) -> SpikeInput:
        """From spike times (ms): ``times[b][j]`` lists the spikes of input ``j`` in sample ``b``.

        Step ``n = ceil(t/dt)`` (times within 1e-9 steps of a grid point go on it) and phase
        ``n - t/dt`` clipped to [0, 1).  Times must be >= 0.
        """
        rows = []
        for b, sample in enumerate(times):
            for j, neuron_times in enumerate(sample):
                for t in np.asarray(neuron_times, dtype=float).ravel():
                    if not (np.isfinite(t) and t >= 0):
                        raise ValueError(f"input spike times must be finite and >= 0, got {t!r}")
                    x = t / dt
                    n = np.ceil(x - 1e-9)
                    rows.append((b, j, int(n), min(max(n - x, 0.0), PHASE_MAX)))
        arr = np.array(rows, dtype=float).reshape(-1, 4)
        return cls(len(times), arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])

    @classmethod
    def from_raster(cls, spikes: np.ndarray, phase: np.ndarray) -> SpikeInput:
        """From a raster ``spikes[n, b, j]`` (bool) and ``phase[n, b, j]`` (steps 0, 1, ..)."""
        spikes = np.asarray(spikes, bool)
        if spikes.ndim != 3 or np.shape(phase) != spikes.shape:
            raise ValueError("spikes and phase must both have shape (n_steps, batch, size)")
        n, b, j = np.nonzero(spikes)
        return cls(spikes.shape[1], b, j, n, np.asarray(phase, float)[n, b, j])

    def raster(self, n_steps: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(spikes, phase)`` of shape ``(n_steps, batch, size)`` for steps ``0 .. n_steps-1``.

        Spikes emitted at step ``n_steps`` or later cannot reach any neuron inside the simulated
        window (delays are >= 1 step) and are left out.
        """
        if np.any(self.neuron >= size):
            raise ValueError(
                f"input neuron index {self.neuron.max()} out of range for {size} inputs"
            )
        keep = self.step < n_steps
        spikes = np.zeros((n_steps, self.batch_size, size), bool)
        phase = np.zeros((n_steps, self.batch_size, size))
        idx = (self.step[keep], self.sample[keep], self.neuron[keep])
        spikes[idx] = True
        phase[idx] = self.phase[keep]
        return spikes, phase
