"""Readouts on the time grid, and their pull-back onto the grid adjoint's inputs.

The grid engine (:mod:`pynn_eventprop.engine.simulation`) records, per population and batch of
``B`` samples, ``spikes`` (bool ``(T, B, N)``, a spike at grid step ``n = k + 1`` for array
index ``k``), their ``phase`` (spike time ``(n - phase) dt``) and the post-reset voltage ``v``
(``V = v - v_rest``, mV) at the grid points.  From these it computes the readouts of
:data:`pynn_eventprop.engine.interface.READOUTS`, times relative to the run's start:

* ``first_spike_time``: ``t = (n_1 - phase[n_1]) dt`` at the first spike's step ``n_1``,
  ``inf`` for a silent neuron;
* ``v_max`` ``= max_n V[n]`` over the grid points ``n = 1..T`` and ``v_max_time = n* dt``
  (the first maximum on an exact tie);
* ``v_mean_uniform`` ``= sum_n w_n V[n]`` with ``w_n = 1/T`` and ``v_mean_exponential`` with
  ``w_n = exp(-n/T) / T``: the grid forms of ``(1/(T dt)) integral w(t) V(t) dt`` with
  ``w(t) = 1`` or ``exp(-t/(T dt))``.

:func:`pull_back` turns ``dL/dreadout`` into what the adjoint recursion consumes:
``dL/dphase = -dt dL/dt`` at the first spike (because ``t = (n - phase) dt``), and ``dL/dV[n]``
(``dL/dv_max`` at the step of the maximum, ``w_n dL/dv_mean`` at every step).
"""

from __future__ import annotations

import functools

import numpy as np

from .interface import check_readouts

_VOLTAGE_READOUTS = ("v_max", "v_max_time", "v_mean_uniform", "v_mean_exponential")


@functools.lru_cache(maxsize=64)
def plane_index(batch: int, size: int) -> np.ndarray:
    """Flat indices ``cell[b, i] = b N + i`` into a ``(B, N)`` plane (cached, read-only).

    Entry ``(k, b, i)`` of a C-contiguous ``(T, B, N)`` array has flat index
    ``k B N + cell[b, i]``; flat indexing is several times cheaper than ``take_along_axis``.
    """
    cell = np.arange(batch * size).reshape(batch, size)
    cell.flags.writeable = False
    return cell


@functools.lru_cache(maxsize=64)
def time_weights(weighting: str, n_steps: int, dtype: np.dtype) -> np.ndarray:
    """Weights ``w_n``, ``n = 1..n_steps``, of the average-voltage readouts (read-only)."""
    n = np.arange(1, n_steps + 1)
    if weighting == "uniform":
        w = np.full(n_steps, 1.0 / n_steps)
    elif weighting == "exponential":
        w = np.exp(-n / n_steps) / n_steps
    else:
        raise ValueError(f"weighting must be 'uniform' or 'exponential', got {weighting!r}")
    w = w.astype(dtype)
    w.flags.writeable = False
    return w


def time_to_phase_gradient(dL_dt, dt: float):
    """``dL/dphase = -dt dL/dt``, since a spike at step ``n`` with phase ``phi`` is at
    ``t = (n - phi) dt``."""
    return -dt * dL_dt


def grid_readouts(spikes, phase, v, names, dt: float):
    """Readouts ``names`` of recorded grid arrays (see the module docstring).

    Returns ``(values, index)``: ``values`` name -> ``(B, N)`` array, ``index`` what
    :func:`pull_back` needs (flat positions of first spikes and maxima).
    """
    names = check_readouts(names)
    values, index = {}, {}
    if "first_spike_time" in names:
        n_steps, batch, size = spikes.shape
        cell = plane_index(batch, size)
        first = spikes.argmax(axis=0)  # array index k = n - 1 of the first spike, 0 if none
        at_first = first * (batch * size) + cell
        fired = spikes.take(at_first)
        t = np.where(fired, (first + 1) - phase.take(at_first), np.inf) * dt
        values["first_spike_time"] = t
        index["first_spike_time"] = (at_first, fired)
    if "v_max" in names or "v_max_time" in names:
        n_steps, batch, size = v.shape
        k_max = np.argmax(v, axis=0)
        at_max = k_max * (batch * size) + plane_index(batch, size)
        if "v_max" in names:
            values["v_max"] = v.take(at_max)
        if "v_max_time" in names:
            values["v_max_time"] = (k_max + 1) * dt
        index["v_max"] = at_max
    for weighting in ("uniform", "exponential"):
        name = f"v_mean_{weighting}"
        if name in names:
            n_steps, batch, size = v.shape
            w = time_weights(weighting, n_steps, v.dtype)
            values[name] = (w @ v.reshape(n_steps, batch * size)).reshape(batch, size)
    return values, index


def needs_voltage(names) -> bool:
    """Whether any of ``names`` reads the voltage trace."""
    return any(n in _VOLTAGE_READOUTS for n in names)


def pull_back(grads: dict, index: dict, shape, dt: float, dtype):
    """``dL/dphase`` ``(T, B, N)`` and ``dL/dV`` (``(T, B, N)``, or None) from readout grads.

    ``grads`` name -> ``dL/dreadout`` ``(B, N)``; ``index`` from :func:`grid_readouts` of the
    same run.  ``v_max_time`` is piecewise constant on the grid: its gradient must be zero.
    """
    dl_dphase = np.zeros(shape, dtype)
    dl_dv = None
    for name, g in grads.items():
        if g is None:
            continue
        g = np.asarray(g)
        if g.shape != tuple(shape[1:]):
            raise ValueError(
                f"gradient of readout {name!r} has shape {g.shape}, expected {tuple(shape[1:])}"
            )
        if name == "first_spike_time":
            at_first, fired = index[name]
            dl_dphase.reshape(-1)[at_first] += time_to_phase_gradient(np.where(fired, g, 0.0), dt)
            continue
        if name == "v_max_time":
            if np.any(g):
                raise ValueError("v_max_time is piecewise constant on the grid: no gradient")
            continue
        if name not in _VOLTAGE_READOUTS:
            check_readouts([name])
        if dl_dv is None:
            dl_dv = np.zeros(shape, dtype)
        if name == "v_max":
            dl_dv.reshape(-1)[index[name]] += g  # one maximum per neuron: unique indices
        else:
            weighting = name.removeprefix("v_mean_")
            dl_dv += time_weights(weighting, shape[0], np.dtype(dtype))[:, None, None] * g
    return dl_dphase, dl_dv
