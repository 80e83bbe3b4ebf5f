"""Errors and warnings of EventProp training, and the checks that name their culprit.

The training step calls :func:`check_finite` on the loss, on every gradient before an update
and on the weights and optimiser state after it, and :func:`check_divergence` on the updated
weights, so that a NaN, an infinity or a runaway learning rate stops training with a message
naming *what* (e.g. the projection's weights) and *where* (e.g. epoch and batch) before the
weights reach the engine or a checkpoint.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CheckpointError",
    "DivergenceError",
    "NonFiniteError",
    "SilentNetworkWarning",
    "check_divergence",
    "check_finite",
]


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the network or optimiser it is loaded into.

    The message names the file and, where it applies, the projection; nothing was changed.
    """


class DivergenceError(FloatingPointError):
    """Weights or loss grew by orders of magnitude during training (e.g. a huge learning rate).

    Attributes
    ----------
    name : str
        What diverged (e.g. ``"weights of projection 'hidden->output'"``).
    context : str
        Where (e.g. ``"epoch 3, batch 17"``).
    value, reference : float
        The norm (or loss) now and its reference at the start of training.
    """

    def __init__(self, name, context, value, reference, factor):
        self.name, self.context = name, context
        self.value, self.reference = value, reference
        where = f" ({context})" if context else ""
        super().__init__(
            f"{name} diverged{where}: {value:.3g} is more than {factor:.0e} times its value "
            f"at the start of training ({reference:.3g}); lower the learning rate, clip the "
            "gradient (EventPropRule(max_grad_norm=...)) or bound the weights (w_min, w_max)"
        )


class SilentNetworkWarning(UserWarning):
    """A population fired no spike in any sample of a batch, so EventProp has no gradient."""


class NonFiniteError(FloatingPointError):
    """A loss, gradient, weight or state array contained NaN or +-inf.

    Attributes
    ----------
    name : str
        What was checked (e.g. ``"gradient of projection 'hidden->output'"``).
    context : str
        Where it was checked (e.g. ``"epoch 3, batch 17"``); may be empty.
    n_nan, n_posinf, n_neginf : int
        How many entries were NaN, +inf and -inf.
    first_index : tuple of int
        Index of the first non-finite entry (``()`` for a scalar).
    """

    def __init__(self, name, context, n_nan, n_posinf, n_neginf, first_index, size):
        self.name = name
        self.context = context
        self.n_nan = n_nan
        self.n_posinf = n_posinf
        self.n_neginf = n_neginf
        self.first_index = first_index
        where = f" ({context})" if context else ""
        parts = [
            f"{n} {kind}"
            for n, kind in ((n_nan, "NaN"), (n_posinf, "+inf"), (n_neginf, "-inf"))
            if n
        ]
        at = f", first at index {first_index}" if first_index != () else ""
        super().__init__(f"{name} is not finite{where}: {', '.join(parts)} of {size} entries{at}")


def check_finite(name: str, array, context: str = "") -> None:
    """Raise :class:`NonFiniteError` if ``array`` contains NaN or +-inf.

    Parameters
    ----------
    name : str
        What the array is, used in the message (e.g. ``"loss"``,
        ``"gradient of projection 'input->hidden'"``).
    array : array_like or scalar
        The values to check; only floating-point data can be non-finite, anything else passes.
    context : str, optional
        Where the check happens, appended to the message (e.g. ``"epoch 3, batch 17"``).

    Raises
    ------
    NonFiniteError
        Naming ``name`` and ``context``, the counts of NaN, +inf and -inf entries and the index
        of the first offending entry.

    Notes
    -----
    The fast path is one sum: a NaN or an infinity anywhere makes it non-finite, so a finite
    sum proves every entry finite; only a non-finite sum (which may also be an overflow of
    finite entries) is followed by the entry-wise test, and the counts are only computed when
    something is wrong.
    """
    arr = np.asarray(array)
    if arr.dtype.kind != "f":  # integer and boolean arrays are finite by construction
        return
    with np.errstate(over="ignore"):  # an overflow of finite entries: tested entry-wise below
        total = np.add.reduce(arr, axis=None)
    if math.isfinite(total):
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    nan = np.isnan(arr)
    posinf = np.isposinf(arr)
    neginf = np.isneginf(arr)
    bad = np.argwhere(~finite)
    first = tuple(int(i) for i in bad[0]) if arr.ndim else ()
    raise NonFiniteError(
        name,
        context,
        int(nan.sum()),
        int(posinf.sum()),
        int(neginf.sum()),
        first,
        int(arr.size),
    )


def check_divergence(name: str, value: float, reference: float, factor: float, context=""):
    """Raise :class:`DivergenceError` if ``value > factor * reference``.

    Parameters
    ----------
    name : str
        What ``value`` measures, for the message.
    value, reference : float
        E.g. the Frobenius norm of a projection's weights now and at the start of training.
    factor : float
        How many times the reference counts as divergence (orders of magnitude, e.g. 1e6).
    context : str, optional
        Where the check happens (e.g. ``"epoch 3, batch 17"``).
    """
    if value > factor * reference:
        raise DivergenceError(name, context, float(value), float(reference), factor)
