"""``pynn-eventprop validate``: the convergence study of Brian2 against the exact engine.

The suite runs one family (inhibition: mixed delays, inhibitory and excitatory projections,
multi-spike neurons) with two losses at the Brian2 steps 0.1 and 0.01 ms (the full study with
0.001 ms is the command itself, and the ``slow`` test below).  At a finest step of 0.01 ms the
checks are: spike times within 2 Brian2 steps, weight and delay gradients within 10 % (1 % at
0.001 ms, scaled at first order).  Then the engine's results are corrupted through the Engine
interface (one weight-gradient entry, one delay-gradient entry, one spike time) and the study
must fail on exactly that check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("brian2")

from pynn_eventprop.crossvalidation import convergence, validate  # noqa: E402
from pynn_eventprop.crossvalidation.families import FAMILIES, draw_case  # noqa: E402
from pynn_eventprop.engine.exact import ExactSimulation  # noqa: E402

DTS = (0.1, 0.01)
LOSSES = ("ttfs", "max_voltage")


@pytest.fixture(scope="module")
def case():
    return draw_case("inhibition", 0)


@pytest.fixture(scope="module")
def brian2_runs(case):
    return convergence.brian2_runs(case, DTS, LOSSES)


def _study(case, brian2_runs):
    return convergence.study_case(case, DTS, LOSSES, brian2_runs)


def test_study_passes_and_errors_shrink_at_first_order(case, brian2_runs):
    studies = _study(case, brian2_runs)
    for s in studies:
        assert s.passed, (s.loss, s.checks)
        for q in ("spike_times", "gradients", "delay_gradients", "lambda_v"):
            (order,) = s.orders[q]
            assert order is not None and order > 0.5, (s.loss, q, s.errors[q])


def _failed(studies):
    return {q for s in studies for q, (_, _, ok) in s.checks.items() if not ok}


@pytest.mark.parametrize("field, check", [("weights", "gradients"), ("delays", "delay_gradients")])
def test_a_corrupted_gradient_entry_fails_exactly_its_check(
    case, brian2_runs, monkeypatch, field, check
):
    original = ExactSimulation.backward

    def corrupted(self, *args, **kwargs):
        grads = original(self, *args, **kwargs)
        g = getattr(grads, field)[0]
        k = np.unravel_index(np.abs(g).argmax(), g.shape)
        g[k] += 0.3 * np.abs(g).max()  # one entry, by 30 % of the projection's scale
        return grads

    monkeypatch.setattr(ExactSimulation, "backward", corrupted)
    assert _failed(_study(case, brian2_runs)) == {check}


def test_a_corrupted_spike_time_fails_exactly_the_spike_check(case, brian2_runs, monkeypatch):
    original = ExactSimulation.run

    def corrupted(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        spikes = dict(result.spikes)  # the run's spike trains, as a caller sees them
        trains = spikes[1]
        times = trains.times.copy()
        times[0] += 0.05  # one hidden spike, 5 Brian2 steps of 0.01 ms late
        spikes[1] = type(trains)(times, trains.neurons, trains.offsets, trains.size)
        result.spikes = spikes
        return result

    monkeypatch.setattr(ExactSimulation, "run", corrupted)
    assert _failed(_study(case, brian2_runs)) == {"spike_times"}


def test_command_writes_json_and_png_and_exit_status(brian2_runs, tmp_path, capsys, monkeypatch):
    # the command's own Brian2 runs are the fixture's (same case, steps and losses)
    monkeypatch.setattr(validate, "brian2_runs", lambda *args: brian2_runs)
    args = ["--families", "inhibition", "--losses", *LOSSES, "--dts", *map(str, DTS), "--quiet"]
    json_path, png_path = tmp_path / "report.json", tmp_path / "report.png"
    assert validate.main([*args, "--json", str(json_path), "--png", str(png_path)]) == 0
    out = capsys.readouterr().out
    assert "spike_times" in out and "PASSED" in out
    report = json.loads(json_path.read_text())
    assert report["meta"]["passed"] and report["meta"]["predicted_order"] == 1.0
    study = report["studies"][0]
    assert study["family"] == "inhibition" and study["dts"] == list(DTS)
    assert set(study["errors"]) == set(convergence.QUANTITIES)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def broken(self, *a, **k):  # every gradient of the engine doubled
        grads = ExactSimulation.__dict__["_original_backward"](self, *a, **k)
        grads.weights = [2 * g for g in grads.weights]
        return grads

    monkeypatch.setattr(ExactSimulation, "_original_backward", ExactSimulation.backward, False)
    monkeypatch.setattr(ExactSimulation, "backward", broken)
    with pytest.raises(SystemExit) as exit_info:
        validate.main(args)
    assert exit_info.value.code == 1
    assert "FAILED" in capsys.readouterr().out


def test_bad_arguments_are_rejected_early():
    with pytest.raises(ValueError, match="divide 0.1 ms"):
        validate.validate(["inhibition"], dts=(0.03,))
    with pytest.raises(ValueError, match="coarsest to the finest"):
        validate.validate(["inhibition"], dts=(0.01, 0.1))
    with pytest.raises(ValueError, match="family must be among"):
        validate.validate(["ring"])
    with pytest.raises(ValueError, match="family must be one of"):
        draw_case("ring", 0)
    with pytest.raises(SystemExit) as exit_info:
        validate.main(["--json", "/no/such/dir/report.json"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_families_draw_the_features_they_name(family):
    case = draw_case(family, 0)
    delays = [p.delays[p.mask] for p in case.spec.projections]
    assert all(np.unique(d).size > 1 for d in delays)  # mixed delays within each projection
    receptors = {p.receptor for p in case.spec.projections}
    assert ("inhibitory" in receptors) == (family in ("inhibition", "per_neuron", "recurrent"))
    hidden = case.spec.layers[0]
    if family == "refractory":
        assert np.all(hidden.param("tau_refrac") >= 1.0)
    if family == "per_neuron":
        assert np.unique(hidden.param("tau_m")).size == hidden.size
    loops = {p.receptor for p in case.spec.projections if p.pre == p.post == hidden.name}
    assert loops == ({"excitatory", "inhibitory"} if family == "recurrent" else set())
    assert np.all(case.readout_spec.output.param("v_thresh") > 900)


@pytest.mark.slow
def test_full_study_passes():
    report = validate.validate()
    assert report.passed, report.table()
