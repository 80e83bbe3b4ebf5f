"""Engines: run a compiled network, differentiate a loss of its readouts, report state.

:mod:`.interface` is the contract every engine implements; :mod:`.platforms` builds the engine
of a platform by name.  :mod:`.simulation` (the reference grid engine), :mod:`.adjoint`,
:mod:`.kernels`, :mod:`.dynamics`, :mod:`.readouts` and :mod:`.raster` are its parts;
:mod:`.exact` is the exact event-driven engine.  See ``docs/architecture.md``.
"""

from .interface import (
    READOUTS,
    RECORDABLE,
    Engine,
    EngineState,
    Gradients,
    InFlight,
    PopulationState,
    RunResult,
    SpikeInput,
    SpikeTrains,
)
from .platforms import make_engine, register_engine

__all__ = [
    "READOUTS",
    "RECORDABLE",
    "Engine",
    "EngineState",
    "Gradients",
    "InFlight",
    "PopulationState",
    "RunResult",
    "SpikeInput",
    "SpikeTrains",
    "make_engine",
    "register_engine",
]
