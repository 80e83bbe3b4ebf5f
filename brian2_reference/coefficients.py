"""Per-neuron constants of the discretised ``IF_curr_exp`` layer.

In the EventProp frame (``V = v - v_rest``, mV; currents in nA; times in ms) one step ``dt`` of
the exact solution below threshold is::

    I_x[n] = a_x I_x[n-1] + sum_j w_j a_x**phi_j
    U[n]   = b V[n-1] + p_E I_E[n-1] + p_I I_I[n-1] + c e + sum_j w_j q_x(phi_j)

for spikes ``j`` arriving ``phi_j`` steps before ``t_n``, with ``b = exp(-dt/tau_m)``,
``a_x = exp(-dt/tau_syn_x)``, ``c = (1 - b) tau_m/cm`` (mV/nA) and the voltage response
``q_x(phi) = (1/cm) tau_m tau_x/(tau_x - tau_m) (a_x**phi - b**phi)`` (mV/nA) of a unit
current jump ``phi`` steps before the grid point; ``p_x = q_x(1)``.  Both are evaluated as

    q_x(phi) = b**phi * phi * (dt/cm) * S(phi * kappa_x),   S(y) = (1 - exp(-y))/y = exprel(-y)

with ``kappa_x = dt/tau_x - dt/tau_m``, which stays exact when ``tau_x`` approaches ``tau_m``
(limit ``phi dt b**phi / cm``).  This module is this package's own transcription of those
formulas; it does not import ``pynn_eventprop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .description import LayerSpec


def _exprel(y: np.ndarray) -> np.ndarray:
    """``(exp(y) - 1)/y``, 1 at ``y = 0`` (as Brian2's ``exprel``)."""
    y = np.asarray(y, dtype=float)
    small = np.abs(y) < 1e-16
    return np.where(small, 1.0, np.expm1(y) / np.where(small, 1.0, y))


def voltage_response(phi, b, kappa, dt_over_cm) -> np.ndarray:
    """``q(phi) = b**phi phi (dt/cm) exprel(-phi kappa)`` in mV per nA (module docstring)."""
    return b**phi * phi * dt_over_cm * _exprel(-phi * kappa)


@dataclass(frozen=True)
class LayerConstants:
    """Arrays of shape ``(size,)`` for one layer in the EventProp frame.

    Attributes
    ----------
    b, a_E, a_I : decay factors per step (dimensionless).
    p_E, p_I, c : mV/nA, see the module docstring.
    kappa_E, kappa_I : ``dt/tau_syn_x - dt/tau_m`` (dimensionless).
    dt_over_cm : ms/nF.
    theta : threshold ``v_thresh - v_rest`` (mV).
    v_r : reset ``v_reset - v_rest`` (mV).
    v_init : initial ``V[0] = v_init - v_rest`` (mV).
    i_ext : external current ``i_offset`` (nA).
    n_ref : refractory steps ``round(tau_refrac/dt)``.
    v_rest : mV, to convert ``V`` back to PyNN's ``v``.
    """

    b: np.ndarray
    a_E: np.ndarray
    a_I: np.ndarray
    p_E: np.ndarray
    p_I: np.ndarray
    c: np.ndarray
    kappa_E: np.ndarray
    kappa_I: np.ndarray
    dt_over_cm: np.ndarray
    theta: np.ndarray
    v_r: np.ndarray
    v_init: np.ndarray
    i_ext: np.ndarray
    n_ref: np.ndarray
    v_rest: np.ndarray


def layer_constants(layer: LayerSpec, dt: float) -> LayerConstants:
    """Propagator coefficients and thresholds of ``layer`` for step ``dt`` (ms)."""
    tau_m, cm = layer.param("tau_m"), layer.param("cm")
    b = np.exp(-dt / tau_m)
    kappa = {x: dt / layer.param(f"tau_syn_{x}") - dt / tau_m for x in "EI"}
    v_rest = layer.param("v_rest")
    return LayerConstants(
        b=b,
        a_E=np.exp(-dt / layer.param("tau_syn_E")),
        a_I=np.exp(-dt / layer.param("tau_syn_I")),
        p_E=voltage_response(1.0, b, kappa["E"], dt / cm),
        p_I=voltage_response(1.0, b, kappa["I"], dt / cm),
        c=(1.0 - b) * tau_m / cm,
        kappa_E=kappa["E"],
        kappa_I=kappa["I"],
        dt_over_cm=dt / cm,
        theta=layer.param("v_thresh") - v_rest,
        v_r=layer.param("v_reset") - v_rest,
        v_init=layer.param("v_init") - v_rest,
        i_ext=layer.param("i_offset"),
        n_ref=np.rint(layer.param("tau_refrac") / dt),
        v_rest=v_rest,
    )
