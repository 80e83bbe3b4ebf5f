"""Evaluate a loss the way the grid engine does: readouts of recorded arrays, then pull-back.

``on_grid(loss, spikes, phase, v, labels, dt)`` computes the readouts ``loss.requires`` of
grid arrays ``(T, B, N)`` (:mod:`pynn_eventprop.engine.readouts`), evaluates the loss with
duration ``T dt`` and pulls ``dL/dreadout`` back onto ``dL/dphase`` and ``dL/dV``, so the loss
tests can check the composition against finite differences of the recorded arrays.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from pynn_eventprop.engine.readouts import grid_readouts, pull_back


def on_grid(loss, spikes, phase, v, labels, dt):
    shape = next(a.shape for a in (spikes, phase, v) if a is not None)
    ref = phase if phase is not None else v
    dtype = ref.dtype if ref.dtype.kind == "f" else np.dtype(np.float64)
    values, index = grid_readouts(spikes, phase, v, loss.requires, dt)
    result = loss.evaluate(values, labels, shape[0] * dt)
    dl_dphase, dl_dv = pull_back(result.readout_grads, index, shape, dt, dtype)
    return SimpleNamespace(
        loss=result.loss,
        per_sample=result.per_sample,
        dL_dphase=dl_dphase,
        dL_dv=np.zeros(shape, dtype) if dl_dv is None else dl_dv,
        predictions=result.predictions,
        correct=result.correct,
        accuracy=result.accuracy,
        readout=result.readout,
    )
