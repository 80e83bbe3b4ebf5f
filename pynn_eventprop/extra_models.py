"""Backend-specific models, as sPyNNaker's ``extra_models``: the EventProp synapse and rule."""

from .eventprop.synapses import EventPropRule, EventPropSynapse

__all__ = ["EventPropRule", "EventPropSynapse"]
