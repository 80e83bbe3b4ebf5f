"""Cross-validation of pynn_eventprop's reference engine against the Brian2 reference.

This module and :mod:`.network_bridge` are the bridge between the two packages, the only code
that imports both.  It takes a network as the PyNN layer compiles it (a
:class:`~pynn_eventprop.network.CompiledNetwork`, e.g. ``compile_network(state)`` of a script
written with ``import pynn_eventprop as sim``), input spike times and a loss, and runs

* the engine: ``ReferenceEngine(network, LIFDiscretisation(dt), batch).run(N,
  keep_for_backward=True)``, the loss on the output readouts and the engine's exact adjoint on
  its grid trajectories, in float64;
* the Brian2 reference: the network converted into a :class:`~brian2_reference.NetworkSpec`
  (:mod:`.network_bridge`), ``forward``, the loss (this package's own
  implementation), ``backward``;

and compares spike times, ``v``, the synaptic currents, ``lambda_v``, ``lambda_i``, the weight
gradients and the loss value (``validation_report`` states the tolerances).  Both sides'
recordings come back as Neo blocks; the report is a table, a JSON file and a PNG figure.

API
---
:func:`validate_pynn`     the network built in the current pynn_eventprop simulation.
:func:`validate_network`  a CompiledNetwork.
:func:`validate_random`   a suite of random networks (:mod:`brian2_reference.random_networks`).
:func:`main`              the command ``pynn-eventprop validate``.

Losses: pynn_eventprop's ``TTFSCrossEntropy`` (without ``silent_push``),
``MaxVoltageCrossEntropy`` and ``AverageVoltageCrossEntropy("uniform")`` (or their names
``"ttfs"``, ``"max_voltage"``, ``"mean_voltage"``) with integer labels, each evaluated by
pynn_eventprop for the engine and by ``brian2_reference.losses`` for Brian2; or a
:class:`LinearLoss` ``L = sum c_phi phi s + sum c_V V`` with given coefficients (what the
random suite uses: every spike and every step of the output carries error).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from brian2_reference.adjoint import AdjointResult, AdjointTrace, backward
from brian2_reference.description import NetworkSpec, SpikeInput
from brian2_reference.forward import ForwardResult, LayerTrace, forward
from brian2_reference.losses import LOSSES, LossSpec, loss_gradients
from brian2_reference.random_networks import RandomNetwork, random_network
from brian2_reference.run import ReferenceRun

from ..discretisation import LIFDiscretisation
from ..engine import adjoint as engine_adjoint
from ..engine.interface import SpikeTrains
from ..engine.readouts import pull_back
from ..engine.simulation import ReferenceEngine
from ..training.losses import (
    AverageVoltageCrossEntropy,
    Loss,
    MaxVoltageCrossEntropy,
    TTFSCrossEntropy,
)
from .network_bridge import Correspondence, compiled_network, network_spec, resolve_input
from .report import NetworkReport, ValidationReport, compare

#: Loss names accepted besides loss objects; ``"linear"`` only for random networks.
LOSS_NAMES = ("linear", *LOSSES)


# --- losses ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinearLoss:
    """``L = sum_{n,b,i} c_phi[n,b,i] phi[n,b,i] s[n,b,i] + c_V[n,b,i] V[n,b,i]``.

    ``phase`` and ``v`` map population indices of the CompiledNetwork to coefficient arrays of
    shape ``(N + 1, batch, size)`` on the grid steps ``0 .. N``; they are the loss gradients
    ``dL/dphi`` and ``dL/dV`` (``V = v - v_rest``, mV).  Any layer may carry terms.
    """

    phase: dict
    v: dict

    def value(self, run_forward: ForwardResult, names: dict[int, str]) -> float:
        """``L`` on a forward recording whose layers are named by ``names[index]``."""
        total = 0.0
        for i, c in self.phase.items():
            trace = run_forward.layers[names[i]]
            total += float(np.sum(c * trace.phase * trace.spikes))
        for i, c in self.v.items():
            total += float(np.sum(c * run_forward.layers[names[i]].V))
        return total


def _loss_object(loss):
    """A pynn_eventprop Loss for a name, or the given Loss / LinearLoss."""
    named = {
        "ttfs": TTFSCrossEntropy,
        "max_voltage": MaxVoltageCrossEntropy,
        "mean_voltage": AverageVoltageCrossEntropy,
    }
    if isinstance(loss, str) and loss in named:
        return named[loss]()
    if isinstance(loss, Loss | LinearLoss):
        return loss
    raise ValueError(
        f"loss must be a pynn_eventprop Loss, a LinearLoss or one of {sorted(named)}, got {loss!r}"
    )


def _loss_spec(loss, labels) -> LossSpec:
    """The brian2_reference twin of a pynn_eventprop Loss."""
    if isinstance(loss, TTFSCrossEntropy):
        if loss.silent_push:
            raise ValueError(
                "brian2_reference's ttfs loss has no silent-label term; validate with "
                f"TTFSCrossEntropy(silent_push=0), got silent_push={loss.silent_push!r}"
            )
        return LossSpec("ttfs", labels, loss.xi, loss.alpha, loss.beta)
    if isinstance(loss, MaxVoltageCrossEntropy):
        return LossSpec("max_voltage", labels)
    if isinstance(loss, AverageVoltageCrossEntropy):
        if loss.weighting != "uniform":
            raise ValueError(
                "brian2_reference's mean_voltage loss weights steps uniformly; got "
                f"weighting={loss.weighting!r}"
            )
        return LossSpec("mean_voltage", labels)
    raise ValueError(f"no brian2_reference counterpart for loss {loss!r}")


# --- one validation problem -----------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """A network, its inputs and a loss: what both sides run.

    ``times[b][j]`` are the spike times (ms) of input neuron ``j`` in sample ``b``; each side
    puts them on its grid itself.  ``labels`` (int, ``(batch,)``) are needed by the
    classification losses.  ``output_index`` is the population the loss reads.
    """

    network: object
    dt: float
    n_steps: int
    times: list
    loss: object
    labels: np.ndarray | None
    spec: NetworkSpec
    correspondence: Correspondence
    output_index: int

    @property
    def batch_size(self) -> int:
        return len(self.times)

    @property
    def names(self) -> dict[int, str]:
        """Population index -> spec name, for the layers."""
        c = self.correspondence
        return {i: layer.name for i, layer in zip(c.layer_indices, self.spec.layers, strict=True)}


def make_problem(
    network, dt, n_steps, times, loss, labels=None, input_index=None, output_index=None
) -> Problem:
    """Check and assemble a :class:`Problem` (arguments as in :func:`validate_network`)."""
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0 (ms), got {dt!r}")
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    spec, corr = network_spec(network, dt, int(n_steps), input_index, output_index)
    output_index = corr.layer_indices[-1]
    n_in = spec.n_inputs
    if len(times) < 1 or any(len(sample) != n_in for sample in times):
        raise ValueError(
            f"times must list, for each sample of the batch, the spike times of all {n_in} "
            f"input neurons; got {[len(sample) for sample in times]} neurons per sample"
        )
    loss = _loss_object(loss)
    if isinstance(loss, LinearLoss):
        for table in (loss.phase, loss.v):
            for i, c in table.items():
                if i not in corr.layer_indices:
                    raise ValueError(
                        f"LinearLoss coefficients given for population {i!r}, which is not a "
                        f"neuron population of the network (those are {corr.layer_indices})"
                    )
                shape = (int(n_steps) + 1, len(times), network.populations[i].size)
                if np.shape(c) != shape:
                    raise ValueError(
                        f"LinearLoss coefficients of population {i} must have shape {shape} "
                        f"(steps 0..N, batch, neurons), got {np.shape(c)}"
                    )
    else:
        if labels is None:
            raise ValueError(f"{type(loss).__name__} needs labels (one class per sample)")
        labels = np.asarray(labels)
        _loss_spec(loss, labels)  # raises if brian2_reference has no counterpart
    return Problem(network, float(dt), int(n_steps), times, loss, labels, spec, corr, output_index)


def run_brian2(problem: Problem) -> tuple[ReferenceRun, dict]:
    """Forward, loss and adjoint with brian2_reference; also CPU seconds per pass."""
    spec = problem.spec
    start = time.process_time()
    fwd = forward(spec, SpikeInput.from_times(problem.times, spec.dt))
    if isinstance(problem.loss, LinearLoss):
        names = problem.names
        value = problem.loss.value(fwd, names)
        d_phase = {names[i]: c for i, c in problem.loss.phase.items()}
        d_v = {names[i]: c for i, c in problem.loss.v.items()}
    else:
        value, d_phase, d_v = loss_gradients(_loss_spec(problem.loss, problem.labels), fwd)
    middle = time.process_time()
    adj = backward(fwd, d_phase, d_v)
    end = time.process_time()
    timings = {"brian2_forward": middle - start, "brian2_backward": end - middle}
    return ReferenceRun(fwd, adj, value), timings


def _with_step0(values: np.ndarray, first) -> np.ndarray:
    """Engine arrays (steps 1..N) extended by grid step 0."""
    head = np.broadcast_to(np.asarray(first, values.dtype), values.shape[1:])[None]
    return np.concatenate([head, values])


def run_engine(problem: Problem) -> tuple[ReferenceRun, dict]:
    """Forward, loss and exact adjoint with pynn_eventprop's numpy engine (float64).

    The engine's arrays (steps ``1 .. N``) are returned in brian2_reference's containers on
    the grid ``0 .. N``: step 0 holds the initial state, no spikes, and NaN adjoints (the
    engine does not compute ``lambda`` at step 0).  Gradients are split like the spec's
    projections (one per compiled projection and delay).
    """
    spec, corr, n = problem.spec, problem.correspondence, problem.n_steps
    disc = LIFDiscretisation(problem.dt)
    start = time.process_time()
    engine = ReferenceEngine(problem.network, disc, batch_size=problem.batch_size)
    record = {i: ("isyn_exc", "isyn_inh") for i in corr.layer_indices}
    result = engine.run(
        n,
        sources={corr.input_index: SpikeTrains.from_lists(problem.times)},
        record=record,
        keep_for_backward=True,
    )
    tape = result.tape  # the reference engine's grid trajectories: what is compared
    layers = {}
    for i, layer in zip(corr.layer_indices, spec.layers, strict=True):
        traj, rec = tape.trajectory[i], result.signals[i]
        v0 = traj.v_prev[0]
        layers[layer.name] = LayerTrace(
            spikes=_with_step0(traj.spikes.spikes, False),
            phase=_with_step0(traj.spikes.phase, 0.0),
            V=_with_step0(traj.v, v0),
            U=_with_step0(traj.u, v0),
            I_E=_with_step0(rec["isyn_exc"], 0.0),
            I_I=_with_step0(rec["isyn_inh"], 0.0),
            refractory=_with_step0(traj.clamped, False),
            v_rest=layer.param("v_rest"),
        )
    source = tape.rasters[corr.input_index]
    fwd = ForwardResult(spec, problem.batch_size, source.spikes, source.phase, layers)
    out_i = problem.output_index
    if isinstance(problem.loss, LinearLoss):
        value = problem.loss.value(fwd, problem.names)
        grads = {i: {"phase": c[1:]} for i, c in problem.loss.phase.items()}
        for i, c in problem.loss.v.items():
            grads.setdefault(i, {})["v"] = c[1:]
    else:
        readouts = engine.readouts(result, out_i, problem.loss.requires)
        loss = problem.loss.evaluate(readouts, problem.labels, n * problem.dt)
        value = loss.loss
        shape = tape.trajectory[out_i].u.shape
        index = tape.readout_index[out_i]
        d_phase, d_v = pull_back(loss.readout_grads, index, shape, problem.dt, np.float64)
        grads = {out_i: {"phase": d_phase, "v": d_v}}
    middle = time.process_time()
    # per-spike and per-step loss terms: the engine's own adjoint on its grid trajectories
    gradients, adjoints = engine_adjoint.backward(engine, tape.trajectory, tape.rasters, grads)
    end = time.process_time()
    adj_layers = {
        layer.name: AdjointTrace(
            *(
                _with_step0(a, np.nan)
                for a in (
                    adjoints[i].lambda_v,
                    adjoints[i].lambda_u,
                    adjoints[i].lambda_i["E"],
                    adjoints[i].lambda_i["I"],
                )
            )
        )
        for i, layer in zip(corr.layer_indices, spec.layers, strict=True)
    }
    split = tuple(
        np.where(p.mask, gradients[k], 0.0)
        for (k, _), p in zip(corr.projections, spec.projections, strict=True)
    )
    timings = {"engine_forward": middle - start, "engine_backward": end - middle}
    return ReferenceRun(fwd, AdjointResult(adj_layers, split), value), timings


def _loss_name(loss) -> str:
    if isinstance(loss, LinearLoss):
        return "linear"
    spec = _loss_spec(loss, np.zeros(1, int))
    return spec.kind


def cross_validate(problem: Problem, name: str, extra_info=None) -> NetworkReport:
    """Run both sides on ``problem`` and compare them."""
    engine, t_engine = run_engine(problem)
    brian2, t_brian2 = run_brian2(problem)
    errors, mismatches, n_spikes = compare(engine, brian2)
    spec = problem.spec
    info = {
        "sizes": [spec.n_inputs] + [layer.size for layer in spec.layers],
        "dt": spec.dt,
        "n_steps": spec.n_steps,
        "batch": problem.batch_size,
        "n_projections": len(spec.projections),
        "loss": _loss_name(problem.loss),
        "heterogeneous_tau_syn": any(
            np.ptp(layer.param(f"tau_syn_{x}")) > 0 for layer in spec.layers for x in "EI"
        ),
    } | dict(extra_info or {})
    return NetworkReport(
        name,
        info,
        errors,
        mismatches,
        n_spikes,
        t_engine | t_brian2,
        engine,
        brian2,
        list(problem.correspondence.labels),
    )


def _meta(**kw) -> dict:
    versions = {}
    for package in ("pynn_eventprop", "brian2", "numpy", "PyNN"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"versions": versions, "dtype": "float64"} | kw


# --- public API -----------------------------------------------------------------------------
def validate_network(
    network,
    dt: float,
    n_steps: int,
    times,
    loss,
    labels=None,
    input_index=None,
    output_index=None,
    name: str = "network",
) -> ValidationReport:
    """Cross-validate a CompiledNetwork on one batch of inputs.

    Parameters
    ----------
    network : pynn_eventprop.network.CompiledNetwork
    dt : float
        Time step (ms).
    n_steps : int
        Number of simulated steps ``N`` (the window is ``N dt`` ms).
    times : sequence over samples of sequences over input neurons of spike-time arrays (ms)
    loss : pynn_eventprop Loss, loss name (``"ttfs"``, ``"max_voltage"``, ``"mean_voltage"``)
        or :class:`LinearLoss`
    labels : int array ``(batch,)``, for the classification losses
    input_index, output_index : int, optional
        See :func:`network_spec`.
    name : str
        Name of the network in the report.

    Returns
    -------
    ValidationReport
        ``report.passed``, ``report.table()``, ``report.save_json(path)``,
        ``report.save_figure(path)``; ``report.networks[0].engine_blocks()`` and
        ``.brian2_blocks()`` are the recordings as Neo blocks.
    """
    problem = make_problem(network, dt, n_steps, times, loss, labels, input_index, output_index)
    return ValidationReport([cross_validate(problem, name)], _meta(source="CompiledNetwork"))


def validate_pynn(
    duration: float,
    loss,
    labels=None,
    times=None,
    inputs=None,
    outputs=None,
    name: str = "PyNN network",
) -> ValidationReport:
    """Cross-validate the network of the current pynn_eventprop simulation.

    The network is ``compile_network(state)`` of everything created since ``setup()`` (weights
    and initial values as they are now; PyNN's default initial ``v`` is -65 mV, so call
    ``initialize(v=...)`` as for a simulation).  Both sides always run the float64 tick-based
    scheme (the grid engine), whatever ``setup(platform=...)`` says.

    Parameters
    ----------
    duration : float
        Simulated time (ms), rounded to whole steps of the simulation's ``dt``.
    loss, labels
        As in :func:`validate_network`.
    times : optional
        Input spike times per sample and input neuron (ms); default: the ``spike_times`` of the
        input SpikeSourceArray (a batch of one).
    inputs, outputs : Population, optional
        The input spike source and the output population (defaults as in
        :func:`network_spec`).
    """
    from ..compile import compile_network
    from ..simulator import state

    if not state.populations:
        raise ValueError(
            "no network to validate: build one with pynn_eventprop first (setup(), "
            "Population, Projection)"
        )
    if state.current_sources:
        raise ValueError(
            "brian2_reference supports i_offset but no current sources; the network has "
            f"{[type(s).__name__ for s in state.current_sources]}"
        )
    if not duration > 0:
        raise ValueError(f"duration must be > 0 ms, got {duration!r}")
    network, _ = compile_network(state)
    input_index = resolve_input(network, None if inputs is None else inputs._index)
    if times is None:
        source = state.populations[input_index]
        if type(source.celltype).__name__ != "SpikeSourceArray":
            raise ValueError(
                f"give times=...: the input population '{source.label}' is a "
                f"{type(source.celltype).__name__}, not a SpikeSourceArray"
            )
        times = [[np.asarray(s.value, float) for s in source.get("spike_times", simplify=False)]]
    n_steps = state.discretisation.steps(duration)
    output_index = None if outputs is None else outputs._index
    problem = make_problem(
        network, state.dt, n_steps, times, loss, labels, input_index, output_index
    )
    return ValidationReport([cross_validate(problem, name)], _meta(source="pynn_eventprop"))


def engine_layer_spikes(spec: NetworkSpec, inputs: SpikeInput) -> dict[str, bool]:
    """Which layers of ``spec`` spike on the engine (for ``random_network``: fast)."""
    engine = ReferenceEngine(compiled_network(spec), LIFDiscretisation(spec.dt), inputs.batch_size)
    result = engine.run(spec.n_steps, sources={0: _trains(inputs, spec)})
    return {layer.name: result.spikes[k + 1].times.size > 0 for k, layer in enumerate(spec.layers)}


def _trains(inputs: SpikeInput, spec: NetworkSpec) -> SpikeTrains:
    """brian2_reference's input raster as engine input (spike times ``(n - phase) dt``)."""
    spikes, phase = inputs.raster(spec.n_steps, spec.n_inputs)
    k, b, j = np.nonzero(spikes)
    times = (k - phase[k, b, j]) * spec.dt
    return SpikeTrains.from_arrays(b, j, times, inputs.batch_size, spec.n_inputs)


#: Families of random networks: ``"standard"`` (one delay per projection) and ``"mixed-delays"``
#: (every connection its own delay of 1-5 steps; the connections between two layers form one
#: compiled projection with several delays).
FAMILIES = ("standard", "mixed-delays")


def random_problem(case: RandomNetwork, loss="linear", merge_delays: bool = False) -> Problem:
    """The validation problem of a random network: its linear loss, or a named loss with the
    case's random labels; ``merge_delays`` compiles the connections between two layers into one
    projection whatever their delays."""
    spec = case.spec
    network = compiled_network(spec, merge_delays=merge_delays)
    index = {layer.name: k + 1 for k, layer in enumerate(spec.layers)}
    if loss == "linear":
        loss = LinearLoss(
            {index[name]: c for name, c in case.dL_dphase.items()},
            {index[name]: c for name, c in case.dL_dV.items()},
        )
    return make_problem(network, spec.dt, spec.n_steps, case.times, loss, case.labels)


def validate_random(
    n_networks: int = 20, seed: int = 0, loss="linear", progress=None, family="standard"
) -> ValidationReport:
    """Cross-validate ``n_networks`` random networks (seeds ``seed .. seed + n - 1``).

    ``loss`` is ``"linear"`` (each network's random linear loss, default) or a loss name /
    pynn_eventprop Loss used with random labels.  ``progress(k, report)`` is called after each
    network.  ``family`` is one of :data:`FAMILIES`.
    """
    if int(n_networks) != n_networks or n_networks < 1:
        raise ValueError(f"n_networks must be an integer >= 1, got {n_networks!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    mixed = family == "mixed-delays"
    reports = []
    for k in range(int(n_networks)):
        case = random_network(seed + k, layer_spikes=engine_layer_spikes, mixed_delays=mixed)
        problem = random_problem(case, loss, merge_delays=mixed)
        reports.append(cross_validate(problem, f"seed {case.seed}", {"seed": case.seed}))
        if progress is not None:
            progress(k, reports[-1])
    meta = _meta(source="random_networks", seed=seed, n_networks=int(n_networks), family=family)
    return ValidationReport(reports, meta)


# --- command line ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pynn-eventprop validate",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=(
            "Cross-validate pynn_eventprop's engine against the independent Brian2 reference on "
            "random networks: spike times, v, synaptic currents, adjoints lambda_v and "
            "lambda_i, weight gradients and loss, against stated tolerances (float64)."
        ),
    )
    parser.add_argument("--networks", type=int, default=20, help="number of random networks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first network")
    parser.add_argument("--loss", choices=LOSS_NAMES, default="linear", help="loss to use")
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        default="standard",
        help="random networks: one delay per projection, or every connection its own delay",
    )
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--png", metavar="PATH", help="write a figure overlaying the traces")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def main(argv=None) -> int:
    """``pynn-eventprop validate [--networks N] [--seed S] [--json PATH] [--png PATH]``.

    Prints the report table; returns 0 when every network passes and raises
    ``SystemExit(1)`` otherwise (after writing the requested files).
    """
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.networks < 1:
        parser.error(f"--networks must be >= 1, got {args.networks}")

    def progress(k, report):
        if not args.quiet:
            seconds = sum(report.timings.values())
            verdict = "pass" if report.passed else "FAIL"
            print(
                f"[{k + 1}/{args.networks}] {report.name}: {verdict} ({seconds:.1f} s CPU)",
                file=sys.stderr,
                flush=True,
            )

    start = time.perf_counter()
    report = validate_random(args.networks, args.seed, args.loss, progress, args.family)
    report.meta["wall_seconds"] = round(time.perf_counter() - start, 2)
    report.meta["command"] = "pynn-eventprop validate " + " ".join(
        sys.argv[1:] if argv is None else list(argv)
    )
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
