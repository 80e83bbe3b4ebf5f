"""PNG figure of a cross-validation report: both sides' traces overlaid.

Six panels for sample 0 of one network of the report (``v``, ``lambda_v``, ``lambda_i`` of a
few neurons of the first and the last layer, engine as wide translucent lines, Brian2 as
dashed lines on top; the spike rasters of all populations, engine ``|``, Brian2 ``x``) and two
for all networks (``dL/dW`` of the engine against Brian2, every projection scaled by its
largest entry; the error of every quantity against its tolerance).  Uses matplotlib's object
API without pyplot, so no global backend or figure state is touched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from brian2_reference.description import INPUT

from .tolerances import QUANTITIES

_FLOOR = 1e-18  # errors of exactly 0 are drawn here on the log axis


def _neurons(run) -> list[tuple[str, int]]:
    """Up to two neurons of the first layer and two of the output layer."""
    names = list(run.forward.layers)
    picked = []
    for name in dict.fromkeys([names[0], names[-1]]):
        size = run.forward.layers[name].V.shape[2]
        picked += [(name, i) for i in range(min(2, size))]
    return picked


def _overlay(ax, t, curves, ylabel, title):
    for k, (label, ours, theirs) in enumerate(curves):
        color = f"C{k}"
        ax.plot(t, ours, color=color, lw=3.0, alpha=0.45)
        ax.plot(t, theirs, color=color, lw=1.0, ls="--", label=label)
    ax.set_xlabel("t (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)


def _raster(ax, report_net):
    engine, brian2 = report_net.engine.forward, report_net.brian2.forward
    dt = brian2.spec.dt
    pops = [
        (INPUT, engine.input_spikes, engine.input_phase, brian2.input_spikes, brian2.input_phase)
    ]
    for name, tb in brian2.layers.items():
        te = engine.layers[name]
        pops.append((name, te.spikes, te.phase, tb.spikes, tb.phase))
    offset, ticks = 0, []
    for name, s_e, p_e, s_b, p_b in pops:
        for spikes, phase, marker, color, size in (
            (s_e, p_e, "|", "C0", 120),
            (s_b, p_b, "x", "k", 18),
        ):
            n, i = np.nonzero(spikes[:, 0])
            ax.scatter((n - phase[n, 0, i]) * dt, offset + i, marker=marker, c=color, s=size)
        size = s_b.shape[2]
        ticks.append((offset + (size - 1) / 2, name))
        offset += size
        ax.axhline(offset - 0.5, color="0.8", lw=0.5)
    ax.set_yticks([y for y, _ in ticks], [name for _, name in ticks], fontsize=8)
    ax.set_xlim(0, brian2.spec.n_steps * dt)
    ax.set_xlabel("t (ms)")
    ax.set_title("spikes (sample 0): engine |, Brian2 x", fontsize=10)


def _gradients(ax, report):
    worst = 0.0
    for k, net in enumerate(report.networks):
        for g_e, g_b in zip(
            net.engine.adjoint.gradients, net.brian2.adjoint.gradients, strict=True
        ):
            scale = np.abs(g_b).max()
            if scale > 0:
                ax.scatter(g_b.ravel() / scale, g_e.ravel() / scale, s=6, color=f"C{k % 10}")
        worst = max(worst, net.errors["gradients"].max_rel)
    ax.plot([-1, 1], [-1, 1], color="k", lw=0.8)
    ax.set_xlabel("Brian2 dL/dW / max|dL/dW|")
    ax.set_ylabel("engine dL/dW / max|dL/dW|")
    ax.set_title(
        f"gradients, {len(report.networks)} network(s): max rel. error {worst:.1e}", fontsize=10
    )


def _errors(ax, report):
    tolerances = report.tolerances()
    for x, q in enumerate(QUANTITIES):
        errs = [net.errors[q].error for net in report.networks if q in net.errors]
        if errs:
            y = np.maximum(np.nan_to_num(errs, nan=1.0, posinf=1.0), _FLOOR)
            ax.scatter(np.full(len(y), x) + np.linspace(-0.2, 0.2, len(y)), y, s=10, c="C0")
        ax.scatter([x], [tolerances[q].value], marker="_", s=600, c="C3")
    ax.set_yscale("log")
    ax.set_xticks(range(len(QUANTITIES)), QUANTITIES, rotation=30, fontsize=8)
    ax.set_ylabel("error (abs.; rel. for gradients, loss)")
    ax.set_title("error per network (dots) and tolerance (red)", fontsize=10)


def plot_report(report, path, network: int = 0) -> Path:
    """Draw a ValidationReport (traces of ``report.networks[network]``) into a PNG at ``path``."""
    if not 0 <= network < len(report.networks):
        raise ValueError(f"network must be in [0, {len(report.networks)}), got {network!r}")
    net = report.networks[network]
    dt, n_steps = net.brian2.forward.spec.dt, net.brian2.forward.spec.n_steps
    t = np.arange(n_steps + 1) * dt
    fig = Figure(figsize=(16, 9), layout="constrained")
    axes = fig.subplots(2, 3)
    picked = _neurons(net.brian2)

    def curves(get):
        return [
            (f"{name}[{i}]", get(net.engine, name)[:, 0, i], get(net.brian2, name)[:, 0, i])
            for name, i in picked
        ]

    _overlay(axes[0, 0], t, curves(lambda r, n: r.forward.layers[n].v), "v (mV)", "membrane v")
    _overlay(
        axes[0, 1],
        t,
        curves(lambda r, n: r.adjoint.layers[n].lambda_v),
        "lambda_v (1/mV)",
        "adjoint lambda_v = dL/dV",
    )
    _overlay(
        axes[0, 2],
        t,
        curves(lambda r, n: r.adjoint.layers[n].lambda_i_E),
        "lambda_i (1/nA)",
        "adjoint lambda_i = dL/dI_E",
    )
    handles = [
        Line2D([], [], color="0.4", lw=3.0, alpha=0.45, label="engine"),
        Line2D([], [], color="0.4", lw=1.0, ls="--", label="Brian2"),
    ]
    first = axes[0, 0].legend(handles=handles, loc="upper left", fontsize=8)
    axes[0, 0].add_artist(first)
    axes[0, 0].legend(loc="lower right", fontsize=8)
    _raster(axes[1, 0], net)
    _gradients(axes[1, 1], report)
    _errors(axes[1, 2], report)
    verdict = "PASSED" if report.passed else "FAILED"
    fig.suptitle(
        f"pynn_eventprop engine vs Brian2 reference: {verdict} ({len(report.networks)} "
        f"network(s)); traces: {net.name}, sizes {net.info['sizes']}, dt {dt:g} ms"
    )
    path = Path(path)
    fig.savefig(path, dpi=90)
    return path
