"""PyNN's connectors with their arguments checked, and the checks a Projection applies.

PyNN's ``FixedProbabilityConnector`` and ``FixedNumber*Connector`` check their arguments with
bare ``assert`` statements (an empty ``AssertionError`` for a negative probability) or not at
all (a probability of 1.5).  The classes here raise a ``ValueError``/``TypeError`` naming the
argument and the value before PyNN's constructor runs; :func:`check_connector` repeats the
checks that need the populations when a Projection is created, so that connectors built from
``pyNN.connectors`` directly are checked too.  Everything else is PyNN's.
"""

from __future__ import annotations

import numbers

import numpy as np
from pyNN import connectors, errors
from pyNN.random import RandomDistribution

from .validation import check_integer, check_real


def check_probability(p_connect, connector: str) -> float:
    """``p_connect`` as a float in [0, 1], else ``ValueError``/``TypeError`` naming it."""
    return check_real("p_connect", p_connect, minimum=0.0, maximum=1.0, where=f"of {connector}")


def check_count(n, connector: str):
    """``n``: an integer >= 0 (numpy integers become ``int``) or a RandomDistribution."""
    if isinstance(n, RandomDistribution):
        return n
    if isinstance(n, numbers.Real) and not isinstance(n, numbers.Integral | bool):
        raise TypeError(
            f"n of {connector} must be an integer >= 0 or a RandomDistribution, got {n!r}"
        )
    return check_integer("n", n, minimum=0, where=f"of {connector}")


class FixedProbabilityConnector(connectors.FixedProbabilityConnector):
    __doc__ = connectors.FixedProbabilityConnector.__doc__

    def __init__(self, p_connect, *args, **kwargs):
        super().__init__(check_probability(p_connect, type(self).__name__), *args, **kwargs)


class _CountedConnector:
    """Mixin for the ``FixedNumber*`` connectors: checks ``n`` before PyNN asserts on it."""

    def __init__(self, n, *args, **kwargs):
        super().__init__(check_count(n, type(self).__name__), *args, **kwargs)


class FixedNumberPreConnector(_CountedConnector, connectors.FixedNumberPreConnector):
    __doc__ = connectors.FixedNumberPreConnector.__doc__


class FixedNumberPostConnector(_CountedConnector, connectors.FixedNumberPostConnector):
    __doc__ = connectors.FixedNumberPostConnector.__doc__


class FixedTotalNumberConnector(_CountedConnector, connectors.FixedTotalNumberConnector):
    __doc__ = connectors.FixedTotalNumberConnector.__doc__


def check_connector(connector, projection) -> None:
    """Checks of ``connector`` against ``projection``'s populations, before connecting.

    Raises
    ------
    ValueError
        A probability outside [0, 1] or a negative number of connections.
    pyNN.errors.ConnectionError
        A OneToOneConnector between populations of different sizes, or an ArrayConnector
        whose array does not have the projection's shape ``(pre.size, post.size)``.
    """
    name = type(connector).__name__
    if isinstance(connector, connectors.FixedProbabilityConnector):
        check_probability(connector.p_connect, name)
    if isinstance(connector, connectors.FixedNumberConnector):
        check_count(connector.n, name)
    if isinstance(connector, connectors.OneToOneConnector) and (
        projection.pre.size != projection.post.size
    ):
        raise errors.ConnectionError(
            f"OneToOneConnector needs populations of equal size, got presynaptic size "
            f"{projection.pre.size} and postsynaptic size {projection.post.size} in projection "
            f"'{projection.label}'"
        )
    if isinstance(connector, connectors.ArrayConnector):
        shape = np.shape(connector.array)
        if shape != projection.shape:
            raise errors.ConnectionError(
                f"array of ArrayConnector must have the projection's shape (pre.size, "
                f"post.size) = {projection.shape}, got shape {shape} in projection "
                f"'{projection.label}'"
            )
