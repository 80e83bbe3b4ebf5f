"""Training throughput and peak memory of a 784-350-10 EventProp network on the reference engine.

The network, neuron parameters, loss and input code are those of ``examples/mnist.py`` (built
by ``pynn_eventprop/tasks/images.py`` through the PyNN API); training runs through
:class:`~pynn_eventprop.eventprop.training.Trainer` on MNIST-5k training digits.

Per batch size and dtype: one warm-up epoch (numba compilation), then ``--repeats`` epochs of
``--samples`` samples, each timed by the trainer (forward, loss, backward and Adam update of
every batch); an inference pass; a profiled epoch that splits the time into the engine's
forward and backward passes (the exact engine, ``pynn_eventprop/engine/exact/``) and the rest
(the profiled time includes the network compilation every ``Trainer.fit`` call starts with;
the timed repeats do not); and an epoch under ``tracemalloc`` for the peak of
Python/numpy allocations.  The process's peak resident set size (``resource.getrusage``, which
includes numba's compiler and the data set) is reported last.

    python benchmarks/train_mnist.py [--json PATH] [--samples 1024] [--repeats 5]
        [--hidden 350] [--batch-size 16 32] [--dtype float64 float32]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import platform
import pstats
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from pynn_eventprop.datasets import mnist_5k_dataset
from pynn_eventprop.tasks.images import Settings, build_network, make_trainer

PROFILED = {
    "forward: engine.run (ExactSimulation.run)": ("exact/simulation.py", "run"),
    "readouts (ExactSimulation.readouts)": ("exact/simulation.py", "readouts"),
    "backward: engine.backward (ExactSimulation.backward)": ("exact/simulation.py", "backward"),
    "loss (evaluate)": ("losses.py", "evaluate"),
    "optimiser steps (Adam)": ("optimisers.py", "step"),
    "weights into the engine (set_weights)": ("exact/simulation.py", "set_weights"),
    "input spike trains (SpikeTrains.from_matrix)": ("interface.py", "from_matrix"),
    "network compilation at the start of fit (compile_network)": ("compile.py", "compile_network"),
}
"""Parts of a profiled epoch: (file name suffix, function name) summed by cumulative time."""


def profile_epoch(trainer, data) -> dict:
    """Seconds per part of one training epoch (cProfile cumulative times)."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(trainer.fit, data, 1)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats
    parts = {}
    for name, (filename, function) in PROFILED.items():
        parts[name] = sum(
            v[3] for (f, _, fn), v in stats.items() if f.endswith(filename) and fn == function
        )
    parts["everything else (Python glue)"] = total - sum(parts.values())
    return {"epoch_seconds_profiled": total, "parts_seconds": parts}


def measure(settings: Settings, data, dtype, repeats: int) -> dict:
    net = build_network(settings, 784, 10, data.n_batches(settings.batch_size))
    trainer = make_trainer(settings, net, dtype=dtype)
    trainer.fit(data.subset(np.arange(2 * settings.batch_size)), 1)  # warm-up: numba
    rates = []
    for _ in range(repeats):
        record = trainer.fit(data, 1).records[-1]
        rates.append(len(data) / record["seconds"])
    start = time.perf_counter()
    trainer.evaluate(data)
    inference = len(data) / (time.perf_counter() - start)
    profile = profile_epoch(trainer, data)
    tracemalloc.start()
    trainer.fit(data, 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "dtype": np.dtype(dtype).name,
        "train_samples_per_s": rates,
        "train_samples_per_s_median": float(np.median(rates)),
        "train_samples_per_s_best": float(np.max(rates)),
        "inference_samples_per_s": inference,
        "tracemalloc_peak_bytes_training_epoch": peak,
        **profile,
    }


def print_result(r: dict) -> None:
    rates = ", ".join(f"{x:.0f}" for x in r["train_samples_per_s"])
    print(
        f"\nbatch {r['batch_size']}, {r['dtype']}: training "
        f"{r['train_samples_per_s_median']:.0f} samples/s (median; repeats {rates})"
    )
    print(f"  inference (forward + loss only): {r['inference_samples_per_s']:.0f} samples/s")
    print(
        "  tracemalloc peak during a training epoch: "
        f"{r['tracemalloc_peak_bytes_training_epoch'] / 2**20:.1f} MiB"
    )
    print(f"  profiled epoch {r['epoch_seconds_profiled']:.2f} s:")
    for name, seconds in r["parts_seconds"].items():
        share = seconds / r["epoch_seconds_profiled"]
        print(f"    {name:60s} {seconds:7.3f} s  {share:6.1%}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    ap.add_argument("--samples", type=int, default=1024, help="training samples per epoch")
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per dtype")
    ap.add_argument("--hidden", type=int, default=350)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    args = ap.parse_args(argv)

    settings = dataclasses.replace(Settings(), hidden=args.hidden)
    train = mnist_5k_dataset("train", settings.code)
    data = train.subset(np.random.default_rng(0).permutation(len(train))[: args.samples])
    n_steps = round(settings.duration / settings.dt)
    spikes = np.count_nonzero(~np.isnan(data.times)) / len(data)
    print(
        f"784-{settings.hidden}-10, {n_steps} steps of {settings.dt} ms, loss {settings.loss}, "
        f"{len(data)} MNIST-5k samples per epoch, {spikes:.0f} input spikes per sample"
    )
    results = []
    for batch_size in args.batch_size:
        for dtype in args.dtype:
            r = measure(
                dataclasses.replace(settings, batch_size=batch_size),
                data,
                np.dtype(dtype).type,
                args.repeats,
            )
            r["batch_size"] = batch_size
            results.append(r)
            print_result(r)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(f"\npeak resident set size of the process: {peak_rss / 2**20:.0f} MiB")
    figures = {
        "network": f"784-{settings.hidden}-10",
        "settings": dataclasses.asdict(settings),
        "samples_per_epoch": len(data),
        "input_spikes_per_sample": spikes,
        "steps_per_sample": n_steps,
        "results": results,
        "peak_rss_bytes": peak_rss,
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))
        print(f"figures written to {args.json}")
    return figures


if __name__ == "__main__":
    main()
