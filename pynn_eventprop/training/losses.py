"""Classification losses on an output population, with their exact gradients.

Every loss reads what the engine recorded for the output population over one batch of ``B``
samples on the grid steps ``n = 1..T`` (array index ``k = n - 1``) of step ``dt`` (ms):

* ``spikes`` -- bool ``(T, B, N)``, a spike at step ``n``;
* ``phase`` -- float ``(T, B, N)`` in ``[0, 1)``, the spike time is ``t = (n - phase) dt``;
* ``v`` -- float ``(T, B, N)``, the membrane voltage in the EventProp frame ``V = v - v_rest``
  (mV) at the grid points, after any reset;
* ``labels`` -- int ``(B,)`` in ``[0, N)``;

and returns a :class:`LossResult` holding the batch-mean loss ``L = (1/B) sum_b l_b``, the
per-sample losses ``l_b``, the predictions and the two gradients the engine's backward pass
(``docs/equations.md`` section 3) needs:

* ``dL_dphase`` ``(T, B, N)`` -- nonzero only at the spikes the loss uses.  Because
  ``t = (n - phase) dt``, ``dL/dphase = -dt dL/dt_spike`` (:func:`time_to_phase_gradient`);
* ``dL_dv`` ``(T, B, N)`` -- ``dL/dV[n]`` (1/mV).

Both are gradients of the batch *mean*, so they carry the factor ``1/B``.  The losses are pure
numpy and independent of the PyNN layer; ``docs/losses.md`` derives every formula.

References
----------
.. [WP21] T. C. Wunderlich and C. Pehle, "Event-based backpropagation can compute exact
   gradients for spiking neural networks", Sci. Rep. 11, 12829 (2021).
.. [NTK22] T. Nowotny, J. P. Turner and J. C. Knight, "Loss shaping enhances exact gradient
   learning with EventProp in spiking neural networks", arXiv:2212.01232 (2022).
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AverageVoltageCrossEntropy",
    "Loss",
    "LossResult",
    "MaxVoltageCrossEntropy",
    "TTFSCrossEntropy",
    "softmax_cross_entropy",
    "time_to_phase_gradient",
]


@dataclass(eq=False, slots=True)
class LossResult:
    """What a loss returns for one batch.

    Attributes
    ----------
    loss : float
        Batch-mean loss ``L = (1/B) sum_b l_b``.
    per_sample : ndarray, shape (B,)
        Per-sample losses ``l_b``.
    dL_dphase : ndarray, shape (T, B, N)
        ``dL/dphase`` of the batch mean; nonzero only at spikes the loss uses.
    dL_dv : ndarray, shape (T, B, N)
        ``dL/dV`` (1/mV) of the batch mean.
    predictions : ndarray of int, shape (B,)
        Predicted class per sample, ``-1`` when the loss cannot predict one (no output spiked
        under :class:`TTFSCrossEntropy`).
    correct : ndarray of bool, shape (B,)
        ``predictions == labels``.
    readout : ndarray, shape (B, N)
        The per-neuron quantity the loss is built on: first-spike times (ms, ``T dt`` for
        silent neurons) for :class:`TTFSCrossEntropy`, the logits (mV) for voltage losses.
    """

    loss: float
    per_sample: np.ndarray
    dL_dphase: np.ndarray
    dL_dv: np.ndarray
    predictions: np.ndarray
    correct: np.ndarray
    readout: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of correct predictions in the batch."""
        return float(self.correct.mean())


def time_to_phase_gradient(dL_dt, dt: float):
    """Convert a gradient w.r.t. spike times (1/ms) into one w.r.t. phases.

    A spike at grid step ``n`` with phase ``phi`` happened at ``t = (n - phi) dt``, so
    ``dt/dphi = -dt`` and ``dL/dphi = -dt * dL/dt``.
    """
    return -dt * dL_dt


@functools.lru_cache(maxsize=64)
def _plane_index(batch: int, n_out: int):
    """Flat indices into a ``(B, N)`` plane: ``cell[b, i] = b N + i`` and ``row[b] = b N``.

    Entry ``(k, b, i)`` of a C-contiguous ``(T, B, N)`` array has flat index
    ``k B N + cell[b, i]``; flat indexing is several times cheaper than ``take_along_axis``
    for arrays this small.  Cached read-only arrays (batch shapes repeat every batch).
    """
    cell = np.arange(batch * n_out).reshape(batch, n_out)
    row = np.arange(0, batch * n_out, n_out)
    cell.flags.writeable = False
    row.flags.writeable = False
    return cell, row


def _softmax_ce(z: np.ndarray, at_label: np.ndarray):
    """``softmax_cross_entropy`` with the labels given as flat indices into ``z``."""
    shifted = z - np.maximum.reduce(z, axis=1, keepdims=True)
    e = np.exp(shifted)
    total = np.add.reduce(e, axis=1, keepdims=True)
    per_sample = np.log(total[:, 0]) - shifted.take(at_label)
    dl_dz = e / total
    dl_dz.reshape(-1)[at_label] -= 1.0
    return per_sample, dl_dz


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """Cross-entropy of ``softmax(logits)`` against integer labels, and its gradient.

    ``l_b = -log softmax(z_b)[y_b] = logsumexp(z_b) - z_{b, y_b}`` and
    ``dl_b/dz_{b,i} = softmax(z_b)_i - [i == y_b]``, computed after subtracting the row
    maximum so that no exponential overflows.

    Parameters
    ----------
    logits : ndarray, shape (B, N)
    labels : ndarray of int, shape (B,)

    Returns
    -------
    per_sample : ndarray, shape (B,)
    dl_dz : ndarray, shape (B, N)
        Gradient of each *per-sample* loss (no ``1/B``).
    """
    logits = np.ascontiguousarray(logits)
    _, row = _plane_index(*logits.shape)
    return _softmax_ce(logits, row + np.asarray(labels))


def _check_param(name: str, value, allowed: str, ok=None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    if not math.isfinite(value) or (ok is not None and not ok(value)):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")


def _float_dtype(*arrays) -> np.dtype:
    dtypes = [a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


class Loss(ABC):
    """Base class: validates the recorded arrays and delegates to ``_evaluate``.

    Subclasses declare in :attr:`requires` which recorded arrays they read (``"spikes"``,
    ``"phase"``, ``"v"``) so the engine records only those; the others may be passed as
    ``None``.
    """

    @property
    @abstractmethod
    def requires(self) -> tuple[str, ...]:
        """Names of the recorded arrays this loss reads."""

    def evaluate(self, spikes, phase, v, labels, dt: float) -> LossResult:
        """Loss, gradients and predictions for one batch.

        Parameters
        ----------
        spikes : ndarray of bool, shape (T, B, N), or None if not in :attr:`requires`
            Spike at grid step ``n = k + 1`` for array index ``k``.
        phase : ndarray, shape (T, B, N), or None if not in :attr:`requires`
            Spike phase in ``[0, 1)``: spike time ``(n - phase) dt`` (ms).
        v : ndarray, shape (T, B, N), or None if not in :attr:`requires`
            Membrane voltage ``V = v - v_rest`` (mV) at steps ``1..T``, after reset.
        labels : array_like of int, shape (B,)
            Class of each sample, in ``[0, N)``.
        dt : float
            Grid step (ms).

        Returns
        -------
        LossResult

        Raises
        ------
        ValueError
            If a required array is missing, shapes disagree, a label is outside ``[0, N)``
            or ``dt`` is not a positive number.
        """
        arrays = {"spikes": spikes, "phase": phase, "v": v}
        shape = None
        for name in self.requires:
            arr = arrays[name]
            if arr is None:
                raise ValueError(f"{type(self).__name__} needs {name!r}, got None")
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise ValueError(
                    f"{name} has shape {arr.shape}, but {self.requires[0]!r} has {shape}"
                )
            if name == "spikes" and arr.dtype != bool:
                arr = arr.astype(bool)
            if not arr.flags.c_contiguous:  # the losses use flat indices
                arr = np.ascontiguousarray(arr)
            arrays[name] = arr
        if len(shape) != 3 or 0 in shape:
            raise ValueError(f"recorded arrays must have a non-empty shape (T, B, N), got {shape}")
        labels = np.asarray(labels)
        if labels.shape != shape[1:2] or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integers of shape ({shape[1]},), got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        labels = labels.astype(np.intp, copy=False)
        # viewed as unsigned, negative labels become huge: one reduction checks both ends
        if np.maximum.reduce(labels.view(np.uintp)) >= shape[2]:
            raise ValueError(
                f"labels must lie in [0, {shape[2]}) (one class per output neuron), got "
                f"values {labels.min()}..{labels.max()}"
            )
        if not (isinstance(dt, int | float | np.number) and 0 < dt < math.inf):
            raise ValueError(f"dt must be a finite number > 0 (ms), got {dt!r}")
        return self._evaluate(arrays["spikes"], arrays["phase"], arrays["v"], labels, float(dt))

    __call__ = evaluate

    @abstractmethod
    def _evaluate(self, spikes, phase, v, labels, dt) -> LossResult:
        """Compute the result on validated C-contiguous arrays (labels as ``intp``)."""


@dataclass(frozen=True)
class TTFSCrossEntropy(Loss):
    r"""Time-to-first-spike cross-entropy of Wunderlich & Pehle [WP21]_ (their Yin-Yang loss).

    With ``t_i`` the first spike time (ms) of output neuron ``i`` in a sample with label
    ``y``, ``t_i = T dt`` (the end of the window) for a silent neuron::

        l = -log( exp(-t_y/xi) / sum_i exp(-t_i/xi) ) + alpha (exp(t_y/beta) - 1)
            + silent_push (theta - max_n V_y[n])        only if neuron y is silent

    The first term rewards the label neuron for firing first, the second for firing early.
    Gradients (per sample; the result carries the batch mean's ``1/B``)::

        dl/dt_i = (delta_iy - softmax(-t/xi)_i) / xi + delta_iy (alpha/beta) exp(t_y/beta)
        dl/dphase_i[n_i] = -dt dl/dt_i           at the first spike's step n_i only

    A silent neuron's ``t = T dt`` is a constant, so it receives no gradient: silent outputs
    stall training.  The optional third term keeps the label neuron alive: when it is silent,
    ``silent_push * (theta - max_n V_y[n])`` adds ``dl/dV_y[n*] = -silent_push`` at the step
    ``n*`` of its voltage maximum (the first one on an exact tie), so gradient descent raises
    that maximum towards the threshold.  The term is >= 0 (a silent neuron stays below
    threshold) and tends to 0 as the neuron approaches firing; when it starts to fire, its
    ``t_y`` drops from ``T dt`` and both other terms, increasing in ``t_y``, can only drop
    too, so the push never works against the main loss.  Non-label silent outputs are left
    alone: ``t = T dt`` is already the best value for them.

    Prediction: the output neuron with the earliest first spike (lowest index on an exact
    tie); a spiking neuron beats a silent one; ``-1`` (never correct) when all are silent.

    Parameters
    ----------
    xi : float
        Softmax temperature ``xi`` (ms), W&P's ``tau_0``.  Default 0.5 ms (W&P's Yin-Yang).
    alpha : float
        Weight of the early-firing regulariser (dimensionless, >= 0).  Default 3e-3.
    beta : float
        Time constant ``beta`` of the regulariser (ms), W&P's ``tau_1``.  Default 6.4 ms.
    silent_push : float
        Coefficient of the silent-label term (1/mV, >= 0); 0 (default) disables it.
    theta : float or None
        Threshold in the EventProp frame, ``v_thresh - v_rest`` (mV).  Needed when
        ``silent_push > 0``; it sets the term's value only, not its gradient.
    """

    xi: float = 0.5
    alpha: float = 3e-3
    beta: float = 6.4
    silent_push: float = 0.0
    theta: float | None = None

    def __post_init__(self):
        _check_param("xi", self.xi, "> 0 (ms)", lambda x: x > 0)
        _check_param("alpha", self.alpha, ">= 0", lambda x: x >= 0)
        _check_param("beta", self.beta, "> 0 (ms)", lambda x: x > 0)
        _check_param("silent_push", self.silent_push, ">= 0 (1/mV)", lambda x: x >= 0)
        if self.silent_push > 0 and self.theta is None:
            raise ValueError(
                "theta (the threshold v_thresh - v_rest, mV) is required when silent_push > 0"
            )
        if self.theta is not None:
            _check_param("theta", self.theta, "(mV)")

    @property
    def requires(self) -> tuple[str, ...]:
        return ("spikes", "phase", "v") if self.silent_push > 0 else ("spikes", "phase")

    def _evaluate(self, spikes, phase, v, labels, dt) -> LossResult:
        n_steps, batch, n_out = spikes.shape
        cell, row = _plane_index(batch, n_out)
        at_label = row + labels  # flat index of (b, y_b) in a (B, N) plane
        first = spikes.argmax(axis=0)  # array index k = n - 1 of the first spike, 0 if none
        at_first = first * (batch * n_out) + cell  # flat index of the first spike in (T, B, N)
        fired = spikes.take(at_first)  # (B, N): False exactly for silent neurons
        # t = (n - phase) dt at the first spike, T dt (end of the window) when silent
        t = np.where(fired, (first + 1) - phase.take(at_first), n_steps) * dt

        per_sample, dce_dz = _softmax_ce(t * (-1.0 / self.xi), at_label)
        dL_dt = dce_dz * (-1.0 / (self.xi * batch))  # z = -t/xi; 1/B of the batch mean
        if self.alpha:
            growth = np.exp(t.take(at_label) * (1.0 / self.beta))
            per_sample += self.alpha * (growth - 1.0)
            dL_dt.reshape(-1)[at_label] += (self.alpha / (self.beta * batch)) * growth
        dL_dt *= fired  # a silent neuron's t = T dt is a constant: no gradient

        dtype = phase.dtype if phase.dtype.kind == "f" else np.dtype(np.float64)
        dL_dphase = np.zeros(spikes.shape, dtype=dtype)
        dL_dphase.reshape(-1)[at_first] = time_to_phase_gradient(dL_dt, dt)
        dL_dv = np.zeros(spikes.shape, dtype=dtype)

        if self.silent_push:
            silent = ~fired.take(at_label)  # (B,): the label neuron is silent
            at_v = np.arange(0, n_steps * batch * n_out, batch * n_out)[:, None] + at_label
            v_label = v.take(at_v)  # (T, B)
            k_max = v_label.argmax(axis=0)
            at_max = (k_max * (batch * n_out) + at_label)[silent]
            per_sample[silent] += self.silent_push * (self.theta - v.take(at_max))
            dL_dv.reshape(-1)[at_max] = -self.silent_push / batch

        # spiking beats silent (silent t = T dt can tie a spike at the window's end)
        predictions = np.argmin(t + ~fired, axis=1)
        predictions[~fired.take(row + predictions)] = -1  # no output fired at all
        return LossResult(
            loss=float(np.add.reduce(per_sample)) / batch,
            per_sample=per_sample,
            dL_dphase=dL_dphase,
            dL_dv=dL_dv,
            predictions=predictions,
            correct=predictions == labels,
            readout=t,
        )


class _VoltageCrossEntropy(Loss):
    """Cross-entropy of ``softmax(z)`` where the logits ``z`` (mV) are a readout of ``V``.

    Subclasses define the readout ``z = R(V)`` and the pull-back of ``dL/dz`` onto
    ``dL/dV``.  Prediction: ``argmax_i z_i`` (lowest index on an exact tie).
    """

    @property
    def requires(self) -> tuple[str, ...]:
        return ("v",)

    @abstractmethod
    def _readout(self, v):
        """Return ``(z, pullback)``: logits ``(B, N)`` and a function ``dL/dz -> dL/dV``."""

    def _evaluate(self, spikes, phase, v, labels, dt) -> LossResult:
        _, batch, n_out = v.shape
        _, row = _plane_index(batch, n_out)
        z, pullback = self._readout(v)
        per_sample, dce_dz = _softmax_ce(z, row + labels)
        dce_dz *= 1.0 / batch  # gradient of the batch mean
        predictions = np.argmax(z, axis=1)
        return LossResult(
            loss=float(np.add.reduce(per_sample)) / batch,
            per_sample=per_sample,
            dL_dphase=np.zeros(v.shape, dtype=_float_dtype(v)),
            dL_dv=pullback(dce_dz),
            predictions=predictions,
            correct=predictions == labels,
            readout=z,
        )


@dataclass(frozen=True)
class MaxVoltageCrossEntropy(_VoltageCrossEntropy):
    """Max-over-time voltage cross-entropy (Wunderlich & Pehle's voltage loss [WP21]_).

    ::

        z_i = max_{n=1..T} V_i[n]            (mV)
        l   = -log softmax(z)_y
        dl/dV_i[n] = (softmax(z)_i - delta_iy) [n == n*_i]

    where ``n*_i`` is the step of the maximum (the first one on an exact tie): the gradient
    reaches ``V`` only at that step.  W&P read out non-spiking output neurons; with spiking
    outputs ``V`` is the post-reset voltage, and a maximum that falls on a reset step gets
    no gradient through the engine (the reset value does not depend on the weights), so give
    the readout population a threshold it cannot reach.

    Prediction: the neuron with the largest ``z``.
    """

    def _readout(self, v):
        _, batch, n_out = v.shape
        cell, _ = _plane_index(batch, n_out)
        at_max = np.argmax(v, axis=0) * (batch * n_out) + cell  # flat index of the maximum
        z = v.take(at_max)

        def pullback(dL_dz):
            dL_dv = np.zeros(v.shape, dtype=v.dtype)
            dL_dv.reshape(-1)[at_max] = dL_dz
            return dL_dv

        return z, pullback


_WEIGHTINGS = ("uniform", "exponential")


@functools.lru_cache(maxsize=64)
def _time_weights(weighting: str, n_steps: int, dtype: np.dtype) -> np.ndarray:
    n = np.arange(1, n_steps + 1)
    w = (
        np.full(n_steps, 1.0 / n_steps)
        if weighting == "uniform"
        else np.exp(-n / n_steps) / n_steps
    )
    w = w.astype(dtype)
    w.flags.writeable = False
    return w


@dataclass(frozen=True)
class AverageVoltageCrossEntropy(_VoltageCrossEntropy):
    """Average (time-integrated) voltage cross-entropy, mlGeNN's loss shaping [NTK22]_.

    ::

        z_i = sum_{n=1..T} w_n V_i[n]        (mV)
        l   = -log softmax(z)_y
        dl/dV_i[n] = w_n (softmax(z)_i - delta_iy)        at every step

    with the weights

    * ``"uniform"``: ``w_n = 1/T``, the mean voltage ``(1/(T dt)) sum_n V[n] dt`` over the
      window (mlGeNN's ``AvgVar`` readout, the "sum" loss of [NTK22]_);
    * ``"exponential"``: ``w_n = exp(-t_n/(T dt)) / T`` with ``t_n = n dt``, which favours
      early evidence (mlGeNN's ``AvgVarExpWeight``, the "sum_weigh_exp" loss of [NTK22]_;
      mlGeNN weights the voltage after step ``n`` with the time at the step's start,
      ``exp(-t_{n-1}/(T dt))``, so its logits are ours times ``exp(1/T)``).

    Every step of every output neuron receives gradient, so no output is ever without one.

    Parameters
    ----------
    weighting : {"uniform", "exponential"}
        Time weighting of the average.  Default ``"uniform"``.
    """

    weighting: str = "uniform"

    def __post_init__(self):
        if self.weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {self.weighting!r}")

    def weights(self, n_steps: int) -> np.ndarray:
        """The weights ``w_n`` for steps ``n = 1..n_steps``, shape ``(n_steps,)``, read-only."""
        return _time_weights(self.weighting, int(n_steps), np.dtype(np.float64))

    def _readout(self, v):
        n_steps, batch, n_out = v.shape
        w = _time_weights(self.weighting, n_steps, _float_dtype(v))
        z = (w @ v.reshape(n_steps, batch * n_out)).reshape(batch, n_out)

        def pullback(dL_dz):
            return w[:, None, None] * dL_dz

        return z, pullback
