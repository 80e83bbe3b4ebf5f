"""The one time discretisation of the LIF neuron shared by every engine.

Every engine in this package (the numpy reference engine, the SpiNNaker2 packet model) and the
independent ``brian2_reference`` implement exactly the scheme written here; ``docs/equations.md``
derives it.  All quantities are in the *EventProp frame* of a PyNN ``IF_curr_exp`` population:

* ``V = v - v_rest`` (mV), threshold ``theta = v_thresh - v_rest``, reset
  ``v_r = v_reset - v_rest``;
* synaptic currents ``I_E``, ``I_I`` and weights in nA (PyNN's units), external current ``e``
  (``i_offset`` plus current sources) in nA.

Forward pass, step ``n`` (time ``t_n = n dt``), for each neuron::

    I_x[n] = a_x I_x[n-1] + sum_j w_xj * a_x**phi_j * s_j[n - d_j]        x in {E, I}
    U[n]   = b V[n-1] + p_E I_E[n-1] + p_I I_I[n-1] + c e[n] + sum_j w_j q_x(phi_j) s_j[n-d_j]
    s[n]   = U[n] >= theta   (and the neuron is not refractory)
    phi[n] = (U[n] - theta) / (U[n] - V[n-1])        where s[n]; spike time (n - phi[n]) dt
    V[n]   = v_r where s[n] or refractory, else U[n]

with ``a_x = exp(-dt/tau_syn_x)``, ``b = exp(-dt/tau_m)``, ``c = (1 - b) tau_m / cm`` and
``p_x = (1/cm) tau_m tau_x / (tau_x - tau_m) (a_x - b)`` (the exact response of V after one
step to a unit current present at the step's start; its limit ``b dt / cm`` when the time
constants are equal).  Spikes are *precisely timed*: the threshold crossing is linearly
interpolated inside the step (``phi`` in [0, 1) is how much of a step before ``t_n`` it
happened); a spike arriving ``phi`` steps before a grid point gives the current ``w a_x**phi``
and the voltage ``w q(phi)`` there (:func:`arrival_factors`), so that below threshold this is
the exact solution of PyNN's ``IF_curr_exp`` equations for any spike times.  The reset happens
on the grid.  ``d_j >= 1`` is the delay in steps.

Because every quantity above is a smooth function of the weights for a fixed spike pattern, the
backward pass (``docs/equations.md`` section 3) is the *exact* adjoint of this forward pass:
finite differences agree with it to rounding error, and it converges to Wunderlich & Pehle's
continuous EventProp adjoint as ``dt -> 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

#: Largest spike phase: a crossing exactly at the previous grid point is put just after it
#: (representable in float32, so every engine clips identically).
MAX_PHASE = 1.0 - 2.0**-20


@numba.njit(cache=True)
def arrival_factors(phi, log_a, log_b, kappa_dt, dt_over_cm):
    """Effect at the next grid point of a unit spike arriving ``phi`` steps before it.

    Returns ``(f_i, f_u, df_i/dphi, df_u/dphi)``: the current ``f_i = a**phi`` (nA per nA) and
    the voltage ``f_u = q(phi) = (1/cm) tau_m tau_s/(tau_s - tau_m) (a**phi - b**phi)`` (mV
    per nA), computed as ``b**phi phi dt S(phi kappa dt) / cm`` with
    ``S(x) = (1 - exp(-x))/x`` so that it stays exact when ``tau_s -> tau_m``.  Arguments:
    ``log_a = -dt/tau_syn``, ``log_b = -dt/tau_m``, ``kappa_dt = dt/tau_syn - dt/tau_m``,
    ``dt_over_cm = dt/cm``.  ``q(1)`` is the full-step response ``p`` of the module docstring.
    """
    f_i = math.exp(phi * log_a)
    x = phi * kappa_dt
    s = -math.expm1(-x) / x if abs(x) > 1e-12 else 1.0 - 0.5 * x
    e_b = math.exp(phi * log_b)
    f_u = e_b * phi * s * dt_over_cm
    df_u = dt_over_cm * e_b * (log_b * phi * s + math.exp(-x))
    return f_i, f_u, log_a * f_i, df_u


_PHASE_SIGNATURES = ["float64(float64, float64, float64)", "float32(float32, float32, float32)"]


@numba.vectorize(_PHASE_SIGNATURES, cache=True)
def spike_phase(u, v_prev, theta):
    """Fraction of a step before the grid point at which ``V`` crossed ``theta``.

    ``phi = (U[n] - theta) / (U[n] - V[n-1])`` (linear interpolation of the crossing), clipped
    to ``[0, MAX_PHASE]``; 0 when ``U[n] <= V[n-1]``.  Only meaningful where the neuron spiked
    (``V[n-1] < theta <= U[n]``).  A numpy ufunc, also callable on scalars in compiled loops.
    """
    denom = u - v_prev
    if denom > 0:
        return min(max((u - theta) / denom, 0.0), MAX_PHASE)
    return 0.0


@numba.vectorize(_PHASE_SIGNATURES, cache=True)
def spike_phase_du(u, v_prev, theta):
    """``dphi/dU[n] = (theta - V[n-1]) / (U[n] - V[n-1])**2`` at a spike (1/mV)."""
    d = u - v_prev
    return (theta - v_prev) / (d * d)


@numba.vectorize(_PHASE_SIGNATURES, cache=True)
def spike_phase_dv(u, v_prev, theta):
    """``dphi/dV[n-1] = (U[n] - theta) / (U[n] - V[n-1])**2`` at a spike (1/mV)."""
    d = u - v_prev
    return (u - theta) / (d * d)


def _check_positive(name: str, value) -> None:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


@dataclass(frozen=True)
class LIFCoefficients:
    """Per-neuron propagator coefficients for one population (arrays of shape ``(size,)``).

    Attributes
    ----------
    b : membrane decay per step, ``exp(-dt/tau_m)``.
    p_E, p_I : mV per nA: V response after one step to synaptic current at the step's start.
    c : mV per nA: V response after one step to a constant external current.
    """

    b: np.ndarray
    p_E: np.ndarray
    p_I: np.ndarray
    c: np.ndarray


@dataclass(frozen=True)
class LIFDiscretisation:
    """Precisely-timed exact-integration scheme on a fixed grid of step ``dt`` (ms).

    See the module docstring for the equations.  Instances are immutable and cheap; engines
    ask this object (and :func:`spike_phase`, :func:`arrival_factors`) for decays,
    coefficients, spike phases and arrival amplitudes so that there is one definition of the
    maths.
    """

    dt: float

    def __post_init__(self):
        _check_positive("timestep", self.dt)

    # --- coefficients -------------------------------------------------------------------
    def synaptic_response(self, tau_m, cm, tau_syn) -> np.ndarray:
        """``p = q(1)``: V after one step per nA of synaptic current at the step's start (mV/nA).

        ``p = (1/cm) tau_m tau_s/(tau_s - tau_m) (exp(-dt/tau_s) - exp(-dt/tau_m))``, limit
        ``b dt / cm`` for equal time constants (see :func:`arrival_factors`).
        """
        tau_m, cm, tau_syn = np.broadcast_arrays(
            *(np.asarray(x, float) for x in (tau_m, cm, tau_syn))
        )
        dt = self.dt
        response = [
            arrival_factors(1.0, -dt / ts, -dt / tm, dt / ts - dt / tm, dt / c)[1]
            for tm, c, ts in zip(tau_m.ravel(), cm.ravel(), tau_syn.ravel(), strict=True)
        ]
        return np.array(response).reshape(tau_m.shape)

    def decay(self, tau) -> np.ndarray:
        """Decay over one step of a variable with time constant ``tau`` (ms): ``exp(-dt/tau)``."""
        return np.exp(-self.dt / np.asarray(tau, float))

    def coefficients(self, tau_m, cm, tau_syn_E, tau_syn_I) -> LIFCoefficients:
        """Propagator coefficients for arrays of PyNN parameters (ms, nF)."""
        for name, value in (
            ("tau_m", tau_m),
            ("cm", cm),
            ("tau_syn_E", tau_syn_E),
            ("tau_syn_I", tau_syn_I),
        ):
            _check_positive(name, value)
        tau_m, cm = np.asarray(tau_m, float), np.asarray(cm, float)
        b = self.decay(tau_m)
        return LIFCoefficients(
            b=b,
            p_E=self.synaptic_response(tau_m, cm, tau_syn_E),
            p_I=self.synaptic_response(tau_m, cm, tau_syn_I),
            c=(1.0 - b) * tau_m / cm,
        )

    # --- time grid ----------------------------------------------------------------------
    def steps(self, duration: float) -> int:
        """Number of whole steps in ``duration`` ms (rounded to the nearest step)."""
        return int(round(duration / self.dt))

    def step_and_phase(self, times):
        """Grid step at or after each time and its phase: ``t = (n - phi) dt``, ``phi`` in [0, 1).

        Times within 1e-9 steps of a grid point are put on it.
        """
        x = np.asarray(times, dtype=float) / self.dt
        n = np.ceil(x - 1e-9)
        phase = np.clip(n - x, 0.0, MAX_PHASE)
        return n.astype(np.int64), phase

    def delay_steps(self, delay) -> np.ndarray:
        """Delays (ms) as whole steps; raise if any is below ``dt`` or not a multiple of it."""
        d = np.asarray(delay, dtype=float)
        if not np.all(np.isfinite(d)):
            raise ValueError(f"delay must be finite, got {delay!r}")
        steps = np.rint(d / self.dt)
        bad = np.abs(steps * self.dt - d) > 1e-6 * self.dt
        if np.any(bad):
            raise ValueError(
                f"delay must be a whole multiple of the timestep {self.dt} ms, "
                f"got {float(d[bad].ravel()[0])!r} ms"
            )
        if np.any(steps < 1):
            raise ValueError(
                f"delay must be >= the timestep {self.dt} ms, "
                f"got {float(d[steps < 1].ravel()[0])!r} ms"
            )
        return steps.astype(np.int64)
