"""PyNN 0.13's own system scenarios, run against pynn_eventprop.

Each scenario is a plain function ``test_x(sim)`` from PyNN's source distribution; it carries its
own assertions (see ``docs/conformance.md`` for the full list, and for the scenarios that are out
of scope and why).
"""

from __future__ import annotations

import pytest

import pynn_eventprop

SCENARIOS = {
    "test__simulation_control": [
        "test_reset",
        "test_reset_with_clear",
        "test_reset_with_spikes",
        "test_setup",
        "test_run_until",
    ],
    "test_cell_types": [
        "test_update_SpikeSourceArray",
        "test_issue511",
        "test_SpikeSourcePoisson",
    ],
    "test_procedural_api": ["test_ticket195"],
    "test_connectors": [
        "test_all_to_all_static_no_self",
        "test_fixed_number_pre_no_replacement",
        "test_fixed_number_pre_with_replacement",
        "test_fixed_number_post_no_replacement",
        "test_fixed_number_post_with_replacement",
        "test_issue309",
        "test_issue622",
        "test_all_to_all_tsodyksmarkram",
        "test_fixed_number_pre_with_replacement_heterogeneous_parameters",
        "test_fixed_number_post_with_replacement_heterogeneous_parameters",
    ],
    "test_connection_handling": [
        "test_connections_attribute",
        "test_connection_access_weight_and_delay",
        "test_issue672",
    ],
    "test_recording": [
        "test_reset_recording",
        "test_issue259",
        "test_sampling_interval",
        "test_mix_procedural_and_oo",
        "test_record_with_filename",
        "test_issue499",
    ],
    "test_electrodes": [
        "test_changing_electrode",
        "test_issue165",
        "test_issue445",
        "test_issue451",
        "test_issue483",
        "test_issue487",
        "test_issue_465_474_630",
        "test_issue497",
        "test_issue512",
        "test_issue631",
        "test_issue759",
        "test_ticket226",
        "test_issue321",
        "test_issue437",
        "test_issue442",
    ],
    "test_parameter_handling": [
        "test_issue241",
        "test_issue302",
        "test_set_synaptic_parameters_fully_connected",
        "test_set_synaptic_parameters_partially_connected",
        "test_set_synaptic_parameters_multiply_connected",
        "test_issue505",
    ],
    "test_scenario1": ["test_scenario1"],
    "test_scenario2": ["test_scenario2"],
    "test_issue231": ["test_issue231"],
    "test_issue274": ["test_issue274"],
    "test_ticket166": ["test_ticket166"],
}

CASES = [(module, name) for module, names in SCENARIOS.items() for name in names]


@pytest.mark.parametrize(("module", "name"), CASES, ids=[f"{m}::{n}" for m, n in CASES])
def test_pynn_scenario(module, name, pynn_scenarios, tmp_path, monkeypatch, restore_logging):
    monkeypatch.chdir(tmp_path)  # some scenarios write files into the working directory
    scenario = getattr(pynn_scenarios(module), name)
    scenario(pynn_eventprop)
