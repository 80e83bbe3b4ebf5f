"""Brian2 preferences for this package: numpy code generation in float64, restored after use."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import brian2
import numpy as np
from brian2.utils.logger import catch_logs


@contextmanager
def numpy_codegen():
    """Run Brian2 with the ``numpy`` code generation target and float64, then restore prefs.

    The numpy target needs no compiler and generates its code in well under a second (the
    Cython target compiles each code object once, which takes minutes on a loaded machine and
    only pays off for runs of many more steps than the validation uses).  Restoring the
    preferences keeps other users of Brian2 in the same process unaffected.  Brian2's log
    messages (e.g. that an event's code runs as a Python loop, which is correct and only runs
    at events) are caught, not printed.
    """
    prefs = brian2.prefs
    saved = prefs.codegen.target, prefs.core.default_float_dtype
    prefs.codegen.target = "numpy"
    prefs.core.default_float_dtype = np.float64
    try:
        with catch_logs(logging.INFO):
            yield
    finally:
        prefs.codegen.target, prefs.core.default_float_dtype = saved
