"""Exact continuous-time engine: event-driven ``IF_curr_exp`` and its exact EventProp adjoint."""

import hashlib
import pathlib


def _drop_stale_kernel_cache():
    """Delete numba's on-disk cache of this package when any of its sources changed.

    numba checks only the source file of each cached function, not the files of the functions
    compiled into it (the kernels here call the closed forms of another module), so a changed
    closed form could otherwise run with stale compiled callers.
    """
    here = pathlib.Path(__file__).parent
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(here.glob("*.py"))))
    cache, stamp = here / "__pycache__", here / "__pycache__" / "kernel_sources.sha256"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass  # no stamp yet
    try:
        for stale in cache.glob("*.nb[ic]"):
            stale.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:  # read-only installation: numba then compiles in memory
        pass


_drop_stale_kernel_cache()

from .. import threads  # noqa: E402,F401  (the threading policy, before any kernel runs)
from .simulation import ExactSimulation  # noqa: E402

__all__ = ["ExactSimulation"]
