"""Gradient-descent optimisers for numpy weight arrays, with exact checkpoint state.

An optimiser updates a collection of weight arrays *in place* from gradients of the loss:
``params`` and ``grads`` are both a mapping (``{"input->hidden": W1, ...}``) or both a list of
arrays with matching keys / positions and shapes.  Update ``k + 1`` (after ``k`` earlier
ones), with ``eta = schedule(k)`` (:mod:`.schedules`), for every weight array ``w`` with
gradient ``g``:

1. weight decay, if ``weight_decay = lambda > 0``:

   * ``"decoupled"`` (default; Loshchilov & Hutter, "Decoupled weight decay regularization",
     ICLR 2019, "AdamW"): ``w <- w - eta lambda w``, independent of the gradient statistics;
   * ``"l2"``: ``g <- g + lambda w``, the gradient of ``(lambda/2) |w|^2`` added to the loss,
     which Adam then rescales like any other gradient.

   For plain SGD (no momentum) the two are identical.
2. ``w <- w - eta d`` with the optimiser's direction ``d`` (:class:`SGD`, :class:`Adam`);
3. if ``w_min`` / ``w_max`` are given, ``w <- clip(w, w_min, w_max)``.  Bounds apply to every
   entry, so arrays of sparse connectivity must hold only existing connections (or be
   re-masked by the caller).

:meth:`Optimiser.state_dict` / :meth:`Optimiser.load_state_dict` capture the update count and
every moment array, so training resumed from a checkpoint is bit-identical to training that
never stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import numba
import numpy as np

from ..engine.threads import threads_for
from .schedules import Schedule, _check_number, as_schedule

__all__ = ["SGD", "Adam", "Optimiser"]

_DECAY_MODES = ("decoupled", "l2")


def _items(params, grads):
    """Pair up weights and gradients: list of ``(key, w, g)`` with shapes checked."""
    if isinstance(params, Mapping) and isinstance(grads, Mapping):
        if params.keys() != grads.keys():
            raise ValueError(
                f"params and grads must have the same keys, got {sorted(map(str, params))} "
                f"and {sorted(map(str, grads))}"
            )
        keys = list(params)
    elif (
        isinstance(params, Sequence)
        and isinstance(grads, Sequence)
        and not isinstance(params, str | bytes)
    ):
        if len(params) != len(grads):
            raise ValueError(
                f"params and grads must have the same length, got {len(params)} and {len(grads)}"
            )
        keys = range(len(params))
    else:
        raise TypeError(
            "params and grads must both be mappings or both be sequences of numpy arrays, got "
            f"{type(params).__name__} and {type(grads).__name__}"
        )
    out = []
    for key in keys:
        w, g = params[key], grads[key]
        if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or not w.flags.writeable:
            raise TypeError(
                f"weights {key!r} must be a writeable floating-point numpy array (updated in "
                f"place), got {type(w).__name__}"
                + (f" of dtype {w.dtype}" if isinstance(w, np.ndarray) else "")
            )
        g = np.asarray(g)
        if g.shape != w.shape:
            raise ValueError(f"gradient {key!r} has shape {g.shape}, weights have {w.shape}")
        out.append((key, w, g))
    return out


class Optimiser(ABC):
    """Base class: schedule, weight decay, bounds, update count and checkpoint state.

    Parameters
    ----------
    lr : float or Schedule
        Learning rate, or a schedule of it (:mod:`.schedules`).
    weight_decay : float
        Weight decay coefficient ``lambda`` (>= 0; per update, in units of the learning rate).
    weight_decay_mode : {"decoupled", "l2"}
        How the decay is applied (see the module docstring).
    w_min, w_max : float or None
        Optional bounds every weight is clipped to after each update.
    """

    #: names of the per-array state ("slot") arrays, e.g. ("m", "v") for Adam
    slots: tuple[str, ...] = ()

    def __init__(
        self, lr, *, weight_decay=0.0, weight_decay_mode="decoupled", w_min=None, w_max=None
    ):
        self.schedule: Schedule = as_schedule(lr)
        _check_number("weight_decay", weight_decay, ">= 0", lambda x: x >= 0)
        if weight_decay_mode not in _DECAY_MODES:
            raise ValueError(
                f"weight_decay_mode must be one of {_DECAY_MODES}, got {weight_decay_mode!r}"
            )
        for name, bound in (("w_min", w_min), ("w_max", w_max)):
            if bound is not None:
                _check_number(name, bound, "or None", lambda x: True)
        if w_min is not None and w_max is not None and not w_min < w_max:
            raise ValueError(f"w_min must be < w_max, got w_min={w_min!r}, w_max={w_max!r}")
        self.weight_decay = float(weight_decay)
        self.weight_decay_mode = weight_decay_mode
        self.w_min = w_min
        self.w_max = w_max
        self.step_count = 0
        self._state: dict = {}  # key -> {slot name: array}

    # -- the algorithm -------------------------------------------------------------------------

    @abstractmethod
    def _direction(self, g: np.ndarray, slots: dict, t: int) -> np.ndarray:
        """Update direction ``d`` for update number ``t >= 1``; updates ``slots`` in place."""

    def _update(self, w: np.ndarray, g: np.ndarray, slots: dict, t: int, lr: float) -> None:
        """``w -= lr d`` in place with ``d`` of :meth:`_direction` (a subclass may fuse the
        two into one pass with the same arithmetic)."""
        w -= lr * self._direction(g, slots, t)

    def _hyperparameters(self) -> dict:
        """Algorithm-specific hyperparameters (subclasses extend)."""
        return {}

    @property
    def learning_rate(self) -> float:
        """Learning rate of the next update, ``schedule(step_count)``."""
        return self.schedule(self.step_count)

    def step(self, params, grads) -> None:
        """Apply one update to ``params`` in place.

        Parameters
        ----------
        params : mapping or sequence of ndarray
            Weight arrays (writeable, floating point), modified in place.
        grads : mapping or sequence of array_like
            ``dL/dw`` for each array, same keys / order and shapes.  Not modified.

        Raises
        ------
        ValueError, TypeError
            On mismatched keys or shapes, non-array weights, or keys that differ from those
            the optimiser state was built for.
        """
        items = _items(params, grads)
        keys = [key for key, _, _ in items]
        if self._state and set(keys) != set(self._state):
            raise ValueError(
                f"this optimiser holds state for weights {sorted(map(str, self._state))}; "
                f"got {sorted(map(str, keys))}: use one optimiser per set of weights"
            )
        lr = self.learning_rate
        t = self.step_count + 1
        for key, w, g in items:
            slots = self._state.get(key)
            if slots is None:
                slots = self._state[key] = {s: np.zeros_like(w) for s in self.slots}
            elif self.slots and slots[self.slots[0]].shape != w.shape:
                raise ValueError(
                    f"weights {key!r} have shape {w.shape}, the optimiser state has "
                    f"{slots[self.slots[0]].shape}"
                )
            if self.weight_decay:
                if self.weight_decay_mode == "l2":
                    g = g + self.weight_decay * w
                else:
                    w *= 1.0 - lr * self.weight_decay
            self._update(w, g, slots, t, lr)
            if self.w_min is not None or self.w_max is not None:
                np.clip(w, self.w_min, self.w_max, out=w)
        self.step_count = t

    # -- checkpoints ---------------------------------------------------------------------------

    def hyperparameters(self) -> dict:
        """All settings, JSON-serialisable (the schedule as :meth:`Schedule.to_dict`)."""
        return {
            "lr": self.schedule.to_dict(),
            "weight_decay": self.weight_decay,
            "weight_decay_mode": self.weight_decay_mode,
            "w_min": self.w_min,
            "w_max": self.w_max,
            **self._hyperparameters(),
        }

    def state_dict(self) -> dict:
        """Everything needed to resume exactly, as copies.

        Returns
        -------
        dict
            ``{"optimiser": class name, "hyperparameters": dict, "step_count": int,
            "state": {key: {slot: ndarray}}}``; leaves are Python scalars, strings, ``None``
            or numpy arrays, keys are the weight keys (strings, or positions for lists).
        """
        return {
            "optimiser": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "step_count": self.step_count,
            "state": {
                key: {name: arr.copy() for name, arr in slots.items()}
                for key, slots in self._state.items()
            },
        }

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Restore :meth:`state_dict` output (arrays are copied).

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` of an optimiser of the same class.
        strict : bool
            If True (default) the saved hyperparameters must equal this optimiser's; set False
            to resume with, e.g., a different learning rate on purpose.

        Raises
        ------
        ValueError
            If the class differs, (strict) a hyperparameter differs, or the slot arrays do not
            match this optimiser's slots.
        """
        name = type(self).__name__
        if state.get("optimiser") != name:
            raise ValueError(f"state is for optimiser {state.get('optimiser')!r}, not {name!r}")
        if strict:
            ours, saved = self.hyperparameters(), state.get("hyperparameters", {})
            diff = [
                f"{k}: saved {saved.get(k)!r}, current {ours.get(k)!r}"
                for k in sorted(set(ours) | set(saved))
                if ours.get(k) != saved.get(k)
            ]
            if diff:
                raise ValueError(
                    "saved optimiser hyperparameters differ (pass strict=False to accept): "
                    + "; ".join(diff)
                )
        step_count = state["step_count"]
        if isinstance(step_count, bool) or not isinstance(step_count, int) or step_count < 0:
            raise ValueError(f"step_count must be an integer >= 0, got {step_count!r}")
        restored = {}
        for key, slots in state["state"].items():
            if set(slots) != set(self.slots):
                raise ValueError(
                    f"state of weights {key!r} has slots {sorted(slots)}, {name} needs "
                    f"{sorted(self.slots)}"
                )
            restored[key] = {s: np.array(arr, copy=True) for s, arr in slots.items()}
        self.step_count = step_count
        self._state = restored

    def __repr__(self) -> str:
        settings = {**self.hyperparameters(), "lr": self.schedule}
        args = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        return f"{type(self).__name__}({args})"


class SGD(Optimiser):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    With momentum ``mu`` and buffer ``b`` (zero before the first update)::

        b <- mu b + g
        d  = g + mu b     (nesterov=True)     or     d = b     (nesterov=False)
        w <- w - eta d

    (Sutskever et al., ICML 2013, in the form PyTorch's ``torch.optim.SGD`` uses, without
    dampening).  ``mu = 0`` is plain SGD, ``d = g``.

    Parameters
    ----------
    lr : float or Schedule
        Learning rate ``eta``.
    momentum : float
        ``mu`` in ``[0, 1)``.
    nesterov : bool
        Use Nesterov momentum (needs ``momentum > 0``).
    **kwargs
        ``weight_decay``, ``weight_decay_mode``, ``w_min``, ``w_max`` of :class:`Optimiser`.
    """

    def __init__(self, lr, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(lr, **kwargs)
        _check_number("momentum", momentum, "in [0, 1)", lambda x: 0 <= x < 1)
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slots = ("momentum_buffer",) if momentum else ()

    def _hyperparameters(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _direction(self, g, slots, t):
        if not self.momentum:
            return g
        buf = slots["momentum_buffer"]
        buf *= self.momentum
        buf += g
        return g + self.momentum * buf if self.nesterov else buf


class Adam(Optimiser):
    """Adam (Kingma & Ba, ICLR 2015).

    With moments ``m``, ``v`` (zero before the first update) and update number ``t >= 1``::

        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        d  = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
        w <- w - eta d

    With ``weight_decay_mode="decoupled"`` (default) and ``weight_decay > 0`` this is AdamW.

    Parameters
    ----------
    lr : float or Schedule
        Learning rate ``eta``.  Default 1e-3.
    beta1, beta2 : float
        Moment decay rates in ``[0, 1)``.  Defaults 0.9, 0.999.
    eps : float
        Denominator offset (> 0).  Default 1e-8.
    **kwargs
        ``weight_decay``, ``weight_decay_mode``, ``w_min``, ``w_max`` of :class:`Optimiser`.
    """

    slots = ("m", "v")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, **kwargs):
        super().__init__(lr, **kwargs)
        _check_number("beta1", beta1, "in [0, 1)", lambda x: 0 <= x < 1)
        _check_number("beta2", beta2, "in [0, 1)", lambda x: 0 <= x < 1)
        _check_number("eps", eps, "> 0", lambda x: x > 0)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.eps = float(eps)

    def _hyperparameters(self):
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _direction(self, g, slots, t):
        m, v = slots["m"], slots["v"]
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * np.square(g)
        m_hat = m / (1.0 - self.beta1**t)
        denom = np.sqrt(v / (1.0 - self.beta2**t))
        denom += self.eps
        return m_hat / denom

    def _update(self, w, g, slots, t, lr):
        arrays = (w, g, slots["m"], slots["v"])
        dtype = w.dtype
        if dtype not in _FUSED or not all(
            x.dtype == dtype and x.flags.c_contiguous for x in arrays
        ):
            return super()._update(w, g, slots, t, lr)  # numpy's arithmetic
        b1, b2 = self.beta1, self.beta2
        hyper = (lr, b1, 1.0 - b1, b2, 1.0 - b2, 1.0 - b1**t, 1.0 - b2**t, self.eps)
        with threads_for(w.size):
            _adam_update(*(x.reshape(-1) for x in arrays), *(dtype.type(h) for h in hyper))


#: Weight dtypes of Adam's compiled update.
_FUSED = (np.dtype(np.float64), np.dtype(np.float32))


@numba.njit(cache=True, error_model="numpy", parallel=True)
def _adam_update(w, g, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, c1, c2, eps):
    """:meth:`Adam._direction` and ``w -= lr d`` in one pass, each operation rounded as numpy
    rounds it: the scalars come in the arrays' dtype (numpy casts a Python float to the
    array's dtype before it operates), so float32 weights are updated in float32 arithmetic.

    Vectorised by the compiler (SIMD division and square root, the same correctly rounded
    operations): numpy's error model leaves out the division-by-zero checks that prevent it
    (no divisor here can be 0: ``c1, c2 > 0`` and ``sqrt(.) + eps >= eps > 0``), and each
    element is read into locals once, so that the stores cannot alias the loads.  Split over
    the engine's threads (each element on its own, so the thread count changes nothing).
    """
    for k in numba.prange(w.size):
        gk = g[k]
        mk = m[k] * beta1 + one_minus_beta1 * gk
        vk = v[k] * beta2 + one_minus_beta2 * (gk * gk)
        m[k] = mk
        v[k] = vk
        w[k] -= lr * ((mk / c1) / (np.sqrt(vk / c2) + eps))
