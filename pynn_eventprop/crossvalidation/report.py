"""Comparison of two runs of the same network and the cross-validation report.

Both runs are :class:`~brian2_reference.run.ReferenceRun` objects on the grid ``n = 0 .. N``
(:mod:`.validate` wraps the engine's arrays in the same containers), so one
function compares them quantity by quantity:

=============  ==========================================================  ==========  =========
quantity       what (all layers, samples and grid steps ``n = 1 .. N``)    criterion   tolerance
=============  ==========================================================  ==========  =========
spike_times    identical spike rasters (input and layers), then spike      absolute    1e-9 ms
               times ``(n - phi) dt`` of the common spikes
v              membrane potential ``v`` (mV)                               absolute    1e-9 mV
i_syn          synaptic currents ``I_E``, ``I_I`` (nA)                     absolute    1e-9 nA
lambda_v       ``dL/dV`` (1/mV)                                            absolute    1e-9
lambda_i       ``dL/dI_E``, ``dL/dI_I`` (1/nA)                             absolute    1e-9
gradients      ``dL/dW`` of every projection, relative to its largest      relative    1e-6
               entry
loss           the loss value                                              relative    1e-9
=============  ==========================================================  ==========  =========

For every quantity the report gives the largest absolute difference and the largest relative
one (the absolute difference over the largest magnitude of the Brian2 quantity; per projection
for gradients), and passes it if the error named by the criterion is within the tolerance.
Why these tolerances: the two implementations perform the same float64 operations in different
orders, so they differ by rounding (measured below 1e-12 for traces and adjoints, whose
magnitudes reach ~30); gradients are sums of up to ~1e4 products; an error in the scheme (an
index, a sign, a factor) gives differences of order 1e-3 to 1.  ``lambda_v`` and ``lambda_i``
at ``n = 0`` are not compared: the engine does not compute them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brian2_reference.neo_io import to_neo
from brian2_reference.run import ReferenceRun

from .tolerances import QUANTITIES, TOLERANCES, Tolerance


def _json_number(x: float):
    """Finite floats as numbers, NaN and infinities as strings (JSON has no such numbers)."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


@dataclass(frozen=True)
class QuantityError:
    """Largest absolute and relative difference of one quantity, judged against a tolerance."""

    max_abs: float
    max_rel: float
    tolerance: Tolerance

    @property
    def error(self) -> float:
        """The error the criterion judges."""
        return self.max_abs if self.tolerance.criterion == "absolute" else self.max_rel

    @property
    def passed(self) -> bool:
        return bool(self.error <= self.tolerance.value)  # False for NaN

    def to_dict(self) -> dict:
        return {
            "max_abs": _json_number(self.max_abs),
            "max_rel": _json_number(self.max_rel),
            "criterion": self.tolerance.criterion,
            "tolerance": self.tolerance.value,
            "unit": self.tolerance.unit,
            "passed": self.passed,
        }


def _max_abs(diffs) -> float:
    """Largest |difference|; NaN if any difference is NaN (so that NaN fails)."""
    values = [np.abs(d).max() if d.size else 0.0 for d in diffs]
    if not values:
        return 0.0
    return float("nan") if np.isnan(values).any() else float(max(values))


def _ratio(diff: float, scale: float) -> float:
    if scale > 0:
        return diff / scale
    return 0.0 if diff == 0 else float("inf")


def _trace_error(pairs, tolerance: Tolerance) -> QuantityError:
    """``pairs`` of (engine, brian2) arrays; relative to the largest |brian2| value."""
    diffs = [np.asarray(a, float) - np.asarray(b, float) for a, b in pairs]
    max_abs = _max_abs(diffs)
    scale = max((float(np.abs(b).max()) for _, b in pairs if np.size(b)), default=0.0)
    return QuantityError(max_abs, _ratio(max_abs, scale), tolerance)


def _spike_errors(engine: ReferenceRun, brian2: ReferenceRun, tolerance: Tolerance):
    """Mismatched raster entries, and times of the common spikes (input and layers)."""
    dt = brian2.forward.spec.dt
    rasters = [
        (
            (engine.forward.input_spikes, engine.forward.input_phase),
            (brian2.forward.input_spikes, brian2.forward.input_phase),
        )
    ]
    for name, theirs in brian2.forward.layers.items():
        ours = engine.forward.layers[name]
        rasters.append(((ours.spikes[1:], ours.phase[1:]), (theirs.spikes[1:], theirs.phase[1:])))
    mismatches, diffs, n_spikes = 0, [], 0
    for (s_e, p_e), (s_b, p_b) in rasters:
        mismatches += int(np.count_nonzero(s_e != s_b))
        n_spikes += int(np.count_nonzero(s_b))
        common = s_e & s_b
        # t = (n - phi) dt at the same step n on both sides
        diffs.append((p_b[common] - p_e[common]) * dt)
    t_stop = brian2.forward.spec.n_steps * dt
    max_abs = _max_abs(diffs)
    return mismatches, n_spikes, QuantityError(max_abs, _ratio(max_abs, t_stop), tolerance)


def compare(engine: ReferenceRun, brian2: ReferenceRun, tolerances=None):
    """Errors per quantity of ``engine`` against ``brian2`` (see the module docstring).

    Returns
    -------
    errors : dict quantity -> QuantityError (``loss`` only when both runs have a loss value)
    spike_mismatches : int
        Raster entries (step, sample, neuron) where one run spiked and the other did not.
    n_spikes : int
        Spikes of the Brian2 run (input and layers, all samples).
    """
    tol = TOLERANCES | dict(tolerances or {})
    errors = {}
    mismatches, n_spikes, errors["spike_times"] = _spike_errors(engine, brian2, tol["spike_times"])
    fe, fb = engine.forward.layers, brian2.forward.layers
    ae, ab = engine.adjoint.layers, brian2.adjoint.layers
    names = list(fb)
    errors["v"] = _trace_error([(fe[n].V[1:], fb[n].V[1:]) for n in names], tol["v"])
    errors["i_syn"] = _trace_error(
        [(getattr(fe[n], x)[1:], getattr(fb[n], x)[1:]) for n in names for x in ("I_E", "I_I")],
        tol["i_syn"],
    )
    errors["lambda_v"] = _trace_error(
        [(ae[n].lambda_v[1:], ab[n].lambda_v[1:]) for n in names], tol["lambda_v"]
    )
    errors["lambda_i"] = _trace_error(
        [
            (getattr(ae[n], x)[1:], getattr(ab[n], x)[1:])
            for n in names
            for x in ("lambda_i_E", "lambda_i_I")
        ],
        tol["lambda_i"],
    )
    abs_errors, rel_errors = [], []
    for g_e, g_b in zip(engine.adjoint.gradients, brian2.adjoint.gradients, strict=True):
        diff = _max_abs([np.asarray(g_e) - np.asarray(g_b)])
        abs_errors.append(diff)
        rel_errors.append(_ratio(diff, float(np.abs(g_b).max()) if g_b.size else 0.0))
    errors["gradients"] = QuantityError(
        _max_abs([np.array(abs_errors)]), _max_abs([np.array(rel_errors)]), tol["gradients"]
    )
    if engine.loss is not None and brian2.loss is not None:
        diff = _max_abs([np.array([engine.loss - brian2.loss])])
        errors["loss"] = QuantityError(diff, _ratio(diff, abs(brian2.loss)), tol["loss"])
    return errors, mismatches, n_spikes


@dataclass
class NetworkReport:
    """Cross-validation of one network.

    Attributes
    ----------
    name : str
    info : dict
        Description of the network (sizes, dt, n_steps, batch, number of projections, loss).
    errors : dict quantity -> QuantityError
    spike_mismatches, n_spikes : int
    timings : dict
        CPU seconds of ``engine_forward``, ``engine_backward``, ``brian2_forward`` and
        ``brian2_backward`` (the loss is included in the forward time).
    engine, brian2 : ReferenceRun
        Both sides' traces on the grid ``n = 0 .. N``; the engine's adjoints are NaN at
        ``n = 0`` (not computed).
    projection_labels : list of str
        One per projection of ``brian2.forward.spec`` (the order of the gradients).
    """

    name: str
    info: dict
    errors: dict
    spike_mismatches: int
    n_spikes: int
    timings: dict
    engine: ReferenceRun = field(repr=False)
    brian2: ReferenceRun = field(repr=False)
    projection_labels: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.spike_mismatches == 0 and all(e.passed for e in self.errors.values())

    def engine_blocks(self) -> dict:
        """The engine's recording as Neo blocks (``brian2_reference.to_neo`` layout)."""
        blocks = to_neo(self.engine.forward, self.engine.adjoint)
        for block in blocks.values():
            block.description = "pynn_eventprop numpy engine recording"
        return blocks

    def brian2_blocks(self) -> dict:
        """The Brian2 reference's recording as Neo blocks, keyed by population name."""
        return to_neo(self.brian2.forward, self.brian2.adjoint)

    def to_dict(self) -> dict:
        errors = {name: err.to_dict() for name, err in self.errors.items()}
        errors["spike_times"]["mismatches"] = self.spike_mismatches
        errors["spike_times"]["passed"] &= self.spike_mismatches == 0
        return {
            "name": self.name,
            "passed": self.passed,
            **self.info,
            "n_spikes": self.n_spikes,
            "spike_mismatches": self.spike_mismatches,
            "loss_value": {
                "engine": None if self.engine.loss is None else _json_number(self.engine.loss),
                "brian2": None if self.brian2.loss is None else _json_number(self.brian2.loss),
            },
            "errors": errors,
            "cpu_seconds": {k: round(v, 4) for k, v in self.timings.items()},
        }


#: Columns of the printed table: (header, quantity, which error).
_COLUMNS = (
    ("t_spike", "spike_times", "max_abs"),
    ("v", "v", "max_abs"),
    ("I_syn", "i_syn", "max_abs"),
    ("lambda_v", "lambda_v", "max_abs"),
    ("lambda_i", "lambda_i", "max_abs"),
    ("dL/dW rel", "gradients", "max_rel"),
    ("loss rel", "loss", "max_rel"),
)


@dataclass
class ValidationReport:
    """Cross-validation of one or more networks; ``meta`` records how it was produced."""

    networks: list
    meta: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.networks)

    def worst(self) -> dict:
        """Per quantity, the largest absolute and relative error over all networks."""
        out = {}
        for q in QUANTITIES:
            errs = [r.errors[q] for r in self.networks if q in r.errors]
            if errs:
                out[q] = QuantityError(
                    _max_abs([np.array([e.max_abs for e in errs])]),
                    _max_abs([np.array([e.max_rel for e in errs])]),
                    errs[0].tolerance,
                )
        return out

    def tolerances(self) -> dict:
        """The tolerance applied to each quantity (the stated ones unless overridden)."""
        used = dict(TOLERANCES)
        for r in reversed(self.networks):
            used.update({q: e.tolerance for q, e in r.errors.items()})
        return used

    def to_dict(self) -> dict:
        tolerances = {
            q: {"criterion": t.criterion, "tolerance": t.value, "unit": t.unit}
            for q, t in self.tolerances().items()
        }
        return {
            "passed": self.passed,
            "n_networks": len(self.networks),
            "spike_mismatches": sum(r.spike_mismatches for r in self.networks),
            "tolerances": tolerances,
            "worst": {q: e.to_dict() for q, e in self.worst().items()},
            "meta": self.meta,
            "networks": [r.to_dict() for r in self.networks],
        }

    def save_json(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def save_figure(self, path, network: int = 0) -> Path:
        """PNG overlaying both sides' traces (see :func:`.figure.plot_report`)."""
        from .figure import plot_report

        return plot_report(self, path, network)

    def table(self) -> str:
        """Plain-text table: one row per network, then tolerances, worst case and verdict."""
        header = ["network", "sizes", "dt", "N", "B", "spikes", "mism."]
        header += [c[0] for c in _COLUMNS] + ["CPU s eng/b2", "result"]
        rows = [header]
        for r in self.networks:
            cells = [
                r.name,
                "-".join(str(s) for s in r.info["sizes"]),
                f"{r.info['dt']:g}",
                str(r.info["n_steps"]),
                str(r.info["batch"]),
                str(r.n_spikes),
                str(r.spike_mismatches) + ("!" if r.spike_mismatches else ""),
            ]
            for _, q, which in _COLUMNS:
                err = r.errors.get(q)
                cells.append("-" if err is None else _fmt(getattr(err, which), err.passed))
            engine = r.timings["engine_forward"] + r.timings["engine_backward"]
            brian = r.timings["brian2_forward"] + r.timings["brian2_backward"]
            cells += [f"{engine:.3f}/{brian:.2f}", "pass" if r.passed else "FAIL"]
            rows.append(cells)
        used = self.tolerances()
        tol = ["tolerance", "", "", "", "", "", "0"]
        tol += [f"{used[q].value:.0e}" for _, q, _ in _COLUMNS] + ["", ""]
        worst = self.worst()
        total = sum(r.spike_mismatches for r in self.networks)
        row = ["worst", "", "", "", "", str(sum(r.n_spikes for r in self.networks)), str(total)]
        row += [
            _fmt(getattr(worst[q], which), worst[q].passed) if q in worst else "-"
            for _, q, which in _COLUMNS
        ]
        rows += [tol, row + ["", "pass" if self.passed else "FAIL"]]
        widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 2, "-" * len(lines[0]))
        n = len(self.networks)
        failed = [r.name for r in self.networks if not r.passed]
        verdict = (
            f"PASSED: {n} network(s), engine and Brian2 agree within the stated tolerances"
            if self.passed
            else f"FAILED: {len(failed)} of {n} network(s) outside tolerance: {', '.join(failed)}"
        )
        return "\n".join(lines + ["", verdict])


def _fmt(value: float, passed: bool) -> str:
    text = f"{value:.1e}" if math.isfinite(value) else str(value)
    return text if passed else text + "!"
