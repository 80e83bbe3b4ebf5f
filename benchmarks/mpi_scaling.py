"""Training throughput on 1 and 2 MPI ranks (data parallelism), and the weights both end with.

The configuration is the MNIST benchmark's: 784-350-10 (``examples/mnist.py``'s network and
loss, built by ``pynn_eventprop/tasks/images.py``), dt 1 ms, 30 steps (20 ms input window and
10 ms readout), global batch 32 (``--batch-size``), MNIST-5k training digits.

For each rank count the script starts one job (``python`` for 1 rank, ``mpiexec -n 2`` for 2;
``--rounds`` rounds, alternating the two, so that both see the same machine load).  A job
compiles the kernels on two batches, then times ``--repeats`` epochs of ``--samples`` digits
(the Trainer's own timing of each epoch on rank 0: forward, loss, backward, gradient
reduction and Adam update of every batch); rank 0 saves the final weights.  All jobs train
the same batches from the same seed, so the final weights of 1 and 2 ranks must agree up to
the rounding of the split gradient sum (the largest difference is printed).

The ceiling: with ``--ceiling`` each round also starts two independent 1-rank jobs at once
(the same work each, no communication).  Their summed throughput over one job alone is the
most two processes can get from this machine for this workload (shared caches, memory
bandwidth, the hypervisor); the 2-rank speed-up is also printed as a fraction of it.

Each rank runs the engine with ``NUMBA_NUM_THREADS=--threads`` (default 1; BLAS threads as the
package sets them: the ranks of one machine share its cores), so that 2 ranks
use 2 cores and 1 rank 1 core.

With ``--phases`` rank 0 of the first job of each rank count also reports the milliseconds per
global batch spent forward on its samples, gathering loss and predictions from the ranks,
backward, in the gradient exchange and in the optimiser step with its checks (the rest of a
batch: batching the data, the loss's Python, the epoch loop).

    python benchmarks/mpi_scaling.py [--json PATH] [--samples 1024] [--repeats 3] [--rounds 2]
                                     [--batch-size 32] [--ceiling] [--phases]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from timing import timed_calls

SETTINGS = dict(hidden=350, batch_size=32, dt=1.0, t_late=20.0, readout=10.0)
"""The MNIST benchmark configuration (30 steps of 1 ms, global batch 32)."""


def phase_targets() -> dict:
    """``--phases``: label -> (owner, attribute) of the calls timed on rank 0."""
    from pynn_eventprop.engine.exact.simulation import ExactSimulation
    from pynn_eventprop.training.distributed import Communicator
    from pynn_eventprop.training.step import TrainingStep

    return {
        "forward (the rank's samples)": (TrainingStep, "forward"),
        "loss and predictions gathered": (Communicator, "allgather"),
        "backward": (ExactSimulation, "backward"),
        "gradient exchange": (Communicator, "weighted_mean"),
        "optimiser step and checks": (TrainingStep, "update"),
    }


def worker(samples: int, repeats: int, out: str, batch_size: int, phases: bool) -> None:
    """One job (every rank runs it): warm up, time ``repeats`` epochs, rank 0 writes ``out``
    (with ``phases`` also the milliseconds per global batch spent in :func:`phase_targets`)."""
    import pynn_eventprop as sim
    from pynn_eventprop.datasets import mnist_5k_dataset
    from pynn_eventprop.tasks.images import Settings, build_network, make_trainer

    settings = dataclasses.replace(Settings(), **{**SETTINGS, "batch_size": batch_size})
    train = mnist_5k_dataset("train", settings.code)
    data = train.subset(np.random.default_rng(0).permutation(len(train))[:samples])
    net = build_network(settings, 784, 10, data.n_batches(settings.batch_size))
    trainer = make_trainer(settings, net)
    trainer.fit(data.subset(np.arange(2 * settings.batch_size)), 1)  # numba compilation
    with timed_calls(phase_targets() if phases else {}) as spent:
        rates = [samples / trainer.fit(data, 1).records[-1]["seconds"] for _ in range(repeats)]
    if sim.rank() == 0:
        weights = {p.label: p.get("weight", format="array") for p in net.projections}
        batches = repeats * data.n_batches(settings.batch_size)
        total = sum(samples / r for r in rates)
        labels = [*spent, "batch"]
        ms = [1e3 * spent[label] / batches for label in spent] + [1e3 * total / batches]
        np.savez(out, rates=np.array(rates), ranks=sim.num_processes(), **weights,
                 phase_labels=np.array(labels), phase_ms=np.array(ms))  # fmt: skip


def mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel's), else one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("no mpiexec: pip install 'pynn_eventprop[mpi]'")
    return found


def start_job(ranks: int, args, out: Path) -> subprocess.Popen:
    """Start one job on ``ranks`` ranks, writing its rates and final weights to ``out``."""
    command = [sys.executable, __file__, "--worker", str(out)]
    command += ["--samples", str(args.samples), "--repeats", str(args.repeats)]
    command += ["--batch-size", str(args.batch_size)] + (["--phases"] if args.phases else [])
    if ranks > 1:
        command = [mpiexec(), "-n", str(ranks), *command]
    env = {**os.environ, "NUMBA_NUM_THREADS": str(args.threads)}
    return subprocess.Popen(command, env=env)


def finish(job: subprocess.Popen, out: Path) -> dict:
    """Wait for ``job``; what it saved in ``out``."""
    if job.wait() != 0:
        raise SystemExit(f"job {job.args} failed with exit status {job.returncode}")
    with np.load(out) as saved:
        return {name: saved[name] for name in saved.files}


def run_job(ranks: int, args, out: Path) -> dict:
    """Run one job on ``ranks`` ranks; its rates and final weights."""
    return finish(start_job(ranks, args, out), out)


def run_pair(args, tmp: Path, round_: int) -> float:
    """Two independent 1-rank jobs at once; the sum of their median rates."""
    outs = [tmp / f"pair{i}_{round_}.npz" for i in (0, 1)]
    jobs = [start_job(1, args, out) for out in outs]
    saved = [finish(job, out) for job, out in zip(jobs, outs, strict=True)]
    return sum(statistics.median(s["rates"]) for s in saved)


def summary(rates: list) -> dict:
    return {
        "samples_per_s": rates,
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    ap.add_argument("--samples", type=int, default=1024, help="training digits per epoch")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per job")
    ap.add_argument("--rounds", type=int, default=2, help="jobs per rank count (alternating)")
    ap.add_argument("--threads", type=int, default=1, help="NUMBA_NUM_THREADS of each rank")
    ap.add_argument("--batch-size", type=int, default=SETTINGS["batch_size"], help="global batch")
    ap.add_argument(
        "--ceiling", action="store_true", help="also time two independent 1-rank jobs at once"
    )
    ap.add_argument(
        "--phases", action="store_true", help="also time forward, exchange, update per batch"
    )
    ap.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.samples, args.repeats, args.worker, args.batch_size, args.phases)

    rates = {1: [], 2: []}
    pairs = []
    weights = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for ranks in (1, 2):
                saved = run_job(ranks, args, Path(tmp) / f"r{ranks}_{round_}.npz")
                assert int(saved["ranks"]) == ranks, saved["ranks"]
                rates[ranks] += [float(x) for x in saved["rates"]]
                weights.setdefault(ranks, saved)
            if args.ceiling:
                pairs.append(run_pair(args, Path(tmp), round_))
    labels = [k for k in weights[1] if k not in ("rates", "ranks", "phase_labels", "phase_ms")]
    differences = {k: float(np.max(np.abs(weights[1][k] - weights[2][k]))) for k in labels}
    bitwise = all(np.array_equal(weights[1][k], weights[2][k]) for k in labels)
    figures = {
        "configuration": {
            **SETTINGS,
            "batch_size": args.batch_size,
            "steps": 30,
            "network": "784-350-10",
        },
        "samples_per_epoch": args.samples,
        "epochs_per_job": args.repeats,
        "threads_per_rank": args.threads,
        "cores": os.cpu_count(),
        "ranks": {str(r): summary(v) for r, v in rates.items()},
        "speedup_2_over_1": statistics.median(rates[2]) / statistics.median(rates[1]),
        "final_weights_max_abs_difference_nA": differences,
        "final_weights_bitwise_equal": bitwise,
    }
    if pairs:
        ceiling = statistics.median(pairs) / statistics.median(rates[1])
        figures["two_independent_jobs"] = {"summed_samples_per_s": pairs, "over_1_rank": ceiling}
    print(
        f"784-350-10, 30 steps, global batch {args.batch_size}, {args.samples} MNIST-5k digits "
        "per epoch"
    )
    for ranks, s in figures["ranks"].items():
        print(
            f"  {ranks} rank(s): {s['median']:7.0f} training samples/s (median of "
            f"{len(s['samples_per_s'])} epochs; range {s['min']:.0f}-{s['max']:.0f})"
        )
    print(f"  2 ranks / 1 rank: {figures['speedup_2_over_1']:.2f}x")
    if pairs:
        ceiling = figures["two_independent_jobs"]["over_1_rank"]
        print(
            f"  ceiling, two independent 1-rank jobs at once: {statistics.median(pairs):.0f} "
            f"samples/s summed, {ceiling:.2f}x one job; 2 ranks reach "
            f"{figures['speedup_2_over_1'] / ceiling:.0%} of it"
        )
    print(
        f"  final weights, 2 ranks vs 1: bitwise equal {bitwise}; largest difference "
        + ", ".join(f"{k} {v:.2g} nA" for k, v in differences.items())
    )
    if args.phases:  # the first job of each rank count
        figures["ms_per_batch_rank_0"] = {}
        for ranks in (1, 2):
            phases = dict(zip(weights[ranks]["phase_labels"].tolist(),
                              weights[ranks]["phase_ms"].tolist(), strict=True))  # fmt: skip
            figures["ms_per_batch_rank_0"][str(ranks)] = phases
            print(f"  {ranks} rank(s), rank 0, ms per global batch: "
                  + "; ".join(f"{label} {ms:.2f}" for label, ms in phases.items()))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
        print(f"figures written to {args.json}")
    return figures


if __name__ == "__main__":
    main()
