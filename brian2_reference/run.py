"""One call: forward, loss and adjoint of a described network at one Brian2 step."""

from __future__ import annotations

from dataclasses import dataclass

from .adjoint import AdjointResult, backward
from .description import NetworkSpec, SpikeInput
from .forward import ForwardResult, forward
from .losses import LossSpec, loss_gradients


@dataclass(frozen=True)
class ReferenceRun:
    """Forward run, loss value, ``dL/dreadout`` of the output layer and the adjoint."""

    forward: ForwardResult
    loss: float
    readout: str
    readout_grad: object
    adjoint: AdjointResult

    @property
    def gradients(self) -> tuple:
        """``dL/dW`` per projection."""
        return self.adjoint.gradients

    @property
    def delay_gradients(self) -> tuple:
        """``dL/d(delay)`` per projection (per ms)."""
        return self.adjoint.delay_gradients


def run_reference(
    spec: NetworkSpec, inputs: SpikeInput, dt: float, loss: LossSpec, fwd: ForwardResult = None
) -> ReferenceRun:
    """Simulate ``spec`` on ``inputs`` at Brian2 step ``dt`` (ms) and back-propagate ``loss``
    (evaluated on the output layer); ``fwd`` reuses an earlier forward run of the same
    network, inputs and step."""
    if fwd is None:
        fwd = forward(spec, inputs, dt)
    out = spec.output.name
    value, name, grad = loss_gradients(loss, fwd.readouts(out), spec.duration)
    return ReferenceRun(fwd, value, name, grad, backward(fwd, {out: {name: grad}}))
