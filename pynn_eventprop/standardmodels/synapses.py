"""Synapse types of the backend.

``TsodyksMarkramSynapse`` (static weights with short-term depression and facilitation) is
described in its docstring.

``StaticSynapse`` keeps PyNN's behaviour, including PyNN's weight sign check (weights of one
projection all of one sign; positive for excitatory or conductance-based targets, negative for
current-based inhibitory ones).  Weights are in nA (current-based targets) or uS
(conductance-based targets); delays are real numbers of ms, at least ``min_delay`` (default: one
time step; see :mod:`.delays`).
"""

from __future__ import annotations

import numpy as np
from pyNN.errors import InvalidParameterValueError
from pyNN.standardmodels import StandardSynapseType, build_translations, synapses

from ..engine.exact.short_term import domain_error
from ..simulator import state
from ..training.rule import EventPropRule
from .delays import check_delays, default_delay


class StaticSynapse(synapses.StaticSynapse):
    __doc__ = synapses.StaticSynapse.__doc__
    translations = build_translations(("weight", "weight"), ("delay", "delay"))
    parameter_checks = {**synapses.StaticSynapse.parameter_checks, "delay": check_delays}
    trainable = False

    def _get_minimum_delay(self):
        return default_delay(state)


def _domain_check(name):
    """A PyNN parameter check of a short-term plasticity parameter (see ``DOMAINS``)."""

    def check(values, projection):
        message = domain_error(name, values, f"projection '{projection.label}'")
        if message:
            raise InvalidParameterValueError(message)
        return values

    return check


class TsodyksMarkramSynapse(synapses.TsodyksMarkramSynapse):
    """Static synapse with short-term depression and facilitation (Tsodyks, Uziel & Markram
    2000, J. Neurosci. 20:RC50), as PyNN's NEST backend runs it (NEST's ``tsodyks_synapse``).

    Each connection has a release probability ``u`` and resources recovered ``x``, active
    ``y`` and inactive ``z = 1 - x - y``; between presynaptic spikes::

        du/dt = -u/tau_facil,    dy/dt = -y/tau_psc,    dz/dt = y/tau_psc - z/tau_rec

    with ``tau_psc`` the postsynaptic neuron's ``tau_syn_E`` or ``tau_syn_I`` (by receptor
    type); with ``tau_facil = 0`` ``u`` decays at once, so every spike uses ``u = U``.  At a
    presynaptic spike
    the state is first propagated from the previous spike (from ``t = 0`` for the first), then
    ``u <- u + U (1 - u)``, the spike is transmitted with the weight ``w u x`` (nA or uS)
    and ``x <- x - u x``, ``y <- y + u x``.  Initially ``u = 0``, ``x = 1``, ``y = 0``, so the
    first spike has the weight ``w U``.  The update is exact at the spike times (a
    presynaptic spike is the only event of the model); the weight reaches the target after
    the connection's delay.

    Parameters
    ----------
    weight : nA (current-based targets) or uS (conductance-based targets), PyNN's sign rule.
    delay : ms, a real number >= ``min_delay``.
    U : use parameter, in [0, 1].
    tau_rec : depression (recovery) time constant, ms, > 0.
    tau_facil : facilitation time constant, ms, >= 0 (0: no facilitation).

    Forward simulation only: the weights are not trained, and a network whose short-term
    plastic projections start from neurons downstream of a trained projection cannot be
    trained (the engine raises an error naming the projection).  The state restarts from its
    initial values at ``reset()`` and when the network is recompiled between runs.
    """

    translations = build_translations(
        ("weight", "weight"),
        ("delay", "delay"),
        ("U", "U"),
        ("tau_rec", "tau_rec"),
        ("tau_facil", "tau_facil"),
    )
    parameter_checks = {
        **synapses.TsodyksMarkramSynapse.parameter_checks,
        "delay": check_delays,
        "U": _domain_check("U"),
        "tau_rec": _domain_check("tau_rec"),
        "tau_facil": _domain_check("tau_facil"),
    }
    trainable = False

    def _get_minimum_delay(self):
        return default_delay(state)


def check_finite_weights(weights, projection):
    """Signed weights are allowed; NaN and infinity are not."""
    values = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"weight must be finite for projection '{projection.label}', got "
            f"{values[~np.isfinite(values)].ravel()[0]!r}"
        )
    return weights


class EventPropSynapse(StandardSynapseType):
    """Trainable current-based synapse: signed weight (nA) and delay (ms).

    A projection learns when its synapse type is ``EventPropSynapse``; the synapse type carries
    an :class:`~pynn_eventprop.training.rule.EventPropRule` (the optimiser with its learning-rate
    schedule, weight decay and weight bounds), in the spirit of PyNN's ``STDPMechanism``.
    Weights are signed (nA, added to the synaptic current of the projection's receptor type
    whatever their sign), so PyNN's one-sign weight check does not apply.

    Parameters
    ----------
    weight : float, array, RandomDistribution or callable
        Initial weights (nA), any sign.
    delay : float, optional
        Delay (ms): a real number, at least ``min_delay`` (default: one time step).
    rule : EventPropRule, optional
        Optimiser and its settings (default ``EventPropRule()``: Adam, lr 1e-3).

    Notes
    -----
    ``projection.get("gradient", format="array")`` returns ``dL/dw`` (per nA of weight) of the
    last :meth:`Trainer.gradient` call, or the gradient the last training step's update used
    (``dL/dw`` plus regulariser terms, clipped), NaN where unconnected as for weights;
    ``projection.get("delay_gradient", format="array")`` likewise ``dL/d(delay)`` (per ms).
    With ``rule=EventPropRule(learn_delays=True)`` the delays are learned too.
    """

    default_parameters = {"weight": 0.0, "delay": None}
    # "gradient" and "delay_gradient" are read-only: dL/dw and dL/d(delay) of the last step
    translations = build_translations(
        ("weight", "weight"),
        ("delay", "delay"),
        ("gradient", "gradient"),
        ("delay_gradient", "delay_gradient"),
    )
    parameter_checks = {"weight": check_finite_weights, "delay": check_delays}
    trainable = True

    def __init__(self, weight=0.0, delay=None, rule: EventPropRule | None = None):
        super().__init__(weight=weight, delay=delay)
        self.rule = rule if rule is not None else EventPropRule()

    def _get_minimum_delay(self):
        return default_delay(state)

    def describe(self, template="standardmodel_default.txt", engine="default"):
        """PyNN's description plus the learning rule (a dict when ``template`` is None)."""
        description = super().describe(template, engine)
        if isinstance(description, dict):
            return {**description, "learning_rule": self.rule.describe()}
        return f"{description}\n    {self.rule.describe()}"


SUPPORTED_SYNAPSE_TYPES = (StaticSynapse, TsodyksMarkramSynapse, EventPropSynapse)
