"""How a trainable projection learns: its optimisers, gradient clipping and learned delays."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .errors import check_finite
from .optimisers import Adam, Optimiser
from .schedules import as_schedule


def _clip_norm(gradient: np.ndarray, max_norm: float | None, norm=None) -> np.ndarray:
    """``g * min(1, max_norm / ||g||_F)`` (``g`` itself when ``max_norm`` is None).

    ``norm``: ``||g||_F`` when given (e.g. the norm of a whole gradient of which ``gradient``
    is a block, as on the SpiNNaker2 model's update PEs); by default computed from ``g``.
    """
    if max_norm is None:
        return gradient
    norm = float(np.linalg.norm(gradient)) if norm is None else float(norm)
    return gradient * (max_norm / norm) if norm > max_norm else gradient


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
    learn_delays : bool
        Also learn the projection's delays: every connection's real-valued delay ``d`` (ms)
        follows ``dL/dd``, the exact gradient of the loss in the delay (an arrival time
        ``t_spike + d`` is a smooth function of ``d``).  Default False.
    delay_bounds : (float, float), optional
        ``(low, high)`` in ms; after every update the delays are clamped to this interval
        (a delay that would leave it stays at the bound until its gradient points back
        inside).  Default: the limits of ``setup()``, ``[min_delay, max_delay]`` (``min_delay``
        is one time step unless given, ``max_delay`` unbounded unless given); ``low`` below
        ``min_delay`` is refused when the Trainer is built.
    delay_lr : float or Schedule
        Learning rate of the delays (ms per unit of the optimiser's direction; for Adam about
        the largest change of a delay per update).  Default 0.1 ms.
    delay_max_grad_norm : float, optional
        Clipping of the delay gradient (1/ms), as ``max_grad_norm`` for the weights.

    Notes
    -----
    The delays get an optimiser of the same kind as ``optimiser`` (same class and moment
    settings, e.g. Adam's betas) with its own state and learning rate ``delay_lr``, without
    weight decay and weight bounds (the delay bounds apply instead).
    """

    def __init__(
        self,
        optimiser: Optimiser | None = None,
        max_grad_norm: float | None = None,
        learn_delays: bool = False,
        delay_bounds: tuple[float, float] | None = None,
        delay_lr=0.1,
        delay_max_grad_norm: float | None = None,
    ):
        optimiser = optimiser if optimiser is not None else Adam(lr=1e-3)
        if not isinstance(optimiser, Optimiser):
            raise TypeError(
                "optimiser must be an Optimiser such as Adam or SGD, got "
                f"{type(optimiser).__name__}"
            )
        for name, value in (("max_grad_norm", max_grad_norm),
                            ("delay_max_grad_norm", delay_max_grad_norm)):  # fmt: skip
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 or None, got {value!r}")
        if not isinstance(learn_delays, bool | np.bool_):
            raise TypeError(f"learn_delays must be True or False, got {learn_delays!r}")
        if delay_bounds is not None and not learn_delays:
            raise ValueError(
                f"delay_bounds={delay_bounds!r} given without learn_delays=True: the delays of "
                "a projection that does not learn them are never clamped"
            )
        self.optimiser = optimiser
        self.max_grad_norm = max_grad_norm
        self.learn_delays = bool(learn_delays)
        self.delay_bounds = None if delay_bounds is None else check_delay_bounds(delay_bounds)
        self.delay_schedule = as_schedule(delay_lr)
        self.delay_max_grad_norm = delay_max_grad_norm

    def new_optimiser(self) -> Optimiser:
        return copy.deepcopy(self.optimiser)

    def new_delay_optimiser(self) -> Optimiser:
        """An optimiser of the weights' kind for the delays: rate ``delay_lr``, no decay or
        weight bounds, fresh state."""
        optimiser = copy.deepcopy(self.optimiser)
        optimiser.schedule = copy.deepcopy(self.delay_schedule)
        optimiser.weight_decay = 0.0
        optimiser.w_min = optimiser.w_max = None
        optimiser.step_count = 0
        optimiser._state = {}
        return optimiser

    def clip(self, gradient: np.ndarray, norm=None) -> np.ndarray:
        """``gradient`` clipped to ``max_grad_norm``; ``norm``: its norm, or that of the whole
        gradient when ``gradient`` is a block of it (default: computed from ``gradient``)."""
        return _clip_norm(gradient, self.max_grad_norm, norm)

    def clip_delays(self, gradient: np.ndarray) -> np.ndarray:
        return _clip_norm(gradient, self.delay_max_grad_norm)

    def describe(self) -> str:
        delays = f", learning delays in {self.delay_bounds or 'the setup() limits'}"
        return f"EventProp rule with {self.optimiser!r}" + (delays if self.learn_delays else "")

    def __repr__(self):
        extra = ""
        if self.learn_delays:
            extra = (
                f", learn_delays=True, delay_bounds={self.delay_bounds}, "
                f"delay_lr={self.delay_schedule!r}, delay_max_grad_norm={self.delay_max_grad_norm}"
            )
        return (
            f"EventPropRule(optimiser={self.optimiser!r}, max_grad_norm={self.max_grad_norm}"
            f"{extra})"
        )


def check_delay_bounds(bounds, min_delay: float | None = None, max_delay: float = np.inf):
    """``(low, high)`` as floats, after checking ``0 < low < high`` and, when the limits of
    ``setup()`` are given, ``min_delay <= low`` and ``high <= max_delay``."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"delay_bounds must be a pair (low, high) of ms, got {bounds!r}") from None
    if not (np.isfinite(low) and low > 0 and high > low) or np.isnan(high):
        raise ValueError(
            f"delay_bounds must satisfy 0 < low < high (ms, high may be inf), got {bounds!r}"
        )
    if min_delay is not None and low < min_delay * (1 - 1e-12):
        raise ValueError(
            f"delay_bounds={bounds!r}: low={low!r} ms is below min_delay={min_delay!r} ms "
            "(delays must stay >= min_delay, by default the time step)"
        )
    if high > max_delay * (1 + 1e-12):
        raise ValueError(
            f"delay_bounds={bounds!r}: high={high!r} ms is above max_delay={max_delay!r} ms "
            "given to setup()"
        )
    return low, high


@dataclass
class DelayLearner:
    """How one compiled projection learns its delays.

    ``mask`` (n_pre, n_post) marks existing connections; ``bounds`` are ``(low, high)`` ms;
    ``clip`` a callable applied to the delay gradient.
    """

    optimiser: Optimiser
    bounds: tuple[float, float]
    mask: np.ndarray
    clip: object = None
    label: str = ""


def update_delays(engine, gradients, learners: dict, context: str = "") -> dict:
    """One optimiser step on the delays of every projection in ``learners``.

    ``d <- clip(d - eta * direction(dL/dd), low, high)`` per connection, with the gradient
    ``gradients.delays[c]`` (1/ms) of the engine's backward pass.  All new delays are checked
    finite before any is written to the engine (``engine.set_delays``).  Returns the
    gradients used (after clipping), per compiled projection.

    Raises
    ------
    ValueError
        If the engine computes no delay gradients (``gradients.delays is None``).
    NonFiniteError
        If a delay gradient or a new delay is not finite.
    """
    if not learners:
        return {}
    if gradients.delays is None:
        raise ValueError(
            f"engine {type(engine).__name__} computes no delay gradients: learn_delays=True "
            "needs the reference platform (the exact engine)"
        )
    used, new = {}, {}
    for c, learner in learners.items():
        name = f"projection '{learner.label}'"
        g = np.where(learner.mask, gradients.delays[c], 0.0)
        check_finite(f"delay gradient of {name}", g, context)
        if learner.clip is not None:
            g = learner.clip(g)
        delays = np.array(engine.get_delays(c), dtype=float)
        learner.optimiser.step({"delays": delays}, {"delays": g})
        np.clip(delays, *learner.bounds, out=delays)
        check_finite(f"delays of {name}", delays, context)
        new[c], used[c] = np.where(learner.mask, delays, 0.0), g
    for c, delays in new.items():
        engine.set_delays(c, delays)
    return used
