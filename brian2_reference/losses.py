"""Losses on the output layer and their gradients ``dL/dphi[n]`` and ``dL/dV[n]``.

The adjoint (``adjoint.backward``) takes the loss through these two arrays, so any loss of the
output spike phases and voltages can be used; this module offers the three of the project
design (all averaged over the batch, ``V`` relative to ``v_rest`` in mV, times in ms, steps
``n = 1 .. N`` with ``N = n_steps`` and ``T = N dt``):

``"ttfs"`` (Wunderlich & Pehle's time-to-first-spike loss)
    ``L = mean_b [-log softmax(-t/xi)[label] + alpha (exp(t_label/beta) - 1)]`` with ``t_k``
    the first spike time ``(n - phi[n]) dt`` of output neuron ``k``; a silent neuron counts as
    ``t = T`` and gets no gradient.  ``dL/dphi[n] = -dt dL/dt`` at the first spike.
``"max_voltage"``
    ``L = mean_b -log softmax(max_n V[n])[label]``; the gradient goes to the (first) maximum.
``"mean_voltage"``
    ``L = mean_b -log softmax((1/N) sum_n V[n])[label]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .forward import ForwardResult

LOSSES = ("ttfs", "max_voltage", "mean_voltage")


@dataclass(frozen=True)
class LossSpec:
    """A loss on the output layer: ``kind`` (one of ``LOSSES``), integer ``labels`` (batch,).

    ``xi`` (ms, softmax temperature), ``alpha`` (dimensionless) and ``beta`` (ms) are the
    time-to-first-spike loss's parameters; the voltage losses ignore them.
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


def first_spikes(fwd: ForwardResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First spike of every output neuron: ``(times (B, K) ms, step (B, K), fired (B, K))``.

    Silent neurons get ``t = n_steps dt`` and step 0.
    """
    trace = fwd.layers[fwd.spec.output.name]
    fired = trace.spikes.any(axis=0)
    step = np.where(fired, trace.spikes.argmax(axis=0), 0)
    phase = np.take_along_axis(trace.phase, step[None], axis=0)[0]
    times = np.where(fired, (step - phase) * fwd.spec.dt, fwd.spec.n_steps * fwd.spec.dt)
    return times, step, fired


def loss_gradients(loss: LossSpec, fwd: ForwardResult) -> tuple[float, np.ndarray, np.ndarray]:
    """``(L, dL/dphase, dL/dV)`` of ``loss`` on the output layer of ``fwd``.

    The arrays have the output trace's shape ``(n_steps + 1, batch, size)`` and can be passed
    to ``adjoint.backward``.
    """
    trace = fwd.layers[fwd.spec.output.name]
    batch, size = trace.V.shape[1:]
    if loss.labels.shape != (batch,) or np.any((loss.labels < 0) | (loss.labels >= size)):
        raise ValueError(
            f"labels must have shape ({batch},) with values in [0, {size}), got {loss.labels!r}"
        )
    d_phase, d_v = np.zeros(trace.V.shape), np.zeros(trace.V.shape)
    b_idx, k_idx = np.meshgrid(np.arange(batch), np.arange(size), indexing="ij")
    if loss.kind == "ttfs":
        times, step, fired = first_spikes(fwd)
        ce, d_scores = _cross_entropy(-times / loss.xi, loss.labels)
        t_label = times[np.arange(batch), loss.labels]
        value = ce + loss.alpha * np.expm1(t_label / loss.beta)
        d_t = -d_scores / loss.xi
        d_t[np.arange(batch), loss.labels] += loss.alpha / loss.beta * np.exp(t_label / loss.beta)
        d_phase[step, b_idx, k_idx] = np.where(fired, -fwd.spec.dt * d_t / batch, 0.0)
    elif loss.kind == "max_voltage":
        n_max = trace.V[1:].argmax(axis=0) + 1
        value, d_scores = _cross_entropy(trace.V[1:].max(axis=0), loss.labels)
        d_v[n_max, b_idx, k_idx] = d_scores / batch
    else:
        n_steps = fwd.spec.n_steps
        value, d_scores = _cross_entropy(trace.V[1:].mean(axis=0), loss.labels)
        d_v[1:] = d_scores[None] / (batch * n_steps)
    return float(value.mean()), d_phase, d_v
