"""PyNN synapse type and learning rule for EventProp-trained projections.

A projection learns when its synapse type is :class:`EventPropSynapse`; the synapse type carries
an :class:`EventPropRule` (the optimiser with its learning-rate schedule, weight decay and
weight bounds), in the spirit of PyNN's ``STDPMechanism``.  ``StaticSynapse`` projections stay
frozen.  Weights of an EventProp synapse are signed (nA, added to the synaptic current of the
projection's receptor type whatever their sign), so PyNN's one-sign weight check does not apply.
"""

from __future__ import annotations

import copy

import numpy as np
from pyNN.standardmodels import StandardSynapseType, build_translations

from ..standardmodels.delays import check_delays, default_delay
from .optimisers import Adam, Optimiser


def check_finite_weights(weights, projection):
    """Signed weights are allowed; NaN and infinity are not."""
    values = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"weight must be finite for projection '{projection.label}', got "
            f"{values[~np.isfinite(values)].ravel()[0]!r}"
        )
    return weights


class EventPropRule:
    """How an EventProp projection learns.

    Parameters
    ----------
    optimiser : Optimiser, optional
        A template (``Adam(lr=1e-3)`` by default); every projection using this rule gets its
        own copy, so moment estimates are per projection.  Learning-rate schedule, weight decay
        and weight bounds (``w_min``, ``w_max``) are optimiser options.
    max_grad_norm : float, optional
        Rescale the projection's gradient to at most this Frobenius norm before the update.
    """

    def __init__(self, optimiser: Optimiser | None = None, max_grad_norm: float | None = None):
        optimiser = optimiser if optimiser is not None else Adam(lr=1e-3)
        if not isinstance(optimiser, Optimiser):
            raise TypeError(
                "optimiser must be an Optimiser such as Adam or SGD, got "
                f"{type(optimiser).__name__}"
            )
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm!r}")
        self.optimiser = optimiser
        self.max_grad_norm = max_grad_norm

    def new_optimiser(self) -> Optimiser:
        return copy.deepcopy(self.optimiser)

    def clip(self, gradient: np.ndarray) -> np.ndarray:
        if self.max_grad_norm is None:
            return gradient
        norm = float(np.linalg.norm(gradient))
        return gradient * (self.max_grad_norm / norm) if norm > self.max_grad_norm else gradient

    def describe(self) -> str:
        return f"EventProp rule with {self.optimiser!r}"

    def __repr__(self):
        return f"EventPropRule(optimiser={self.optimiser!r}, max_grad_norm={self.max_grad_norm})"


class EventPropSynapse(StandardSynapseType):
    """Trainable current-based synapse: signed weight (nA) and delay (ms).

    Parameters
    ----------
    weight : float, array, RandomDistribution or callable
        Initial weights (nA), any sign.
    delay : float, optional
        Delay (ms): a whole multiple of the time step, at least one step.
    rule : EventPropRule, optional
        Optimiser and its settings (default ``EventPropRule()``: Adam, lr 1e-3).

    Notes
    -----
    ``projection.get("gradient", format="array")`` returns ``dL/dw`` (per nA of weight) of the
    last training step or :meth:`Trainer.gradient` call, NaN where unconnected as for weights.
    """

    default_parameters = {"weight": 0.0, "delay": None}
    # "gradient" is read-only: Projection.get("gradient", ...) gives dL/dw of the last step
    translations = build_translations(
        ("weight", "weight"), ("delay", "delay"), ("gradient", "gradient")
    )
    parameter_checks = {"weight": check_finite_weights, "delay": check_delays}
    trainable = True

    def __init__(self, weight=0.0, delay=None, rule: EventPropRule | None = None):
        super().__init__(weight=weight, delay=delay)
        self.rule = rule if rule is not None else EventPropRule()

    def _get_minimum_delay(self):
        from ..simulator import state

        return default_delay(state)

    def describe(self, template="standardmodel_default.txt", engine="default"):
        """PyNN's description plus the learning rule (a dict when ``template`` is None)."""
        description = super().describe(template, engine)
        if isinstance(description, dict):
            return {**description, "learning_rule": self.rule.describe()}
        return f"{description}\n    {self.rule.describe()}"
