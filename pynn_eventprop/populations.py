"""Population, PopulationView and Assembly for the backend (PyNN's common base classes).

A Population keeps its parameters as arrays of shape ``(size,)`` in PyNN names and units
(``_parameters``), and its initial values in PyNN's ``initial_values``.  Parameters are checked
against the cell type's rules whenever they are created or set; changing them marks the network
for recompilation before the next run.  Views read and write their parent's arrays.
"""

from __future__ import annotations

import numpy as np
from pyNN import common, errors
from pyNN.models import BaseCellType
from pyNN.parameters import LazyArray, ParameterSpace, simplify

from . import simulator
from .recording import Recorder
from .standardmodels.cells import SUPPORTED_CELL_TYPES
from .validation import (
    NoDataError,
    check_current_population,
    check_integer,
    check_per_neuron_length,
    check_real,
    short_repr,
)


class Assembly(common.Assembly):
    __doc__ = common.Assembly.__doc__
    _simulator = simulator

    @property
    def receptor_types(self):
        """Receptor types common to all members, in the first member's order.

        (PyNN's base class returns them in set order, which varies between interpreter runs and
        makes the default receptor of a Projection onto an Assembly random.)
        """
        members = [p.celltype.receptor_types for p in self.populations]
        return [r for r in members[0] if all(r in m for m in members[1:])]


class _ParameterAccess:
    """Shared by Population and PopulationView: parameter access and checks of arguments."""

    def _get_parameters(self, *names):
        native_names = self.celltype.get_native_names(*names)
        return self.celltype.reverse_translate(self._get_native_parameters(*native_names))

    def set(self, **parameters):
        check_current_population(self, "population", simulator.state)
        space = ParameterSpace(parameters, self.celltype.get_schema(), shape=None)
        check_parameter_shapes(space, self.size, self._where())
        super().set(**parameters)

    set.__doc__ = common.Population.set.__doc__

    def record(self, variables, to_file=None, sampling_interval=None, locations=None):
        check_current_population(self, "population", simulator.state)
        if sampling_interval is not None:
            check_real("sampling_interval", sampling_interval, minimum=0.0, strict=True)
        super().record(variables, to_file, sampling_interval, locations)

    record.__doc__ = common.Population.record.__doc__

    def get_data(self, variables="all", gather=True, clear=False, locations=None):
        names = [variables] if isinstance(variables, str) else list(variables)
        allowed = ["all", *self.celltype.recordable]
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise errors.RecordingError(unknown[0], self.celltype)
        no_segment = next(iter(self.recorder.cache), None) is None
        if no_segment and not simulator.state.running:
            raise NoDataError(
                f"get_data() of population '{self.label}' before any run(): nothing has been "
                f"recorded yet; call run() first (recorded variables: "
                f"{sorted(v.name for v in self.recorder.recorded)})"
            )
        return super().get_data(variables, gather, clear, locations)

    get_data.__doc__ = common.Population.get_data.__doc__

    def _check_initial_values(self, initial_values: dict):
        check_current_population(self, "population", simulator.state)
        for name, value in initial_values.items():
            check_per_neuron_length(
                f"initial value of {name}", value, self.size, self._where(), ValueError
            )

    def _where(self) -> str:
        return f"in {type(self.celltype).__name__} population '{self.label}'"


class Population(_ParameterAccess, common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def __init__(
        self, size, cellclass, cellparams=None, structure=None, initial_values=None, label=None
    ):
        for k, extent in enumerate(size) if isinstance(size, tuple) else [(None, size)]:
            name = "size" if k is None else f"size[{k}]"
            check_integer(name, extent, minimum=1, where="of a Population")
        is_type = isinstance(cellclass, type) and issubclass(cellclass, BaseCellType)
        if not (is_type or isinstance(cellclass, BaseCellType)):
            raise TypeError(
                f"cellclass of a Population must be a cell type such as IF_curr_exp(), got "
                f"{cellclass!r}"
            )
        super().__init__(size, cellclass, cellparams, structure, initial_values or {}, label)

    def _create_cells(self):
        check_cell_type(self.celltype)
        state = simulator.state
        id_range = np.arange(state.id_counter, state.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in id_range], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, dtype=bool)
        space = self.celltype.native_parameters
        check_parameter_shapes(space, self.size, self._where())
        space.shape = (self.size,)
        space.evaluate(mask=self._mask_local, simplify=False)
        self._generator = None
        self._parameters = self._checked(space.as_dict())
        for cell in self.all_cells:
            cell.parent = self
        state.id_counter += self.size
        self._index = state.add_population(self)

    # --- parameters ------------------------------------------------------------------------------
    def _checked(self, params: dict) -> dict:
        """Validate a full parameter dict; for spike sources also (re)build the spike generator."""
        self.celltype.rules.check(type(self.celltype).__name__, params, self.label)
        if self.celltype.is_spike_source:
            self._generator = self.celltype.spike_generator(
                params, simulator.state.discretisation, self.label
            )
        return params

    def _replace_parameters(self, params: dict):
        self._parameters = self._checked(params)
        if not self.celltype.is_spike_source:
            simulator.state.changed()

    def _get_native_parameters(self, *names):
        return ParameterSpace(
            {name: simplify(self._parameters[name]) for name in names}, shape=(self.size,)
        )

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(mask=self._mask_local, simplify=False)
        params = dict(self._parameters)
        params.update(parameter_space.items())
        self._replace_parameters(params)

    # --- initial values --------------------------------------------------------------------------
    def initialize(self, **initial_values):
        self._check_initial_values(initial_values)
        super().initialize(**initial_values)

    initialize.__doc__ = common.Population.initialize.__doc__

    def _initial_value_arrays(self) -> dict[str, np.ndarray]:
        """Initial values of the state variables as float arrays ``(size,)`` (PyNN units)."""
        if self.celltype.is_spike_source:
            return {}
        return {
            name: np.array(value.evaluate(simplify=False), dtype=float).reshape(self.size)
            for name, value in self.initial_values.items()
        }

    def _set_initial_value_array(self, variable, value):
        allowed = list(self.celltype.default_initial_values)
        if variable not in allowed:
            raise errors.InvalidParameterValueError(
                f"cannot initialize {variable!r} of {type(self.celltype).__name__} population "
                f"'{self.label}'; state variables: {allowed}"
            )
        values = np.array(value.evaluate(simplify=False), dtype=float).reshape(self.size)
        bad = ~np.isfinite(values)
        if bad.any():
            raise errors.InvalidParameterValueError(
                f"initial value of {variable} must be finite in population '{self.label}', got "
                f"{values[bad][0]!r} (neuron {int(np.flatnonzero(bad)[0])})"
            )
        simulator.state.set_current_value(self, variable, values)

    def _set_cell_initial_value(self, id, variable, value):
        values = self._initial_value_arrays()[variable]
        values[self.id_to_index(id)] = value
        self.initialize(**{variable: values})

    # --- engine inputs ---------------------------------------------------------------------------
    def _emitted_spikes(self, n0: int, n_steps: int, rng):
        return self._generator.emit(n0, n_steps, rng)

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class PopulationView(_ParameterAccess, common.PopulationView):
    __doc__ = common.PopulationView.__doc__
    _simulator = simulator
    _assembly_class = Assembly

    def _parent_indices(self) -> np.ndarray:
        return np.asarray(self.index_in_grandparent(np.arange(self.size)), dtype=np.int64)

    def _get_native_parameters(self, *names):
        owner, idx = self.grandparent, self._parent_indices()
        return ParameterSpace(
            {name: simplify(owner._parameters[name][idx]) for name in names}, shape=(self.size,)
        )

    def _set_parameters(self, parameter_space):
        parameter_space.evaluate(mask=np.ones(self.size, dtype=bool), simplify=False)
        owner, idx = self.grandparent, self._parent_indices()
        params = dict(owner._parameters)
        for name, value in parameter_space.items():
            params[name] = params[name].copy()
            params[name][idx] = value
        owner._replace_parameters(params)

    @property
    def initial_values(self):
        idx = self._parent_indices()
        return {
            name: LazyArray(values[idx], shape=(self.size,), dtype=float)
            for name, values in self.grandparent._initial_value_arrays().items()
        }

    def initialize(self, **initial_values):
        """Set initial values of this view's neurons (the parent's other neurons keep theirs)."""
        self._check_initial_values(initial_values)
        owner, idx = self.grandparent, self._parent_indices()
        current = owner._initial_value_arrays()
        for variable, value in initial_values.items():
            if variable not in current:
                owner.initialize(**{variable: value})  # raises the error naming the variables
            full = current[variable]
            full[idx] = LazyArray(value, shape=(self.size,), dtype=float).evaluate(simplify=False)
            owner.initialize(**{variable: full})

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


def check_cell_type(celltype):
    """Raise ``NoModelAvailableError`` unless ``celltype`` is one of this backend's models."""
    if not isinstance(celltype, SUPPORTED_CELL_TYPES):
        supported = ", ".join(cls.__name__ for cls in SUPPORTED_CELL_TYPES)
        raise errors.NoModelAvailableError(
            f"{type(celltype).__name__} is not available in pynn_eventprop; supported cell "
            f"types: {supported} (use the classes exported by pynn_eventprop)"
        )


def check_parameter_shapes(space: ParameterSpace, size: int, where: str) -> None:
    """Raise ``InvalidParameterValueError`` for per-neuron parameter arrays not of length ``size``.

    ``space`` is an unshaped ParameterSpace: PyNN has fixed the shape of array values only.
    """
    for name, value in space.items():
        shape = getattr(value, "shape", None)
        if shape is not None and tuple(shape) != (size,):
            raise errors.InvalidParameterValueError(
                f"{name} has {shape[0] if shape else 0} values {where} of {size} neurons; give "
                f"one value for all neurons or exactly {size}, got "
                f"{short_repr(getattr(value, 'base_value', value))}"
            )
