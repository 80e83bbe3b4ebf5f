"""Projection and Connection for the backend (PyNN's common base classes).

PyNN's connectors (AllToAll, OneToOne, FixedProbability, FixedNumberPre/Post, FromList,
FromFile, Array, ...) drive the connection machinery of ``pyNN.common.Projection``; this class
stores the resulting connections as flat arrays in creation order: presynaptic and postsynaptic
index (in the index space of ``pre`` and ``post``, which may be views or assemblies), weight
(nA or uS), delay (ms) and any further parameter of the synapse type (e.g. ``U``,
``tau_rec``, ``tau_facil`` of ``TsodyksMarkramSynapse``, checked by the synapse type's
``parameter_checks``).  Delays are checked on creation and on ``set``: real numbers of ms, at
least ``min_delay`` (see :mod:`pynn_eventprop.standardmodels.delays`).  ``compile.py`` turns the
arrays into dense engine matrices.
"""

from __future__ import annotations

import numbers

import numpy as np
from pyNN import common, errors
from pyNN.connectors import FromFileConnector, FromListConnector
from pyNN.space import Space

from . import simulator
from .connectors import check_connector
from .standardmodels.delays import check_delays
from .standardmodels.synapses import SUPPORTED_SYNAPSE_TYPES, StaticSynapse
from .validation import check_current_population, short_repr

_AGGREGATE = {"sum": np.add.at, "min": np.minimum.at, "max": np.maximum.at}
_ATTRIBUTES = ("weight", "delay")
_INDICES = ("presynaptic_index", "postsynaptic_index")


class Connection(common.Connection):
    """One connection of a Projection; reads and writes the projection's arrays."""

    def __init__(self, projection, index: int):
        self.projection = projection
        self.index = index

    @property
    def presynaptic_index(self) -> int:
        return int(self.projection._pre_idx[self.index])

    @property
    def postsynaptic_index(self) -> int:
        return int(self.projection._post_idx[self.index])

    def _get_weight(self) -> float:
        return float(self.projection._weights[self.index])

    def _set_weight(self, value):
        self.projection._assign("weight", np.array([self.index]), value)

    def _get_delay(self) -> float:
        return float(self.projection._delays[self.index])

    def _set_delay(self, value):
        self.projection._assign("delay", np.array([self.index]), value)

    weight = property(_get_weight, _set_weight, doc="Synaptic weight in nA or uS.")
    delay = property(_get_delay, _set_delay, doc="Synaptic delay in ms.")

    def as_tuple(self, *attribute_names):
        return tuple(getattr(self, name) for name in attribute_names)


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator
    _static_synapse_class = StaticSynapse

    def __init__(
        self,
        presynaptic_population,
        postsynaptic_population,
        connector,
        synapse_type=None,
        source=None,
        receptor_type=None,
        space=Space(),  # noqa: B008  (PyNN's signature)
        label=None,
    ):
        check_synapse_type(synapse_type)
        for role, neurons in (
            ("presynaptic population", presynaptic_population),
            ("postsynaptic population", postsynaptic_population),
        ):
            if isinstance(neurons, common.BasePopulation | common.Assembly):
                check_current_population(neurons, role, simulator.state)
        common.Projection.__init__(
            self,
            presynaptic_population,
            postsynaptic_population,
            connector,
            synapse_type,
            source,
            receptor_type,
            space,
            label,
        )
        self._chunks = []
        self._arrays = None
        #: synapse parameters stored per connection besides weight and delay
        self._extra = [
            name
            for name in getattr(self.synapse_type, "default_parameters", {})
            if name not in _ATTRIBUTES
        ]
        #: dense ``(n_pre, n_post)`` gradient of the last EventProp training step, or None
        self.gradient_matrix = None
        #: dense ``(n_pre, n_post)`` delay gradient ``dL/d(delay)`` (1/ms), or None
        self.delay_gradient_matrix = None
        check_connector(connector, self)
        check_connection_list(connector, self)
        check_given_weight(self.synapse_type, self)
        connector.connect(self)
        simulator.state.add_projection(self)

    # --- storage ---------------------------------------------------------------------------------
    def _connection_arrays(self):
        if self._arrays is None:
            names = ["pre", "post", *_ATTRIBUTES, *self._extra]
            self._arrays = {
                name: np.concatenate([c[name] for c in self._chunks])
                if self._chunks
                else np.zeros(0, np.int64 if name in ("pre", "post") else float)
                for name in names
            }
            self._chunks = []
        return self._arrays

    @property
    def _pre_idx(self):
        return self._connection_arrays()["pre"]

    @property
    def _post_idx(self):
        return self._connection_arrays()["post"]

    @property
    def _weights(self):
        return self._connection_arrays()["weight"]

    @property
    def _delays(self):
        return self._connection_arrays()["delay"]

    def __len__(self):
        return self._pre_idx.size

    def _attribute(self, name: str) -> np.ndarray:
        self._check_attribute_name(name)
        if name == "gradient":
            return self._gradient_values(self.gradient_matrix)
        if name == "delay_gradient":
            return self._gradient_values(self.delay_gradient_matrix)
        return self._connection_arrays()[name]

    def _check_attribute_name(self, name, extra=()):
        """Raise ``NonExistentParameterError`` unless ``name`` is an attribute of connections."""
        trainable = getattr(self.synapse_type, "trainable", False)
        gradients = ["gradient", "delay_gradient"] if trainable else []
        allowed = [*_ATTRIBUTES, *self._extra, *gradients, *extra]
        if not isinstance(name, str) or name not in allowed:
            raise errors.NonExistentParameterError(name, type(self.synapse_type).__name__, allowed)

    def get(self, attribute_names, format, gather=True, with_address=True, multiple_synapses="sum"):
        names = [attribute_names] if isinstance(attribute_names, str) else attribute_names
        for name in names:
            self._check_attribute_name(name, _INDICES if format == "list" else ())
        return super().get(attribute_names, format, gather, with_address, multiple_synapses)

    get.__doc__ = common.Projection.get.__doc__

    def _gradient_values(self, matrix) -> np.ndarray:
        """``dL/dw`` or ``dL/d(delay)`` per connection from the dense ``matrix`` of the last
        training step (zeros before any)."""
        if matrix is None:
            return np.zeros(len(self))
        return matrix[self._pre_idx, self._post_idx]

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(f"connection index {i} out of range for {len(self)} connections")
        return Connection(self, i % len(self))

    @property
    def connections(self):
        """Iterator over the connections, in creation order, as Connection objects."""
        return (Connection(self, i) for i in range(len(self)))

    # --- creating connections (called by the connectors) -------------------------------------
    def _convergent_connect(
        self, presynaptic_indices, postsynaptic_index, location_selector=None, **parameters
    ):
        if location_selector is not None:
            raise NotImplementedError("pynn_eventprop has no multicompartment models")
        pre = np.asarray(presynaptic_indices, dtype=np.int64).ravel()
        if pre.size and (pre.min() < 0 or pre.max() >= self.pre.size):
            bad = pre[(pre < 0) | (pre >= self.pre.size)][0]
            raise errors.ConnectionError(
                f"presynaptic index {bad} out of range [0, {self.pre.size}) in projection "
                f"'{self.label}'"
            )
        weight = np.broadcast_to(np.asarray(parameters["weight"], float), pre.shape).copy()
        delay = np.broadcast_to(np.asarray(parameters["delay"], float), pre.shape).copy()
        check_weights_finite(weight, self)
        check_delays(delay, self)
        post = np.full(pre.shape, int(postsynaptic_index), dtype=np.int64)
        chunk = {"pre": pre, "post": post, "weight": weight, "delay": delay}
        for name in self._extra:
            chunk[name] = np.broadcast_to(np.asarray(parameters[name], float), pre.shape).copy()
            check_synapse_parameter(name, chunk[name], self)
        if self._arrays is not None:
            self._chunks = [self._arrays]
            self._arrays = None
        self._chunks.append(chunk)
        simulator.state.changed()

    # --- setting and getting attributes ----------------------------------------------------------
    def _assign(self, name: str, which: np.ndarray, value):
        """Set attribute ``name`` of the connections ``which`` (validated, then applied)."""
        target = self._attribute(name)
        values = np.broadcast_to(np.asarray(value, float), which.shape)
        if name == "delay":
            check_delays(values, self)
        elif name == "weight":
            check_weights_finite(values, self)
        else:
            check_synapse_parameter(name, values, self)
        target[which] = values
        simulator.state.changed()

    def _set_attributes(self, parameter_space):
        parameter_space.evaluate()
        which = np.arange(len(self))
        for name, value in parameter_space.items():
            value = np.asarray(value, float)
            if value.ndim == 2:
                value = value[self._pre_idx, self._post_idx]
            self._assign(name, which, value)

    def _value_list_to_array(self, attributes):
        """PyNN's conversion of per-pair lists for ``set()``, after checking their shapes."""
        for name, value in attributes.items():
            shape = np.shape(value) if isinstance(value, list | tuple | np.ndarray) else ()
            if not shape or shape == self.shape:
                continue  # one value, or a (pre.size, post.size) array (the usual case)
            pairs = np.unique(self._pre_idx * self.post.size + self._post_idx).size
            if shape != (pairs,):
                raise errors.InvalidParameterValueError(
                    f"{name} of projection '{self.label}' must be one value, {pairs} values (one "
                    f"per connected pair, in the order of get(format='array')) or an array of "
                    f"shape {self.shape} (pre.size, post.size), got shape {shape}"
                )
        return super()._value_list_to_array(attributes)

    def _get_attributes_as_arrays(self, names, multiple_synapses="sum"):
        pre, post = self._pre_idx, self._post_idx
        connected = np.zeros(self.shape, dtype=bool)
        connected[pre, post] = True
        results = []
        for name in names:
            values = self._attribute(name)
            if multiple_synapses in _AGGREGATE:
                start = {"sum": 0.0, "min": np.inf, "max": -np.inf}[multiple_synapses]
                array = np.full(self.shape, start)
                _AGGREGATE[multiple_synapses](array, (pre, post), values)
            else:  # "first" or "last": numpy assignment keeps the last duplicate
                array = np.zeros(self.shape)
                order = slice(None, None, -1) if multiple_synapses == "first" else slice(None)
                array[pre[order], post[order]] = values[order]
            array[~connected] = np.nan
            results.append(array)
        return results

    def _get_attributes_as_list(self, names):
        columns = []
        for name in names:
            if name == "presynaptic_index":
                columns.append(self._pre_idx)
            elif name == "postsynaptic_index":
                columns.append(self._post_idx)
            else:
                columns.append(self._attribute(name))
        return [tuple(row) for row in np.array(columns, dtype=float).T.tolist()]


def check_synapse_type(synapse_type):
    """Raise ``NoModelAvailableError`` unless the synapse type is one of this backend's."""
    if synapse_type is not None and not isinstance(synapse_type, SUPPORTED_SYNAPSE_TYPES):
        supported = ", ".join(cls.__name__ for cls in SUPPORTED_SYNAPSE_TYPES)
        raise errors.NoModelAvailableError(
            f"{type(synapse_type).__name__} is not available in pynn_eventprop; supported "
            f"synapse types: {supported}"
        )


def check_synapse_parameter(name, values, projection):
    """A synapse parameter other than weight and delay: the synapse type's own check."""
    check = getattr(projection.synapse_type, "parameter_checks", {}).get(name)
    if check is not None:
        check(values, projection)


def check_weights_finite(weights, projection):
    bad = ~np.isfinite(weights)
    if bad.any():
        raise errors.InvalidWeightError(
            f"weight must be finite in projection '{projection.label}', got "
            f"{np.ravel(weights)[np.flatnonzero(bad)[0]]!r}"
        )


def check_given_weight(synapse_type, projection):
    """Check a numeric weight given to the synapse type before any connection is made.

    Finite first (PyNN's sign check reports a NaN weight as a weight of the wrong sign), then
    the synapse type's own weight check, with the value and receptor type added to its message.
    Weights drawn from distributions or computed from distances are checked as connections
    are made.
    """
    value = synapse_type.parameter_space["weight"].base_value
    if not isinstance(value, numbers.Real | np.ndarray):
        return
    check_weights_finite(np.asarray(value, dtype=float), projection)
    check = synapse_type.parameter_checks.get("weight")
    if check is None:
        return
    try:
        check(value, projection)
    except errors.ConnectionError as err:
        raise errors.ConnectionError(
            f"{err}: got weight {short_repr(value)} for receptor_type "
            f"'{projection.receptor_type}' in projection '{projection.label}'"
        ) from None


def check_connection_list(connector, projection):
    """Check FromList/FromFile indices before PyNN silently drops out-of-range targets."""
    if not isinstance(connector, FromListConnector):
        return
    if isinstance(connector, FromFileConnector):
        conn_list = np.asarray(connector.file.read())
    else:
        conn_list = connector.conn_list
    if conn_list.size == 0:
        return
    for column, role, size in (
        (0, "presynaptic", projection.pre.size),
        (1, "postsynaptic", projection.post.size),
    ):
        idx = conn_list[:, column]
        bad = (idx < 0) | (idx >= size) | (idx != np.floor(idx))
        if bad.any():
            raise errors.ConnectionError(
                f"{type(connector).__name__}: {role} index {idx[bad][0]!r} out of range; "
                f"allowed: integers in [0, {size}) for projection '{projection.label}'"
            )
