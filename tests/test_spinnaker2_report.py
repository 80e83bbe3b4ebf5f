"""SpiNNaker2 model: time/energy estimates and the report (dict/JSON, text, PNG)."""

import json

import numpy as np
import pytest

from pynn_eventprop.spinnaker2 import (
    EnergyCoefficients,
    build_report,
    build_routing,
    count_traffic,
    estimate_cost,
    map_network,
    plan_traffic,
)
from pynn_eventprop.spinnaker2.testing import feedforward, random_spikes

T, BATCH = 20, 4


@pytest.fixture(scope="module")
def pieces():
    net = feedforward([5, 30, 3])
    m = map_network(net, T, BATCH)
    rt = build_routing(m)
    plan = plan_traffic(m, rt)
    tr = count_traffic(plan, random_spikes(net, T, BATCH, rate=0.1, seed=3))
    return m, rt, plan, tr


def test_report_contains_the_required_fields(pieces, tmp_path):
    m, rt, plan, tr = pieces
    cost = estimate_cost(m, tr)
    rep = build_report(m, rt, tr, cost, plan.cycles)
    d = json.loads(rep.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == d
    mp = d["mapping"]
    assert mp["pes_used"] == m.n_pes and mp["chips_used"] == 1
    assert mp["sram_per_pe"]["limit"] == 131072
    assert mp["sram_per_pe"]["max_used"] == max(p["sram_used"] for p in mp["pes"])
    assert all(p["sram_used"] == sum(p["sram"].values()) for p in mp["pes"])
    assert d["routing"]["max_entries"] >= 1 and d["routing"]["limit_per_chip"] == 16384
    kinds = d["traffic"]["packets_per_sample"]
    assert set(kinds) == {"spike", "label", "loss", "error", "gradient", "weight", "norm", "tally"}
    assert kinds["spike"]["packets"] == pytest.approx(tr.kinds["spike"].packets / BATCH)
    ev = d["traffic"]["event_vs_dense_errors"]
    assert ev["saving_ratio"] == pytest.approx(
        ev["dense_packets_per_sample"] / ev["event_packets_per_sample"]
    )
    c = d["cost"]
    assert c["clock_mhz"] == [150.0, 300.0]
    for mode in ("realtime", "compute"):
        assert len(c["time_per_sample_ms"][mode]["total"]) == 2
        assert len(c["energy_per_sample_uJ"][mode]["total"]) == 2
    sources = {f["name"]: f["source"] for f in c["energy_coefficients"]}
    assert set(sources) == {
        "synaptic_operation_pj",
        "pe_baseline_mw",
        "energy_per_cycle_pj",
        "chip_baseline_mw",
        "router_hop_nj",
    }
    # the one published figure names its source; every other one says it is assumed
    assert (
        "SENECA" in sources["synaptic_operation_pj"]
        and "Table 3" in sources["synaptic_operation_pj"]
    )
    assert all(v.startswith("assumed") for k, v in sources.items() if k != "synaptic_operation_pj")
    assert c["batch_latency_ms"]["realtime"][0] == pytest.approx(
        c["time_per_sample_ms"]["realtime"]["total"][0] * BATCH
    )
    assert {f["name"] for f in d["hardware"]} >= {"sram_per_pe", "clock_levels_mhz"}
    assert {f["name"] for f in d["operation_cycles"]} >= {"synaptic_event", "adjoint_update"}


def test_text_report_quotes_the_headline_numbers(pieces):
    m, rt, plan, tr = pieces
    text = build_report(m, rt, tr, estimate_cost(m, tr)).text()
    for needle in (
        f"{m.n_pes} PEs on 1 chip:",
        "SRAM per PE: at most",
        "routing: at most",
        "error packets: event-based",
        "150 MHz      realtime: batch latency",
        "300 MHz compute-bound: batch latency",
        '"realtime": the machine advances one tick per timer tick',
        '"compute-bound": every tick lasts exactly',
        "A hop is one chip router a packet passes",
        "router_hop_nj = 0.2 nJ",
        "boards = 1 board [",
        "[assumed",
    ):
        assert needle in text, needle
    assert "1 boards" not in text and "1 chips" not in text
    for line in text.splitlines():  # every parenthesis closed on its line
        assert line.count("(") == line.count(")"), line
    # kinds without packets are explained, not printed as zero rows
    assert "no packets: loss (" in text
    assert not any(line.split()[:1] == ["loss"] for line in text.splitlines())


def test_mapping_only_report(pieces):
    m, rt, _, _ = pieces
    rep = build_report(m, rt)
    assert "traffic" not in rep.to_dict() and "cost" not in rep.to_dict()
    assert "packets per sample" not in rep.text()


def test_pe_map_png(pieces, tmp_path):
    m, rt, _, _ = pieces
    path = build_report(m, rt).plot_pe_map(tmp_path / "map.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    import matplotlib.image

    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width < 2.5 * height  # no wide empty margin around one chip
    # the SRAM colour scale: many distinct colours (colour bar), not one per population
    colours = {tuple(np.round(px[:3], 2)) for px in image.reshape(-1, image.shape[2])}
    assert len(colours) > 50


def test_sensitivity_table_moves_with_the_coefficients(pieces):
    from pynn_eventprop.spinnaker2.sensitivity import sensitivity

    m, rt, _, _ = pieces
    rasters = random_spikes(m.network, T, BATCH, rate=0.1, seed=3)
    table = sensitivity(m, rt, rasters, T)
    rows = {r["name"]: r for r in table["rows"]}
    # the energy of packets is linear in the hop energy: doubling adds its share exactly
    base = estimate_cost(m, count_traffic(plan_traffic(m, rt), rasters))
    share = base.energy_uj["realtime"]["packets"][0] / base.energy_uj["realtime"]["total"][0]
    assert rows["router_hop_nj"]["x2"]["energy"] == pytest.approx(share, rel=1e-9)
    assert rows["router_hop_nj"]["x0.5"]["energy"] == pytest.approx(-share / 2, rel=1e-9)
    # a tick twice as long doubles the realtime time when no PE overruns it
    assert rows["timer_tick_ms"]["x2"]["time_realtime"] == pytest.approx(1.0, abs=0.05)
    # doubling the clock halves the compute-bound time; energy coefficients never move time
    assert rows["clock_levels_mhz"]["x2"]["time_compute"] == pytest.approx(-0.5)
    assert rows["pe_baseline_mw"]["x2"]["time_compute"] == 0.0


def test_time_is_ticks_when_nothing_overruns(pieces):
    m, _, _, tr = pieces
    cost = estimate_cost(m, tr)
    # replicas run in parallel: T forward + 1 loss + T backward ticks of 1 ms per batch
    rt_ms = cost.time_ms["realtime"]
    assert not any(v.any() for v in cost.overrun.values())
    assert np.allclose(rt_ms["forward"], T / BATCH) and np.allclose(rt_ms["backward"], T / BATCH)
    assert np.allclose(rt_ms["loss"], 1 / BATCH)
    assert np.all(cost.time_ms["compute"]["total"] < rt_ms["total"])
    assert np.allclose(cost.samples_per_second(), 1e3 / rt_ms["total"])


def test_energy_coefficients_are_overridable_and_enter_linearly(pieces):
    m, _, _, tr = pieces
    base = estimate_cost(m, tr)
    co = EnergyCoefficients().replace(router_hop_nj=0.4)
    doubled = estimate_cost(m, tr, co)
    for mode in ("realtime", "compute"):
        e0, e1 = base.energy_uj[mode], doubled.energy_uj[mode]
        assert np.allclose(e1["packets"], 2 * e0["packets"])
        assert np.allclose(e1["dynamic"], e0["dynamic"])
        hops = sum(k.hops for k in tr.kinds.values()) / tr.samples
        assert np.allclose(e0["packets"], hops * 0.2e-3)  # nJ -> uJ
    sources = {f["name"]: f["source"] for f in doubled.to_dict()["energy_coefficients"]}
    assert sources["router_hop_nj"] == "user override"
    with pytest.raises(ValueError, match="one value per clock level"):
        estimate_cost(m, tr, EnergyCoefficients().replace(pe_baseline_mw=(1.0,)))
