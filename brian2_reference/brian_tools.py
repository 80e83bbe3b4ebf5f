"""Small Brian2 helpers shared by the forward and the adjoint network.

State variables are dimensionless numbers in the units of the EventProp
frame (mV, nA), so that Brian2 computes with exactly the numbers of docs/equations.md instead of
rescaling them to SI units; only time carries Brian2 units.
"""

from __future__ import annotations

from contextlib import contextmanager

import brian2
import numpy as np

#: Schedule of the adjoint network: Brian2's default, written out so that global preferences
#: cannot change it.
SCHEDULE = ["start", "groups", "thresholds", "synapses", "resets", "end"]
#: Schedule of the forward network: synaptic delivery *before* the threshold test, so that a
#: spike arriving at grid step ``n`` is part of ``U[n]`` when the threshold is tested.  A spike
#: emitted in the ``'thresholds'`` slot of step ``m`` is queued by its pathway in the
#: ``'synapses'`` slot of step ``m + 1``, so a Brian2 delay of ``(d - 1) dt`` delivers it in
#: step ``m + d``.
FORWARD_SCHEDULE = ["start", "groups", "synapses", "thresholds", "resets", "end"]
#: ``(when, order)`` of the history shift registers: after the synaptic pathways and before the
#: resetters (``'resets'``, order 0) and the ``'end'`` updates, in both schedules.
HISTORY_SLOT = ("resets", -1)


@contextmanager
def numpy_codegen():
    """Run Brian2 with the ``numpy`` code generation target and float64, then restore prefs.

    The numpy target needs no compiler and generates code in well under a second; restoring the
    preferences keeps other users of Brian2 in the same process unaffected.
    """
    prefs = brian2.prefs
    saved = prefs.codegen.target, prefs.core.default_float_dtype
    prefs.codegen.target = "numpy"
    prefs.core.default_float_dtype = np.float64
    try:
        yield
    finally:
        prefs.codegen.target, prefs.core.default_float_dtype = saved


def history_update(var: str, depth: int) -> str:
    """Abstract code of a shift register keeping ``var_h2 .. var_h{depth}``.

    Brian2 evaluates a synapse's ``on_pre`` code when the spike *arrives*, so a presynaptic
    variable read there has its value of the arrival step, not of the emission step.  Run this
    code every step between the ``'synapses'`` slot and the first change of ``var`` in the step
    (``when=HISTORY_SLOT``); then, in the ``'synapses'`` slot of step ``n``, ``var_h{k}`` holds
    the value ``var`` had in the ``'synapses'`` slot of step ``n - k + 1`` (``var`` itself being
    ``var_h1``), so a pathway with delay ``d`` reads ``var_h{d}``: the value at emission.
    """
    lines = [f"{var}_h{k} = {var}_h{k - 1}" for k in range(depth, 2, -1)]
    lines.append(f"{var}_h2 = {var}")
    return "\n".join(lines)


def history_variables(var: str, depth: int) -> str:
    """Model equations declaring ``var_h2 .. var_h{depth}`` (none for ``depth <= 1``)."""
    return "".join(f"{var}_h{k} : 1\n" for k in range(2, depth + 1))


def delayed(var: str, delay: int) -> str:
    """Name of the history variable holding ``var`` as of ``delay`` steps (see history_update)."""
    return var if delay == 1 else f"{var}_h{delay}"


def timed_array(values: np.ndarray, dt: float) -> brian2.TimedArray:
    """2-d ``TimedArray`` from ``values[k, idx]``: row ``k`` is read during Brian2 step ``k``.

    Brian2's numpy implementation reads row ``round(t/dt)``, clipped to the table.
    """
    return brian2.TimedArray(np.ascontiguousarray(values, dtype=float), dt=dt * brian2.ms)


def spike_steps(monitor: brian2.SpikeMonitor, dt: float) -> np.ndarray:
    """Brian2 time step of every recorded spike."""
    return np.rint(np.asarray(monitor.t / brian2.ms) / dt).astype(np.int64)
