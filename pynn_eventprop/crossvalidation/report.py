"""The convergence report: a table for the terminal and a JSON document."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .convergence import CHECKED, PREDICTED_ORDER, QUANTITIES, SPIKE_STEPS, UNITS, LossStudy


def _num(x) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.2e}"


def _json_number(x):
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class ConvergenceReport:
    """Every :class:`LossStudy` of a run of the study, with the cases' descriptions."""

    studies: list = field(default_factory=list)
    cases: list = field(default_factory=list)  # dicts: family, seed, rejected, sizes, spikes
    meta: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.studies)

    def failures(self) -> list[tuple[str, str, str]]:
        """``(family, loss, check)`` of every failed check."""
        return [(s.family, s.loss, q) for s in self.studies for q in CHECKED if not s.checks[q][2]]

    def table(self) -> str:
        """The errors at each Brian2 step, observed orders and checks, one row per quantity."""
        if not self.studies:
            return "(no studies)"
        dts = self.studies[0].dts
        head = ["family", "loss", "quantity (unit)"] + [f"dt={d:g}" for d in dts]
        head += ["order", "check"]
        rows = []
        for s in self.studies:
            for q in QUANTITIES:
                orders = ", ".join("-" if o is None else f"{o:.2f}" for o in s.orders[q])
                check = ""
                if q in s.checks:
                    value, tol, ok = s.checks[q]
                    unit = " steps" if q == "spike_times" else ""
                    check = f"{value:.3g}{unit} <= {tol:g}{unit}: {'pass' if ok else 'FAIL'}"
                rows.append(
                    [s.family, s.loss, f"{q} ({UNITS[q]})"]
                    + [_num(e) for e in s.errors[q]]
                    + [orders, check]
                )
        widths = [max(len(str(r[k])) for r in [head, *rows]) for k in range(len(head))]
        lines = [
            "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
            for r in [head, *rows]
        ]
        verdict = "PASSED" if self.passed else f"FAILED: {self.failures()}"
        lines.append(
            f"predicted order {PREDICTED_ORDER:g} (spikes detected on Brian2's grid); checks at "
            f"the finest step: spike times within {SPIKE_STEPS:g} steps, weight and delay "
            f"gradients within 1 % at 0.001 ms.  {verdict}"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "meta": self.meta | {"predicted_order": PREDICTED_ORDER, "passed": self.passed},
            "cases": self.cases,
            "studies": [_study_dict(s) for s in self.studies],
        }

    def save_json(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def save_figure(self, path) -> Path:
        from .figure import plot_convergence

        return plot_convergence(self, path)


def _study_dict(s: LossStudy) -> dict:
    return {
        "family": s.family,
        "loss": s.loss,
        "dts": list(s.dts),
        "errors": {q: [_json_number(e) for e in v] for q, v in s.errors.items()},
        "units": UNITS,
        "orders": s.orders,
        "checks": {
            q: {"value": _json_number(v), "tolerance": t, "passed": ok}
            for q, (v, t, ok) in s.checks.items()
        },
        "passed": s.passed,
    }
