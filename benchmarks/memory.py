"""Peak memory (resident set size) of one training step of 784-350-10 at batch 512, 100 steps.

The network and loss are ``examples/mnist.py``'s (``pynn_eventprop/tasks/images.py``) with
dt 1 ms and 100 steps: the 20 ms input window of the MNIST recipe followed by an 80 ms
readout.  Each measurement runs in a fresh subprocess, which

1. loads MNIST-5k, builds the network and compiles the engine's kernels on a 2-sample
   trainer of the same network;
2. reads its resident set size (``/proc/self/statm``) and its peak so far (``ru_maxrss`` of
   ``resource.getrusage``);
3. runs one forward + backward + update step of a batch of 512 digits
   (:meth:`Trainer.fit` on 512 samples with batch size 512);
4. reads ``ru_maxrss`` again.

Printed per run: the peak RSS of the process (``ru_maxrss`` after the step: what a machine
must provide), the peak before the step (imports, data, compilation) and the step's increment
(peak after the step minus the RSS just before it).  Median and range over ``--repeats``.

    python benchmarks/memory.py [--json PATH] [--repeats 3] [--batch 512] [--steps 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

MIB = 2**20


def rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(batch: int, steps: int, dtype: str) -> dict:
    """One measurement in this (fresh) process; returns the figures in bytes."""
    from pynn_eventprop.datasets import mnist_5k_dataset
    from pynn_eventprop.tasks.images import Settings, build_network, make_trainer

    settings = dataclasses.replace(
        Settings(), hidden=350, batch_size=batch, dt=1.0, t_late=20.0, readout=steps - 20.0
    )
    train = mnist_5k_dataset("train", settings.code)
    data = train.subset(np.arange(batch))
    net = build_network(settings, 784, 10, 1)
    small = make_trainer(settings, net, batch_size=2, dtype=np.dtype(dtype).type)
    small.fit(data.subset(np.arange(4)), 1)  # compiles the kernels
    trainer = make_trainer(settings, net, dtype=np.dtype(dtype).type)
    before, peak_before = rss_bytes(), peak_rss_bytes()
    trainer.fit(data, 1)
    peak = peak_rss_bytes()
    return {
        "peak_rss_bytes": peak,
        "peak_rss_before_step_bytes": peak_before,
        "rss_before_step_bytes": before,
        "step_increment_bytes": peak - before,
    }


def measure(args) -> dict:
    """Run ``worker`` in a fresh interpreter and parse its JSON line."""
    command = [sys.executable, __file__, "--worker", "--batch", str(args.batch)]
    command += ["--steps", str(args.steps), "--dtype", args.dtype]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes measured")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=100, help="steps of 1 ms (>= 21)")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps <= 20:
        raise SystemExit(f"--steps must be > 20 (the 20 ms input window), got {args.steps}")
    if args.worker:
        print(json.dumps(worker(args.batch, args.steps, args.dtype)))
        return None

    runs = [measure(args) for _ in range(args.repeats)]
    figures = {
        "network": "784-350-10",
        "batch_size": args.batch,
        "steps": args.steps,
        "dt_ms": 1.0,
        "dtype": args.dtype,
        "runs": runs,
    }
    print(
        f"784-350-10, batch {args.batch}, {args.steps} steps of 1 ms, {args.dtype}: one "
        f"training step, {args.repeats} fresh processes"
    )
    for key, text in (
        ("peak_rss_bytes", "peak RSS of the process"),
        ("peak_rss_before_step_bytes", "peak RSS before the step (imports, data, compilation)"),
        ("step_increment_bytes", "increment of the step (peak minus RSS before it)"),
    ):
        values = [r[key] / MIB for r in runs]
        figures[key.replace("_bytes", "_mib")] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
        print(
            f"  {text}: {statistics.median(values):.0f} MiB "
            f"(range {min(values):.0f}-{max(values):.0f})"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
        print(f"figures written to {args.json}")
    return figures


if __name__ == "__main__":
    main()
