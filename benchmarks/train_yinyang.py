"""Training throughput (forward + backward + update) and peak memory on Yin-Yang.

Configurations:

* ``twin``: the SpiNNaker2 off-chip twin's (pytorch-eventprop): 5-120-3, dt 1 ms, T 27 steps,
  batch 22, tau_m 20 ms, tau_s 5 ms, threshold 1 (``benchmarks/peers/twin.py`` runs the twin
  itself side by side);
* ``default``: the shipped example's: 5-300-3, dt 1 ms, T 40 steps, batch 32.

Each configuration trains ``--repeats`` epochs of the 5000-sample training split through the
PyNN API and the Trainer; the figures are samples per second of wall-clock time and per CPU
second of the process (steadier when other jobs share the machine), median and range over
the epochs.  Peak memory is the process's maximum resident set size.

    python benchmarks/train_yinyang.py [--json PATH] [--repeats N] [--config twin|default]
                                       [--threads N ...]

``--threads`` measures each configuration with that many threads (repeatable; default: every
core); the figures are then keyed ``<config>_threads_<N>``.  numba's threading layer is
printed with the figures (TBB where installed; ``NUMBA_THREADING_LAYER=omp python
benchmarks/train_yinyang.py ...`` measures OpenMP, whose idle workers wait passively unless
``GOMP_SPINCOUNT=30000`` lets them spin briefly).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import numpy as np
from pyNN.random import NumpyRNG, RandomDistribution

import pynn_eventprop as sim
from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
from pynn_eventprop.engine import threads
from pynn_eventprop.engine.threads import get_threads
from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.neurons import WP_NEURON as NEURON

CONFIGS = {
    "twin": dict(hidden=120, dt=1.0, steps=27, batch=22, t_late=20.0),
    "default": dict(hidden=300, dt=1.0, steps=40, batch=32, t_late=30.0),
}


def measure(name, hidden, dt, steps, batch, t_late, repeats, platform="reference", threads=None):
    sim.setup(timestep=dt, min_delay=dt, platform=platform, threads=threads)
    rng = NumpyRNG(seed=1)
    inputs = sim.Population(5, sim.SpikeSourceArray())
    layers = [sim.Population(n, sim.IF_curr_exp(**NEURON)) for n in (hidden, 3)]
    rule = EventPropRule(Adam(lr=1e-3))
    for pre, post, mean in ((inputs, layers[0], 1.5), (layers[0], layers[1], 0.5)):
        post.initialize(v=0.0)
        weight = RandomDistribution("normal", (mean, mean), rng=rng)
        sim.Projection(
            pre, post, sim.AllToAllConnector(), EventPropSynapse(weight=weight, rule=rule)
        )
    train = yin_yang_dataset("train", LatencyCode(t_early=0.0, t_late=t_late, bias_time=0.0))
    loss = TTFSCrossEntropy(xi=0.5, silent_push=1.0, theta=1.0)
    trainer = Trainer(
        inputs, layers[1], loss, duration=steps * dt, batch_size=batch, seed=0, progress=False
    )
    trainer.fit(train.subset(np.arange(batch * 4)), epochs=1)  # compile the kernels
    rates, cpu_rates = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        trainer.fit(train, epochs=1)
        rates.append(len(train) / (time.perf_counter() - start))
        cpu_rates.append(len(train) / (time.process_time() - cpu))
    sim.end()
    result = {
        "network": f"5-{hidden}-3",
        "dt_ms": dt,
        "steps": steps,
        "batch_size": batch,
        "samples_per_s_median": statistics.median(rates),
        "samples_per_s_min": min(rates),
        "samples_per_s_max": max(rates),
        "samples_per_cpu_s_median": statistics.median(cpu_rates),
        "samples_per_cpu_s_min": min(cpu_rates),
        "samples_per_cpu_s_max": max(cpu_rates),
        "repeats": repeats,
        "threads": get_threads(),
    }
    print(
        f"{name:8s} {result['network']:8s} dt {dt} ms, {steps} steps, batch {batch}, "
        f"{result['threads']} thread(s): "
        f"{result['samples_per_s_median']:8.0f} samples/s (median of {repeats}; "
        f"{min(rates):.0f}-{max(rates):.0f}); per CPU second "
        f"{result['samples_per_cpu_s_median']:.0f} ({min(cpu_rates):.0f}-{max(cpu_rates):.0f})"
    )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", choices=sorted(CONFIGS), action="append",
                        help="configuration to measure (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--threads", type=int, action="append",
                        help="thread counts (repeatable; default: all cores)")  # fmt: skip
    args = parser.parse_args(argv)
    layer = threads.threading_layer()
    waiting = {name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    print(
        f"cores: {os.cpu_count()}; threading layer: {layer}"
        + ("; idle OpenMP workers: " if layer == "omp" else "; ignored: ")
        + ", ".join(f"{k}={v}" for k, v in waiting.items() if v is not None)
        + f"; kernel calls below {threads.serial_threshold()} neuron-intervals run on one thread"
    )
    names = args.config or list(CONFIGS)
    figures = {
        f"{name}_threads_{n}" if n else name: measure(
            name, repeats=args.repeats, threads=n, **CONFIGS[name]
        )
        for name in names
        for n in (args.threads or [None])
    }
    figures["threading"] = {"layer": layer, **waiting, "serial_work": threads.SERIAL_WORK}
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {figures['peak_rss_mib']:.0f} MiB")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1)
    return figures


if __name__ == "__main__":
    main()
