"""Checks of values given at the public boundary, shared by the PyNN layer and the data sets.

Every check raises early, with a message that names the parameter, the value given and what is
allowed, so that a bad value never travels into numpy, lazyarray or the engine.  Errors are
PyNN's classes where PyNN has one (``pyNN.errors``), ``ValueError``/``TypeError`` otherwise,
and :class:`StaleObjectError` for objects that a later ``setup()`` destroyed.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


class StaleObjectError(RuntimeError):
    """A Population or current source created before the last ``setup()`` was used after it.

    ``setup()`` destroys the whole network; objects created before it no longer belong to the
    simulation, and using them would silently act on whatever new objects took their places.
    """


class NoDataError(RuntimeError):
    """Recorded data were requested before any ``run()`` produced them."""


def check_real(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
    where: str = "",
    error: type[Exception] = ValueError,
) -> float:
    """``value`` as a finite float within the given bounds, else raise ``error``.

    Parameters
    ----------
    name : str
        Parameter name used in the message.
    value : object
        The value given.
    minimum, maximum : float, optional
        Inclusive bounds; ``strict`` makes ``minimum`` exclusive (``value > minimum``).
    where : str
        Context appended to the message (e.g. ``"in DCSource"``).
    error : exception class
        Raised for a value of the right type outside the bounds (``TypeError`` is raised for a
        value that is not a real number at all).

    Returns
    -------
    float
    """
    message = f"{name}{' ' + where if where else ''} must be a finite number"
    allowed = _interval(minimum, maximum, strict)
    message += f" {allowed}, got {value!r}" if allowed else f", got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(message)
    number = float(value)
    below = minimum is not None and (number <= minimum if strict else number < minimum)
    above = maximum is not None and number > maximum
    if not math.isfinite(number) or below or above:
        raise error(message)
    return number


def _interval(minimum, maximum, strict) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"{'>' if strict else '>='} {minimum}"
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def check_integer(
    name: str, value, *, minimum: int | None = None, where: str = "", error=ValueError
) -> int:
    """``value`` as an int ``>= minimum`` (Python or numpy integers only, not floats or bools)."""
    suffix = f" {where}" if where else ""
    allowed = "an integer" if minimum is None else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}{suffix} must be {allowed}, got {value!r}")
    if minimum is not None and value < minimum:
        raise error(f"{name}{suffix} must be {allowed}, got {value!r}")
    return int(value)


def check_per_neuron_length(name: str, value, size: int, where: str, error) -> None:
    """Raise ``error`` if ``value`` is an array of per-neuron values whose length is not ``size``.

    Scalars, strings, callables and random distributions are left to PyNN (they are evaluated
    for every neuron); one-dimensional lists and arrays must have one entry per neuron.
    """
    if isinstance(value, str | bytes) or callable(value) or not hasattr(value, "__len__"):
        return
    if hasattr(value, "next"):  # RandomDistribution
        return
    length = len(value)
    if np.ndim(value) >= 1 and length != size:
        raise error(
            f"{name} has {length} values {where} of {size} neurons; give one value for all "
            f"neurons or exactly {size}, got {short_repr(value)}"
        )


def short_repr(value, limit: int = 80) -> str:
    """``repr`` of a value for an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_current_population(obj, role: str, state) -> None:
    """Raise :class:`StaleObjectError` if ``obj`` (or a population under it) predates ``setup()``.

    ``obj`` is a Population, PopulationView or Assembly; ``state`` the simulator state whose
    population list defines what exists now.
    """
    for population in _base_populations(obj):
        index = getattr(population, "_index", None)
        live = state.populations
        if index is None or index >= len(live) or live[index] is not population:
            raise StaleObjectError(
                f"{role} '{population.label}' was created before the last setup(), which "
                f"destroyed it; create it again after setup()"
            )


def _base_populations(obj):
    if hasattr(obj, "populations"):  # Assembly
        for member in obj.populations:
            yield from _base_populations(member)
    else:
        yield getattr(obj, "grandparent", obj)
