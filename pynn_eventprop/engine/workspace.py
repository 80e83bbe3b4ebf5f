"""Reusable array buffers for repeated runs of the same shapes (the training loop).

Allocating fresh multi-megabyte arrays on every batch costs more in page faults than the
arithmetic itself; a :class:`Workspace` with ``reuse=True`` hands back the same buffers while
the shapes stay the same.  Arrays obtained from a reusing workspace are overwritten by the next
run: callers that keep results must copy them.
"""

from __future__ import annotations

import numpy as np


class Workspace:
    """Named scratch arrays; allocated fresh each time unless ``reuse`` is True."""

    def __init__(self, reuse: bool = False):
        self.reuse = reuse
        self._arrays: dict = {}

    def empty(self, key, shape, dtype) -> np.ndarray:
        if not self.reuse:
            return np.empty(shape, dtype)
        arr = self._arrays.get(key)
        if arr is None or arr.shape != tuple(shape) or arr.dtype != np.dtype(dtype):
            arr = self._arrays[key] = np.empty(shape, dtype)
        return arr

    def zeros(self, key, shape, dtype) -> np.ndarray:
        arr = self.empty(key, shape, dtype)
        arr.fill(0)
        return arr
