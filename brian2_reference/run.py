"""One call for the validation tool: forward, loss and adjoint of a described network."""

from __future__ import annotations

from dataclasses import dataclass

from .adjoint import AdjointResult, backward
from .description import NetworkSpec, SpikeInput
from .forward import ForwardResult, forward
from .losses import LossSpec, loss_gradients


@dataclass(frozen=True)
class ReferenceRun:
    """Forward traces, adjoint traces and gradients, and the loss value (``None`` if the loss
    was given as gradient arrays)."""

    forward: ForwardResult
    adjoint: AdjointResult
    loss: float | None


def run_reference(
    spec: NetworkSpec, inputs: SpikeInput, loss: LossSpec | None = None, dL_dphase=None, dL_dV=None
) -> ReferenceRun:
    """Simulate ``spec`` on ``inputs`` and back-propagate ``loss`` (or the given gradients).

    Give either ``loss`` or ``dL_dphase``/``dL_dV`` (see ``adjoint.backward``), not both.
    """
    if loss is not None and (dL_dphase is not None or dL_dV is not None):
        raise ValueError("give either a LossSpec or the arrays dL_dphase/dL_dV, not both")
    fwd = forward(spec, inputs)
    value = None
    if loss is not None:
        value, dL_dphase, dL_dV = loss_gradients(loss, fwd)
    return ReferenceRun(fwd, backward(fwd, dL_dphase, dL_dV), value)
