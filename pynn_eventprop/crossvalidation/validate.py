"""``pynn-eventprop validate``: the convergence study of Brian2 against the exact engine.

For every network family (:mod:`.families`) and every loss, Brian2 (``brian2_reference``) runs
at each time step of the study and the exact reference engine once; :mod:`.convergence` turns
the differences into errors, observed orders and checks, :mod:`.report` into a table and JSON,
:mod:`.figure` into a PNG.  :func:`validate` is the API, :func:`main` the command.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import metadata
from pathlib import Path

from brian2_reference import LOSSES

from .convergence import CHECKED, DTS, brian2_runs, engine_runs, study_case
from .families import FAMILIES, draw_case
from .report import ConvergenceReport


def _versions() -> dict:
    versions = {}
    for package in ("pynn_eventprop", "brian2", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _describe(case) -> dict:
    from .network_bridge import engine_spikes

    spikes = engine_spikes(case.spec, case.inputs, 0.1)
    return {
        "family": case.family,
        "seed": case.seed,
        "rejected_draws": case.rejected,
        "sizes": [case.spec.n_inputs] + [layer.size for layer in case.spec.layers],
        "projections": len(case.spec.projections),
        "batch": case.inputs.batch_size,
        "duration_ms": case.spec.duration,
        "spikes": {n: sum(len(t) for s in per for t in s) for n, per in spikes.items()},
        "max_spikes_per_neuron": {
            n: max(len(t) for s in per for t in s) for n, per in spikes.items()
        },
    }


def validate(
    families=FAMILIES, seed: int = 0, dts=DTS, losses=LOSSES, progress=None
) -> ConvergenceReport:
    """Run the convergence study; returns a :class:`~.report.ConvergenceReport`.

    Parameters
    ----------
    families : names from :data:`~.families.FAMILIES`
    seed : int
        Which network of each family.
    dts : decreasing Brian2 steps (ms), each dividing 0.1 ms (the engine's sampling grid)
    losses : names from ``brian2_reference.LOSSES``
    progress : callable(str), optional
        Called after each Brian2 run.
    """
    dts = tuple(float(d) for d in dts)
    if not dts or any(d <= 0 or abs(0.1 / d - round(0.1 / d)) > 1e-6 for d in dts):
        raise ValueError(f"dts must be > 0 ms and divide 0.1 ms, got {dts}")
    if list(dts) != sorted(dts, reverse=True):
        raise ValueError(f"dts must be given from the coarsest to the finest, got {dts}")
    for name, given, allowed in (("family", families, FAMILIES), ("loss", losses, LOSSES)):
        unknown = [x for x in given if x not in allowed]
        if unknown or not given:
            raise ValueError(f"{name} must be among {allowed}, got {list(given)}")
    report = ConvergenceReport(meta={"seed": seed, "dts": list(dts), "versions": _versions()})
    for family in families:
        case = draw_case(family, seed)
        report.cases.append(_describe(case))
        runs = brian2_runs(case, dts, losses, progress)
        report.studies += study_case(case, dts, losses, runs, engine_runs(case, losses))
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pynn-eventprop validate",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Convergence study: Brian2 (brian2_reference, a second numerical method for the "
            "same LIF equations and adjoint) at several time steps against pynn_eventprop's "
            "exact engine, per network family and loss: errors of spike times, v, adjoints, "
            "loss, weight and delay gradients, observed orders (predicted: 1) and checks "
            "(spike times within 2 Brian2 steps, gradients within 1 percent at 0.001 ms)."
        ),
    )
    parser.add_argument(
        "--families", nargs="+", choices=FAMILIES, default=list(FAMILIES), help="network families"
    )
    parser.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES), help="losses")
    parser.add_argument("--dts", nargs="+", type=float, default=list(DTS), help="Brian2 steps (ms)")
    parser.add_argument("--seed", type=int, default=0, help="which network of each family")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--png", metavar="PATH", help="write the convergence figure")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv=None) -> int:
    """Print the report; exit status 0 if every check passes, else ``SystemExit(1)``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    for path in (args.json, args.png):
        if path is not None and not Path(path).expanduser().parent.is_dir():
            parser.error(f"the directory of {path!r} does not exist; create it first")
    start = time.perf_counter()

    def progress(text):
        if not args.quiet:
            print(f"[{time.perf_counter() - start:6.1f} s] {text}", file=sys.stderr, flush=True)

    try:
        report = validate(args.families, args.seed, args.dts, args.losses, progress)
    except ValueError as err:
        parser.error(str(err))
    report.meta["wall_seconds"] = round(time.perf_counter() - start, 1)
    report.meta["command"] = "pynn-eventprop validate " + " ".join(argv)
    report.meta["checked"] = list(CHECKED)
    print(report.table())
    if args.json:
        print(f"report written to {report.save_json(args.json)}")
    if args.png:
        print(f"figure written to {report.save_figure(args.png)}")
    if not report.passed:
        raise SystemExit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
