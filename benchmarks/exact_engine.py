"""Forward + backward throughput of the exact engine on the Yin-Yang twin configuration.

5-120-3 ``IF_curr_exp`` network in the EventProp frame (v_rest 0, threshold 1 mV, tau_m 20 ms,
tau_syn 5 ms, cm 20 nF, no refractoriness), delays 1 ms, dt 1 ms, 27 steps, batch 22; inputs
are the canonical training split latency-coded in 0..20 ms with a bias spike at 0 ms.  Each
batch runs the forward pass, a time-to-first-spike softmax cross-entropy on the output first
spike times (silent outputs count as the run length) and the exact backward pass; the figures
are training samples per second of wall-clock time and per CPU second of the process (the
latter is steadier on a shared machine), as the median and range over the epochs; no weight
update.  ``--json PATH`` also writes the per-epoch figures.

    python benchmarks/exact_engine.py [--epochs N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset  # noqa: E402
from pynn_eventprop.engine.exact import ExactSimulation  # noqa: E402
from pynn_eventprop.engine.interface import SpikeTrains  # noqa: E402
from pynn_eventprop.network import (  # noqa: E402
    CompiledNetwork,
    CompiledPopulation,
    CompiledProjection,
)

NEURON = dict(v_rest=0.0, v_reset=0.0, v_thresh=1.0, cm=20.0, tau_m=20.0, tau_syn_E=5.0,
              tau_syn_I=5.0, tau_refrac=0.0, i_offset=0.0)  # fmt: skip


def twin_network(rng, hidden=120):
    def lif(label, size):
        params = {k: np.full(size, v) for k, v in NEURON.items()}
        initial = {"v": np.zeros(size), "isyn_exc": np.zeros(size), "isyn_inh": np.zeros(size)}
        return CompiledPopulation(label, size, "IF_curr_exp", params, initial)

    pops = [CompiledPopulation("in", 5, "spike_source"), lif("hidden", hidden), lif("out", 3)]
    projs = []
    for pre, post, mean in ((0, 1, 1.5), (1, 2, 0.5)):
        shape = (pops[pre].size, pops[post].size)
        w = rng.normal(mean, mean, shape)
        projs.append(CompiledProjection(f"{pre}-{post}", pre, post, "excitatory", w,
                                        np.ones(shape), np.ones(shape, bool), True))  # fmt: skip
    return CompiledNetwork(pops, projs)


def ttfs_grad(first, labels, duration, xi=0.5):
    """Softmax cross-entropy of ``-t/xi`` and its gradient with respect to the spike times."""
    t = np.where(np.isfinite(first), first, duration)
    z = -t / xi
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(first.shape[1])[labels]
    loss = -np.log(p[np.arange(len(labels)), labels]).mean()
    grad = (p - onehot) * (-1.0 / xi) / len(labels)
    return loss, np.where(np.isfinite(first), grad, 0.0)


def epoch(sim, data, batch, steps, dt):
    n = len(data.labels) // batch * batch
    for start in range(0, n, batch):
        times = np.asarray(data.times[start : start + batch])
        sim.reset()
        result = sim.run(steps, sources={0: SpikeTrains.from_matrix(times)}, keep_for_backward=True)
        first = sim.readouts(result, 2, ["first_spike_time"])["first_spike_time"]
        _, grad = ttfs_grad(first, data.labels[start : start + batch], steps * dt)
        sim.backward(result, {2: {"first_spike_time": grad}})
    return n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (repeats)")
    parser.add_argument("--json", help="write the per-epoch figures to this file")
    args = parser.parse_args(argv)
    dt, steps, batch = 1.0, 27, 22
    data = yin_yang_dataset("train", LatencyCode(t_early=0.0, t_late=20.0, bias_time=0.0))
    sim = ExactSimulation(twin_network(np.random.default_rng(1)), dt, batch_size=batch,
                          readout_populations=[])  # fmt: skip
    epoch(sim, type(data)(data.times[:44], data.labels[:44], 3, data.duration), batch, steps, dt)
    rates, cpu_rates = [], []
    for _ in range(args.epochs):
        start, cpu = time.perf_counter(), time.process_time()
        n = epoch(sim, data, batch, steps, dt)
        rates.append(n / (time.perf_counter() - start))
        cpu_rates.append(n / (time.process_time() - cpu))
    print(f"exact engine, Yin-Yang twin 5-120-3, dt {dt} ms, {steps} steps, batch {batch}: "
          f"{_summary(rates)} samples/s forward+backward (median, range over {args.epochs} "
          f"epochs); per CPU second of this process {_summary(cpu_rates)}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"config": {"dt": dt, "steps": steps, "batch": batch, "hidden": 120},
                 "samples_per_s": rates, "samples_per_cpu_s": cpu_rates,
                 "median": statistics.median(rates),
                 "median_per_cpu_s": statistics.median(cpu_rates)},
                f, indent=1,
            )  # fmt: skip
    return rates


def _summary(values):
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


if __name__ == "__main__":
    main()
