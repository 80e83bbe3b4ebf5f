"""Recording into PyNN's :class:`pyNN.recording.Recorder` (and from there into Neo).

PyNN's base Recorder builds the Neo objects (``SpikeTrain`` annotated with ``source_population``,
``source_index`` and ``channel_id``; ``AnalogSignal`` with ``channel_index``), caches one Segment
per run between resets and writes files.  This subclass only stores what the engine returns:

* spikes as (neuron index, time) pairs.  Neuron spike times are the precise times
  ``(n - phase) dt``; source spike times are the times given (SpikeSourceArray) or drawn
  (SpikeSourcePoisson).
* state variables (``v`` in mV; ``isyn_exc``/``isyn_inh`` in nA; ``gsyn_exc``/``gsyn_inh`` in uS;
  the EventProp adjoints ``lambda_v`` in 1/mV and ``lambda_i`` in 1/nA, stored by training)
  at every grid step for the neurons recorded at that time, including the initial value at
  ``t = 0``.  A signal is assembled on request for the grid points ``t_start, t_start + s, ...``
  up to the current time (``s`` the sampling interval, a multiple of ``dt``); points at which a
  neuron was not recorded are NaN.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import quantities as pq
from pyNN import recording

from . import simulator
from .standardmodels.cells import ADJOINT_VARIABLES


class Recorder(recording.Recorder):
    """Stores engine output for one Population (its views share it)."""

    _simulator = simulator

    def __init__(self, population, file=None):
        self._signals = defaultdict(list)  # name -> list of (steps, neuron indices, values)
        self._spikes = []  # list of (neuron indices, times in ms)
        super().__init__(population, file)

    # --- what to record ----------------------------------------------------------------------
    def _record(self, variable, new_ids, sampling_interval=None):
        if sampling_interval is None:
            return
        dt = self._simulator.state.dt
        ratio = sampling_interval / dt
        if sampling_interval <= 0 or abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio):
            raise ValueError(
                f"sampling_interval must be a positive multiple of the time step {dt} ms, "
                f"got {sampling_interval!r}"
            )
        self.sampling_interval = sampling_interval

    def _recorded_indices(self, name: str) -> np.ndarray:
        ids = self.recorded.get(recording.Variable(name, None, None), ())
        if not ids:
            return np.zeros(0, np.int64)
        return np.sort(self.population.id_to_index(np.fromiter(ids, dtype=np.int64)))

    def _recorded_variables(self) -> tuple[str, ...]:
        return tuple(sorted(v.name for v, ids in self.recorded.items() if ids))

    def _engine_variables(self) -> tuple[str, ...]:
        """Recorded variables the forward engine produces (adjoints come from training)."""
        return tuple(v for v in self._recorded_variables() if v not in ADJOINT_VARIABLES)

    def store_signal(self, name: str, first_step: int, values: np.ndarray):
        """Add values ``(n_steps, size)`` of ``name`` from grid step ``first_step`` on.

        Used by training to record the adjoint variables of the current run.
        """
        idx = self._recorded_indices(name)
        steps = first_step + np.arange(len(values))
        self._signals[name].append((steps, idx, np.asarray(values)[:, idx]))

    # --- storing engine output ------------------------------------------------------------------
    def _store_initial_sample(self):
        """Initial values at ``t = 0`` of every recorded state variable."""
        initial = self.population._initial_value_arrays()
        for name in self._engine_variables():
            if name == "spikes":
                continue
            idx = self._recorded_indices(name)
            self._signals[name].append((np.zeros(1, np.int64), idx, initial[name][idx][None, :]))

    def _store_chunk(self, n0: int, n_steps: int, result, index: int, emitted):
        """Keep the recorded part of one engine run (steps ``n0+1 .. n0+n_steps``).

        ``result`` is the engine's RunResult, ``index`` this population's compiled index;
        spike sources store the times they ``emitted`` (as given or drawn).
        """
        signals = result.signals.get(index, {})
        for name in self._engine_variables():
            idx = self._recorded_indices(name)
            if name == "spikes":
                if emitted is not None:
                    neuron, times = emitted.neuron, emitted.time
                else:
                    neuron, times = result.spikes[index].sample(0)
                keep = np.isin(neuron, idx)
                self._spikes.append((neuron[keep], times[keep]))
            elif name in signals:
                steps = n0 + 1 + np.arange(n_steps)
                self._signals[name].append((steps, idx, signals[name][:, 0, idx]))

    # --- PyNN's hooks ----------------------------------------------------------------------------
    def _get_spiketimes(self, ids, clear=False):
        if self._spikes:
            neuron = np.concatenate([s[0] for s in self._spikes])
            times = np.concatenate([s[1] for s in self._spikes])
        else:
            neuron, times = np.zeros(0, np.int64), np.zeros(0)
        wanted = np.asarray(ids, dtype=np.int64) - int(self.population.first_id)
        keep = np.isin(neuron, wanted)
        order = np.argsort(times[keep], kind="stable")
        id_array = neuron[keep][order] + int(self.population.first_id)
        return id_array, np.array(times[keep][order], dtype=float)

    def _get_all_signals(self, variable, ids, clear=False):
        state = self._simulator.state
        every = int(round(self.sampling_interval / state.dt))
        start = int(
            round(float(pq.Quantity(self._recording_start_time, "ms").magnitude) / state.dt)
        )
        rows = np.arange(start, state.n + 1, every)
        column = np.full(self.population.size, -1)
        column[np.asarray(ids, dtype=np.int64) - int(self.population.first_id)] = np.arange(
            len(ids)
        )
        values = np.full((rows.size, len(ids)), np.nan)
        for steps, idx, data in self._signals[variable.name]:
            on_grid = (steps >= start) & (steps <= state.n) & ((steps - start) % every == 0)
            cols = column[idx]
            wanted = cols >= 0
            values[np.ix_((steps[on_grid] - start) // every, cols[wanted])] = data[
                np.ix_(on_grid, wanted)
            ]
        return values, None

    def _local_count(self, variable, filter_ids=None):
        ids = sorted(self.filter_recorded(variable, filter_ids))
        id_array, _ = self._get_spiketimes(ids)
        counts = dict.fromkeys((int(i) for i in ids), 0)
        found, n = np.unique(id_array, return_counts=True)
        counts.update(zip(found.tolist(), n.tolist(), strict=True))
        return counts

    def _clear_simulator(self):
        """After ``get_data(clear=True)``: drop data, keep the sample at the current time."""
        n = self._simulator.state.n
        self._spikes = []
        for name, chunks in self._signals.items():
            kept = []
            for steps, idx, data in chunks:
                now = steps == n
                if now.any():
                    kept.append((steps[now], idx, data[now]))
            self._signals[name] = kept

    def _clear_all_data(self):
        """At ``reset()``, after PyNN has cached the finished Segment."""
        self._signals = defaultdict(list)
        self._spikes = []

    def _reset(self):
        """``record(None)``: PyNN forgets what to record; data recorded so far stays."""
