"""Cross-validation tool (``pynn_eventprop.crossvalidation``, ``pynn-eventprop validate``).

A network written with ``import pynn_eventprop as sim`` is run on the engine and on the Brian2
reference through the API; the command runs on two random networks and writes its JSON and
PNG; a corrupted engine result must be reported as a failure.  The tolerances are the tool's
own (``pynn_eventprop.crossvalidation.tolerances``: traces and adjoints 1e-9 absolute,
gradients 1e-6 relative, float64); this file checks that the tool applies them, not the
numbers themselves (``test_brian2_reference.py`` does).  Brian2 runs cost ~1 s each (numpy
code generation), so there are few of them.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from brian2_reference import INPUT, LayerSpec, NetworkSpec, ProjectionSpec
from brian2_reference.random_networks import random_network
from pynn_eventprop.crossvalidation.network_bridge import compiled_network, network_spec
from pynn_eventprop.crossvalidation.report import QUANTITIES, ValidationReport, compare
from pynn_eventprop.crossvalidation.validate import (
    LinearLoss,
    engine_layer_spikes,
    main,
    make_problem,
    validate_pynn,
)
from pynn_eventprop.engine.platforms import register_engine

pytestmark = pytest.mark.filterwarnings("ignore:'parseAll' argument is deprecated")

DURATION = 25.0  # ms
CELL = dict(
    tau_m=10.0,
    cm=1.0,
    tau_syn_E=3.0,
    tau_syn_I=6.0,
    v_rest=-65.0,
    v_reset=-67.0,
    v_thresh=-60.0,
    tau_refrac=0.5,
)
INPUT_TIMES = [[1.0, 6.3], [2.2, 9.0], [0.0, 4.1], [3.7, 7.75]]


@pytest.fixture(scope="module")
def pynn_case():
    """A 4-5-3 PyNN network (two trainable EventProp projections, a static inhibitory skip
    projection, three delays), validated with the TTFS loss; also simulated through PyNN's
    ``run`` so that the validated network is the one a script runs.  Yields the report and
    the spike trains PyNN recorded."""
    import pynn_eventprop as sim
    from pynn_eventprop.eventprop.synapses import EventPropSynapse
    from pynn_eventprop.training.losses import TTFSCrossEntropy

    # PyNN's own run on the tick-based grid engine, the scheme both sides of the validation run
    register_engine("grid", "pynn_eventprop.engine.simulation:ReferenceEngine")
    sim.setup(timestep=0.25, min_delay=0.25, max_delay=5.0, platform="grid")
    try:
        rng = np.random.default_rng(3)
        inputs = sim.Population(4, sim.SpikeSourceArray(spike_times=INPUT_TIMES), label="in")
        hidden = sim.Population(5, sim.IF_curr_exp(**CELL), label="hidden")
        out = sim.Population(3, sim.IF_curr_exp(**(CELL | {"tau_syn_E": 4.0})), label="out")
        for population in (hidden, out):
            population.initialize(v=CELL["v_rest"])  # PyNN's default initial v is -65 mV
            population.record("spikes")
        all_to_all = sim.AllToAllConnector()
        sim.Projection(
            inputs,
            hidden,
            all_to_all,
            EventPropSynapse(weight=rng.normal(2.5, 1.5, (4, 5)), delay=0.25),
            label="in->hidden",
        )
        sim.Projection(
            hidden,
            out,
            all_to_all,
            EventPropSynapse(weight=rng.normal(1.2, 1.0, (5, 3)), delay=0.5),
            label="hidden->out",
        )
        sim.Projection(
            inputs,
            out,
            all_to_all,
            sim.StaticSynapse(weight=-0.8, delay=0.75),
            receptor_type="inhibitory",
            label="in-|out",
        )
        report = validate_pynn(DURATION, TTFSCrossEntropy(), labels=[1])
        sim.run(DURATION)
        recorded = {p.label: p.get_data().segments[0].spiketrains for p in (hidden, out)}
        yield report, recorded
    finally:
        sim.end()


def test_pynn_network_passes_on_every_quantity(pynn_case):
    report, _ = pynn_case
    assert isinstance(report, ValidationReport) and len(report.networks) == 1
    net = report.networks[0]
    assert net.info["sizes"] == [4, 5, 3] and net.info["loss"] == "ttfs"
    assert net.projection_labels == ["in->hidden", "hidden->out", "in-|out"]
    assert set(net.errors) == set(QUANTITIES)
    assert report.passed and net.spike_mismatches == 0
    for layer in ("hidden", "out"):  # both layers spike: phases and jumps are exercised
        assert net.brian2.forward.layers[layer].spikes.any()
    assert all(np.abs(g).max() > 0 for g in net.brian2.adjoint.gradients)
    assert net.engine.loss == pytest.approx(net.brian2.loss, rel=1e-12)
    assert "PASSED" in report.table()


def test_neo_blocks_of_both_sides_agree_with_pynn_run(pynn_case):
    """Both recordings as Neo blocks with the same layout; their spike times equal what PyNN's
    own ``run``/``get_data`` records (1e-9 ms: the same float64 arithmetic in the engine)."""
    report, recorded = pynn_case
    net = report.networks[0]
    engine, brian2 = net.engine_blocks(), net.brian2_blocks()
    assert list(engine) == list(brian2) == [INPUT, "hidden", "out"]
    for label, trains in recorded.items():
        for side in (engine, brian2):
            segment = side[label].segments[0]
            assert len(segment.spiketrains) == len(trains)
            for ours, theirs in zip(segment.spiketrains, trains, strict=True):
                np.testing.assert_allclose(ours.magnitude, theirs.magnitude, rtol=0, atol=1e-9)
    signals = {s.name: s for s in engine["out"].segments[0].analogsignals}
    assert set(signals) == {"v", "lambda_v", "lambda_i", "lambda_i_inh"}
    assert np.isnan(signals["lambda_v"].magnitude[0]).all()  # the engine has no lambda at t=0
    theirs = {s.name: s for s in brian2["out"].segments[0].analogsignals}
    np.testing.assert_allclose(signals["v"].magnitude, theirs["v"].magnitude, rtol=0, atol=1e-9)


def test_corrupted_engine_results_fail(pynn_case):
    """Each corruption (a dropped spike, lambda_v off by 1e-8, one gradient entry off by 1e-4
    of the largest) fails exactly the quantity it touches."""
    report, _ = pynn_case
    net = report.networks[0]
    engine = net.engine
    out = engine.forward.layers["out"]
    n, b, i = (k[0] for k in np.nonzero(out.spikes))
    spikes = out.spikes.copy()
    spikes[n, b, i] = False
    dropped = dataclasses.replace(
        engine,
        forward=dataclasses.replace(
            engine.forward,
            layers=engine.forward.layers | {"out": dataclasses.replace(out, spikes=spikes)},
        ),
    )
    lam = engine.adjoint.layers["hidden"]
    shifted = dataclasses.replace(lam, lambda_v=lam.lambda_v + 1e-8)
    nudged = [g.copy() for g in engine.adjoint.gradients]
    nudged[1].flat[0] += 1e-4 * np.abs(nudged[1]).max()
    cases = {
        "spike_times": dropped,
        "lambda_v": dataclasses.replace(
            engine,
            adjoint=dataclasses.replace(
                engine.adjoint, layers=engine.adjoint.layers | {"hidden": shifted}
            ),
        ),
        "gradients": dataclasses.replace(
            engine, adjoint=dataclasses.replace(engine.adjoint, gradients=tuple(nudged))
        ),
    }
    for quantity, corrupted in cases.items():
        errors, mismatches, _ = compare(corrupted, net.brian2)
        failed = {q for q, e in errors.items() if not e.passed}
        if quantity == "spike_times":
            assert mismatches == 1 and failed == set()
        else:
            assert mismatches == 0 and failed == {quantity}, quantity
        bad = dataclasses.replace(net, errors=errors, spike_mismatches=mismatches)
        assert not ValidationReport([bad]).passed
        assert "FAILED" in ValidationReport([bad]).table()
        assert not bad.to_dict()["errors"][quantity]["passed"]


def test_cli_on_two_random_networks_writes_json_and_png(tmp_path, capsys):
    from pynn_eventprop.cli import main as cli

    json_path, png_path = tmp_path / "report.json", tmp_path / "report.png"
    argv = ["validate", "--networks", "2", "--seed", "0", "--quiet"]
    assert cli(argv + ["--json", str(json_path), "--png", str(png_path)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED: 2 network(s)" in printed and "seed 1" in printed
    data = json.loads(json_path.read_text())
    assert data["passed"] and data["n_networks"] == 2 and data["spike_mismatches"] == 0
    assert data["tolerances"]["gradients"] == {
        "criterion": "relative",
        "tolerance": 1e-6,
        "unit": "1/nA",
    }
    for network in data["networks"]:
        assert network["loss"] == "linear" and network["n_spikes"] > 0
        assert network["errors"]["lambda_v"]["max_abs"] <= 1e-9
        assert network["errors"]["gradients"]["max_rel"] <= 1e-6
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 20_000


def test_cli_fails_on_a_corrupted_engine(monkeypatch, tmp_path, capsys):
    """The engine's gradients scaled by 1 + 1e-4 (its adjoint traces left intact): only the
    gradients fail, the command exits with status 1 and says so."""
    from pynn_eventprop.engine import adjoint

    backward = adjoint.backward

    def corrupted(*args, **kwargs):
        gradients, adjoints = backward(*args, **kwargs)
        return [g * (1 + 1e-4) for g in gradients], adjoints

    monkeypatch.setattr(adjoint, "backward", corrupted)
    json_path = tmp_path / "failed.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["--networks", "1", "--seed", "2", "--quiet", "--json", str(json_path)])
    assert exit_info.value.code == 1
    printed = capsys.readouterr().out
    assert "FAILED: 1 of 1 network(s)" in printed
    errors = json.loads(json_path.read_text())["networks"][0]["errors"]
    assert not errors["gradients"]["passed"]
    assert errors["gradients"]["max_rel"] == pytest.approx(1e-4, rel=1e-6)
    assert all(errors[q]["passed"] for q in QUANTITIES if q != "gradients")


def test_compiled_network_round_trip():
    """spec -> CompiledNetwork -> spec keeps layers, parameters, weights, masks and delays."""
    spec = random_network(4, layer_spikes=engine_layer_spikes).spec
    back, corr = network_spec(compiled_network(spec), spec.dt, spec.n_steps)
    assert [layer.name for layer in back.layers] == [layer.name for layer in spec.layers]
    assert corr.input_index == 0 and corr.layer_indices == tuple(range(1, len(spec.layers) + 1))
    for ours, theirs in zip(back.layers, spec.layers, strict=True):
        for name in ("tau_m", "cm", "tau_syn_E", "tau_syn_I", "v_thresh", "tau_refrac", "v_init"):
            np.testing.assert_array_equal(ours.param(name), theirs.param(name))
    for ours, theirs in zip(back.projections, spec.projections, strict=True):
        assert (ours.pre, ours.post, ours.receptor, ours.delay) == (
            theirs.pre,
            theirs.post,
            theirs.receptor,
            theirs.delay,
        )
        np.testing.assert_array_equal(ours.mask, theirs.mask)
        np.testing.assert_array_equal(ours.weights, np.where(theirs.mask, theirs.weights, 0))


def test_mixed_delay_family_passes_and_mixes_delays_within_projections(capsys):
    """The mixed-delay family: every connection its own delay of 1-5 steps, the connections
    between two layers one compiled projection with several delays, validated like the rest."""
    case = random_network(5, layer_spikes=engine_layer_spikes, mixed_delays=True)
    network = compiled_network(case.spec, merge_delays=True)
    mixed = [np.unique(p.delays[p.mask]).size for p in network.projections]
    assert max(mixed) >= 3 and len(network.projections) < len(case.spec.projections)
    assert main(["--networks", "2", "--seed", "5", "--family", "mixed-delays", "--quiet"]) == 0
    assert "FAILED" not in capsys.readouterr().out


def _small_network():
    spec = NetworkSpec(
        2,
        [LayerSpec("h", 2), LayerSpec("o", 2)],
        [ProjectionSpec(INPUT, "h", np.ones((2, 2))), ProjectionSpec("h", "o", np.ones((2, 2)))],
        0.5,
        10,
    )
    return compiled_network(spec)


def test_unsupported_networks_and_losses_are_rejected_early():
    from pynn_eventprop.network import CompiledProjection
    from pynn_eventprop.training.losses import AverageVoltageCrossEntropy, TTFSCrossEntropy

    net = _small_network()
    net.projections.append(
        CompiledProjection("h->h", 1, 1, "excitatory", np.ones((2, 2)), np.ones((2, 2), int),
                           np.ones((2, 2), bool))
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"feed-forward networks only; populations \['h'\]"):
        network_spec(net, 0.5, 10)
    net = _small_network()
    net.populations[1].model = "IF_cond_exp"
    with pytest.raises(ValueError, match="IF_curr_exp populations only; population 'h'"):
        network_spec(net, 0.5, 10)
    times = [[np.array([1.0]), np.array([2.0])]]
    for loss, message in (
        (TTFSCrossEntropy(silent_push=0.1, theta=1.0), "no silent-label term"),
        (AverageVoltageCrossEntropy("exponential"), "weights steps uniformly"),
        ("ttfs", "needs labels"),
        ("hinge", "loss must be a pynn_eventprop Loss"),
    ):
        with pytest.raises(ValueError, match=message):
            make_problem(_small_network(), 0.5, 10, times, loss, None if loss == "ttfs" else [0])
    with pytest.raises(ValueError, match="spike times of all 2 input neurons"):
        make_problem(_small_network(), 0.5, 10, [[np.array([1.0])]], "ttfs", [0])
    wrong = LinearLoss({}, {2: np.zeros((10, 1, 2))})
    with pytest.raises(ValueError, match=r"must have shape \(11, 1, 2\)"):
        make_problem(_small_network(), 0.5, 10, times, wrong)
