"""Dense spike rasters with precise spike phases."""

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

    @classmethod
    def from_times(cls, times, discretisation, n_steps: int, first_step: int = 0) -> Raster:
        """Build a source raster from spike times.

        Parameters
        ----------
        times : sequence over batch of sequences over neurons of 1-D arrays of times (ms)
        discretisation : LIFDiscretisation
        n_steps : int
            Raster length; index ``k`` is grid step ``first_step + k``.  Spikes outside the
            window are ignored.
        """
        batch, size = len(times), len(times[0])
        raster = cls.empty(n_steps, batch, size)
        for b, per_neuron in enumerate(times):
            for i, t in enumerate(per_neuron):
                if len(t) == 0:
                    continue
                steps, phase = discretisation.step_and_phase(t)
                k = steps - first_step
                ok = (k >= 0) & (k < n_steps)
                raster.spikes[k[ok], b, i] = True
                raster.phase[k[ok], b, i] = phase[ok]
        return raster

    def times(self, dt: float, first_step: int, batch_index: int = 0) -> list[np.ndarray]:
        """Spike times (ms) per neuron of one batch entry; ``k`` is step ``first_step + k``."""
        k, i = np.nonzero(self.spikes[:, batch_index, :])
        t = (k + first_step - self.phase[k, batch_index, i]) * dt
        order = np.lexsort((t, i))
        k, i, t = k[order], i[order], t[order]
        bounds = np.searchsorted(i, np.arange(self.spikes.shape[2] + 1))
        return [t[bounds[j] : bounds[j + 1]] for j in range(self.spikes.shape[2])]
