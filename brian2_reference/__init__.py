"""Independent Brian2 implementation of pynn_eventprop's LIF discretisation and exact adjoint.

The maths is docs/equations.md: PyNN ``IF_curr_exp`` neurons integrated exactly on a grid of
step ``dt`` with precisely timed spikes (section 2; a spike arriving inside a step also adds its
exact voltage response at the next grid point, as in ``pynn_eventprop.discretisation``), and the
exact discrete adjoint of that forward pass (section 3; see docs/validation.md).  This package
builds both passes out of Brian2's own objects (``NeuronGroup``, ``Synapses``,
``SpikeGeneratorGroup``, ``TimedArray``, monitors) from a plain network description, and
imports nothing from ``pynn_eventprop``, so a result of the PyNN backend can be checked on an
independent simulator.

Typical use::

    spec = NetworkSpec(n_inputs, layers, projections, dt, n_steps)
    fwd = forward(spec, SpikeInput.from_times(times, dt))
    adj = backward(fwd, dL_dphase=..., dL_dV=...)   # arrays (n_steps + 1, batch, n_out)
    adj.gradients[k]                                  # dL/dW of projection k
    run = run_reference(spec, inputs, LossSpec("ttfs", labels))  # forward + loss + adjoint
    blocks = to_neo(run.forward, run.adjoint)         # neo.Block per population
"""

from .adjoint import AdjointResult, AdjointTrace, backward
from .coefficients import LayerConstants, layer_constants
from .description import INPUT, LayerSpec, NetworkSpec, ProjectionSpec, SpikeInput
from .forward import ForwardResult, LayerTrace, forward
from .losses import LOSSES, LossSpec, loss_gradients
from .neo_io import to_neo
from .run import ReferenceRun, run_reference

__all__ = [
    "INPUT",
    "LOSSES",
    "AdjointResult",
    "AdjointTrace",
    "ForwardResult",
    "LayerConstants",
    "LayerSpec",
    "LayerTrace",
    "LossSpec",
    "NetworkSpec",
    "ProjectionSpec",
    "ReferenceRun",
    "SpikeInput",
    "backward",
    "forward",
    "layer_constants",
    "loss_gradients",
    "run_reference",
    "to_neo",
]
