"""Plain description of a network of PyNN ``IF_curr_exp`` layers.

Nothing here depends on PyNN or on ``pynn_eventprop``: a network is a few frozen dataclasses of
numbers and arrays in PyNN's units (mV, ms, nF, nA).

* :class:`LayerSpec` -- one population of ``IF_curr_exp`` neurons (scalar or per-neuron
  parameters).
* :class:`ProjectionSpec` -- weights ``(n_pre, n_post)`` in nA onto the excitatory or the
  inhibitory synaptic current, a real-valued delay (ms) per connection, a mask of the
  connections that exist.
* :class:`NetworkSpec` -- the spike source ``"input"`` (``n_inputs`` neurons), the layers in
  order (the last one is the output; a layer may also project onto itself), the projections
  and the duration (ms).
* :class:`SpikeInput` -- the input spike times of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INPUT = "input"
RECEPTORS = ("excitatory", "inhibitory")

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


def _per_neuron(label: str, value, size: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(f"{label} must be a scalar or have shape ({size},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{label} must be finite, got {value!r}")
    return arr


@dataclass(frozen=True)
class LayerSpec:
    """A population of PyNN ``IF_curr_exp`` neurons.

    Parameters are scalars or arrays ``(size,)`` in PyNN units: ``tau_m``, ``tau_syn_E``,
    ``tau_syn_I``, ``tau_refrac`` (ms), ``cm`` (nF), ``v_rest``, ``v_reset``, ``v_thresh``
    (mV), ``i_offset`` (nA); ``v_init`` is the membrane potential at ``t = 0`` (mV, default
    ``v_rest``).  Requirements: ``tau_m, cm, tau_syn_E, tau_syn_I > 0``, ``tau_syn_x != tau_m``
    (Brian2's exact integrator solves the equations symbolically for distinct time constants),
    ``tau_refrac >= 0``, ``v_reset < v_thresh`` and ``v_init < v_thresh``.
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
        label = f"layer {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name == INPUT:
            raise ValueError(f"layer name must be a non-empty string other than {INPUT!r}")
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(f"{label}: size must be an integer >= 1, got {self.size!r}")
        for name in _POSITIVE:
            if np.any(self.param(name) <= 0):
                raise ValueError(f"{label}: {name} must be > 0, got {getattr(self, name)!r}")
        for x in "EI":
            gap = np.abs(self.param(f"tau_syn_{x}") - self.param("tau_m"))
            if np.any(gap < 1e-3 * self.param("tau_m")):
                raise ValueError(
                    f"{label}: tau_syn_{x} must differ from tau_m by more than 0.1 %, got "
                    f"tau_syn_{x}={getattr(self, f'tau_syn_{x}')!r}, tau_m={self.tau_m!r}"
                )
        if np.any(self.param("tau_refrac") < 0):
            raise ValueError(f"{label}: tau_refrac must be >= 0, got {self.tau_refrac!r}")
        thresh = self.param("v_thresh")
        for name in ("v_reset", "v_init"):
            if np.any(self.param(name) >= thresh):
                raise ValueError(
                    f"{label}: {name} must be < v_thresh, got {name}="
                    f"{getattr(self, name)!r}, v_thresh={self.v_thresh!r}"
                )

    def param(self, name: str) -> np.ndarray:
        """Parameter ``name`` as a float array ``(size,)`` (PyNN units)."""
        if name == "v_init" and self.v_init is None:
            name = "v_rest"
        if name != "v_init" and name not in IF_CURR_EXP_DEFAULTS:
            raise KeyError(f"unknown IF_curr_exp parameter {name!r}")
        return _per_neuron(f"layer {self.name!r}: {name}", getattr(self, name), int(self.size))


@dataclass(frozen=True)
class ProjectionSpec:
    """Connections from ``pre`` (``"input"`` or a layer name) to the layer ``post``.

    ``weights`` and ``delays`` have shape ``(n_pre, n_post)``: a spike of ``pre`` neuron ``j``
    at ``t`` adds ``weights[j, i]`` (nA, signed) to the ``receptor`` current of ``post`` neuron
    ``i`` at ``t + delays[j, i]`` (ms, real-valued, > 0).  ``mask`` (bool, default all True)
    says which connections exist; gradients are zero where it is False.
    """

    pre: str
    post: str
    weights: np.ndarray
    delays: np.ndarray
    receptor: str = "excitatory"
    mask: np.ndarray | None = None

    def __post_init__(self):
        label = f"projection {self.pre}->{self.post}"
        w = np.asarray(self.weights, dtype=float)
        if w.ndim != 2 or not np.all(np.isfinite(w)):
            raise ValueError(f"{label}: weights must be a finite 2-d array (n_pre, n_post)")
        mask = np.ones(w.shape, bool) if self.mask is None else np.asarray(self.mask, bool)
        d = np.broadcast_to(np.asarray(self.delays, dtype=float), w.shape).copy()
        if mask.shape != w.shape:
            raise ValueError(f"{label}: mask shape {mask.shape} differs from {w.shape}")
        if not np.all(np.isfinite(d[mask])) or np.any(d[mask] <= 0):
            raise ValueError(f"{label}: delays must be finite and > 0 ms where connected")
        if self.receptor not in RECEPTORS:
            raise ValueError(f"{label}: receptor must be one of {RECEPTORS}, got {self.receptor!r}")
        object.__setattr__(self, "weights", np.where(mask, w, 0.0))
        object.__setattr__(self, "delays", np.where(mask, d, 0.0))
        object.__setattr__(self, "mask", mask)

    @property
    def suffix(self) -> str:
        """``"E"`` or ``"I"``: the synaptic current the projection feeds."""
        return "E" if self.receptor == "excitatory" else "I"


@dataclass(frozen=True)
class NetworkSpec:
    """A network ``input -> layers[0] -> ... -> layers[-1]`` run for ``duration`` ms.

    Projections may skip layers and may connect a layer to itself (recurrent), but must not go
    back (``pre`` not after ``post`` in ``("input", *layer names)``).
    """

    n_inputs: int
    layers: tuple
    projections: tuple
    duration: float

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "projections", tuple(self.projections))
        if int(self.n_inputs) != self.n_inputs or self.n_inputs < 1:
            raise ValueError(f"n_inputs must be an integer >= 1, got {self.n_inputs!r}")
        if not (np.isfinite(self.duration) and self.duration > 0):
            raise ValueError(f"duration must be finite and > 0 (ms), got {self.duration!r}")
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
            if order[proj.pre] > order[proj.post]:
                raise ValueError(
                    f"{label}: projections go forward or within a layer (recurrent), not back"
                )
            shape = (self.size(proj.pre), self.size(proj.post))
            if proj.weights.shape != shape:
                raise ValueError(f"{label}: weights must have shape {shape}")

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


@dataclass(frozen=True)
class SpikeInput:
    """Input spike times of a batch: ``times[b][j]`` lists the spikes (ms) of input ``j`` in
    sample ``b``, all in ``[0, duration)``.

    Brian2's ``SpikeGeneratorGroup`` takes at most one spike per neuron and time step, so the
    spikes of one input neuron must be at least one Brian2 step apart.
    """

    times: tuple

    def __post_init__(self):
        rows = tuple(
            tuple(np.sort(np.atleast_1d(np.asarray(t, float))) for t in sample)
            for sample in self.times
        )
        if not rows or len({len(r) for r in rows}) != 1:
            raise ValueError("times must list the same number of input neurons in every sample")
        for sample in rows:
            for t in sample:
                if not np.all(np.isfinite(t)) or np.any(t < 0):
                    raise ValueError(f"input spike times must be finite and >= 0, got {t}")
        object.__setattr__(self, "times", rows)

    @property
    def batch_size(self) -> int:
        return len(self.times)

    @property
    def n_inputs(self) -> int:
        return len(self.times[0])

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sample, neuron, time)`` of every spike (int, int, float arrays)."""
        rows = [(b, j, t) for b, s in enumerate(self.times) for j, ts in enumerate(s) for t in ts]
        arr = np.array(rows, dtype=float).reshape(-1, 3)
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]

    def check_step(self, dt: float) -> None:
        """Raise if an input neuron has two spikes closer than ``dt`` (ms)."""
        for sample in self.times:
            for j, t in enumerate(sample):
                if t.size > 1 and np.min(np.diff(t)) < dt:
                    raise ValueError(
                        f"input neuron {j} has two spikes closer than the Brian2 step {dt} ms"
                    )
