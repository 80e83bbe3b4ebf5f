"""Exact continuous-time engine: event-driven ``IF_curr_exp`` and its exact EventProp adjoint."""

from .simulation import ExactSimulation

__all__ = ["ExactSimulation"]
