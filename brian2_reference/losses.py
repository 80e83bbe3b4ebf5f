"""The three classification losses, on the readouts of the output layer of a Brian2 run.

All are batch means (``B`` samples, ``K`` outputs, labels ``y``), ``T`` the run's duration:

``"ttfs"`` (Wunderlich & Pehle's time-to-first-spike loss)
    ``l = -log softmax(-t/xi)_y + alpha (exp(t_y/beta) - 1)``, ``t_k`` the first spike time of
    output ``k`` (``T`` if silent, which then gets no gradient).
``"max_voltage"``
    ``l = -log softmax(v_max)_y``, ``v_max`` the largest ``V = v - v_rest`` of the run.
``"mean_voltage"``
    ``l = -log softmax(v_mean)_y``, ``v_mean = (1/T) int_0^T V dt``.

:func:`loss_gradients` returns the loss and ``dL/dreadout`` for the readout it reads, which the
adjoint (:func:`brian2_reference.backward`) turns into weight gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("ttfs", "max_voltage", "mean_voltage")
#: The readout each loss reads (names as in ``ForwardResult.readouts``).
READOUT = {"ttfs": "first_spike_time", "max_voltage": "v_max", "mean_voltage": "v_mean_uniform"}


@dataclass(frozen=True)
class LossSpec:
    """A loss on the output layer: ``kind`` (one of :data:`LOSSES`), integer ``labels``.

    ``xi`` (ms), ``alpha`` and ``beta`` (ms) parameterise ``"ttfs"``.
    """

    kind: str
    labels: np.ndarray
    xi: float = 0.5
    alpha: float = 3e-3
    beta: float = 6.4

    def __post_init__(self):
        if self.kind not in LOSSES:
            raise ValueError(f"loss kind must be one of {LOSSES}, got {self.kind!r}")
        labels = np.asarray(self.labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-d integer array (batch,), got {self.labels!r}")
        object.__setattr__(self, "labels", labels.astype(np.int64))
        for name in ("xi", "beta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 (ms), got {getattr(self, name)!r}")


def _cross_entropy(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample ``-log softmax(scores)[label]`` and its gradient w.r.t. ``scores`` (B, K)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    onehot = np.eye(scores.shape[1])[labels]
    return -(log_p * onehot).sum(axis=1), np.exp(log_p) - onehot


def loss_gradients(
    loss: LossSpec, readouts: dict, duration: float
) -> tuple[float, str, np.ndarray]:
    """``(L, readout name, dL/dreadout (B, K))`` of ``loss`` on the output ``readouts``."""
    name = READOUT[loss.kind]
    values = np.asarray(readouts[name], float)
    batch, size = values.shape
    if loss.labels.shape != (batch,) or np.any((loss.labels < 0) | (loss.labels >= size)):
        raise ValueError(f"labels must have shape ({batch},) with values in [0, {size})")
    rows = np.arange(batch)
    if loss.kind == "ttfs":
        fired = np.isfinite(values)
        t = np.where(fired, values, duration)
        value, d_scores = _cross_entropy(-t / loss.xi, loss.labels)
        grow = np.exp(t[rows, loss.labels] / loss.beta)
        value = value + loss.alpha * (grow - 1.0)
        grad = -d_scores / loss.xi
        grad[rows, loss.labels] += loss.alpha / loss.beta * grow
        grad = np.where(fired, grad, 0.0)
    else:
        value, grad = _cross_entropy(values, loss.labels)
    return float(value.mean()), name, grad / batch
