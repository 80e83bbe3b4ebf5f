"""Learning-rate schedules: the learning rate as a pure function of the update count.

A schedule maps ``k``, the number of optimiser updates already made (0 for the first update),
to the learning rate of update ``k + 1``.  Schedules hold no state, so an optimiser's state
(its update count and moment estimates) is all a checkpoint needs to resume exactly.  Decays
counted in epochs rather than updates wrap the schedule in :class:`PerEpoch`.

==========================  ====================================================================
``ConstantLR(lr)``          ``lr``
``StepDecay(lr, s, g)``     ``lr * g ** floor(k / s)``
``ExponentialDecay(lr, g)`` ``lr * g ** k``
``CosineDecay(lr, K, m)``   ``m + (lr - m) (1 + cos(pi min(k, K) / K)) / 2`` (Loshchilov &
                            Hutter, "SGDR", ICLR 2017, without restarts)
``PerEpoch(sched, E)``      ``sched(floor(k / E))``: ``sched`` counts epochs of ``E`` updates
==========================  ====================================================================
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields

__all__ = [
    "ConstantLR",
    "CosineDecay",
    "ExponentialDecay",
    "PerEpoch",
    "Schedule",
    "StepDecay",
    "as_schedule",
    "schedule_from_dict",
]


def _check_number(name: str, value, allowed: str, ok) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not ok(value)
    ):
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")


def _check_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


class Schedule(ABC):
    """Base class of learning-rate schedules (immutable, comparable, serialisable)."""

    @abstractmethod
    def _rate(self, step: int) -> float:
        """Learning rate for update ``step + 1`` (``step`` validated)."""

    def __call__(self, step: int) -> float:
        """Learning rate of the update made after ``step`` earlier updates (``step >= 0``)."""
        if isinstance(step, numbers.Integral) and not isinstance(step, bool):
            step = int(step)
        _check_count("step", step, 0)
        return float(self._rate(step))

    def to_dict(self) -> dict:
        """``{"type": class name, **parameters}``, inverted by :func:`schedule_from_dict`."""
        out = {"type": type(self).__name__}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Schedule) else value
        return out


@dataclass(frozen=True)
class ConstantLR(Schedule):
    """``lr`` at every update.

    Parameters
    ----------
    lr : float
        Learning rate (> 0).
    """

    lr: float

    def __post_init__(self):
        _check_number("lr", self.lr, "> 0", lambda x: x > 0)

    def _rate(self, step):
        return self.lr


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr * gamma ** floor(step / step_size)``: multiply by ``gamma`` every ``step_size``.

    Parameters
    ----------
    lr : float
        Initial learning rate (> 0).
    step_size : int
        Updates (or epochs, inside :class:`PerEpoch`) between decays (>= 1).
    gamma : float
        Factor applied at each decay (> 0).
    """

    lr: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self):
        _check_number("lr", self.lr, "> 0", lambda x: x > 0)
        _check_count("step_size", self.step_size, 1)
        _check_number("gamma", self.gamma, "> 0", lambda x: x > 0)

    def _rate(self, step):
        return self.lr * self.gamma ** (step // self.step_size)


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """``lr * gamma ** step``.

    Parameters
    ----------
    lr : float
        Initial learning rate (> 0).
    gamma : float
        Factor per update (or per epoch inside :class:`PerEpoch`), > 0.
    """

    lr: float
    gamma: float

    def __post_init__(self):
        _check_number("lr", self.lr, "> 0", lambda x: x > 0)
        _check_number("gamma", self.gamma, "> 0", lambda x: x > 0)

    def _rate(self, step):
        return self.lr * self.gamma**step


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Half a cosine from ``lr`` at step 0 to ``lr_min`` at ``total_steps``, then ``lr_min``.

    ``lr_min + (lr - lr_min) * (1 + cos(pi * min(step, total_steps) / total_steps)) / 2``.

    Parameters
    ----------
    lr : float
        Initial learning rate (> 0).
    total_steps : int
        Length of the decay in updates (or epochs inside :class:`PerEpoch`), >= 1.
    lr_min : float
        Final learning rate, ``0 <= lr_min <= lr``.
    """

    lr: float
    total_steps: int
    lr_min: float = 0.0

    def __post_init__(self):
        _check_number("lr", self.lr, "> 0", lambda x: x > 0)
        _check_count("total_steps", self.total_steps, 1)
        _check_number("lr_min", self.lr_min, f"in [0, lr={self.lr}]", lambda x: 0 <= x <= self.lr)

    def _rate(self, step):
        progress = min(step, self.total_steps) / self.total_steps
        return self.lr_min + (self.lr - self.lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class PerEpoch(Schedule):
    """Evaluate ``schedule`` at the epoch index ``floor(step / steps_per_epoch)``.

    Parameters
    ----------
    schedule : Schedule
        A schedule whose step counts epochs.
    steps_per_epoch : int
        Optimiser updates per epoch (mini-batches per epoch), >= 1.
    """

    schedule: Schedule
    steps_per_epoch: int

    def __post_init__(self):
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule, got {self.schedule!r}")
        _check_count("steps_per_epoch", self.steps_per_epoch, 1)

    def _rate(self, step):
        return self.schedule(step // self.steps_per_epoch)


_SCHEDULES = {
    cls.__name__: cls for cls in (ConstantLR, StepDecay, ExponentialDecay, CosineDecay, PerEpoch)
}


def as_schedule(lr) -> Schedule:
    """Return ``lr`` if it is a :class:`Schedule`, else ``ConstantLR(lr)``."""
    return lr if isinstance(lr, Schedule) else ConstantLR(lr)


def schedule_from_dict(spec: dict) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.to_dict` output."""
    spec = dict(spec)
    name = spec.pop("type", None)
    if name not in _SCHEDULES:
        raise ValueError(f"unknown schedule type {name!r}; known: {sorted(_SCHEDULES)}")
    if name == "PerEpoch":
        spec["schedule"] = schedule_from_dict(spec["schedule"])
    return _SCHEDULES[name](**spec)
