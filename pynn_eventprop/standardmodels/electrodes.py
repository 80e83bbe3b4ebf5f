"""Current sources: ``DCSource``, ``StepCurrentSource``, ``ACSource``, ``NoisyCurrentSource``.

A source's waveform ``i(t)`` (nA) is sampled at the start of each step and held over it: the
engine's external current ``e[n]`` of step ``n`` (the interval ``(t_{n-1}, t_n]``) is
``i(t_{n-1})``, as in pyNN.brian2 and NEST.  Switching times (``start``, ``stop``, ``times``) are
rounded to the nearest grid point; a DCSource with ``start = 10`` ms therefore first changes ``v``
at ``t = 10 + dt``.  Currents from several sources into one neuron add up.
"""

from __future__ import annotations

import numpy as np
from pyNN.errors import InvalidParameterValueError
from pyNN.parameters import ParameterSpace, Sequence
from pyNN.standardmodels import StandardCurrentSource, build_translations, electrodes

from ..simulator import state
from ..validation import StaleObjectError, check_current_population


def _identity_translations(base):
    return build_translations(*((name, name) for name in base.default_parameters))


class CurrentSource(StandardCurrentSource):
    """Base class: parameter storage, injection targets, per-chunk currents, recording."""

    def __init__(self, **parameters):
        self._native = {}
        self._targets = {}
        self._recorded = []
        self.recording = False
        self._check_single_values(parameters)
        super().__init__(**parameters)
        space = ParameterSpace(self.default_parameters, self.get_schema(), shape=(1,))
        space.update(**parameters)
        self.set_native_parameters(self.translate(space))
        state.current_sources.append(self)

    # --- parameters ----------------------------------------------------------------------------
    def _check_single_values(self, parameters):
        """Parameters that PyNN declares as single numbers must not be given as arrays."""
        for name, value in parameters.items():
            single = isinstance(self.default_parameters.get(name), float | int)
            if single and np.ndim(value) > 0 and not isinstance(value, Sequence):
                raise InvalidParameterValueError(
                    f"{name} of {type(self).__name__} must be a single number, got {value!r}"
                )

    def set_parameters(self, copy=True, **parameters):
        self._check_single_values(parameters)
        super().set_parameters(copy, **parameters)

    set_parameters.__doc__ = StandardCurrentSource.set_parameters.__doc__

    def get_native_parameters(self):
        return ParameterSpace(dict(self._native))

    def set_native_parameters(self, parameters):
        parameters.evaluate(simplify=True)
        values = dict(self._native)
        for name, value in parameters.items():
            if isinstance(value, Sequence):
                value = value.value
            values[name] = np.asarray(value, float) if np.ndim(value) else float(value)
        self._check(values)
        self._native = self._normalise(values)

    def _check(self, values):
        """Raise ``InvalidParameterValueError`` for bad parameter values."""
        for name, value in values.items():
            if not np.all(np.isfinite(value)):
                raise InvalidParameterValueError(
                    f"{name} of {type(self).__name__} must be finite, got {value!r}"
                )

    # --- targets -------------------------------------------------------------------------------
    def inject_into(self, cells):
        """Inject into a Population, PopulationView, Assembly or list of IDs."""
        if not any(source is self for source in state.current_sources):
            raise StaleObjectError(
                f"{type(self).__name__} was created before the last setup(), which destroyed "
                f"it; create it again after setup()"
            )
        for cell in cells:
            check_current_population(cell.parent, "population", state)
            if not cell.celltype.injectable:
                raise TypeError(
                    f"cannot inject {type(self).__name__} into spike source population "
                    f"'{cell.parent.label}' ({type(cell.celltype).__name__}); current sources "
                    f"need neurons such as IF_curr_exp or IF_cond_exp"
                )
            index = cell.parent._index
            self._targets.setdefault(index, []).append(int(cell.parent.id_to_index(cell)))

    # --- simulation ----------------------------------------------------------------------------
    def _currents(self, n0: int, n_steps: int, dt: float):
        """Yield ``(population index, neuron indices, amplitude (n_steps,))`` for steps n0+1..

        The amplitude of step ``n0 + 1 + k`` is the waveform at grid step ``n0 + k``.
        """
        amplitude = self._waveform(n0 + np.arange(n_steps), dt)
        if self.recording:
            self._recorded.append(amplitude)
        for index, targets in self._targets.items():
            yield index, np.asarray(targets, dtype=np.int64), amplitude

    def _normalise(self, values):
        """Checked parameter values as stored (hook for rounding to the grid)."""
        return values

    def _waveform(self, grid_steps: np.ndarray, dt: float) -> np.ndarray:
        raise NotImplementedError

    def _reset(self):
        self._recorded = []

    # --- recording -----------------------------------------------------------------------------
    def record(self):
        """Record the injected current (returned by ``get_data()``)."""
        self.recording = True

    def _get_data(self):
        """Times (ms) and current (nA) at every grid point of the current segment.

        Recorded chunks cover grid steps ``0 .. n-1``; the value at the current time is the
        current that the next step will use.
        """
        dt = state.dt
        values = self._recorded + [self._waveform(np.array([state.n]), dt)]
        amplitudes = np.concatenate(values)
        start = state.n + 1 - amplitudes.size
        return (start + np.arange(amplitudes.size)) * dt, amplitudes

    def _step(self, time_ms) -> np.ndarray:
        return np.rint(np.asarray(time_ms, float) / state.dt).astype(np.int64)


class DCSource(CurrentSource, electrodes.DCSource):
    __doc__ = electrodes.DCSource.__doc__
    translations = _identity_translations(electrodes.DCSource)

    def _check(self, values):
        super()._check(values)
        _check_non_negative(self, values, "start", "stop")
        _check_stop_after_start(self, values)

    def _waveform(self, grid_steps, dt):
        p = self._native
        on = (grid_steps >= self._step(p["start"])) & (grid_steps < self._step(p["stop"]))
        return np.where(on, p["amplitude"], 0.0)


class StepCurrentSource(CurrentSource, electrodes.StepCurrentSource):
    __doc__ = electrodes.StepCurrentSource.__doc__
    translations = _identity_translations(electrodes.StepCurrentSource)

    def _check(self, values):
        super()._check(values)
        times = np.atleast_1d(values["times"])
        amplitudes = np.atleast_1d(values["amplitudes"])
        if times.shape != amplitudes.shape:
            raise InvalidParameterValueError(
                f"StepCurrentSource needs as many amplitudes as times, got {amplitudes.size} "
                f"amplitudes and {times.size} times"
            )
        if (times < 0).any():
            raise InvalidParameterValueError(
                f"times of StepCurrentSource must be >= 0 ms, got {times[times < 0][0]!r}"
            )
        if (np.diff(times) <= 0).any():
            raise InvalidParameterValueError(
                f"times of StepCurrentSource must be strictly increasing, got {times.tolist()}"
            )

    def _normalise(self, values):
        """Round times to the grid; of several times in one step the last one given wins."""
        steps = self._step(np.atleast_1d(values["times"]))
        last = np.r_[steps[1:] != steps[:-1], True]
        values["times"] = steps[last] * state.dt
        values["amplitudes"] = np.atleast_1d(values["amplitudes"])[last]
        return values

    def _waveform(self, grid_steps, dt):
        times = self._step(self._native["times"])
        amplitudes = self._native["amplitudes"]
        if times.size == 0:
            return np.zeros(grid_steps.shape)
        k = np.searchsorted(times, grid_steps, side="right") - 1
        return np.where(k >= 0, amplitudes[np.maximum(k, 0)], 0.0)


class ACSource(CurrentSource, electrodes.ACSource):
    __doc__ = electrodes.ACSource.__doc__
    translations = _identity_translations(electrodes.ACSource)

    def _check(self, values):
        super()._check(values)
        _check_non_negative(self, values, "start", "stop", "frequency")
        _check_stop_after_start(self, values)

    def _waveform(self, grid_steps, dt):
        p = self._native
        on = (grid_steps >= self._step(p["start"])) & (grid_steps < self._step(p["stop"]))
        t = grid_steps * dt - p["start"]
        wave = p["offset"] + p["amplitude"] * np.sin(
            2 * np.pi * p["frequency"] * t / 1000.0 + 2 * np.pi * p["phase"] / 360.0
        )
        return np.where(on, wave, 0.0)


class NoisyCurrentSource(CurrentSource, electrodes.NoisyCurrentSource):
    __doc__ = electrodes.NoisyCurrentSource.__doc__
    translations = _identity_translations(electrodes.NoisyCurrentSource)

    def __init__(self, **parameters):
        self._noise = np.zeros(0)
        super().__init__(**parameters)

    def _check(self, values):
        super()._check(values)
        _check_non_negative(self, values, "start", "stop", "stdev")
        _check_stop_after_start(self, values)
        ratio = values["dt"] / state.dt
        if values["dt"] <= 0 or abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio):
            raise InvalidParameterValueError(
                f"dt of NoisyCurrentSource must be a positive multiple of the time step "
                f"{state.dt} ms, got {values['dt']!r}"
            )

    def _reset(self):
        super()._reset()
        self._noise = np.zeros(0)

    def _waveform(self, grid_steps, dt):
        p = self._native
        start, stop = self._step(p["start"]), self._step(p["stop"])
        on = (grid_steps >= start) & (grid_steps < stop)
        interval = np.where(on, (grid_steps - start) // int(round(p["dt"] / dt)), 0)
        needed = int(interval.max(initial=0)) + 1
        if needed > self._noise.size:
            fresh = state.rng.normal(p["mean"], p["stdev"], needed - self._noise.size)
            self._noise = np.concatenate([self._noise, fresh])
        return np.where(on, self._noise[interval], 0.0)


def _check_non_negative(source, values, *names):
    for name in names:
        if np.any(np.asarray(values[name]) < 0):
            raise InvalidParameterValueError(
                f"{name} of {type(source).__name__} must be >= 0, got {values[name]!r}"
            )


def _check_stop_after_start(source, values):
    if values["stop"] < values["start"]:
        raise InvalidParameterValueError(
            f"stop of {type(source).__name__} must be >= start={values['start']!r} ms, got "
            f"stop={values['stop']!r} ms"
        )


SUPPORTED_CURRENT_SOURCES = (DCSource, StepCurrentSource, ACSource, NoisyCurrentSource)
