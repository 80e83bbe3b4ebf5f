"""An exact event-driven simulator of PyNN ``IF_curr_exp`` networks, written only for tests.

It shares no code with :mod:`pynn_eventprop` (it imports nothing of it) so that the engines can
be checked against it: a bug has to be made twice, in two different ways, to go unnoticed.

Model (PyNN's ``IF_curr_exp``, NEST's ``iaf_psc_exp`` semantics), per neuron, in the frame
``V = v - v_rest`` with threshold ``theta = v_thresh - v_rest``, reset ``v_r = v_reset - v_rest``::

    cm dV/dt = -cm V / tau_m + I_E + I_I + i_offset + i_inj(t)
    dI_x/dt  = -I_x / tau_syn_x                                       x in {E, I}

* a spike of presynaptic neuron ``j`` at ``t_j`` adds ``w`` (nA, signed: inhibitory projections
  carry negative weights, as in the compiled network) to ``I_x`` of the target at the exact
  arrival time ``t_j + d`` (``d`` any real delay > 0, in ms);
* when ``V`` reaches ``theta`` the neuron spikes at that exact time, ``V`` is set to ``v_r`` and
  held there for ``tau_refrac`` ms (the currents keep evolving), then integrates again;
* ``i_inj`` is piecewise constant (step current sources), changing at given times.

Method
------
Between two events of a neuron its state evolves in closed form (:class:`Membrane`).  Events
(arrivals, changes of injected current, ends of refractoriness, spikes) are processed in global
time order from one heap.  After every event of a neuron, the first threshold crossing in the
window up to the neuron's next pending event is searched (:meth:`Simulator.find_crossing`): the
window is sampled densely (spacing <= :data:`SAMPLE_SPACING` ms); the first sample interval with a
sign change of ``V - theta`` is refined with ``scipy.optimize.brentq``; every sample interval before
it that may hold a local maximum of ``V`` (the derivative changes sign from + to -, or the samples
have a local maximum there) close enough to the threshold is maximised with
``scipy.optimize.minimize_scalar`` (bounded Brent), so that a crossing that grazes the threshold
between two samples is found too.  A spike found in a window stays valid unless an event of that
neuron arrives earlier, which then starts a new search (delays are positive, so a spike can never
change the past).  This is deliberately *not* the engine's method (bracketing by the closed-form
extremum): both are checked against each other.

Readouts are computed in continuous time from the recorded piecewise closed-form trajectory:
first spike time; ``max V`` over ``[0, T]`` (samples plus bounded maximisation of each piece); and
``(1/T) int_0^T w(t) V(t) dt`` for ``w = 1`` and ``w = exp(-t/T)`` with ``scipy.integrate.quad``
on each piece.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import integrate, optimize

#: PyNN 0.13's defaults for ``IF_curr_exp``.
PYNN_DEFAULTS = dict(
    cm=1.0,
    tau_m=20.0,
    tau_refrac=0.1,
    tau_syn_E=5.0,
    tau_syn_I=5.0,
    i_offset=0.0,
    v_reset=-65.0,
    v_rest=-65.0,
    v_thresh=-50.0,
)
PARAMETERS = tuple(PYNN_DEFAULTS)

#: Largest spacing (ms) of the samples with which a window is searched for crossings.
SAMPLE_SPACING = 0.05
#: Fewest samples per searched window.
MIN_SAMPLES = 8
#: brentq tolerances: ``|t - t_root| < XTOL + RTOL |t|`` (RTOL is brentq's smallest allowed).
XTOL, RTOL = 1e-14, 4 * np.finfo(float).eps

# heap priorities at equal times: a spike first, then state changes, then arrivals
_SPIKE, _CURRENT, _REFRAC_END, _ARRIVAL = 0, 1, 1, 2


# --- network description ---------------------------------------------------------------------


@dataclass
class Neurons:
    """A population of ``IF_curr_exp`` neurons.

    Attributes
    ----------
    size : int
    params : dict name -> float array ``(size,)`` in PyNN units (every name of
        :data:`PARAMETERS`; see :func:`neurons` for defaults).
    v_init : float array ``(size,)``, initial membrane potential (mV); ``v_rest`` if None.
    current_steps : list of ``(time, amplitudes (size,))``
        Injected current (nA, on top of ``i_offset``) from ``time`` on, as a step current source.
    """

    size: int
    params: dict
    v_init: np.ndarray | None = None
    current_steps: list = field(default_factory=list)


@dataclass
class Sources:
    """A spike source population: ``times[i]`` the spike times (ms) of neuron ``i``."""

    times: list

    @property
    def size(self) -> int:
        return len(self.times)


@dataclass
class Connections:
    """A projection between populations ``pre`` and ``post`` (indices into ``Network``).

    ``weights`` (nA, signed) and ``delays`` (ms, real, > 0) are ``(n_pre, n_post)``; ``mask`` marks
    existing connections (all if None).  ``receptor`` is ``"excitatory"`` or ``"inhibitory"``.
    """

    pre: int
    post: int
    weights: np.ndarray
    delays: np.ndarray
    receptor: str = "excitatory"
    mask: np.ndarray | None = None

    def connected(self) -> np.ndarray:
        return np.ones(self.weights.shape, bool) if self.mask is None else self.mask


@dataclass
class Network:
    """Populations (:class:`Neurons` or :class:`Sources`) and :class:`Connections`."""

    populations: list
    connections: list

    def with_weight(self, k: int, pre: int, post: int, value: float) -> Network:
        """A copy with weight ``(pre, post)`` of connection ``k`` set to ``value``."""
        weights = self.connections[k].weights.copy()
        weights[pre, post] = value
        connections = list(self.connections)
        connections[k] = replace(connections[k], weights=weights)
        return replace(self, connections=connections)

    def with_sources(self, pop: int, times: list) -> Network:
        """A copy with the spike times of source population ``pop`` replaced."""
        populations = list(self.populations)
        populations[pop] = Sources(times)
        return replace(self, populations=populations)


def neurons(size: int, v_init=None, current_steps=(), **params) -> Neurons:
    """:class:`Neurons` with PyNN's defaults for every parameter not given (scalars broadcast)."""
    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown IF_curr_exp parameters {sorted(unknown)}")
    values = {
        name: np.broadcast_to(np.asarray(params.get(name, default), float), (size,)).copy()
        for name, default in PYNN_DEFAULTS.items()
    }
    v0 = None if v_init is None else np.broadcast_to(np.asarray(v_init, float), (size,)).copy()
    return Neurons(size, values, v0, list(current_steps))


# --- closed form -------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """State of one neuron at the start of a piece of trajectory (frame ``V = v - v_rest``).

    ``v`` (mV), ``i_e`` and ``i_i`` (nA), ``e`` the external current ``i_offset + i_inj`` (nA) and
    ``clamped`` whether the neuron is refractory (``V`` held at the reset value).
    """

    v: float
    i_e: float
    i_i: float
    e: float
    clamped: bool = False


class Membrane:
    """Closed-form solution of one neuron's equations (module docstring) between events."""

    def __init__(self, params: dict):
        p = {name: float(value) for name, value in params.items()}
        self.cm, self.tau_m = p["cm"], p["tau_m"]
        self.tau = (p["tau_syn_E"], p["tau_syn_I"])
        self.tau_refrac = p["tau_refrac"]
        self.i_offset = p["i_offset"]
        self.theta = p["v_thresh"] - p["v_rest"]
        self.v_reset = p["v_reset"] - p["v_rest"]
        self.v_rest = p["v_rest"]

    def _psp(self, tau_s: float, h, exp):
        """``V(h)`` for ``V(0) = 0`` and a unit current decaying with ``tau_s`` (mV per nA)."""
        if abs(tau_s - self.tau_m) < 1e-9 * self.tau_m:
            return h / self.cm * exp(-h / self.tau_m)
        scale = self.tau_m * tau_s / (self.cm * (tau_s - self.tau_m))
        return scale * (exp(-h / tau_s) - exp(-h / self.tau_m))

    def voltage(self, s: State, h):
        """``V`` a time ``h`` (ms, scalar or array, >= 0) after the piece starting in ``s``."""
        scalar = np.ndim(h) == 0
        if s.clamped:
            return self.v_reset if scalar else np.full(np.shape(h), self.v_reset)
        exp = math.exp if scalar else np.exp  # math.exp: quad and brentq call this per point
        h = float(h) if scalar else h
        v_inf = self.tau_m * s.e / self.cm
        return (
            v_inf
            + (s.v - v_inf) * exp(-h / self.tau_m)
            + s.i_e * self._psp(self.tau[0], h, exp)
            + s.i_i * self._psp(self.tau[1], h, exp)
        )

    def currents(self, s: State, h):
        """``(I_E, I_I)`` a time ``h`` after ``s``."""
        return s.i_e * np.exp(-h / self.tau[0]), s.i_i * np.exp(-h / self.tau[1])

    def slope(self, s: State, h):
        """``dV/dt`` (mV/ms) a time ``h`` after ``s`` (0 while clamped)."""
        if s.clamped:
            return np.zeros(np.shape(h)) if np.ndim(h) else 0.0
        i_e, i_i = self.currents(s, h)
        return -self.voltage(s, h) / self.tau_m + (i_e + i_i + s.e) / self.cm

    def advance(self, s: State, h: float) -> State:
        """The state a time ``h`` after ``s`` (no event in between)."""
        i_e, i_i = self.currents(s, h)
        return State(float(self.voltage(s, h)), float(i_e), float(i_i), s.e, s.clamped)


# --- crossings and maxima on one piece ----------------------------------------------------------


def _samples(t_a: float, t_b: float) -> np.ndarray:
    n = int(min(max(math.ceil((t_b - t_a) / SAMPLE_SPACING), MIN_SAMPLES), 200_000))
    return np.linspace(t_a, t_b, n + 1)


def _maximum_candidates(values: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Sample intervals ``[s_k, s_k+1]`` that may contain a local maximum (sorted indices)."""
    turning = (slopes[:-1] > 0) & (slopes[1:] <= 0)
    peak = np.zeros(values.size, bool)
    peak[1:-1] = (values[1:-1] >= values[:-2]) & (values[1:-1] >= values[2:])
    candidates = turning.copy()
    candidates |= peak[:-1]  # the interval after a sampled peak
    candidates |= peak[1:]  # and the one before it
    return np.flatnonzero(candidates)


def _maximise(f, a: float, b: float) -> tuple[float, float]:
    """``(t*, f(t*))`` with ``f`` maximal on ``[a, b]`` (bounded Brent, endpoints included)."""
    res = optimize.minimize_scalar(
        lambda t: -f(t), bounds=(a, b), method="bounded", options={"xatol": 1e-12}
    )
    best = max(((res.x, -res.fun), (a, f(a)), (b, f(b))), key=lambda p: p[1])
    return float(best[0]), float(best[1])


@dataclass
class Diagnostics:
    """How well conditioned a simulation is (for tests that compare against it).

    ``min_crossing_slope``: smallest ``dV/dt`` (mV/ms) at a threshold crossing (a small one makes
    the spike time ill-conditioned); ``min_near_miss``: smallest ``theta - max V`` (mV) over the
    local maxima below threshold that were examined (a tiny one means that a small perturbation
    adds a spike).
    """

    min_crossing_slope: float = math.inf
    min_near_miss: float = math.inf


# --- the simulator ------------------------------------------------------------------------------


@dataclass
class Trajectory:
    """Piecewise closed-form trajectory of one neuron: piece ``k`` starts at ``starts[k]`` in
    ``states[k]`` and lasts until ``starts[k+1]`` (the last one until the end of the run)."""

    membrane: Membrane
    starts: list = field(default_factory=list)
    states: list = field(default_factory=list)

    def pieces(self, t_stop: float):
        """Yield ``(t_a, t_b, state)`` for every piece, clipped to ``[0, t_stop]``."""
        ends = self.starts[1:] + [t_stop]
        for t_a, t_b, s in zip(self.starts, ends, self.states, strict=True):
            if t_b > t_a:
                yield t_a, t_b, s

    def voltage(self, times) -> np.ndarray:
        """``V`` at ``times`` (right-continuous: the reset value at a spike time)."""
        times = np.asarray(times, float)
        k = np.searchsorted(np.asarray(self.starts), times, side="right") - 1
        out = np.empty(times.shape)
        for j in np.unique(k):
            sel = k == j
            out[sel] = self.membrane.voltage(self.states[j], times[sel] - self.starts[j])
        return out


@dataclass
class OracleResult:
    """Spikes, trajectories and readouts of one run over ``[0, t_stop]``.

    ``spikes[pop][i]`` is a sorted float array of spike times (ms) of neuron ``i`` (sources
    included); ``trajectories[pop][i]`` a :class:`Trajectory` for neuron populations.
    """

    t_stop: float
    spikes: dict
    trajectories: dict
    diagnostics: Diagnostics

    def spike_counts(self) -> dict:
        return {pop: np.array([len(t) for t in trains]) for pop, trains in self.spikes.items()}

    def v(self, pop: int, times) -> np.ndarray:
        """Membrane potential ``v`` (mV, PyNN's, not the frame) ``(len(times), size)``."""
        return np.stack(
            [tr.voltage(times) + tr.membrane.v_rest for tr in self.trajectories[pop]], axis=1
        )

    # -- readouts (continuous time, the engine contract's definitions) --
    def first_spike_time(self, pop: int) -> np.ndarray:
        """First spike time (ms) of every neuron, ``inf`` if silent."""
        return np.array([t[0] if len(t) else math.inf for t in self.spikes[pop]])

    def v_max(self, pop: int) -> tuple[np.ndarray, np.ndarray]:
        """``(max V, time of the max)`` over ``[0, T]`` of every neuron (``V = v - v_rest``)."""
        best = [_trajectory_max(tr, self.t_stop) for tr in self.trajectories[pop]]
        return np.array([b[1] for b in best]), np.array([b[0] for b in best])

    def v_mean(self, pop: int, weighting: str) -> np.ndarray:
        """``(1/T) int_0^T w(t) V(t) dt`` with ``w = 1`` (``"uniform"``) or ``exp(-t/T)``."""
        t_stop = self.t_stop
        if weighting == "uniform":
            weight = None
        elif weighting == "exponential":
            weight = lambda t: math.exp(-t / t_stop)  # noqa: E731
        else:
            raise ValueError(f"weighting must be 'uniform' or 'exponential', got {weighting!r}")
        return np.array(
            [_trajectory_integral(tr, t_stop, weight) / t_stop for tr in self.trajectories[pop]]
        )

    def readouts(self, pop: int) -> dict:
        """Every readout of the engine contract for population ``pop``, arrays ``(size,)``."""
        v_max, v_max_time = self.v_max(pop)
        return {
            "first_spike_time": self.first_spike_time(pop),
            "v_max": v_max,
            "v_max_time": v_max_time,
            "v_mean_uniform": self.v_mean(pop, "uniform"),
            "v_mean_exponential": self.v_mean(pop, "exponential"),
        }


def _trajectory_max(tr: Trajectory, t_stop: float) -> tuple[float, float]:
    """``(t*, V(t*))`` of the largest ``V`` on ``[0, t_stop]``, including left limits at spikes."""
    m = tr.membrane
    best = (0.0, -math.inf)
    for t_a, t_b, s in tr.pieces(t_stop):
        times = _samples(t_a, t_b)
        values = m.voltage(s, times - t_a)
        k = int(np.argmax(values))
        if values[k] > best[1]:
            best = (float(times[k]), float(values[k]))
        if s.clamped:
            continue
        slopes = m.slope(s, times - t_a)
        for j in _maximum_candidates(values, slopes):
            t, v = _maximise(
                lambda t, s=s, t_a=t_a: float(m.voltage(s, t - t_a)), *times[j : j + 2]
            )
            if v > best[1]:
                best = (t, v)
    return best


def _trajectory_integral(tr: Trajectory, t_stop: float, weight) -> float:
    """``int_0^t_stop w(t) V(t) dt`` piece by piece (``w = 1`` if ``weight`` is None)."""
    m, total = tr.membrane, 0.0
    for t_a, t_b, s in tr.pieces(t_stop):
        if weight is None:
            f = lambda t, s=s, t_a=t_a: float(m.voltage(s, t - t_a))  # noqa: E731
        else:
            f = lambda t, s=s, t_a=t_a: weight(t) * float(m.voltage(s, t - t_a))  # noqa: E731
        value, _ = integrate.quad(f, t_a, t_b, epsabs=1e-12, epsrel=1e-12, limit=200)
        total += value
    return total


class Simulator:
    """One run of a :class:`Network` over ``[0, t_stop]`` (see the module docstring).

    Subclasses may override :meth:`find_crossing` and :meth:`reset` (the tests inject faults
    that way to show that the assertions can fail).
    """

    def __init__(self, network: Network, t_stop: float):
        self.network, self.t_stop = network, float(t_stop)
        self.cells = []  # (pop, index) of every neuron
        self.first_cell = {}
        for p, pop in enumerate(network.populations):
            if isinstance(pop, Neurons):
                self.first_cell[p] = len(self.cells)
                self.cells += [(p, i) for i in range(pop.size)]
        self.diagnostics = Diagnostics()

    # -- the parts a fault can be injected into --
    def find_crossing(self, m: Membrane, s: State, t_a: float, t_b: float):
        """First time in ``(t_a, t_b]`` at which ``V`` reaches ``theta`` from ``s`` at ``t_a``,
        or None (module docstring: dense samples, brentq, bounded maximisation)."""
        if s.clamped:
            return None
        times = _samples(t_a, t_b)
        f_values = m.voltage(s, times - t_a) - m.theta
        if f_values[0] >= 0.0:
            return t_a
        f = lambda t: float(m.voltage(s, t - t_a)) - m.theta  # noqa: E731
        above = np.flatnonzero(f_values >= 0.0)
        first_sign_change = int(above[0]) - 1 if above.size else times.size
        slopes = m.slope(s, times - t_a)
        spacing = times[1] - times[0]
        for k in _maximum_candidates(f_values, slopes):
            if k >= first_sign_change:
                break
            # V exceeds the larger sample of the interval by less than spacing * max |V'|
            # when V' is monotone in it; a generous margin keeps the check cheap but safe
            margin = 2.0 * spacing * max(abs(slopes[k]), abs(slopes[k + 1])) + 1e-3
            if max(f_values[k], f_values[k + 1]) < -margin:
                self.diagnostics.min_near_miss = min(
                    self.diagnostics.min_near_miss, -max(f_values[k], f_values[k + 1])
                )
                continue
            t_peak, f_peak = _maximise(f, times[k], times[k + 1])
            if f_peak >= 0.0:
                return self._root(m, s, f, times[k], t_peak, t_a)
            self.diagnostics.min_near_miss = min(self.diagnostics.min_near_miss, -f_peak)
        if not above.size:
            return None
        k = first_sign_change
        return self._root(m, s, f, times[k], times[k + 1], t_a)

    def _root(self, m, s, f, lo, hi, t_a):
        t = optimize.brentq(f, lo, hi, xtol=XTOL, rtol=RTOL) if f(hi) > 0.0 else hi
        slope = float(m.slope(s, t - t_a))
        self.diagnostics.min_crossing_slope = min(self.diagnostics.min_crossing_slope, slope)
        return t

    def reset(self, m: Membrane, s: State) -> State:
        """State right after a spike: ``V = v_reset``, clamped if ``tau_refrac > 0``."""
        return State(m.v_reset, s.i_e, s.i_i, s.e, m.tau_refrac > 0.0)

    # -- the event loop --
    def run(self) -> OracleResult:
        net, t_stop = self.network, self.t_stop
        self.heap, self.seq = [], 0
        self.pending = [[] for _ in self.cells]  # times of queued non-spike events per cell
        self.version = [0] * len(self.cells)
        self.outgoing = {p: [] for p in range(len(net.populations))}
        for c in net.connections:
            self.outgoing[c.pre].append(c)
        spikes = {
            p: [np.sort(np.asarray(t, float)) for t in pop.times]
            if isinstance(pop, Sources)
            else [[] for _ in range(pop.size)]
            for p, pop in enumerate(net.populations)
        }
        trajectories, states, self.membranes = {}, [], []
        for p, pop in enumerate(net.populations):
            if isinstance(pop, Sources):
                for i, train in enumerate(spikes[p]):
                    for t in train[train < t_stop]:
                        self._send(p, i, float(t))
                continue
            trs = []
            for i in range(pop.size):
                m = Membrane({name: values[i] for name, values in pop.params.items()})
                v0 = 0.0 if pop.v_init is None else pop.v_init[i] - m.v_rest
                states.append(State(float(v0), 0.0, 0.0, m.i_offset))
                self.membranes.append(m)
                trs.append(Trajectory(m, [0.0], [states[-1]]))
            trajectories[p] = trs
            for t, amplitudes in pop.current_steps:
                for i in range(pop.size):
                    g = self.first_cell[p] + i
                    self._push(float(t), _CURRENT, g, float(amplitudes[i]))
        self.states, self.t_last = states, [0.0] * len(self.cells)
        self.trajectories = trajectories
        for g in range(len(self.cells)):
            self._schedule_crossing(g)
        while self.heap:
            t, priority, _, g, payload = heapq.heappop(self.heap)
            if priority == _SPIKE:
                if payload != self.version[g]:
                    continue  # an earlier event of this neuron changed its course
            else:
                popped = heapq.heappop(self.pending[g])
                assert popped == t
            self._event(g, t, priority, payload, spikes)
        return OracleResult(
            t_stop,
            {p: [np.asarray(t, float) for t in trains] for p, trains in spikes.items()},
            trajectories,
            self.diagnostics,
        )

    def _push(self, t, priority, g, payload):
        if t > self.t_stop:
            return
        self.seq += 1
        heapq.heappush(self.heap, (t, priority, self.seq, g, payload))
        if priority != _SPIKE:
            heapq.heappush(self.pending[g], t)

    def _send(self, pop: int, i: int, t: float):
        """Queue the arrivals of a spike of neuron ``i`` of population ``pop`` at time ``t``."""
        for c in self.outgoing[pop]:
            targets = np.flatnonzero(c.connected()[i])
            for j in targets:
                g = self.first_cell[c.post] + int(j)
                receptor = 0 if c.receptor == "excitatory" else 1
                self._push(
                    t + float(c.delays[i, j]), _ARRIVAL, g, (receptor, float(c.weights[i, j]))
                )

    def _event(self, g, t, priority, payload, spikes):
        m = self.membranes[g]
        s = m.advance(self.states[g], t - self.t_last[g])
        if priority == _SPIKE:
            pop, i = self.cells[g]
            spikes[pop][i].append(t)
            s = self.reset(m, s)
            if s.clamped:
                self._push(t + m.tau_refrac, _REFRAC_END, g, None)
            self._send(pop, i, t)
        elif priority == _ARRIVAL:
            receptor, w = payload
            s = replace(s, i_e=s.i_e + w) if receptor == 0 else replace(s, i_i=s.i_i + w)
        elif payload is None:  # end of refractoriness
            s = replace(s, clamped=False)
        else:  # injected current changes
            s = replace(s, e=m.i_offset + payload)
        self.states[g], self.t_last[g] = s, t
        pop, i = self.cells[g]
        tr = self.trajectories[pop][i]
        if tr.starts[-1] == t:
            tr.states[-1] = s
        else:
            tr.starts.append(t)
            tr.states.append(s)
        self._schedule_crossing(g)

    def _schedule_crossing(self, g):
        self.version[g] += 1
        t_a = self.t_last[g]
        t_b = self.pending[g][0] if self.pending[g] else self.t_stop
        if t_b <= t_a:
            return  # another event at the same time follows; it searches again
        t = self.find_crossing(self.membranes[g], self.states[g], t_a, t_b)
        if t is not None:
            self._push(t, _SPIKE, g, self.version[g])


def simulate(network: Network, t_stop: float, simulator=Simulator) -> OracleResult:
    """Run ``network`` over ``[0, t_stop]`` ms with the oracle (or a subclass of it)."""
    return simulator(network, t_stop).run()


# --- finite differences -------------------------------------------------------------------------


@dataclass
class FiniteDifference:
    """A central difference ``(L(w + eps) - L(w - eps)) / (2 eps)`` of one weight.

    ``counts_unchanged`` is True when both perturbed runs have exactly the spike counts of the
    unperturbed run in every population (else the loss may jump and the difference means nothing).
    """

    value: float
    counts_unchanged: bool


def central_difference(
    network: Network, t_stop: float, objective, k: int, pre: int, post: int, eps: float = 1e-5
) -> FiniteDifference:
    """Central difference of ``objective(OracleResult) -> float`` in weight ``(pre, post)`` of
    connection ``k`` (nA)."""
    w = float(network.connections[k].weights[pre, post])
    base = simulate(network, t_stop).spike_counts()
    runs = [simulate(network.with_weight(k, pre, post, w + sign * eps), t_stop) for sign in (1, -1)]
    same = all(all(np.array_equal(r.spike_counts()[p], base[p]) for p in base) for r in runs)
    return FiniteDifference((objective(runs[0]) - objective(runs[1])) / (2 * eps), same)
