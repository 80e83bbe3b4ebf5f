"""Standard cell types of the backend: the LIF neurons and the spike sources.

Parameters keep PyNN's names and units (mV, ms, nF, nA, uS, Hz), so every translation is the
identity; what the engines compute from them is stated in ``docs/equations.md``.  Each cell
type declares the constraints its parameters must satisfy (:class:`Rules`); they are checked
whenever parameters are created or set, so bad values fail early with the parameter's name.

Spike sources produce, for each run of steps ``n0 .. n0+N`` (ms ``[n0 dt, (n0+N) dt)``), the
spikes whose times fall in that window (:class:`EmittedSpikes`), at their exact times: a spike at
time ``t`` reaches its targets at ``t + delay``.  A neuron may spike several times within one
time step.  A run's window includes its last step, so a spike at 9.95 ms belongs to
``run(10.0)`` at ``dt = 0.1`` and is in that run's ``get_data()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyNN.errors import InvalidParameterValueError
from pyNN.standardmodels import build_translations, cells

from ..engine.interface import SpikeTrains

# ---------------------------------------------------------------------------------------------
# parameter constraints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """Constraints on the (evaluated, per-neuron) parameters of a cell type.

    Every numeric parameter must be finite.  ``positive`` ones must be > 0, ``non_negative``
    ones >= 0, and each ``(a, b)`` in ``below`` must satisfy ``a < b`` neuron by neuron.
    """

    positive: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    below: tuple[tuple[str, str], ...] = ()

    def check(self, model: str, params: dict, label: str) -> None:
        """Raise ``InvalidParameterValueError`` naming parameter, value and what is allowed."""
        where = f"{model} population '{label}'"
        for name, values in params.items():
            arr = np.asarray(values)
            if arr.dtype == object:
                continue
            bad = ~np.isfinite(arr.astype(float))
            if bad.any():
                raise InvalidParameterValueError(
                    f"{name} must be a finite number in {where}, got {_first(arr, bad)}"
                )
        for name in self.positive:
            arr = np.asarray(params[name], float)
            if (arr <= 0).any():
                raise InvalidParameterValueError(
                    f"{name} must be > 0 in {where}, got {_first(arr, arr <= 0)}"
                )
        for name in self.non_negative:
            arr = np.asarray(params[name], float)
            if (arr < 0).any():
                raise InvalidParameterValueError(
                    f"{name} must be >= 0 in {where}, got {_first(arr, arr < 0)}"
                )
        for low, high in self.below:
            lo = np.broadcast_to(np.asarray(params[low], float), np.shape(params[high]))
            hi = np.asarray(params[high], float)
            bad = lo >= hi
            if bad.any():
                k = int(np.flatnonzero(bad.ravel())[0])
                raise InvalidParameterValueError(
                    f"{low} must be below {high} in {where}, got {low}={lo.ravel()[k]} and "
                    f"{high}={hi.ravel()[k]} (neuron {k})"
                )


def _first(arr, bad):
    """The first offending value and its neuron index, for error messages."""
    k = int(np.flatnonzero(np.ravel(bad))[0])
    value = np.ravel(arr)[k]
    return f"{value!r} (neuron {k})" if np.size(arr) > 1 else repr(value)


def _identity_translations(base):
    return build_translations(*((name, name) for name in base.default_parameters))


LIF_RULES = Rules(
    positive=("tau_m", "cm", "tau_syn_E", "tau_syn_I"),
    non_negative=("tau_refrac",),
    below=(("v_reset", "v_thresh"),),
)

# ---------------------------------------------------------------------------------------------
# neurons
# ---------------------------------------------------------------------------------------------


#: EventProp adjoint variables ``dL/dV`` and ``dL/dI_E`` (docs/equations.md §3): recordable, and
#: filled by :meth:`pynn_eventprop.eventprop.training.Trainer.record_samples`.
ADJOINT_VARIABLES = ("lambda_v", "lambda_i")


class IF_curr_exp(cells.IF_curr_exp):
    __doc__ = cells.IF_curr_exp.__doc__
    translations = _identity_translations(cells.IF_curr_exp)
    recordable = ["spikes", "v", "isyn_exc", "isyn_inh", *ADJOINT_VARIABLES]
    units = {**cells.IF_curr_exp.units, "lambda_v": "1/mV", "lambda_i": "1/nA"}
    compiled_model = "IF_curr_exp"
    is_spike_source = False
    rules = LIF_RULES


class IF_cond_exp(cells.IF_cond_exp):
    __doc__ = (cells.IF_cond_exp.__doc__ or "") + (
        "\n    Forward simulation only (events at their exact times, the membrane integrated with "
        "Runge-Kutta substeps of at most 0.01 ms between them); EventProp training accepts "
        "current-based cells only.\n"
    )
    translations = _identity_translations(cells.IF_cond_exp)
    recordable = ["spikes", "v", "gsyn_exc", "gsyn_inh"]
    compiled_model = "IF_cond_exp"
    is_spike_source = False
    rules = LIF_RULES


class IF_curr_alpha(cells.IF_curr_alpha):
    __doc__ = (cells.IF_curr_alpha.__doc__ or "") + (
        "\n    A spike of weight w (nA) adds the current w (t/tau_syn) exp(1 - t/tau_syn) after "
        "its arrival (peak w at t = tau_syn), as in NEST's iaf_psc_alpha.  Integrated exactly "
        "(closed-form propagator, threshold crossings located to 1e-13 ms); forward simulation "
        "only: EventProp training accepts IF_curr_exp cells only.\n"
    )
    translations = _identity_translations(cells.IF_curr_alpha)
    recordable = ["spikes", "v", "isyn_exc", "isyn_inh"]
    compiled_model = "IF_curr_alpha"
    is_spike_source = False
    rules = LIF_RULES


# ---------------------------------------------------------------------------------------------
# spike sources
# ---------------------------------------------------------------------------------------------


@dataclass
class EmittedSpikes:
    """Spikes of one source population in one time window, sorted by time.

    ``neuron`` (int) and ``time`` (ms, as given or drawn) are 1-D arrays of equal length.
    """

    neuron: np.ndarray
    time: np.ndarray

    def followed_by(self, later: EmittedSpikes) -> EmittedSpikes:
        """These spikes and those of the ``later`` window."""
        return EmittedSpikes(
            np.concatenate([self.neuron, later.neuron]), np.concatenate([self.time, later.time])
        )

    def trains(self, size: int) -> SpikeTrains:
        """Engine input: these spikes as one sample of a population of ``size`` neurons."""
        offsets = np.array([0, self.time.size], np.int64)
        return SpikeTrains(self.time.astype(float), self.neuron.astype(np.int64), offsets, size)


def _window(discretisation, n0: int, n_steps: int) -> tuple[float, float]:
    """Start and end (ms) of the run of steps ``n0 .. n0+N``: ``[n0 dt, (n0+N) dt)``."""
    return n0 * discretisation.dt, (n0 + n_steps) * discretisation.dt


class SpikeSchedule:
    """The fixed spike times of a SpikeSourceArray population."""

    def __init__(self, spike_times, discretisation, label: str):
        neurons, times = [], []
        for i, seq in enumerate(spike_times):
            t = _sequence_values(seq)
            check_spike_times(t, i, label)
            neurons.append(np.full(t.size, i, dtype=np.int64))
            times.append(t)
        neuron = np.concatenate(neurons) if neurons else np.zeros(0, np.int64)
        time = np.concatenate(times) if times else np.zeros(0)
        order = np.argsort(time, kind="stable")
        self.spikes = EmittedSpikes(neuron[order], time[order])
        self.disc = discretisation

    def emit(self, n0: int, n_steps: int, rng) -> EmittedSpikes:
        """The spikes of ``[n0 dt, (n0+N) dt)``."""
        s = self.spikes
        lo, hi = np.searchsorted(s.time, _window(self.disc, n0, n_steps), side="left")
        return EmittedSpikes(s.neuron[lo:hi], s.time[lo:hi])


def _sequence_values(seq) -> np.ndarray:
    value = getattr(seq, "value", seq)
    return np.atleast_1d(np.asarray(value, dtype=float))


def check_spike_times(times, neuron: int, label: str) -> None:
    """Spike times must be finite, >= 0 and non-decreasing (several per time step allowed)."""
    where = f"SpikeSourceArray population '{label}', neuron {neuron}"
    bad = ~np.isfinite(times) | (times < 0)
    if bad.any():
        raise InvalidParameterValueError(
            f"spike_times must be finite and in [0, inf) ms in {where}, got {times[bad][0]!r}"
        )
    k = np.flatnonzero(np.diff(times) < 0)
    if k.size:
        raise InvalidParameterValueError(
            f"spike_times must be sorted in increasing order in {where}, got "
            f"{times[k[0]]!r} before {times[k[0] + 1]!r}"
        )


class PoissonGenerator:
    """Homogeneous Poisson spike trains, drawn in continuous time window by window."""

    def __init__(self, params, discretisation):
        self.rate = np.asarray(params["rate"], float)
        self.start = np.asarray(params["start"], float)
        self.stop = self.start + np.asarray(params["duration"], float)
        self.disc = discretisation

    def emit(self, n0: int, n_steps: int, rng) -> EmittedSpikes:
        """Spikes at times in ``[n0 dt, (n0+N) dt)`` within ``[start, start+duration)``."""
        t0, t1 = _window(self.disc, n0, n_steps)
        lo = np.maximum(t0, self.start)
        hi = np.minimum(t1, self.stop)
        length = np.maximum(hi - lo, 0.0)
        counts = rng.poisson(self.rate * length / 1000.0)
        neuron = np.repeat(np.arange(self.rate.size), counts)
        time = lo[neuron] + rng.random(neuron.size) * length[neuron]
        order = np.argsort(time, kind="stable")
        return EmittedSpikes(neuron[order], time[order])


class SpikeSourceArray(cells.SpikeSourceArray):
    __doc__ = cells.SpikeSourceArray.__doc__
    translations = _identity_translations(cells.SpikeSourceArray)
    compiled_model = "spike_source"
    is_spike_source = True
    rules = Rules()

    @staticmethod
    def spike_generator(params, discretisation, label):
        return SpikeSchedule(params["spike_times"], discretisation, label)


class SpikeSourcePoisson(cells.SpikeSourcePoisson):
    __doc__ = cells.SpikeSourcePoisson.__doc__
    translations = _identity_translations(cells.SpikeSourcePoisson)
    compiled_model = "spike_source"
    is_spike_source = True
    rules = Rules(non_negative=("rate", "start", "duration"))

    @staticmethod
    def spike_generator(params, discretisation, label):
        return PoissonGenerator(params, discretisation)


SUPPORTED_CELL_TYPES = (
    IF_curr_exp,
    IF_cond_exp,
    IF_curr_alpha,
    SpikeSourceArray,
    SpikeSourcePoisson,
)
