"""Packet-level model of SpiNNaker2 running EventProp training (see ``docs/spinnaker2.md``).

An engine whose results come from PEs that exchange packets (float32)::

    engine = Spinnaker2Engine(network, discretisation, batch_size)
    result = engine.run(..., keep_for_backward=True); engine.backward(result, ...)
    engine.report(); engine.problems

Pipeline of the pieces::

    mapping = map_network(network, n_steps, batch_size)     # slices, replicas, SRAM budget
    routing = build_routing(mapping)                         # keys, flows, merged tables
    machine = Machine(mapping, routing, dt, dtype, ...)      # the PEs, their programs, Fabric
    plan = plan_traffic(mapping, routing)                    # hop counts, connection tables
    traffic = count_traffic(plan, spikes)                    # work of one batch (estimate)
    cost = estimate_cost(mapping, traffic)                   # time and energy per sample
    table = sensitivity(mapping, routing, spikes, n_steps)   # figures doubled and halved
    report = build_report(mapping, routing, traffic, cost)   # text, dict/JSON, PNG
"""

from .energy import CostEstimate, EnergyCoefficients, estimate_cost
from .fabric import Fabric, Fault, PacketError
from .hardware import OperationCycles, Spinnaker2Hardware
from .keys import KINDS, KeySpace, allocate_keys
from .machine import Machine, ProcessingElement
from .mapping import Mapping, MappingError, Placement, Slice, TrainingFlow, map_network
from .packets import KindCount, Traffic, TrafficPlan, count_traffic, plan_traffic
from .report import Report, build_report
from .routing import Flow, RoutingError, RoutingTables, build_flows, build_routing
from .sensitivity import sensitivity
from .simulation import Spinnaker2Engine, Spinnaker2Simulation

__all__ = [
    "KINDS",
    "CostEstimate",
    "EnergyCoefficients",
    "Fabric",
    "Fault",
    "Flow",
    "KeySpace",
    "KindCount",
    "Machine",
    "Mapping",
    "MappingError",
    "OperationCycles",
    "PacketError",
    "Placement",
    "ProcessingElement",
    "Report",
    "RoutingError",
    "RoutingTables",
    "Slice",
    "Spinnaker2Engine",
    "Spinnaker2Hardware",
    "Spinnaker2Simulation",
    "Traffic",
    "TrafficPlan",
    "TrainingFlow",
    "allocate_keys",
    "build_flows",
    "build_report",
    "build_routing",
    "count_traffic",
    "estimate_cost",
    "map_network",
    "plan_traffic",
    "sensitivity",
]
