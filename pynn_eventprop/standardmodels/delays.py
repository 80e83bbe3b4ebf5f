"""Delay rules shared by the backend's synapse types.

With ``min_delay``/``max_delay`` left at ``"auto"`` (PyNN's default), ``get_min_delay()`` and
``get_max_delay()`` report the extremes of the network's delays, but they are not limits.
Explicit values given to ``setup()`` are limits.  That a delay is at least one time step and a
whole multiple of it is enforced when the network is compiled
(:meth:`pynn_eventprop.discretisation.LIFDiscretisation.delay_steps`).
"""

from __future__ import annotations

import numpy as np
from pyNN import errors


def default_delay(state) -> float:
    """Delay of a synapse created without one: ``min_delay`` given to setup, or one step."""
    return state.dt if state._min_delay == "auto" else state._min_delay


def check_delays(delays, projection):
    """PyNN parameter check: delays within the limits given to ``setup()`` (see module doc)."""
    state = projection._simulator.state
    low = -np.inf if state._min_delay == "auto" else state._min_delay
    high = np.inf if state._max_delay == "auto" else state._max_delay
    values = np.asarray(delays, dtype=float)
    if not np.all(np.isfinite(values)):
        raise errors.ConnectionError(
            f"delay must be a finite number of ms, got {float(values[~np.isfinite(values)][0])!r}"
        )
    bad = ~((values >= low - 1e-12) & (values <= high + 1e-12))
    if np.any(bad):
        raise errors.ConnectionError(
            f"delay must lie in [{low}, {high}] ms (min_delay/max_delay given to setup()), "
            f"got {float(values[bad].ravel()[0])!r} ms"
        )
    return delays
