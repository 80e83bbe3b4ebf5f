"""Synapse types of the backend.

``StaticSynapse`` keeps PyNN's behaviour, including PyNN's weight sign check (weights of one
projection all of one sign; positive for excitatory or conductance-based targets, negative for
current-based inhibitory ones).  Weights are in nA (current-based targets) or uS
(conductance-based targets); delays in ms must be whole multiples of the time step and at least
one step (:meth:`pynn_eventprop.discretisation.LIFDiscretisation.delay_steps`).
"""

from __future__ import annotations

from pyNN.standardmodels import build_translations, synapses

from ..eventprop.synapses import EventPropSynapse
from ..simulator import state
from .delays import check_delays, default_delay


class StaticSynapse(synapses.StaticSynapse):
    __doc__ = synapses.StaticSynapse.__doc__
    translations = build_translations(("weight", "weight"), ("delay", "delay"))
    parameter_checks = {**synapses.StaticSynapse.parameter_checks, "delay": check_delays}
    trainable = False

    def _get_minimum_delay(self):
        return default_delay(state)


SUPPORTED_SYNAPSE_TYPES = (StaticSynapse, EventPropSynapse)
