"""The SpiNNaker2 model as a drop-in replacement for the reference engine's Simulation.

:class:`Spinnaker2Simulation` *is* the reference :class:`~pynn_eventprop.engine.simulation.
Simulation` computing in float32 (the Cortex-M4F's single precision): one definition of the
maths, no second implementation of the LIF equations.  On top it maps the network onto
SpiNNaker2 (:func:`map_network`, :func:`build_routing`) and counts, from the actual spike events
of every run, the packets and per-PE work of the four programs (:func:`count_traffic`):

* :meth:`run` counts the forward program of the steps it simulates;
* :meth:`backward` (the exact adjoint of :func:`pynn_eventprop.engine.adjoint.backward`) counts
  the loss, backward and weight-update programs of the batch it differentiates.

Replicas are independent copies that each run ``local_batch`` samples; simulating the batch as
one array computes, sample by sample, exactly what each replica computes (samples do not
interact), so the model's rasters, adjoints and gradients equal the reference engine's in
float32.  The model does not emulate the order in which a PE accumulates synaptic events.
"""

from __future__ import annotations

import numpy as np

from ..engine.adjoint import backward as engine_backward
from ..engine.simulation import Simulation
from .energy import CostEstimate, EnergyCoefficients, estimate_cost
from .hardware import OperationCycles, Spinnaker2Hardware
from .mapping import map_network
from .packets import Traffic, count_traffic, plan_traffic
from .report import Report, build_report
from .routing import build_routing


class Spinnaker2Simulation(Simulation):
    """Reference engine in float32 plus SpiNNaker2 mapping and packet accounting.

    Parameters
    ----------
    network, discretisation, batch_size
        As for :class:`~pynn_eventprop.engine.simulation.Simulation`.
    dtype
        Must be float32 (the default): the model computes as the Cortex-M4F FPU does.
    n_steps : int, optional
        Steps per sample the mapping reserves histories for; default: the first run's length.
    hardware, cycles, coefficients
        :class:`Spinnaker2Hardware`, :class:`OperationCycles`, :class:`EnergyCoefficients`.
    replicas : int, optional
        Network copies on the machine (default ``batch_size``).
    training : bool, optional
        Reserve training memory and plan the backward pass (default: the network has a
        trainable projection).
    loss_populations : sequence of int, optional
    max_spikes_per_neuron : int
        Capacity of the spike records (see :func:`map_network`).
    spike_payload : bool
        Forward spike packets carry the spike phase (default) or are counted key-only.
    **engine_options
        Passed to the reference Simulation (``compiled``, ``reuse_buffers``).
    """

    def __init__(
        self,
        network,
        discretisation,
        batch_size=1,
        dtype=np.float32,
        *,
        n_steps=None,
        hardware: Spinnaker2Hardware | None = None,
        cycles: OperationCycles | None = None,
        coefficients: EnergyCoefficients | None = None,
        replicas=None,
        training=None,
        loss_populations=None,
        max_spikes_per_neuron=8,
        spike_payload=True,
        **engine_options,
    ):
        if np.dtype(dtype) != np.float32:
            raise ValueError(
                f"dtype must be float32 on the SpiNNaker2 model (Cortex-M4F single precision), "
                f"got {np.dtype(dtype).name}"
            )
        super().__init__(network, discretisation, batch_size, np.float32, **engine_options)
        self.hardware = hardware if hardware is not None else Spinnaker2Hardware()
        self.op_cycles = cycles if cycles is not None else OperationCycles()
        self.coefficients = coefficients if coefficients is not None else EnergyCoefficients()
        self.spike_payload = bool(spike_payload)
        self._map_options = dict(
            replicas=replicas,
            training=any(p.trainable for p in network.projections)
            if training is None
            else bool(training),
            loss_populations=loss_populations,
            max_spikes_per_neuron=max_spikes_per_neuron,
        )
        self.mapping = self.routing = self.plan = None
        self.traffic: Traffic | None = None
        if n_steps is not None:
            self._build(int(n_steps))

    # --- mapping --------------------------------------------------------------------------
    def _build(self, n_steps: int):
        self.mapping = map_network(
            self.network, n_steps, self.batch, hardware=self.hardware, **self._map_options
        )
        self.routing = build_routing(self.mapping)
        self.plan = plan_traffic(self.mapping, self.routing, self.op_cycles)

    def _account(self, traffic: Traffic):
        self.traffic = traffic if self.traffic is None else self.traffic + traffic

    def reset_traffic(self):
        """Forget the packets counted so far (the mapping stays)."""
        self.traffic = None

    # --- the engine, counted ----------------------------------------------------------------
    def run(self, n_steps, sources=None, currents=None, record=None, keep_trajectory=False):
        """Simulate like the reference engine and count the forward program's traffic."""
        if self.mapping is None:
            self._build(self.n + int(n_steps))
        start = self.n
        out = super().run(n_steps, sources, currents, record, keep_trajectory=True)
        spikes = {k: r.spikes for k, r in out["rasters"].items()}
        self._account(
            count_traffic(
                self.plan,
                spikes,
                start_step=start,
                n_ticks=int(n_steps),
                programs=("forward",),
                spike_payload=self.spike_payload,
            )
        )
        if not keep_trajectory:
            del out["trajectory"], out["rasters"]
        return out

    def backward(self, trajectory, rasters, loss_grads):
        """Exact gradients (the reference adjoint) and the loss/backward/update traffic.

        Arguments and results as :func:`pynn_eventprop.engine.adjoint.backward`; the batch
        must have been simulated from step 0 in one run of at most the mapped ``n_steps``.
        """
        gradients, adjoints = engine_backward(self, trajectory, rasters, loss_grads)
        spikes = {k: r.spikes for k, r in rasters.items()}
        n_ticks = next(r.spikes.shape[0] for k, r in rasters.items() if k in trajectory)
        self._account(
            count_traffic(
                self.plan,
                spikes,
                n_ticks=n_ticks,
                programs=("loss", "backward", "update"),
                spike_payload=self.spike_payload,
            )
        )
        return gradients, adjoints

    # --- results ----------------------------------------------------------------------------
    def cost(self) -> CostEstimate:
        """Time and energy per sample from the traffic counted so far."""
        if self.traffic is None or self.traffic.samples == 0:
            raise RuntimeError("no sample has been simulated from step 0 yet: nothing to cost")
        return estimate_cost(self.mapping, self.traffic, self.coefficients)

    def report(self) -> Report:
        """Mapping report, with traffic and cost once samples have been simulated."""
        if self.mapping is None:
            raise RuntimeError("the network is mapped at the first run (or give n_steps)")
        counted = self.traffic is not None and self.traffic.samples > 0
        return build_report(
            self.mapping,
            self.routing,
            self.traffic if counted else None,
            self.cost() if counted else None,
            self.op_cycles,
        )
