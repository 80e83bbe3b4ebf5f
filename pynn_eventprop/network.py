"""The compiled network: what the PyNN layer hands to an engine.

A :class:`CompiledNetwork` is plain arrays, free of PyNN objects, so that every engine (the exact
reference engine, the SpiNNaker2 packet model) and every tool (mapping, validation) reads the
same description.  Parameters keep PyNN's names and units (mV, ms, nF, nA); each engine converts
them to its own frame (the exact engine: :mod:`pynn_eventprop.engine.exact.parameters`).
Engines treat a CompiledNetwork as read-only: an engine copies the weights and delays it may
change (see :mod:`pynn_eventprop.engine.interface`).

Model kinds
-----------
``"IF_curr_exp"``
    current-based LIF, parameters ``v_rest, cm, tau_m, tau_refrac, tau_syn_E, tau_syn_I,
    i_offset, v_reset, v_thresh``; state ``v, isyn_exc, isyn_inh``.  Trainable.
``"IF_cond_exp"``
    conductance-based LIF (forward simulation only), adds ``e_rev_E, e_rev_I``; state
    ``v, gsyn_exc, gsyn_inh`` (uS).
``"IF_curr_alpha"``
    current-based LIF with alpha-shaped synaptic currents (forward simulation only), the
    parameters and state of ``IF_curr_exp``.
``"spike_source"``
    a population whose spikes come from outside (SpikeSourceArray, SpikeSourcePoisson, a
    training data set); no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOURCE_MODEL = "spike_source"
RECEPTORS = ("excitatory", "inhibitory")


@dataclass
class CompiledPopulation:
    """One population as arrays.

    Attributes
    ----------
    label : str
    size : int
    model : ``"IF_curr_exp"``, ``"IF_cond_exp"``, ``"IF_curr_alpha"`` or ``SOURCE_MODEL``.
    params : dict of name -> float array of shape ``(size,)`` in PyNN units.
    initial : dict of state name -> float array ``(size,)``: initial values (PyNN units).
    """

    label: str
    size: int
    model: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    initial: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def is_source(self) -> bool:
        return self.model == SOURCE_MODEL


@dataclass
class CompiledProjection:
    """One projection as dense arrays.

    Attributes
    ----------
    label : str
    pre, post : int
        Indices into :attr:`CompiledNetwork.populations`.
    receptor : ``"excitatory"`` or ``"inhibitory"``
        Which synaptic current of the postsynaptic neurons the weights add to.
    weights : float array ``(n_pre, n_post)``
        nA for current-based, uS for conductance-based targets; 0 where unconnected.  Signed
        weights are allowed (trainable projections); the engine adds ``w a**phi`` to the chosen
        current whatever the sign.
    delays : float array ``(n_pre, n_post)``
        Delay (ms) where connected, 0 elsewhere.  Engines on a time grid require whole
        multiples of their step.
    mask : bool array ``(n_pre, n_post)``
        True where a connection exists.
    trainable : bool
        Whether training updates ``weights``.
    short_term : dict or None
        Tsodyks-Markram short-term plasticity (``TsodyksMarkramSynapse``): ``U``, ``tau_rec``,
        ``tau_facil`` as float arrays ``(n_pre, n_post)`` (0 where unconnected); None for
        static and trainable synapses.
    """

    label: str
    pre: int
    post: int
    receptor: str
    weights: np.ndarray
    delays: np.ndarray
    mask: np.ndarray
    trainable: bool = False
    short_term: dict | None = None


@dataclass
class CompiledNetwork:
    """Populations and projections, indexed by position."""

    populations: list[CompiledPopulation] = field(default_factory=list)
    projections: list[CompiledProjection] = field(default_factory=list)

    def incoming(self, post: int) -> list[int]:
        return [k for k, p in enumerate(self.projections) if p.post == post]

    def outgoing(self, pre: int) -> list[int]:
        return [k for k, p in enumerate(self.projections) if p.pre == pre]
