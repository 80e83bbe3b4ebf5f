"""The convergence study: Brian2 at several time steps against the exact engine.

For a network (:class:`~.families.Case`) and each loss, the exact reference engine runs once
(:func:`~.network_bridge.run_engine`) and ``brian2_reference`` once per Brian2 step ``dt``; the
errors of Brian2 at each step are

``spike_times``  the largest ``|t_Brian2 - t_exact|`` (ms) over every spike of every layer,
                 ``inf`` if a neuron fires a different number of times;
``v``            ``sum |V_Brian2 - V_exact| / sum |V_exact|`` over the engine's grid points
                 (0.1 ms) of every layer, sample and neuron (a relative L1 norm: a spike that is
                 a step late makes ``V`` wrong by ``O(1)`` in that step, which a maximum would
                 report at every ``dt``);
``lambda_v``, ``lambda_i``  the same for the adjoints ``dL/dV`` and ``dL/dI_E``;
``loss``         ``|L_Brian2 - L_exact| / |L_exact|``;
``gradients``    ``max_k max|dL/dW_k Brian2 - dL/dW_k exact| / max|dL/dW_k exact|`` over the
                 projections ``k`` (relative to each projection's scale);
``delay_gradients``  the same for ``dL/d(delay)``, what training delays would use.

Brian2 detects spikes on its grid, so every error is predicted to shrink at first order in
``dt`` (:data:`PREDICTED_ORDER`); the observed order between two steps is
``log(e1/e2)/log(dt1/dt2)``.  Checks, at the finest step ``dt_f`` of the study: spike times
within :data:`SPIKE_STEPS` Brian2 steps, and gradients within :data:`GRADIENT_RTOL` relative at
0.001 ms, scaled proportionally (first order) when the finest step is coarser; the same for
the delay gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brian2_reference import LOSSES, LossSpec, forward, run_reference

from .families import ENGINE_DT, Case
from .network_bridge import EngineRun, run_engine

DTS = (0.1, 0.01, 0.001)
PREDICTED_ORDER = 1.0
QUANTITIES = ("spike_times", "v", "lambda_v", "lambda_i", "loss", "gradients", "delay_gradients")
CHECKED = ("spike_times", "gradients", "delay_gradients")
UNITS = {
    "spike_times": "ms",
    "v": "rel. L1",
    "lambda_v": "rel. L1",
    "lambda_i": "rel. L1",
    "loss": "rel.",
    "gradients": "rel. max",
    "delay_gradients": "rel. max",
}
SPIKE_STEPS = 2.0
GRADIENT_RTOL = 0.01  # at dt = 0.001 ms
GRADIENT_DT = 0.001


def gradient_tolerance(dt: float) -> float:
    """Relative gradient tolerance at finest step ``dt``: 1 % at 0.001 ms, first order."""
    return GRADIENT_RTOL * max(dt / GRADIENT_DT, 1.0)


def spec_for(case: Case, loss: str):
    """The variant of the case's network a loss is studied on (non-spiking output for
    ``max_voltage``)."""
    return case.readout_spec if loss == "max_voltage" else case.spec


def engine_runs(case: Case, losses=LOSSES) -> dict[str, EngineRun]:
    """The exact engine's run of ``case`` for every loss."""
    return {
        loss: run_engine(spec_for(case, loss), case.inputs, loss, case.labels, ENGINE_DT)
        for loss in losses
    }


def brian2_runs(case: Case, dts=DTS, losses=LOSSES, progress=None) -> dict:
    """``{(loss, dt): ReferenceRun}``: Brian2's forward once per network variant and step, the
    adjoint once per loss."""
    runs = {}
    for dt in dts:
        forwards = {}
        for loss in losses:
            spec = spec_for(case, loss)
            if id(spec) not in forwards:
                forwards[id(spec)] = forward(spec, case.inputs, dt)
            fwd = forwards[id(spec)]
            runs[loss, dt] = run_reference(spec, case.inputs, dt, LossSpec(loss, case.labels), fwd)
            if progress is not None:
                progress(f"{case.family} {loss} dt={dt:g}")
    return runs


def _spike_error(spec, ref, eng: EngineRun) -> float:
    worst = 0.0
    for layer in spec.layers:
        sample, neuron, times = ref.forward.spikes(layer.name)
        for b, per_neuron in enumerate(eng.spikes[layer.name]):
            for i, exact in enumerate(per_neuron):
                mine = np.sort(times[(sample == b) & (neuron == i)])
                if mine.size != exact.size:
                    return float("inf")
                if mine.size:
                    worst = max(worst, float(np.abs(mine - exact).max()))
    return worst


def _relative_l1(ours: dict, exact: dict, first: int, stride: int) -> float:
    num = den = 0.0
    for name, e in exact.items():
        o = ours[name][first::stride][: e.shape[0]]
        num += float(np.abs(o - e).sum())
        den += float(np.abs(e).sum())
    return num / den if den > 0 else float(num > 0) * float("inf")


def errors(spec, ref, eng: EngineRun) -> dict[str, float]:
    """Brian2's errors against the engine (module docstring), one number per quantity."""
    stride = int(round(eng.dt / ref.forward.dt))
    return {
        "spike_times": _spike_error(spec, ref, eng),
        "v": _relative_l1(ref.forward.trace("V"), eng.V, stride, stride),
        "lambda_v": _relative_l1(ref.adjoint.trace("lam_V"), eng.lam_V, 0, stride),
        "lambda_i": _relative_l1(ref.adjoint.trace("lam_E"), eng.lam_E, 0, stride),
        "loss": abs(ref.loss - eng.loss) / abs(eng.loss),
        "gradients": _relative_max(ref.gradients, eng.gradients),
        "delay_gradients": _relative_max(ref.delay_gradients, eng.delay_gradients),
    }


def _relative_max(ours, exact) -> float:
    """``max_k max|ours_k - exact_k| / max|exact_k|`` over the projections with a gradient."""
    return max(
        (
            float(np.abs(o - e).max() / np.abs(e).max())
            for o, e in zip(ours, exact, strict=True)
            if np.abs(e).max() > 0
        ),
        default=0.0,
    )


def observed_orders(dts, values) -> list:
    """``log(e_k/e_k+1)/log(dt_k/dt_k+1)`` for consecutive steps (None where undefined)."""
    out = []
    for k in range(len(dts) - 1):
        (d1, e1), (d2, e2) = (dts[k], values[k]), (dts[k + 1], values[k + 1])
        ok = np.isfinite(e1) and np.isfinite(e2) and e1 > 0 and e2 > 0
        out.append(float(np.log(e1 / e2) / np.log(d1 / d2)) if ok else None)
    return out


@dataclass
class LossStudy:
    """Errors of one (case, loss) at each step, the observed orders and the checks."""

    family: str
    loss: str
    dts: tuple
    errors: dict = field(default_factory=dict)  # quantity -> [error per dt]
    checks: dict = field(default_factory=dict)  # quantity -> (value, tolerance, passed)

    @property
    def orders(self) -> dict:
        return {q: observed_orders(self.dts, e) for q, e in self.errors.items()}

    @property
    def passed(self) -> bool:
        return all(ok for _, _, ok in self.checks.values())


def study_case(case: Case, dts=DTS, losses=LOSSES, brian2=None, engine=None) -> list[LossStudy]:
    """Compare ``case`` at every step for every loss; ``brian2``/``engine`` reuse runs made by
    :func:`brian2_runs`/:func:`engine_runs`."""
    dts = tuple(dts)
    brian2 = brian2 if brian2 is not None else brian2_runs(case, dts, losses)
    engine = engine if engine is not None else engine_runs(case, losses)
    finest = dts[-1]
    out = []
    for loss in losses:
        spec = spec_for(case, loss)
        per_dt = [errors(spec, brian2[loss, dt], engine[loss]) for dt in dts]
        study = LossStudy(case.family, loss, dts, {q: [e[q] for e in per_dt] for q in QUANTITIES})
        spikes = study.errors["spike_times"][-1] / finest
        study.checks = {"spike_times": (spikes, SPIKE_STEPS, bool(spikes <= SPIKE_STEPS))}
        for q in ("gradients", "delay_gradients"):
            value, tol = study.errors[q][-1], gradient_tolerance(finest)
            study.checks[q] = (value, tol, bool(value <= tol))
        out.append(study)
    return out
