"""Dense spike rasters with precise spike phases: the grid engine's internal spike format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Raster:
    """Spikes of one population on the time grid, batched.

    Attributes
    ----------
    spikes : bool array ``(n_steps, batch, size)``
        True where the neuron spiked at that grid step.
    phase : float array, same shape
        Where ``spikes`` is True, the fraction of a step *before* the grid point at which the
        spike occurred: spike time ``(n - phase) * dt`` for grid step ``n``.  Zero elsewhere.
    """

    spikes: np.ndarray
    phase: np.ndarray

    def __post_init__(self):
        if self.spikes.shape != self.phase.shape:
            raise ValueError(
                f"Raster spikes and phase must have the same shape, got "
                f"{self.spikes.shape} and {self.phase.shape}"
            )

    @classmethod
    def empty(cls, n_steps: int, batch: int, size: int, dtype=np.float64) -> Raster:
        return cls(np.zeros((n_steps, batch, size), bool), np.zeros((n_steps, batch, size), dtype))
