"""Brian2 as a second numerical method for pynn_eventprop's continuous LIF equations.

The same equations as the package's exact reference engine (PyNN's ``IF_curr_exp``: LIF with
exponential current synapses, reset, refractory clamp, real-valued delays; Wunderlich &
Pehle's continuous adjoint with every jump term), solved by Brian2 on its own time grid:

* :func:`forward` -- a ``NeuronGroup`` with Brian2's exact linear state updater, threshold,
  reset and refractoriness, ``Synapses`` with a real-valued delay per connection, a
  ``SpikeGeneratorGroup`` for the input, monitors (:mod:`.forward`);
* :func:`backward` -- the adjoint ODEs integrated backward in time by a second Brian2 network
  run on reversed time, with the jumps applied at the recorded spike times (:mod:`.adjoint`);
* :mod:`.losses` -- the three classification losses on the recorded readouts.

The error of every result is Brian2's time step: it converges to the exact solution at first
order (spikes are detected on the grid).  The package imports nothing from ``pynn_eventprop``.

Typical use::

    spec = NetworkSpec(n_inputs, layers, projections, duration)
    run = run_reference(spec, SpikeInput(times), dt=0.01, loss=LossSpec("ttfs", labels))
    run.gradients[k]          # dL/dW of projection k, (n_pre, n_post)
"""

from .adjoint import AdjointResult, backward
from .description import INPUT, LayerSpec, NetworkSpec, ProjectionSpec, SpikeInput
from .forward import ForwardResult, forward
from .losses import LOSSES, LossSpec, loss_gradients
from .run import ReferenceRun, run_reference

__all__ = [
    "INPUT",
    "LOSSES",
    "AdjointResult",
    "ForwardResult",
    "LayerSpec",
    "LossSpec",
    "NetworkSpec",
    "ProjectionSpec",
    "ReferenceRun",
    "SpikeInput",
    "backward",
    "forward",
    "loss_gradients",
    "run_reference",
]
