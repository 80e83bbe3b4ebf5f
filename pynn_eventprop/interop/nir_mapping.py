"""Parameter mapping between PyNN's ``IF_curr_exp`` and NIR's ``CubaLIF``, both directions.

Units
-----
NIR's primitives are written in ms and mV (its documentation's table of primitives); this
module completes that unit system with PyNN's: currents in nA, capacitances in nF, so a
resistance is ``mV / nA = MOhm`` (``ms / nF = 1e-3 s / 1e-9 F = 1e6 Ohm``).  The graph's
metadata records the units (``time_unit``, ``voltage_unit``, ``current_unit``,
``resistance_unit``).

Equations
---------
PyNN's ``IF_curr_exp`` (one synaptic current ``I`` per receptor, nA)::

    cm dV/dt = cm (v_rest - V) / tau_m + I + i_offset,      dI/dt = -I / tau_syn
    a spike through a connection of weight w (nA) arriving at t_k:  I -> I + w

NIR's ``CubaLIF`` (Dirac input spikes ``S(t) = sum_k delta(t - t_k)``, ``W`` the weights of
the ``Linear`` node in front)::

    tau_mem dv/dt = (v_leak - v) + r I,      tau_syn dI/dt = -I + w_in (W S)
    so an input spike steps I by w_in W / tau_syn;  v > v_threshold  ->  spike, v -> v_reset

Mapping (export; import inverts it):

=================  ===================================  ==========================
NIR field          from IF_curr_exp                     unit
=================  ===================================  ==========================
``tau_mem``        ``tau_m``                            ms
``tau_syn``        ``tau_syn_E`` (or ``tau_syn_I``)     ms
``r``              ``tau_m / cm``                       MOhm = mV/nA
``v_leak``         ``v_rest``                           mV
``v_threshold``    ``v_thresh``                         mV
``v_reset``        ``v_reset``                          mV
``w_in``           ``tau_syn``                          ms
``Linear.weight``  ``w.T`` (``(n_post, n_pre)``)        nA
=================  ===================================  ==========================

With ``w_in = tau_syn`` a spike through weight ``W`` steps ``I`` by exactly ``W`` nA, PyNN's
rule, and the ``Linear`` weights are PyNN's weights unchanged.  On import a general ``w_in``
gives PyNN weights ``w = W w_in / tau_syn`` (row by row) and ``cm = tau_mem / r``.

Not representable, so refused or carried in metadata (see ``docs/nir.md``): ``i_offset != 0``
(refused); ``tau_refrac`` (CubaLIF has no refractory period; written to the node's metadata,
which only this package reads back); initial values other than ``v = v_rest``, ``I = 0``
(metadata).
"""

from __future__ import annotations

import numpy as np

#: Units of the exported graphs (graph metadata).
UNITS = {
    "time_unit": "ms",
    "voltage_unit": "mV",
    "current_unit": "nA",
    "resistance_unit": "MOhm",
}

#: IF_curr_exp parameters this mapping reads (PyNN names).
LIF_PARAMETERS = ("tau_m", "cm", "v_rest", "v_thresh", "v_reset", "tau_refrac", "i_offset")


class NIRConversionError(ValueError):
    """A network or NIR graph that cannot be converted; the message names node and value."""


def require_nir():
    """The ``nir`` module, or an ImportError that says how to install it."""
    try:
        import nir
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "NIR export/import needs the 'nir' package: pip install 'pynn_eventprop[nir]'"
        ) from error
    return nir


def cuba_lif_fields(params: dict, tau_syn: np.ndarray) -> dict:
    """NIR ``CubaLIF`` fields from ``IF_curr_exp`` parameters (see the module docstring).

    Parameters
    ----------
    params : dict of name -> float array ``(size,)``
        PyNN parameters (mV, ms, nF, nA).
    tau_syn : float array ``(size,)``
        The synaptic time constant of the receptor the population's inputs use (ms).

    Returns
    -------
    dict of field -> float64 array ``(size,)``: ``tau_mem, tau_syn, r, v_leak, v_threshold,
    v_reset, w_in``.
    """
    tau_m = np.asarray(params["tau_m"], float)
    tau_syn = np.asarray(tau_syn, float)
    return {
        "tau_mem": tau_m.copy(),
        "tau_syn": tau_syn.copy(),
        "r": tau_m / np.asarray(params["cm"], float),
        "v_leak": np.asarray(params["v_rest"], float).copy(),
        "v_threshold": np.asarray(params["v_thresh"], float).copy(),
        "v_reset": np.asarray(params["v_reset"], float).copy(),
        "w_in": tau_syn.copy(),
    }


def if_curr_exp_parameters(node, name: str, cm_hint=None) -> dict:
    """``IF_curr_exp`` parameters from a NIR ``CubaLIF`` node, checked.

    Parameters
    ----------
    node : nir.CubaLIF
    name : str
        The node's name (for error messages).
    cm_hint : float array, optional
        ``cm`` (nF) from the node's metadata; used instead of ``tau_mem / r`` when the two agree
        to 1e-12 relative, so that a graph written by :func:`export_nir` restores the exact
        float that the division may round by one unit in the last place.

    Returns
    -------
    dict of PyNN parameter -> float array ``(size,)``; ``tau_refrac`` and ``i_offset`` are 0.

    Raises
    ------
    NIRConversionError
        For a non-finite field, a non-positive ``tau_mem``, ``tau_syn`` or ``r``, or
        ``v_reset >= v_threshold``.
    """
    fields = {key: np.asarray(getattr(node, key), float) for key in FIELDS}
    for key, values in fields.items():
        _check_field(name, key, values, positive=key in ("tau_mem", "tau_syn", "r"))
    bad = fields["v_reset"] >= fields["v_threshold"]
    if bad.any():
        k = int(np.flatnonzero(bad.ravel())[0])
        raise NIRConversionError(
            f"CubaLIF node '{name}': v_reset must be below v_threshold (PyNN's IF_curr_exp), "
            f"got v_reset={float(fields['v_reset'].ravel()[k])!r} and "
            f"v_threshold={float(fields['v_threshold'].ravel()[k])!r} (neuron {k})"
        )
    cm = fields["tau_mem"] / fields["r"]
    if cm_hint is not None:
        hint = np.broadcast_to(np.asarray(cm_hint, float), cm.shape)
        if np.allclose(hint, cm, rtol=1e-12, atol=0.0):
            cm = hint.copy()
    zeros = np.zeros_like(cm)
    return {
        "tau_m": fields["tau_mem"],
        "cm": cm,
        "v_rest": fields["v_leak"],
        "v_thresh": fields["v_threshold"],
        "v_reset": fields["v_reset"],
        "tau_syn_E": fields["tau_syn"],
        "tau_syn_I": fields["tau_syn"].copy(),
        "tau_refrac": zeros,
        "i_offset": zeros.copy(),
    }


def input_scale(node, name: str) -> np.ndarray:
    """Factor ``w_in / tau_syn`` per neuron that turns NIR weights into PyNN weights (nA).

    Exactly 1.0 where ``w_in == tau_syn`` (graphs written by :func:`export_nir`).
    """
    w_in = np.asarray(node.w_in, float)
    _check_field(name, "w_in", w_in, positive=False)
    return w_in / np.asarray(node.tau_syn, float)


FIELDS = ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")


def _check_field(name: str, key: str, values: np.ndarray, positive: bool) -> None:
    if not np.all(np.isfinite(values)):
        bad = values[~np.isfinite(values)].ravel()[0]
        raise NIRConversionError(f"CubaLIF node '{name}': {key} must be finite, got {float(bad)!r}")
    if positive and np.any(values <= 0):
        bad = values[values <= 0].ravel()[0]
        raise NIRConversionError(f"CubaLIF node '{name}': {key} must be > 0, got {float(bad)!r}")
