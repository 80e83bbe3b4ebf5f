"""Engines: run a compiled network, differentiate a loss of its readouts, report state.

:mod:`.interface` is the contract every engine implements; :mod:`.platforms` builds the engine
of a platform by name.  :mod:`.exact` is the reference engine (exact, event-driven, the
default platform).  See ``docs/architecture.md``.
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
