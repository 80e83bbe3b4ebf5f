"""Which engine runs a network: the one switch between the reference engine and SpiNNaker2.

``sim.setup(..., platform="spinnaker2")`` makes every simulation and every training run of the
script use :class:`pynn_eventprop.spinnaker2.Spinnaker2Simulation` (float32, with mapping and
packet accounting) instead of the reference :class:`~.simulation.Simulation`.  Extra keyword
arguments of ``setup`` named in :data:`SPINNAKER2_OPTIONS` configure the model.
"""

from __future__ import annotations

import numpy as np

from .simulation import Simulation

PLATFORMS = ("reference", "spinnaker2")
SPINNAKER2_OPTIONS = ("hardware", "cycles", "coefficients", "replicas", "spike_payload")


def check_platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")
    return platform


def make_engine(platform, network, discretisation, batch_size=1, dtype=None, options=None, **kw):
    """Build the engine of ``platform`` for a compiled network.

    ``dtype`` defaults to float64 on the reference engine and is float32 on SpiNNaker2.
    """
    if check_platform(platform) == "spinnaker2":
        from ..spinnaker2 import Spinnaker2Simulation

        if dtype not in (None, np.float32):
            raise ValueError(f"the SpiNNaker2 model computes in float32, got dtype={dtype!r}")
        return Spinnaker2Simulation(network, discretisation, batch_size, **(options or {}), **kw)
    return Simulation(network, discretisation, batch_size, dtype or np.float64, **kw)
