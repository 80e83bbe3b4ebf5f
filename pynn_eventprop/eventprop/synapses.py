"""The trainable synapse type and its learning rule, where PyNN scripts import them from.

:class:`EventPropSynapse` is defined with the backend's other synapse types
(:mod:`pynn_eventprop.standardmodels.synapses`) and :class:`EventPropRule` in the training core
(:mod:`pynn_eventprop.training.rule`).
"""

from ..standardmodels.synapses import EventPropSynapse, check_finite_weights
from ..training.rule import EventPropRule

__all__ = ["EventPropRule", "EventPropSynapse", "check_finite_weights"]
