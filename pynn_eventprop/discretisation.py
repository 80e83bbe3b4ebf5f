"""The simulation time grid: the step ``dt`` (ms) of ``sim.setup(timestep=...)``.

Every engine is handed one :class:`LIFDiscretisation` with the network.  The reference engine
integrates exactly between events at any times; the grid only says how long a run of ``n``
steps is (``n dt`` ms), where recorded signals are sampled (at ``t_n = n dt``) and over which
intervals step currents are constant.  The SpiNNaker2 model advances in ticks of ``dt`` and
takes delays as whole ticks (:meth:`LIFDiscretisation.delay_steps`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LIFDiscretisation:
    """A time grid of step ``dt`` (ms, finite and > 0); immutable and cheap."""

    dt: float

    def __post_init__(self):
        dt = np.asarray(self.dt, dtype=float)
        if not np.all(np.isfinite(dt)) or np.any(dt <= 0):
            raise ValueError(f"timestep must be finite and > 0, got {self.dt!r}")

    def steps(self, duration: float) -> int:
        """Number of whole steps in ``duration`` ms (rounded to the nearest step)."""
        return int(round(duration / self.dt))

    def delay_steps(self, delay) -> np.ndarray:
        """Delays (ms) as whole steps; raise if any is below ``dt`` or not a multiple of it."""
        d = np.asarray(delay, dtype=float)
        if not np.all(np.isfinite(d)):
            raise ValueError(f"delay must be finite, got {delay!r}")
        steps = np.rint(d / self.dt)
        bad = np.abs(steps * self.dt - d) > 1e-6 * self.dt
        if np.any(bad):
            raise ValueError(
                f"delay must be a whole multiple of the timestep {self.dt} ms, "
                f"got {float(d[bad].ravel()[0])!r} ms"
            )
        if np.any(steps < 1):
            raise ValueError(
                f"delay must be >= the timestep {self.dt} ms, "
                f"got {float(d[steps < 1].ravel()[0])!r} ms"
            )
        return steps.astype(np.int64)
