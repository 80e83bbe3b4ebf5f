"""Standard models of the backend, and placeholders for the PyNN models it does not provide.

Supported: cells ``IF_curr_exp``, ``IF_cond_exp`` and ``IF_curr_alpha`` (both forward only),
``SpikeSourceArray``, ``SpikeSourcePoisson``; synapses ``StaticSynapse``,
``TsodyksMarkramSynapse`` (forward only) and ``EventPropSynapse``; current sources ``DCSource``,
``StepCurrentSource``, ``ACSource``, ``NoisyCurrentSource``.  Every other PyNN standard model
exists under its PyNN name so that scripts import cleanly, but instantiating it raises
``pyNN.errors.NoModelAvailableError`` naming the supported models of that kind.
"""

from __future__ import annotations

from pyNN import errors, standardmodels
from pyNN.standardmodels import cells as pynn_cells
from pyNN.standardmodels import electrodes as pynn_electrodes
from pyNN.standardmodels import receptors as pynn_receptors
from pyNN.standardmodels import synapses as pynn_synapses

from .cells import SUPPORTED_CELL_TYPES
from .electrodes import SUPPORTED_CURRENT_SOURCES
from .synapses import SUPPORTED_SYNAPSE_TYPES


def _names(classes) -> str:
    return ", ".join(cls.__name__ for cls in classes)


def unavailable_model(name: str, kind: str, supported) -> type:
    """A placeholder class whose construction raises an error naming the supported models."""
    message = f"{name} is not available in pynn_eventprop; supported {kind}: {_names(supported)}"

    def __init__(self, *args, **kwargs):
        raise errors.NoModelAvailableError(message)

    return type(name, (), {"__init__": __init__, "__doc__": message, "available": False})


def _pynn_models(module, base) -> list[str]:
    return sorted(
        name
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
    )


def unavailable_models() -> dict[str, type]:
    """Placeholders for every PyNN standard model this backend does not implement."""
    kinds = [
        (pynn_cells, standardmodels.StandardCellType, "cell types", SUPPORTED_CELL_TYPES),
        (
            pynn_cells,
            standardmodels.StandardCellTypeComponent,
            "cell types",
            SUPPORTED_CELL_TYPES,
        ),
        (
            pynn_synapses,
            standardmodels.StandardModelType,
            "synapse types",
            SUPPORTED_SYNAPSE_TYPES,
        ),
        (
            pynn_electrodes,
            standardmodels.StandardCurrentSource,
            "current sources",
            SUPPORTED_CURRENT_SOURCES,
        ),
        (
            pynn_receptors,
            standardmodels.StandardPostSynapticResponse,
            "cell types",
            SUPPORTED_CELL_TYPES,
        ),
    ]
    supported_names = {
        cls.__name__
        for cls in SUPPORTED_CELL_TYPES + SUPPORTED_SYNAPSE_TYPES + SUPPORTED_CURRENT_SOURCES
    }
    placeholders = {}
    for module, base, kind, supported in kinds:
        for name in _pynn_models(module, base):
            if name not in supported_names and name not in placeholders:
                placeholders[name] = unavailable_model(name, kind, supported)
    return placeholders


__all__ = ["unavailable_models", "unavailable_model"]
