"""Forward-simulation throughput of the reference engine (exact, event-driven; samples per second).

Configurations:

* ``5-120-3``: 5 inputs, 120 hidden, 3 output IF_curr_exp neurons, dt 1 ms, 27 steps (the
  Yin-Yang network of the SpiNNaker2 twin), batch 22 and batch 1000;
* ``784-350-10``: MNIST-sized, dt 1 ms, 100 steps, batch 100.

Neurons use Wunderlich & Pehle's parameters in PyNN form (``tau_m = cm = 20``, ``tau_syn = 5``,
``v_rest = v_reset = 0``, ``v_thresh = 1``, ``tau_refrac = 0``, docs/equations.md section 1).
Every input neuron spikes once per sample at a random time and phase (a latency code); for
784-350-10 only a random 20 % of the inputs spike, like the bright pixels of a digit.  Weights
are Gaussian, scaled so that hidden and output layers are active.  A sample is one input
pattern; one batch runs as one engine call (``Engine.run`` after ``reset``; the spike trains
are read only after timing), timed after a warm-up run that compiles the numba kernels.

Usage: ``python benchmarks/forward.py [--json PATH] [--repeats N] [--dtype float32]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine import SpikeTrains, make_engine
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation, CompiledProjection
from pynn_eventprop.neurons import WP_NEURON as NEURON

CONFIGS = [
    dict(name="5-120-3", sizes=(5, 120, 3), dt=1.0, steps=27, batch=22, active=1.0),
    dict(name="5-120-3", sizes=(5, 120, 3), dt=1.0, steps=27, batch=1000, active=1.0),
    dict(name="784-350-10", sizes=(784, 350, 10), dt=1.0, steps=100, batch=100, active=0.2),
]


def build_network(sizes, rng, dt) -> CompiledNetwork:
    """Dense feed-forward network; weights N(mu, sigma) with sigma ~ 1/sqrt(fan-in) (nA)."""
    network = CompiledNetwork()
    network.populations.append(CompiledPopulation("input", sizes[0], "spike_source"))
    for k, size in enumerate(sizes[1:], start=1):
        params = {name: np.full(size, value) for name, value in NEURON.items()}
        initial = {name: np.zeros(size) for name in ("v", "isyn_exc", "isyn_inh")}
        network.populations.append(
            CompiledPopulation(f"layer{k}", size, "IF_curr_exp", params=params, initial=initial)
        )
        n_pre = sizes[k - 1]
        weights = rng.normal(0.8, 1.0, (n_pre, size)) * (4.0 / np.sqrt(n_pre))
        network.projections.append(
            CompiledProjection(
                label=f"w{k}",
                pre=k - 1,
                post=k,
                receptor="excitatory",
                weights=weights,
                delays=np.full((n_pre, size), dt),
                mask=np.ones((n_pre, size), dtype=bool),
                trainable=True,
            )
        )
    return network


def input_spikes(n_steps, batch, size, active, rng, dt) -> SpikeTrains:
    """One spike per active input at a random step in the first 2/3 of the run and phase."""
    b, i = np.nonzero(rng.random((batch, size)) < active)
    steps = rng.integers(0, max(1, (2 * n_steps) // 3), b.size)
    times = (steps - rng.random(b.size) * 0.999).clip(0.0) * dt
    return SpikeTrains.from_arrays(b, i, times, batch, size)


def measure(config, repeats, dtype, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    network = build_network(config["sizes"], rng, config["dt"])
    disc = LIFDiscretisation(config["dt"])
    batch, steps = config["batch"], config["steps"]
    engine = make_engine("reference", network, disc, batch, dtype)
    spikes_in = input_spikes(steps, batch, config["sizes"][0], config["active"], rng, disc.dt)
    output = len(network.populations) - 1

    def one_batch():
        engine.reset()
        return engine.run(steps, sources={0: spikes_in})

    out = one_batch()  # warm-up: compiles the numba kernels
    sizes = config["sizes"]
    spikes = [out.spikes[i].times.size / (batch * sizes[i]) for i in range(1, output + 1)]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        one_batch()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    return {
        "network": config["name"],
        "dt_ms": config["dt"],
        "steps": steps,
        "batch": batch,
        "dtype": np.dtype(dtype).name,
        "seconds_per_batch": seconds,
        "samples_per_s": batch / seconds,
        "spikes_per_neuron_and_sample": spikes,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--repeats", type=int, default=20, help="timed batches per config")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args(argv)
    results = [measure(c, args.repeats, np.dtype(args.dtype)) for c in CONFIGS]
    machine = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    print(f"forward throughput ({machine['cpu_count']} cores, {args.dtype}, median of "
          f"{args.repeats} batches)")  # fmt: skip
    for r in results:
        print(
            f"  {r['network']:>10}  dt {r['dt_ms']} ms  {r['steps']:>3} steps  batch "
            f"{r['batch']:>4}: {r['samples_per_s']:>10.0f} samples/s "
            f"({1e3 * r['seconds_per_batch']:.2f} ms per batch; spikes per neuron and sample "
            f"{', '.join(f'{x:.2f}' for x in r['spikes_per_neuron_and_sample'])})"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
