"""Run an exported NIR graph in another library (Norse) and read its first output spikes.

Norse (``norse.torch.from_nir``) turns a ``CubaLIF`` into a synapse and a membrane, each
advanced by one forward-Euler step of ``dt`` per time step, with spikes of height 1 per step;
:func:`~pynn_eventprop.interop.scale_for_unit_spikes` first rescales ``w_in`` so that those
spikes step the synaptic current as NIR's Dirac pulses do.  What stays different from this
package's exact engine, all of it Norse's time stepping:

* input spikes are moved to the start of their step (``floor(t / dt)``) and output spikes are
  only known to the end of a step, so first-spike times carry errors of up to ``dt``;
* forward Euler with step ``dt`` instead of the exact solution (an error of order
  ``dt / tau``, for the synaptic and the membrane equation);
* NIR's edges without a ``Delay`` node have no delay: the uniform delays that
  :func:`~pynn_eventprop.interop.export_nir` keeps in metadata are not applied, so every
  output spike comes earlier by the sum of the delays along its path.

Needs ``torch`` and ``norse`` (``pip install "pynn_eventprop[nir-client]"``).
"""

from __future__ import annotations

import numpy as np

from .nir_export import scale_for_unit_spikes
from .nir_mapping import NIRConversionError, require_nir


def norse_first_spike_times(graph, times, duration: float, dt: float) -> np.ndarray:
    """First spike time (ms) of each output neuron, simulated by Norse.

    Parameters
    ----------
    graph : nir.NIRGraph
        A graph with one ``Input`` and one ``Output`` node, time in ms (as exported).
    times : array ``(n_samples, n_inputs)``
        One input spike time per input neuron (ms, NaN = no spike), as in this package's
        data sets.
    duration : float
        Simulated time per sample (ms).
    dt : float
        Norse's time step (ms).

    Returns
    -------
    array ``(n_samples, n_outputs)``: end of the step in which each output neuron first
    spiked (ms), ``inf`` for neurons that stayed silent.
    """
    import torch
    from norse.torch import from_nir

    nir = require_nir()
    _check_single_io(nir, graph)
    times = np.asarray(times, float)
    n_steps = int(round(duration / dt))
    inputs = _raster(times, n_steps, dt)
    model = from_nir(scale_for_unit_spikes(graph, dt), dt=dt)
    first = None
    state = None
    with torch.no_grad():
        for step in range(n_steps):
            out, state = model(torch.from_numpy(inputs[step]), state)
            spiking = out.numpy() > 0
            if first is None:
                first = np.full(spiking.shape, np.inf)
            new = spiking & np.isinf(first)
            first[new] = (step + 1) * dt
    return first


def ttfs_predictions(first_spike_times) -> np.ndarray:
    """Class per sample: the output neuron that spiked first (ties: the lower index), -1 if
    all are silent (the convention of this package's TTFS loss)."""
    first = np.asarray(first_spike_times, float)
    silent = np.all(np.isinf(first), axis=1)
    return np.where(silent, -1, np.argmin(first, axis=1))


def _raster(times: np.ndarray, n_steps: int, dt: float) -> np.ndarray:
    """Spikes ``(n_steps, n_samples, n_inputs)`` of height 1 at step ``floor(t / dt)``."""
    raster = np.zeros((n_steps, *times.shape), dtype=np.float32)
    steps = np.floor(np.nan_to_num(times, nan=-1.0) / dt + 1e-9).astype(np.int64)
    keep = np.isfinite(times) & (steps >= 0) & (steps < n_steps)
    samples, neurons = np.nonzero(keep)
    raster[steps[keep], samples, neurons] = 1.0
    return raster


def _check_single_io(nir, graph) -> None:
    counts = {
        kind.__name__: sum(isinstance(node, kind) for node in graph.nodes.values())
        for kind in (nir.Input, nir.Output)
    }
    if counts != {"Input": 1, "Output": 1}:
        raise NIRConversionError(
            f"norse_first_spike_times needs one Input and one Output node, got {counts}"
        )
