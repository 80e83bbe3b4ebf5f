"""PNG of a convergence report: Brian2's error against its time step, one panel per quantity.

Log-log axes; one line per (family, loss) (colour: family, marker: loss); a dotted line of
slope 1 (the predicted first order) through the median error at the coarsest step; the checks'
tolerances dashed.  Uses matplotlib's object API without pyplot, so no global state changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .convergence import GRADIENT_DT, GRADIENT_RTOL, QUANTITIES, SPIKE_STEPS, UNITS

MARKERS = {"ttfs": "o", "max_voltage": "s", "mean_voltage": "^"}


def _panel(ax, report, quantity, families):
    dts = np.asarray(report.studies[0].dts)
    for s in report.studies:
        errs = np.asarray(s.errors[quantity], float)
        errs = np.where(np.isfinite(errs) & (errs > 0), errs, np.nan)
        ax.plot(dts, errs, marker=MARKERS.get(s.loss, "x"), color=f"C{families.index(s.family)}")
    first = [s.errors[quantity][0] for s in report.studies]
    first = [e for e in first if np.isfinite(e) and e > 0]
    if first:
        ax.plot(dts, np.median(first) * dts / dts[0], "k:", lw=1, label="slope 1")
    if quantity == "spike_times":
        ax.plot(dts, SPIKE_STEPS * dts, "k--", lw=1.5, label=f"{SPIKE_STEPS:g} steps")
    if quantity in ("gradients", "delay_gradients"):
        tolerance = GRADIENT_RTOL * np.maximum(dts / GRADIENT_DT, 1)
        ax.plot(dts, tolerance, "k--", lw=1.5, label="tolerance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("Brian2 dt (ms)")
    ax.set_ylabel(f"error ({UNITS[quantity]})")
    ax.set_title(quantity, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")


def plot_convergence(report, path) -> Path:
    """Draw ``report`` (a :class:`~.report.ConvergenceReport`) into a PNG at ``path``."""
    if not report.studies:
        raise ValueError("the report has no studies to plot")
    families = sorted({s.family for s in report.studies})
    fig = Figure(figsize=(17, 8), layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    for ax, quantity in zip(axes, QUANTITIES, strict=False):
        _panel(ax, report, quantity, families)
    for ax in axes[len(QUANTITIES) :]:
        ax.set_axis_off()
    handles = [axes[0].plot([], [], color=f"C{k}", label=f)[0] for k, f in enumerate(families)] + [
        axes[0].plot([], [], "k" + m, ls="", label=loss)[0] for loss, m in MARKERS.items()
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    verdict = "PASSED" if report.passed else "FAILED"
    fig.suptitle(f"Brian2 against the exact engine: error vs Brian2 time step ({verdict})")
    path = Path(path)
    fig.savefig(path, dpi=80)
    return path
