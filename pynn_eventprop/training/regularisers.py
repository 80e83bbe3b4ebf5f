"""Regularisers: terms that steer learning without being part of the reported loss.

A regulariser returns, for one batch, ``dR/dreadout`` per population in the form of the
engine's ``extra_grads`` (:meth:`pynn_eventprop.engine.interface.Engine.backward`): the update
then follows ``dL/dw + dR/dw``, while the loss and :meth:`Trainer.gradient
<pynn_eventprop.eventprop.training.Trainer.gradient>` remain ``L`` and ``dL/dw``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReviveDead:
    """Keep hidden neurons alive (Wunderlich & Pehle's silent-neuron problem).

    A neuron of one of ``populations`` that fires for none of the ``n`` samples of a batch gets
    in every sample ``dR/dV_max = -strength / n``: the gradient of
    ``R = strength * mean_b (theta - V_max,b)``, which raises its input weights until it fires.
    Silent neurons otherwise receive no gradient at all (EventProp's gradients flow through
    spike times only).

    Parameters
    ----------
    strength : float
        Coefficient (1/mV, > 0).
    populations : tuple of int
        Compiled population indices it watches (the hidden populations).
    """

    strength: float
    populations: tuple

    requires = ("first_spike_time", "v_max")

    def __call__(self, engine, result, n: int) -> dict:
        """``{pop: {"v_max": dR/dV_max (batch, size)}}`` for the run ``result`` of ``n`` samples."""
        grads = {}
        for pop in self.populations:
            first = engine.readouts(result, pop, ("first_spike_time",))["first_spike_time"]
            dead = ~np.isfinite(first[:n]).any(axis=0)
            if not dead.any():
                continue
            engine.readouts(result, pop, ("v_max",))  # the engine needs its position
            g = np.zeros(first.shape, engine.dtype)
            g[:n, dead] = -self.strength / n
            grads[pop] = {"v_max": g}
        return grads
