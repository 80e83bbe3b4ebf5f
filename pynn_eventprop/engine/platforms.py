"""Which engine runs a network: the registry behind ``sim.setup(..., platform=...)``.

``platform="reference"`` (default) is :class:`~.exact.ExactSimulation`, the exact event-driven
engine (float64 by default, float32 allowed); ``platform="spinnaker2"`` is
:class:`pynn_eventprop.spinnaker2.Spinnaker2Engine` (float32: PEs that run the exact engine's
maths on their neuron slices and exchange packets), configured by
the keyword arguments of ``setup`` named in :data:`SPINNAKER2_OPTIONS`. Every engine accepts the
keyword ``readout_populations`` (populations whose voltage readouts may be asked for). Engines
are named here by import path and imported only when asked for, so nothing in this package
depends on an engine built on top of it. A new engine plugs in with :func:`register_engine`.
"""

from __future__ import annotations

import importlib

import numpy as np

#: platform name -> ("module:attribute" of the engine class, fixed dtype or None)
_REGISTRY = {
    "reference": ("pynn_eventprop.engine.exact:ExactSimulation", None),
    "spinnaker2": ("pynn_eventprop.spinnaker2.simulation:Spinnaker2Engine", np.float32),
}
SPINNAKER2_OPTIONS = (
    "hardware",
    "cycles",
    "coefficients",
    "replicas",
    "spike_payload",
    "payload_bits",
    "on_fault",
)


def platforms() -> tuple[str, ...]:
    """Names of the registered platforms."""
    return tuple(_REGISTRY)


def register_engine(platform: str, path: str, dtype=None) -> None:
    """Make ``platform`` build the engine class at ``path`` (``"package.module:Class"``).

    The class is called as ``Class(network, discretisation, batch_size, dtype, **options)`` and
    must implement :class:`~.interface.Engine`; ``dtype`` fixes the precision it computes in.
    """
    _REGISTRY[platform] = (path, dtype)


def check_platform(platform: str) -> str:
    if platform not in _REGISTRY:
        raise ValueError(f"platform must be one of {platforms()}, got {platform!r}")
    return platform


def make_engine(platform, network, discretisation, batch_size=1, dtype=None, options=None, **kw):
    """Build the engine of ``platform`` for a compiled network.

    ``dtype`` defaults to float64, or to the platform's fixed precision (float32 on
    SpiNNaker2, where another dtype is an error).  ``options`` and ``kw`` go to the engine.
    """
    path, fixed = _REGISTRY[check_platform(platform)]
    if fixed is not None and dtype not in (None, fixed):
        raise ValueError(
            f"the {platform} engine computes in {np.dtype(fixed).name}, got dtype={dtype!r}"
        )
    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    dtype = fixed or dtype or np.float64
    return cls(network, discretisation, batch_size, dtype, **(options or {}), **kw)
