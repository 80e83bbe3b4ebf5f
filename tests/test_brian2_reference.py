"""brian2_reference against an independent numpy transcription of the scheme.

``ref_forward``/``ref_backward`` below transcribe docs/equations.md sections 2 and 3 with the
arrival's voltage response of pynn_eventprop.discretisation directly (dense arrays, explicit
loops over time, the closed-form ``q``); they share no code with brian2_reference.
Random networks (``brian2_reference.random_networks``: 1-3 hidden layers, skip connections,
delays 1-3, both receptors, refractory periods, per-neuron parameters including tau_syn, several
dt and batch sizes) must give identical spikes and matching traces and gradients; the gradients
must also match central finite differences, and all 20 networks must match pynn_eventprop's
numpy engine.

Tolerances (float64): forward traces and adjoints 1e-9 absolute (both sides compute the same
operations in different orders: errors seen are below 5e-12); gradients 1e-6 relative to
the largest entry of a projection's gradient (they are sums of up to ~1e4 products).
"""

from __future__ import annotations

import numpy as np
import pytest

from brian2_reference import (
    INPUT,
    LayerSpec,
    LossSpec,
    NetworkSpec,
    ProjectionSpec,
    SpikeInput,
    backward,
    forward,
    layer_constants,
    loss_gradients,
    run_reference,
    to_neo,
)
from brian2_reference.coefficients import voltage_response
from brian2_reference.random_networks import random_network

# Brian2 2.9's expression parser calls pyparsing with a deprecated argument name
pytestmark = pytest.mark.filterwarnings("ignore:'parseAll' argument is deprecated")

TRACE_ATOL = 1e-9
GRAD_RTOL = 1e-6


# --- independent numpy transcription of the scheme ----------------------------------------
# docs/equations.md sections 2 and 3, plus the voltage response of a precisely timed arrival
# (pynn_eventprop.discretisation, docstring): U[n] += w q(phi), q(phi) = K (a**phi - b**phi),
# K = tau_m tau_s / (cm (tau_s - tau_m)); q(phi) = phi dt b**phi / cm when tau_s = tau_m.
def ref_constants(layer, dt):
    g = layer.param
    tm, cm = g("tau_m"), g("cm")
    b = np.exp(-dt / tm)
    k = dict(
        b=b,
        c=(1 - b) * tm / cm,
        theta=g("v_thresh") - g("v_rest"),
        e=g("i_offset"),
        vr=g("v_reset") - g("v_rest"),
        v0=g("v_init") - g("v_rest"),
        r=np.rint(g("tau_refrac") / dt),
        dt_cm=dt / cm,
    )
    for x in "EI":
        ts = g(f"tau_syn_{x}")
        same = ts == tm
        k["same" + x] = same
        k["K" + x] = tm * ts / (cm * np.where(same, 1.0, ts - tm))
        k["a" + x] = np.exp(-dt / ts)
        k["p" + x] = ref_arrival(np.ones(layer.size), k, x)[1]
    return k


def ref_arrival(phi, k, x):
    """``(A, Q, dA/dphi, dQ/dphi)`` for phases ``phi`` (..., n_pre, 1) onto neurons (n_post,)."""
    a, b, K, same = k["a" + x], k["b"], k["K" + x], k["same" + x]
    A, B = a**phi, b**phi
    Q = np.where(same, phi * k["dt_cm"] * B, K * (A - B))
    dQ = np.where(same, k["dt_cm"] * B * (1 + phi * np.log(b)), K * (np.log(a) * A - np.log(b) * B))
    return A, Q, np.log(a) * A, dQ


def ref_padded(spikes, phase):
    """Input raster of emission steps 0..N-1 extended to the grid 0..N."""
    return (
        np.concatenate([spikes, np.zeros_like(spikes[:1])]),
        np.concatenate([phase, np.zeros_like(phase[:1])]),
    )


def ref_forward(spec, in_spikes, in_phase):
    N, rasters, rec = spec.n_steps, {INPUT: ref_padded(in_spikes, in_phase)}, {}
    for layer in spec.layers:
        k = ref_constants(layer, spec.dt)
        shape = (N + 1, in_spikes.shape[1], layer.size)
        arrivals = {x: np.zeros(shape) for x in ("E", "I", "U")}
        for p in (spec.projections[q] for q in spec.incoming(layer.name)):
            s, phi = (r[: N + 1 - p.delay, ..., None] for r in rasters[p.pre])
            A, Q, _, _ = ref_arrival(phi, k, p.suffix)
            w = p.weights * p.mask
            arrivals[p.suffix][p.delay :] += np.einsum("tbji,ji->tbi", s * A, w)
            arrivals["U"][p.delay :] += np.einsum("tbji,ji->tbi", s * Q, w)
        r = {name: np.zeros(shape) for name in ("V", "U", "IE", "II", "phi")}
        r["s"], r["ref"] = np.zeros(shape, bool), np.zeros(shape, bool)
        r["V"][0] = r["U"][0] = k["v0"]
        count = np.zeros(shape[1:])
        for n in range(1, N + 1):
            r["U"][n] = (
                k["b"] * r["V"][n - 1]
                + k["pE"] * r["IE"][n - 1]
                + k["pI"] * r["II"][n - 1]
                + k["c"] * k["e"]
                + arrivals["U"][n]
            )
            for x in "EI":
                r["I" + x][n] = k["a" + x] * r["I" + x][n - 1] + arrivals[x][n]
            r["ref"][n] = count > 0  # a spike in n-r .. n-1
            r["s"][n] = (r["U"][n] >= k["theta"]) & ~r["ref"][n]
            with np.errstate(divide="ignore", invalid="ignore"):
                phi = (r["U"][n] - k["theta"]) / (r["U"][n] - r["V"][n - 1])
            r["phi"][n] = np.where(r["s"][n], np.clip(phi, 0, 1 - 2.0**-20), 0)
            r["V"][n] = np.where(r["s"][n] | r["ref"][n], k["vr"], r["U"][n])
            count = np.where(r["s"][n], k["r"], np.maximum(count - 1, 0))
        rec[layer.name] = r
        rasters[layer.name] = (r["s"], r["phi"])
    return rec


def ref_backward(spec, rec, in_spikes, in_phase, dl_dphi, dl_dv):
    """Section 3 (with the arrival terms), layer by layer from the output: adjoints, dL/dW."""
    N = spec.n_steps
    rasters = {INPUT: ref_padded(in_spikes, in_phase)} | {
        name: (r["s"], r["phi"]) for name, r in rec.items()
    }
    lam, grads = {}, [None] * len(spec.projections)

    def later(values, d):  # values[n + d] on the grid 0..N, zero beyond N
        out = np.zeros_like(values)
        out[: N + 1 - d] = values[d:]
        return out

    for layer in reversed(spec.layers):
        k, r = ref_constants(layer, spec.dt), rec[layer.name]
        phibar = dl_dphi.get(layer.name, 0.0) + np.zeros(r["V"].shape)
        for p in (spec.projections[q] for q in spec.outgoing(layer.name)):
            _, _, dA, dQ = ref_arrival(
                r["phi"][..., None], ref_constants(spec.layer(p.post), spec.dt), p.suffix
            )
            li, lu = (later(lam[p.post][v], p.delay) for v in ("li" + p.suffix, "lu"))
            w = p.weights * p.mask
            phibar += np.einsum("tbi,ji,tbji->tbj", li, w, dA)
            phibar += np.einsum("tbi,ji,tbji->tbj", lu, w, dQ)
        phibar *= r["s"]
        v_prev = np.concatenate([np.zeros_like(r["V"][:1]), r["V"][:-1]])
        den = np.where(r["s"], (r["U"] - v_prev) ** 2, 1.0)
        jump_u, jump_v = phibar * (k["theta"] - v_prev) / den, phibar * (r["U"] - k["theta"]) / den
        gate = ~(r["s"] | r["ref"])
        out = {name: np.zeros(r["V"].shape) for name in ("lv", "lu", "liE", "liI")}
        dv = dl_dv.get(layer.name, np.zeros(r["V"].shape))
        for n in range(N, -1, -1):
            nxt = {name: out[name][n + 1] if n < N else 0.0 for name in out}
            for x in "EI":
                out["li" + x][n] = k["a" + x] * nxt["li" + x] + k["p" + x] * nxt["lu"]
            out["lv"][n] = dv[n] + k["b"] * nxt["lu"] + (jump_v[n + 1] if n < N else 0.0)
            out["lu"][n] = gate[n] * out["lv"][n] + jump_u[n] if n > 0 else 0.0
        lam[layer.name] = out
        for q in spec.incoming(layer.name):
            p = spec.projections[q]
            s, phi = (x[: N + 1 - p.delay, ..., None] for x in rasters[p.pre])
            A, Q, _, _ = ref_arrival(phi, k, p.suffix)
            li, lu = out["li" + p.suffix][p.delay :], out["lu"][p.delay :]
            grads[q] = (
                np.einsum("tbi,tbji->ji", li, s * A) + np.einsum("tbi,tbji->ji", lu, s * Q)
            ) * p.mask
    return lam, grads


# --- random networks ----------------------------------------------------------------------
def _transcription_layer_spikes(spec, inputs):
    """Which layers spike, by the transcription (so the cases do not depend on Brian2)."""
    spikes, phase = inputs.raster(spec.n_steps, spec.n_inputs)
    return {name: bool(r["s"].any()) for name, r in ref_forward(spec, spikes, phase).items()}


def random_case(seed, uniform_syn=None):
    """Random network ``seed`` of ``brian2_reference.random_networks`` (1-3 hidden layers, skip
    connections, delays 1-3, both receptors, refractory periods, per-neuron parameters,
    heterogeneous tau_syn in every third seed, several dt and batch sizes) with its random
    linear loss ``dL_dphase``, ``dL_dV``."""
    return random_network(seed, uniform_syn, layer_spikes=_transcription_layer_spikes)


SEEDS = list(range(20))


@pytest.fixture(scope="module")
def brian_runs():
    """Cache of Brian2 forward and adjoint runs per seed, shared by this module's tests."""
    cache = {}

    def run(seed):
        if seed not in cache:
            case = random_case(seed)
            fwd = forward(case.spec, case.inputs)
            cache[seed] = case, fwd, backward(fwd, case.dL_dphase, case.dL_dV)
        return cache[seed]

    return run


@pytest.mark.parametrize("seed", SEEDS)
def test_brian2_matches_numpy_transcription(brian_runs, seed):
    case, fwd, adj = brian_runs(seed)
    spec = case.spec
    in_spikes, in_phase = case.inputs.raster(spec.n_steps, spec.n_inputs)
    rec = ref_forward(spec, in_spikes, in_phase)
    lam, ref_grads = ref_backward(spec, rec, in_spikes, in_phase, case.dL_dphase, case.dL_dV)
    for layer in spec.layers:
        trace, r = fwd.layers[layer.name], rec[layer.name]
        assert r["s"].any(), f"{layer.name} is silent: the case would not test phases/jumps"
        np.testing.assert_array_equal(trace.spikes, r["s"])
        np.testing.assert_array_equal(trace.refractory, r["ref"])
        for got, want in (
            (trace.phase, r["phi"]),
            (trace.V, r["V"]),
            (trace.U, r["U"]),
            (trace.I_E, r["IE"]),
            (trace.I_I, r["II"]),
        ):
            np.testing.assert_allclose(got, want, rtol=0, atol=TRACE_ATOL)
        got = adj.layers[layer.name]
        for name, key in (
            ("lambda_v", "lv"),
            ("lambda_u", "lu"),
            ("lambda_i_E", "liE"),
            ("lambda_i_I", "liI"),
        ):
            np.testing.assert_allclose(
                getattr(got, name),
                lam[layer.name][key],
                rtol=0,
                atol=TRACE_ATOL,
                err_msg=f"{layer.name} {name}",
            )
    for k, (g, want) in enumerate(zip(adj.gradients, ref_grads, strict=True)):
        scale = max(np.abs(want).max(), 1e-12)
        np.testing.assert_allclose(g, want, rtol=0, atol=GRAD_RTOL * scale, err_msg=f"proj {k}")
        assert np.all(g[~spec.projections[k].mask] == 0)


# --- the numpy engine ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_brian2_matches_numpy_engine(brian_runs, seed):
    """Same networks (heterogeneous tau_syn included) on pynn_eventprop's engine, run through
    the validation bridge (``pynn_eventprop.crossvalidation.validate.run_engine``:
    CompiledNetwork, ReferenceEngine, its adjoint): identical spikes, traces and adjoints within
    1e-9, gradients within 1e-6 relative.  The engine reports steps 1..N (its adjoints at step
    0 are NaN)."""
    from pynn_eventprop.crossvalidation.validate import random_problem, run_engine

    case, fwd, adj = brian_runs(seed)
    engine, _ = run_engine(random_problem(case))
    for layer in case.spec.layers:
        ours, theirs = fwd.layers[layer.name], engine.forward.layers[layer.name]
        np.testing.assert_array_equal(ours.spikes, theirs.spikes)
        np.testing.assert_array_equal(ours.refractory, theirs.refractory)
        for got, want in (
            (ours.phase, theirs.phase),
            (ours.V, theirs.V),
            (ours.U, theirs.U),
            (ours.I_E, theirs.I_E),
            (ours.I_I, theirs.I_I),
        ):
            np.testing.assert_allclose(got, want, rtol=0, atol=TRACE_ATOL)
        lam, eng = adj.layers[layer.name], engine.adjoint.layers[layer.name]
        for name in ("lambda_v", "lambda_u", "lambda_i_E", "lambda_i_I"):
            np.testing.assert_allclose(
                getattr(lam, name)[1:],
                getattr(eng, name)[1:],
                rtol=0,
                atol=TRACE_ATOL,
                err_msg=f"{layer.name} {name}",
            )
    for k, (g, want) in enumerate(zip(adj.gradients, engine.adjoint.gradients, strict=True)):
        scale = max(np.abs(want).max(), 1e-12)
        np.testing.assert_allclose(g, want, rtol=0, atol=GRAD_RTOL * scale, err_msg=f"proj {k}")


# --- finite differences -------------------------------------------------------------------
def _linear_loss(case, rec_spikes, rec_phase, rec_v):
    """``L = sum c_phi phi s + sum c_V V`` over the output: smooth for a fixed spike pattern."""
    name = case.spec.output.name
    return float(
        np.sum(case.dL_dphase[name] * rec_phase * rec_spikes) + np.sum(case.dL_dV[name] * rec_v)
    )


def _pattern_margin(fwd):
    """Smallest distance of U to threshold over the steps where the threshold is tested."""
    margin = np.inf
    for layer in fwd.spec.layers:
        tr, theta = fwd.layers[layer.name], layer_constants(layer, fwd.spec.dt).theta
        tested = ~tr.refractory[1:]
        margin = min(margin, np.abs(tr.U[1:] - theta)[tested].min())
    return margin


def test_gradient_matches_central_differences_of_brian2_forward():
    """Directional derivatives of the Brian2 forward pass against ``<dL/dW, D>``.

    The spike pattern is kept fixed by construction: we check that it is identical at
    ``W +- eps D`` and that the largest change of any ``U`` (linear in ``eps`` for a fixed
    pattern) is below a tenth of the smallest distance of ``U`` to the threshold over all tested
    steps, so no crossing can appear or vanish anywhere on the segment;
    then ``L`` is smooth along the segment and the central difference has error
    ``O(eps**2) + O(1e-16 |L| / eps)``, about 1e-8 relative here (tolerance 1e-6).
    """
    case = random_case(108, uniform_syn=False)  # 3 hidden layers
    spec, inputs = case.spec, case.inputs
    fwd = forward(spec, inputs)
    adj = backward(fwd, case.dL_dphase, {spec.output.name: case.dL_dV[spec.output.name]})
    out = spec.output.name
    rng = np.random.default_rng(7)
    eps = 1e-6
    for _ in range(2):
        direction = [rng.normal(size=p.weights.shape) * p.mask for p in spec.projections]
        values, u_changes = [], 0.0
        for sign in (1, -1):
            w = [
                p.weights + sign * eps * d for p, d in zip(spec.projections, direction, strict=True)
            ]
            moved = forward(spec.with_weights(w), inputs)
            for name, tr in moved.layers.items():
                np.testing.assert_array_equal(tr.spikes, fwd.layers[name].spikes)
                u_changes = max(u_changes, np.abs(tr.U - fwd.layers[name].U).max())
            o = moved.layers[out]
            values.append(_linear_loss(case, o.spikes, o.phase, o.V))
        assert u_changes < 0.1 * _pattern_margin(fwd)
        fd = (values[0] - values[1]) / (2 * eps)
        predicted = sum(np.sum(g * d) for g, d in zip(adj.gradients, direction, strict=True))
        assert fd == pytest.approx(predicted, rel=1e-6)


def test_spec_adjoint_matches_central_differences_per_weight():
    """The transcribed section 3 is the gradient of the transcribed section 2, entry by entry
    (the maths itself, independent of Brian2).  Entries whose perturbation changes the spike
    pattern are excluded (none, for this seed); tolerance as above."""
    case = random_case(5, uniform_syn=False)
    spec = case.spec
    in_spikes, in_phase = case.inputs.raster(spec.n_steps, spec.n_inputs)
    rec = ref_forward(spec, in_spikes, in_phase)
    _, ref_grads = ref_backward(
        spec,
        rec,
        in_spikes,
        in_phase,
        case.dL_dphase,
        {spec.output.name: case.dL_dV[spec.output.name]},
    )
    out, eps, checked = spec.output.name, 1e-6, 0
    for k, p in enumerate(spec.projections):
        for j, i in zip(*np.nonzero(p.mask), strict=True):
            values = []
            for sign in (1, -1):
                w = [q.weights.copy() for q in spec.projections]
                w[k][j, i] += sign * eps
                moved = ref_forward(spec.with_weights(w), in_spikes, in_phase)
                assert all(np.array_equal(moved[n]["s"], rec[n]["s"]) for n in rec)
                o = moved[out]
                values.append(_linear_loss(case, o["s"], o["phi"], o["V"]))
            fd = (values[0] - values[1]) / (2 * eps)
            scale = np.abs(ref_grads[k]).max()
            assert abs(fd - ref_grads[k][j, i]) <= 1e-6 * scale + 1e-9, (k, j, i)
            checked += 1
    assert checked > 50


# --- targeted checks ------------------------------------------------------------------------
def test_delayed_spikes_carry_their_emission_phase():
    """Consecutive input spikes with different phases through a 3-step delay onto a silent
    neuron: ``I_E[n] = sum_m w a**(phi_m + n - m - 3)`` exactly (Brian2 reads presynaptic
    variables at arrival, so this fails if the phase history is wrong)."""
    dt, tau_s = 0.5, 4.0
    layer = LayerSpec("out", 1, tau_syn_E=tau_s, v_thresh=1e3, tau_refrac=0.0)
    spec = NetworkSpec(1, [layer], [ProjectionSpec(INPUT, "out", [[0.7]], delay=3)], dt, 12)
    phases = np.array([0.1, 0.8, 0.35])
    steps = np.array([2, 3, 4])
    fwd = forward(spec, SpikeInput(1, [0, 0, 0], [0, 0, 0], steps, phases))
    a = np.exp(-dt / tau_s)
    n = np.arange(13)[:, None]
    want = np.where(n >= steps + 3, 0.7 * a ** (phases + n - steps - 3), 0.0).sum(axis=1)
    np.testing.assert_allclose(fwd.layers["out"].I_E[:, 0, 0], want, rtol=1e-14, atol=0)


def test_hidden_spikes_carry_their_emission_phase():
    """A hidden neuron driven to spike on consecutive steps (``i_offset``, no refractory period)
    with varying phases feeds a silent output through 2- and 3-step delays on both receptors:
    the output currents must be ``sum_m w a**(phi_m + n - m - d)`` over the hidden spikes
    ``m`` (checks the phase shift registers of the neuron group)."""
    dt = 1.0
    hidden = LayerSpec(
        "h",
        1,
        tau_m=10.0,
        cm=1.0,
        v_rest=0.0,
        v_reset=0.0,
        v_thresh=1.0,
        tau_refrac=0.0,
        i_offset=1.2,
    )
    out = LayerSpec("o", 1, tau_syn_E=4.0, tau_syn_I=7.0, v_thresh=1e3)
    spec = NetworkSpec(
        1,
        [hidden, out],
        [
            ProjectionSpec(INPUT, "h", [[0.8]]),
            ProjectionSpec("h", "o", [[0.5]], delay=2),
            ProjectionSpec("h", "o", [[-0.3]], "inhibitory", delay=3),
        ],
        dt,
        30,
    )
    fwd = forward(spec, SpikeInput.from_times([[np.arange(1.3, 25.0, 3.1)]], dt))
    h, o = fwd.layers["h"], fwd.layers["o"]
    m = np.nonzero(h.spikes[:, 0, 0])[0]
    phases = h.phase[m, 0, 0]
    assert np.any(np.diff(m) == 1) and np.ptp(phases) > 0.1  # consecutive, different phases
    n = np.arange(spec.n_steps + 1)[:, None]
    for current, w, d, tau in ((o.I_E, 0.5, 2, 4.0), (o.I_I, -0.3, 3, 7.0)):
        a = np.exp(-dt / tau)
        want = np.where(n >= m + d, w * a ** (phases + n - m - d), 0.0).sum(axis=1)
        np.testing.assert_allclose(current[:, 0, 0], want, rtol=1e-13, atol=1e-15)


def test_coefficients_match_shared_discretisation():
    """Our own transcription of the propagators and of the arrival's voltage response equals
    pynn_eventprop's, including the equal-time-constant limit (1e-14 relative: same formulas,
    different rounding)."""
    from pynn_eventprop.discretisation import LIFDiscretisation, arrival_factors

    dt = 0.25
    layer = LayerSpec(
        "x",
        3,
        tau_m=[10.0, 20.0, 5.0],
        cm=[0.5, 20.0, 1.0],
        tau_syn_E=[3.0, 20.0, 5.0],
        tau_syn_I=[10.0, 7.0, 5.0 + 1e-13],
    )
    ours = layer_constants(layer, dt)
    theirs = LIFDiscretisation(dt).coefficients(
        *(layer.param(n) for n in ("tau_m", "cm", "tau_syn_E", "tau_syn_I"))
    )
    for name in ("b", "p_E", "p_I", "c"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-14)
    for x in "EI":
        decay = LIFDiscretisation(dt).decay(layer.param(f"tau_syn_{x}"))
        np.testing.assert_allclose(getattr(ours, f"a_{x}"), decay, rtol=1e-14)
    for phi in (0.0, 1e-9, 0.3, 0.999):
        for x in "EI":
            ours_q = voltage_response(phi, ours.b, getattr(ours, f"kappa_{x}"), ours.dt_over_cm)
            theirs_q = [
                arrival_factors(phi, -dt / ts, -dt / tm, dt / ts - dt / tm, dt / cm)[1]
                for tm, cm, ts in zip(
                    *(layer.param(n) for n in ("tau_m", "cm", f"tau_syn_{x}")), strict=True
                )
            ]
            np.testing.assert_allclose(ours_q, theirs_q, rtol=1e-14, atol=1e-300)


def test_input_times_to_steps_and_phases():
    inp = SpikeInput.from_times([[[0.0, 0.3, 1.0 + 1e-12]], [[0.25]]], dt=0.5)
    np.testing.assert_array_equal(inp.step, [0, 1, 2, 1])
    np.testing.assert_allclose(inp.phase, [0.0, 0.4, 0.0, 0.5], atol=1e-9)
    spikes, phase = inp.raster(2, 1)  # step 2 is outside a 2-step window
    assert spikes.sum() == 3 and phase[1, 1, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="two spikes in the same step"):
        SpikeInput.from_times([[[0.1, 0.2]]], dt=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(receptor="gaba"), "receptor must be one of"),
        (dict(delay=0), "delay must be a whole number of steps >= 1"),
        (dict(weights=np.ones((3, 2))), r"weights must have shape \(2, 2\)"),
        (dict(pre="out", post="out"), "only feed-forward"),
    ],
)
def test_invalid_projection_is_rejected(kwargs, message):
    args = dict(pre=INPUT, post="out", weights=np.ones((2, 2))) | kwargs
    with pytest.raises(ValueError, match=message):
        NetworkSpec(2, [LayerSpec("out", 2)], [ProjectionSpec(**args)], 0.1, 10)


def test_invalid_layer_is_rejected():
    with pytest.raises(ValueError, match="v_reset must be < v_thresh"):
        LayerSpec("x", 2, v_reset=-50.0, v_thresh=-50.0)
    with pytest.raises(ValueError, match=r"tau_m must be > 0"):
        LayerSpec("x", 2, tau_m=[1.0, 0.0])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        LayerSpec("x", 2, cm=[1.0, 1.0, 1.0])


# --- losses and Neo ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ttfs", "max_voltage", "mean_voltage"])
def test_loss_gradients_match_finite_differences_of_the_loss(brian_runs, kind):
    """dL/dphase and dL/dV of each loss against central differences in phase and V (pure
    numpy on one recorded trace; the losses are smooth there; tolerance 1e-6 relative, the
    differences have rounding errors ~1e-9)."""
    case, fwd, _ = brian_runs(4)
    spec = case.spec
    labels = np.arange(fwd.batch_size) % spec.output.size
    loss = LossSpec(kind, labels)
    _, d_phase, d_v = loss_gradients(loss, fwd)
    trace = fwd.layers[spec.output.name]
    rng = np.random.default_rng(0)
    for field, grad in (("phase", d_phase), ("V", d_v)):
        direction = rng.normal(size=grad.shape) * (trace.spikes if field == "phase" else 1)
        values = []
        for sign in (1, -1):
            moved = getattr(trace, field) + sign * 1e-7 * direction
            layers = dict(fwd.layers) | {spec.output.name: _replace(trace, **{field: moved})}
            values.append(loss_gradients(loss, _replace(fwd, layers=layers))[0])
        fd = (values[0] - values[1]) / 2e-7
        assert fd == pytest.approx(np.sum(grad * direction), rel=1e-6, abs=1e-9)


def _replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_run_reference_and_neo_blocks():
    case = random_case(2)
    spec, inputs = case.spec, case.inputs
    labels = np.zeros(inputs.batch_size, int)
    run = run_reference(spec, inputs, LossSpec("ttfs", labels))
    assert np.isfinite(run.loss) and any(np.abs(g).max() > 0 for g in run.adjoint.gradients)
    blocks = to_neo(run.forward, run.adjoint)
    assert list(blocks) == [INPUT] + [layer.name for layer in spec.layers]
    out = spec.output
    seg = blocks[out.name].segments[0]
    trace = run.forward.layers[out.name]
    assert len(seg.spiketrains) == out.size
    st = seg.spiketrains[0]
    steps = np.nonzero(trace.spikes[:, 0, 0])[0]
    np.testing.assert_allclose(st.magnitude, (steps - trace.phase[steps, 0, 0]) * spec.dt)
    np.testing.assert_array_equal(st.array_annotations["step"], steps)
    signals = {sig.name: sig for sig in seg.analogsignals}
    assert set(signals) == {"v", "lambda_v", "lambda_i", "lambda_i_inh"}
    np.testing.assert_array_equal(signals["v"].magnitude, trace.v[:, 0])
    assert str(signals["lambda_v"].units.dimensionality) == "1/mV"
    assert signals["v"].shape == (spec.n_steps + 1, out.size)
