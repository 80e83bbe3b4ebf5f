"""Errors raised by EventProp training, and the finiteness check that names its culprit.

The trainer calls :func:`check_finite` on the loss and on every gradient before an update, so
that a NaN or infinity stops training with a message naming *what* (e.g. the projection's
gradient) and *where* (e.g. epoch and batch) instead of silently corrupting the weights.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NonFiniteError", "check_finite"]


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
    The fast path is one ``np.isfinite(...).all()`` reduction; the counts are only computed
    when something is wrong.
    """
    arr = np.asarray(array)
    if arr.dtype.kind != "f":  # integer and boolean arrays are finite by construction
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
