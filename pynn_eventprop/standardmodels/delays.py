"""Delay rules shared by the backend's synapse types.

Delays are real numbers of ms, at least ``min_delay`` (PyNN's rule: a smaller delay is an error).
With ``min_delay`` left at ``"auto"`` (PyNN's default) the lower limit is the time step, and
``get_min_delay()`` reports the smallest delay of the network.  ``max_delay``, when given to
``setup()``, is an upper limit.  A delay of at least one step keeps a spike's effects out of the
step in which it was emitted.  The SpiNNaker2 model runs on the tick grid and also needs whole
multiples of the time step (checked when the network is compiled for it).
"""

from __future__ import annotations

import numpy as np
from pyNN import errors


class DelayError(errors.ConnectionError, ValueError):
    """A delay outside ``[min_delay, max_delay]`` (PyNN's ConnectionError, also a ValueError)."""


def default_delay(state) -> float:
    """Delay of a synapse created without one: ``min_delay`` given to setup, or one step."""
    return state.dt if state._min_delay == "auto" else state._min_delay


def check_delays(delays, projection):
    """PyNN parameter check: delays within the limits given to ``setup()`` (see module doc)."""
    state = projection._simulator.state
    low = state.dt if state._min_delay == "auto" else state._min_delay
    high = np.inf if state._max_delay == "auto" else state._max_delay
    values = np.asarray(delays, dtype=float)
    if not np.all(np.isfinite(values)):
        raise DelayError(
            f"delay must be a finite number of ms, got {float(values[~np.isfinite(values)][0])!r}"
        )
    bad = ~((values >= low - 1e-12) & (values <= high + 1e-12))
    if np.any(bad):
        raise DelayError(
            f"delay must lie in [{low}, {high}] ms (min_delay, by default the time step, and "
            f"max_delay given to setup()), got {float(values[bad].ravel()[0])!r} ms"
        )
    return delays
