"""How a trainable projection learns: its optimiser template and gradient clipping."""

from __future__ import annotations

import copy

import numpy as np

from .optimisers import Adam, Optimiser


class EventPropRule:
    """How an EventProp projection learns.

    Parameters
    ----------
    optimiser : Optimiser, optional
        A template (``Adam(lr=1e-3)`` by default); every projection using this rule gets its
        own copy, so moment estimates are per projection.  Learning-rate schedule, weight decay
        and weight bounds (``w_min``, ``w_max``) are optimiser options.
    max_grad_norm : float, optional
        Rescale the projection's gradient ``g`` to at most this Frobenius norm before the
        update: ``g <- g * min(1, max_grad_norm / ||g||_F)``.
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
