"""Classification losses on an output population, with their exact gradients.

Every loss reads per-neuron *readouts* of the output population over one batch of ``B``
samples (arrays ``(B, N)``, computed by the engine, see
:data:`pynn_eventprop.engine.interface.READOUTS`), the labels (int ``(B,)`` in ``[0, N)``) and
the duration ``T`` (ms) of the run, and returns a :class:`LossResult` holding the batch-mean
loss ``L = (1/B) sum_b l_b``, the per-sample losses ``l_b``, the predictions and
``dL/dreadout`` for every readout it used, which the engine's backward pass turns into weight
gradients.  Gradients are of the batch *mean*, so they carry the factor ``1/B``.  Losses never
see a time grid; :attr:`Loss.requires` names the readouts they read, and the engine computes
only those.  ``docs/losses.md`` derives every formula.

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

import numba
import numpy as np

__all__ = [
    "AverageVoltageCrossEntropy",
    "Loss",
    "LossResult",
    "MaxVoltageCrossEntropy",
    "SumVoltageCrossEntropy",
    "TTFSCrossEntropy",
    "softmax_cross_entropy",
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
    readout_grads : dict readout name -> ndarray (B, N)
        ``dL/dreadout`` of the batch mean, for every readout in :attr:`Loss.requires`.
    predictions : ndarray of int, shape (B,)
        Predicted class per sample, ``-1`` when the loss cannot predict one (no output spiked
        under :class:`TTFSCrossEntropy`).
    correct : ndarray of bool, shape (B,)
        ``predictions == labels``.
    readout : ndarray, shape (B, N)
        The per-neuron quantity the loss is built on: first-spike times (ms, ``T`` for
        silent neurons) for :class:`TTFSCrossEntropy`, the logits (mV) for voltage losses.
    """

    loss: float
    per_sample: np.ndarray
    readout_grads: dict
    predictions: np.ndarray
    correct: np.ndarray
    readout: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of correct predictions in the batch."""
        return float(self.correct.mean())


@functools.lru_cache(maxsize=64)
def _row_index(batch: int, n_out: int):
    """Flat index ``b N`` of the first entry of row ``b`` of a ``(B, N)`` array (cached)."""
    row = np.arange(0, batch * n_out, n_out)
    row.flags.writeable = False
    return row


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
    return _softmax_ce(logits, _row_index(*logits.shape) + np.asarray(labels))


def _check_param(name: str, value, allowed: str, ok=None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    if not math.isfinite(value) or (ok is not None and not ok(value)):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")


class Loss(ABC):
    """Base class: validates the readouts and labels and delegates to ``_evaluate``.

    Subclasses declare in :attr:`requires` the readouts they read (names of
    :data:`pynn_eventprop.engine.interface.READOUTS`); the engine computes only those.
    """

    @property
    @abstractmethod
    def requires(self) -> tuple[str, ...]:
        """Names of the readouts this loss reads."""

    def evaluate(self, readouts, labels, duration: float) -> LossResult:
        """Loss, gradients and predictions for one batch.

        Parameters
        ----------
        readouts : dict name -> ndarray (B, N)
            At least the readouts named in :attr:`requires`.
        labels : array_like of int, shape (B,)
            Class of each sample, in ``[0, N)``.
        duration : float
            Length ``T`` of the run (ms); a silent neuron's first spike counts as ``T``.

        Returns
        -------
        LossResult

        Raises
        ------
        ValueError
            If a readout is missing, shapes disagree, a label is outside ``[0, N)`` or
            ``duration`` is not a positive number.
        """
        arrays, shape = {}, None
        for name in self.requires:
            arr = readouts.get(name) if readouts is not None else None
            if arr is None:
                raise ValueError(f"{type(self).__name__} needs the readout {name!r}")
            arr = np.asarray(arr)
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise ValueError(
                    f"{name} has shape {arr.shape}, but {self.requires[0]!r} has {shape}"
                )
            arrays[name] = np.ascontiguousarray(arr)  # the losses use flat indices
        if len(shape) != 2 or 0 in shape:
            raise ValueError(f"readouts must have a non-empty shape (B, N), got {shape}")
        labels = np.asarray(labels)
        if labels.shape != shape[:1] or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integers of shape ({shape[0]},), got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        labels = labels.astype(np.intp, copy=False)
        # viewed as unsigned, negative labels become huge: one reduction checks both ends
        if np.maximum.reduce(labels.view(np.uintp)) >= shape[1]:
            raise ValueError(
                f"labels must lie in [0, {shape[1]}) (one class per output neuron), got "
                f"values {labels.min()}..{labels.max()}"
            )
        if not (isinstance(duration, int | float | np.number) and 0 < duration < math.inf):
            raise ValueError(f"duration must be a finite number > 0 (ms), got {duration!r}")
        return self._evaluate(arrays, labels, float(duration))

    __call__ = evaluate

    @abstractmethod
    def _evaluate(self, readouts, labels, duration) -> LossResult:
        """Compute the result on validated C-contiguous readouts (labels as ``intp``)."""


@dataclass(frozen=True)
class TTFSCrossEntropy(Loss):
    r"""Time-to-first-spike cross-entropy of Wunderlich & Pehle [WP21]_ (their Yin-Yang loss).

    With ``t_i`` the first spike time (ms) of output neuron ``i`` in a sample with label
    ``y``, ``t_i = T`` (the end of the window) for a silent neuron::

        l = -log( exp(-t_y/xi) / sum_i exp(-t_i/xi) ) + alpha (exp(t_y/beta) - 1)
            + silent_push (theta - V_max,y)        only if neuron y is silent

    The first term rewards the label neuron for firing first, the second for firing early.
    Gradients (per sample; the result carries the batch mean's ``1/B``)::

        dl/dt_i = (delta_iy - softmax(-t/xi)_i) / xi + delta_iy (alpha/beta) exp(t_y/beta)

    A silent neuron's ``t = T`` is a constant, so it receives no gradient: silent outputs
    stall training.  The optional third term keeps the label neuron alive: when it is silent,
    ``silent_push * (theta - V_max,y)`` (``V_max`` the readout ``v_max``, the largest
    ``V = v - v_rest`` of the run) adds ``dl/dV_max,y = -silent_push``, so gradient descent
    raises that maximum towards the threshold.  The term is >= 0 (a silent neuron stays below
    threshold) and tends to 0 as the neuron approaches firing; when it starts to fire, its
    ``t_y`` drops from ``T`` and both other terms, increasing in ``t_y``, can only drop
    too, so the push never works against the main loss.  Non-label silent outputs are left
    alone: ``t = T`` is already the best value for them.

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
        if self.silent_push > 0:
            return ("first_spike_time", "v_max")
        return ("first_spike_time",)

    def _evaluate(self, readouts, labels, duration) -> LossResult:
        first = readouts["first_spike_time"]
        push = self.silent_push
        v_max = readouts["v_max"] if push else first
        per_sample, dL_dt, dL_dvmax, predictions, t = _ttfs_terms(
            first, labels, duration, self.xi, self.alpha, self.beta, push,
            0.0 if self.theta is None else self.theta, v_max,
        )  # fmt: skip
        grads = {"first_spike_time": dL_dt}
        if push:
            grads["v_max"] = dL_dvmax
        return LossResult(
            loss=float(np.add.reduce(per_sample)) / first.shape[0],
            per_sample=per_sample,
            readout_grads=grads,
            predictions=predictions,
            correct=predictions == labels,
            readout=t,
        )


class _VoltageCrossEntropy(Loss):
    """Cross-entropy of ``softmax(z)`` where the logits ``z`` (mV) are one voltage readout.

    Subclasses name the readout in :attr:`readout_name`.  Prediction: ``argmax_i z_i`` (lowest
    index on an exact tie).
    """

    @property
    @abstractmethod
    def readout_name(self) -> str:
        """The readout used as logits."""

    @property
    def requires(self) -> tuple[str, ...]:
        return (self.readout_name,)

    def logit_scale(self, duration: float) -> float:
        """``z = logit_scale * readout``; 1 unless a subclass says otherwise."""
        return 1.0

    def _evaluate(self, readouts, labels, duration) -> LossResult:
        scale = self.logit_scale(duration)
        z = readouts[self.readout_name] * scale if scale != 1.0 else readouts[self.readout_name]
        batch, n_out = z.shape
        per_sample, dce_dz = _softmax_ce(z, _row_index(batch, n_out) + labels)
        dce_dz *= scale / batch  # gradient of the batch mean in the readout
        predictions = np.argmax(z, axis=1)
        return LossResult(
            loss=float(np.add.reduce(per_sample)) / batch,
            per_sample=per_sample,
            readout_grads={self.readout_name: dce_dz},
            predictions=predictions,
            correct=predictions == labels,
            readout=z,
        )


@dataclass(frozen=True)
class MaxVoltageCrossEntropy(_VoltageCrossEntropy):
    """Max-over-time voltage cross-entropy (Wunderlich & Pehle's voltage loss [WP21]_).

    ::

        z_i = V_max,i = max_t V_i(t)          (mV, the readout ``v_max``)
        l   = -log softmax(z)_y
        dl/dz_i = softmax(z)_i - delta_iy

    The engine passes ``dl/dz_i`` to ``V`` at the time of the maximum.  W&P read out
    non-spiking output neurons; with spiking outputs ``V`` is the post-reset voltage, and a
    maximum that falls on a reset gets no gradient (the reset value does not depend on the
    weights), so give the readout population a threshold it cannot reach.

    Prediction: the neuron with the largest ``z``.
    """

    @property
    def readout_name(self) -> str:
        return "v_max"


_WEIGHTINGS = ("uniform", "exponential")


@dataclass(frozen=True)
class AverageVoltageCrossEntropy(_VoltageCrossEntropy):
    """Average (time-integrated) voltage cross-entropy, mlGeNN's loss shaping [NTK22]_.

    ::

        z_i = (1/T) integral_0^T w(t) V_i(t) dt        (mV)
        l   = -log softmax(z)_y
        dl/dz_i = softmax(z)_i - delta_iy

    with the weighting

    * ``"uniform"``: ``w(t) = 1``, the mean voltage over the window (readout
      ``v_mean_uniform``; mlGeNN's ``AvgVar`` readout, the "sum" loss of [NTK22]_);
    * ``"exponential"``: ``w(t) = exp(-t/T)``, which favours early evidence (readout
      ``v_mean_exponential``; mlGeNN's ``AvgVarExpWeight``, the "sum_weigh_exp" loss of
      [NTK22]_).

    Every moment of every output neuron receives gradient, so no output is ever without one.
    The engine evaluates the integral in closed form (mlGeNN sums over its ``N`` time steps,
    ``(1/N) sum_n w(t_{n-1}) V[n]``: the voltage after step ``n`` weighted by the time at the
    step's start).

    Parameters
    ----------
    weighting : {"uniform", "exponential"}
        Time weighting of the average.  Default ``"uniform"``.
    """

    weighting: str = "uniform"

    def __post_init__(self):
        if self.weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {self.weighting!r}")

    @property
    def readout_name(self) -> str:
        return f"v_mean_{self.weighting}"


@dataclass(frozen=True)
class SumVoltageCrossEntropy(_VoltageCrossEntropy):
    """Summed (time-integrated, not averaged) voltage cross-entropy: mlGeNN's ``SumVar``.

    ::

        z_i = (1/tau) integral_0^T w(t) V_i(t) dt = (T/tau) vbar_i      (mV)
        l   = -log softmax(z)_y
        dl/dvbar_i = (T/tau) (softmax(z)_i - delta_iy)

    with ``vbar`` the readout of :class:`AverageVoltageCrossEntropy` of the same
    ``weighting`` and ``tau`` the time unit of the sum.  With ``tau`` equal to the time step
    this is mlGeNN's ``SumVar`` readout (the voltage summed over the steps; with exponential
    weighting the "sum_weigh_exp" loss of [NTK22]_).  Unlike the average, the logits grow with
    the duration ``T``: the softmax gets sharper (its temperature falls as ``tau/T``), so long
    samples (spoken words, hundreds of ms) give decisive logits from small voltages, and the
    gradient of the readout is ``T/tau`` times that of the average loss.

    Parameters
    ----------
    weighting : {"uniform", "exponential"}
        ``w(t) = 1`` or ``exp(-t/T)``.  Default ``"uniform"``.
    tau : float
        Time unit of the sum (ms, > 0).  Default 1 ms.
    """

    weighting: str = "uniform"
    tau: float = 1.0

    def __post_init__(self):
        if self.weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {self.weighting!r}")
        _check_param("tau", self.tau, "> 0 (ms)", lambda x: x > 0)

    @property
    def readout_name(self) -> str:
        return f"v_mean_{self.weighting}"

    def logit_scale(self, duration: float) -> float:
        return float(duration) / self.tau


@numba.njit(cache=True)
def _ttfs_terms(first, labels, duration, xi, alpha, beta, push, theta, v_max):
    """:class:`TTFSCrossEntropy` per sample: ``(l_b, dL/dt, dL/dV_max, prediction, t)``
    (``t = T`` for silent neurons; the gradients of the batch mean; ``v_max`` read only when
    ``push > 0``)."""
    batch, n_out = first.shape
    per_sample, predictions = np.empty(batch), np.empty(batch, np.int64)
    t, dL_dt = np.empty((batch, n_out)), np.empty((batch, n_out))
    dL_dvmax = np.zeros((batch, n_out))
    scale = -1.0 / (xi * batch)
    for b in range(batch):
        y, z_max, best = labels[b], -math.inf, -1
        for i in range(n_out):
            fired = math.isfinite(first[b, i])
            t[b, i] = first[b, i] if fired else duration
            z_max = max(z_max, t[b, i] * (-1.0 / xi))
            if fired and (best < 0 or t[b, i] < t[b, best]):
                best = i  # the earliest spike, the lowest index on a tie
        total = 0.0
        for i in range(n_out):
            dL_dt[b, i] = math.exp(t[b, i] * (-1.0 / xi) - z_max)
            total += dL_dt[b, i]
        per_sample[b] = math.log(total) - (t[b, y] * (-1.0 / xi) - z_max)
        for i in range(n_out):
            dL_dt[b, i] = (dL_dt[b, i] / total - (1.0 if i == y else 0.0)) * scale
        if alpha:
            growth = math.exp(t[b, y] * (1.0 / beta))
            per_sample[b] += alpha * (growth - 1.0)
            dL_dt[b, y] += (alpha / (beta * batch)) * growth
        for i in range(n_out):
            if not math.isfinite(first[b, i]):
                dL_dt[b, i] = 0.0  # a silent neuron's t = T is a constant: no gradient
        if push and not math.isfinite(first[b, y]):
            per_sample[b] += push * (theta - v_max[b, y])
            dL_dvmax[b, y] = -push / batch
        predictions[b] = best
    return per_sample, dL_dt, dL_dvmax, predictions, t
