"""The SpiNNaker2 model as an engine: the reference maths in float32 plus packet accounting.

:class:`Spinnaker2Engine` implements :class:`pynn_eventprop.engine.interface.Engine` by
*composing* a reference :class:`~pynn_eventprop.engine.simulation.ReferenceEngine` computing in
float32 (the Cortex-M4F's single precision): one definition of the maths, no second
implementation of the LIF equations.  On top it maps the network onto SpiNNaker2
(:func:`map_network`, :func:`build_routing`) and counts, from the actual spike events of every
run, the packets and per-PE work of the four programs (:func:`count_traffic`):

* :meth:`run` counts the forward program of the steps it simulates;
* :meth:`backward` counts the loss, backward and weight-update programs of the batch it
  differentiates.

Two tallies are kept: :attr:`traffic`, everything simulated (training batches, evaluation,
prediction), and :attr:`training_traffic`, only the batches that were trained (the forward run
that was differentiated plus its loss, backward and update programs).  :meth:`report` and
:meth:`cost` quote the training tally once a batch has been trained, so that packets per
sample are per *training* sample and not diluted by forward-only evaluation runs.

Replicas are independent copies that each run ``local_batch`` samples; simulating the batch as
one array computes, sample by sample, exactly what each replica computes (samples do not
interact), so the model's spikes, adjoints and gradients equal the reference engine's in
float32.  The model does not emulate the order in which a PE accumulates synaptic events.
"""

from __future__ import annotations

import numpy as np

from ..engine.simulation import ReferenceEngine
from .energy import CostEstimate, EnergyCoefficients, estimate_cost
from .hardware import OperationCycles, Spinnaker2Hardware
from .mapping import map_network
from .packets import Traffic, count_traffic, plan_traffic, spike_counts
from .report import Report, build_report
from .routing import build_routing


class Spinnaker2Engine:
    """Reference maths in float32 plus SpiNNaker2 mapping and packet accounting.

    Parameters
    ----------
    network, discretisation, batch_size
        As for :class:`~pynn_eventprop.engine.simulation.ReferenceEngine`.
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
        Passed to the reference engine (``compiled``, ``reuse_buffers``).
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
        self._engine = ReferenceEngine(
            network, discretisation, batch_size, np.float32, **engine_options
        )
        self.network = network
        self.disc = discretisation
        self.dt = discretisation.dt
        self.batch = self._engine.batch
        self.dtype = np.float32
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
        self.training_traffic: Traffic | None = None
        self._last_forward: Traffic | None = None  # forward traffic of the current sample
        self._last_counts = None  # (tape, n_ticks, spike_counts) of the last run
        if n_steps is not None:
            self._build(int(n_steps))

    # --- the reference maths, delegated -----------------------------------------------------
    @property
    def n(self) -> int:
        return self._engine.n

    def readouts(self, result, pop, names):
        return self._engine.readouts(result, pop, names)

    def get_state(self):
        return self._engine.get_state()

    def set_state(self, state):
        self._engine.set_state(state)

    def get_weights(self, k):
        return self._engine.get_weights(k)

    def set_weights(self, k, weights):
        self._engine.set_weights(k, weights)

    def get_delays(self, k):
        return self._engine.get_delays(k)

    def set_delays(self, k, delays):
        self._engine.set_delays(k, delays)

    def reset(self):
        self._engine.reset()

    def set_initial(self, pop, name, values):
        self._engine.set_initial(pop, name, values)

    def check_trainable(self):
        self._engine.check_trainable()

    # --- mapping --------------------------------------------------------------------------
    def _build(self, n_steps: int):
        self.mapping = map_network(
            self.network,
            n_steps,
            self.batch,
            hardware=self.hardware,
            dt=self.dt,
            **self._map_options,
        )
        self.routing = build_routing(self.mapping)
        self.plan = plan_traffic(self.mapping, self.routing, self.op_cycles)

    def _account(self, traffic: Traffic):
        self.traffic = traffic if self.traffic is None else self.traffic + traffic

    def reset_traffic(self):
        """Forget the packets counted so far (the mapping stays)."""
        self.traffic = self.training_traffic = self._last_forward = self._last_counts = None

    # --- the engine, counted ----------------------------------------------------------------
    def run(self, n_steps, sources=None, currents=None, record=None, keep_for_backward=False):
        """Simulate like the reference engine and count the forward program's traffic."""
        if self.mapping is None:
            self._build(self.n + int(n_steps))
        start = self.n
        result = self._engine.run(n_steps, sources, currents, record, keep_for_backward=True)
        spikes = {k: r.spikes for k, r in result.tape.rasters.items()}
        counts = spike_counts(self.plan, spikes, int(n_steps))
        # a backward pass of this run (given this tape) reuses the counts
        self._last_counts = (result.tape, int(n_steps), counts) if start == 0 else None
        forward = count_traffic(
            self.plan,
            spikes,
            start_step=start,
            n_ticks=int(n_steps),
            programs=("forward",),
            spike_payload=self.spike_payload,
            counts=counts,
        )
        self._account(forward)
        if start == 0 or self._last_forward is None:
            self._last_forward = forward
        else:
            self._last_forward = self._last_forward + forward
        if not keep_for_backward:
            result.tape = None
        return result

    def backward(self, result, readout_grads, extra_grads=None, adjoints=False):
        """Exact gradients (the reference adjoint) and the loss/backward/update traffic.

        The batch must have been simulated from step 0 in one run of at most the mapped
        ``n_steps``.
        """
        gradients = self._engine.backward(result, readout_grads, extra_grads, adjoints)
        tape = result.tape
        spikes = {k: r.spikes for k, r in tape.rasters.items()}
        n_ticks = result.n_steps
        last = self._last_counts
        counts = last[2] if last is not None and last[0] is tape and last[1] == n_ticks else None
        training = count_traffic(
            self.plan,
            spikes,
            n_ticks=n_ticks,
            programs=("loss", "backward", "update"),
            spike_payload=self.spike_payload,
            counts=counts,
        )
        self._account(training)
        if self._last_forward is not None:  # the forward run this batch was trained on
            training = self._last_forward + training
            self._last_forward = None
        tally = self.training_traffic
        self.training_traffic = training if tally is None else tally + training
        return gradients

    # --- results ----------------------------------------------------------------------------
    def counted(self, scope: str = "auto") -> Traffic | None:
        """The tally that results are quoted from.

        Parameters
        ----------
        scope : ``"training"``, ``"all"`` or ``"auto"``
            ``"training"``: trained batches only; ``"all"``: every run; ``"auto"`` (default):
            the training tally once a batch has been trained, otherwise all runs.
        """
        if scope not in ("auto", "training", "all"):
            raise ValueError(f"scope must be 'auto', 'training' or 'all', got {scope!r}")
        trained = self.training_traffic is not None and self.training_traffic.samples > 0
        if scope == "training" or (scope == "auto" and trained):
            return self.training_traffic
        return self.traffic

    def cost(self, scope: str = "auto") -> CostEstimate:
        """Time and energy per sample from the traffic counted so far (see :meth:`counted`)."""
        traffic = self.counted(scope)
        if traffic is None or traffic.samples == 0:
            raise RuntimeError(
                f"no sample has been simulated from step 0 yet (scope {scope!r}): nothing to cost"
            )
        return estimate_cost(self.mapping, traffic, self.coefficients)

    def report(self, scope: str = "auto") -> Report:
        """Mapping report, with traffic and cost once samples have been simulated.

        ``scope`` chooses the tally (see :meth:`counted`); by default the report is per
        training sample once a batch has been trained.
        """
        if self.mapping is None:
            raise RuntimeError("the network is mapped at the first run (or give n_steps)")
        traffic = self.counted(scope)
        counted = traffic is not None and traffic.samples > 0
        return build_report(
            self.mapping,
            self.routing,
            traffic if counted else None,
            self.cost(scope) if counted else None,
            self.op_cycles,
            scope="training" if counted and traffic is self.training_traffic else "all",
        )


#: The name this model had before it became an engine (kept for existing scripts).
Spinnaker2Simulation = Spinnaker2Engine
