"""Forward-simulation throughput of the numpy/numba reference engine (samples per second).

Configurations (issue 3):

* ``5-120-3``: 5 inputs, 120 hidden, 3 output IF_curr_exp neurons, dt 1 ms, 27 steps (the
  Yin-Yang network of the SpiNNaker2 twin), batch 22 and batch 1000;
* ``784-350-10``: MNIST-sized, dt 1 ms, 100 steps, batch 100.

Neurons use Wunderlich & Pehle's parameters in PyNN form (``tau_m = cm = 20``, ``tau_syn = 5``,
``v_rest = v_reset = 0``, ``v_thresh = 1``, ``tau_refrac = 0``, docs/equations.md section 1).
Every input neuron spikes once per sample at a random time and phase (a latency code); for
784-350-10 only a random 20 % of the inputs spike, like the bright pixels of a digit.  Weights
are Gaussian, scaled so that hidden and output layers are active.  A sample is one input
pattern; one batch runs as one engine call (``Simulation.run`` after ``reset``, recording the
output spikes), timed after a warm-up run that compiles the numba kernels.

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
from pynn_eventprop.engine.raster import Raster
from pynn_eventprop.engine.simulation import Simulation
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation, CompiledProjection

NEURON = dict(
    v_rest=0.0, cm=20.0, tau_m=20.0, tau_refrac=0.0, tau_syn_E=5.0, tau_syn_I=5.0,
    i_offset=0.0, v_reset=0.0, v_thresh=1.0,
)  # fmt: skip

CONFIGS = [
    dict(name="5-120-3", sizes=(5, 120, 3), dt=1.0, steps=27, batch=22, active=1.0),
    dict(name="5-120-3", sizes=(5, 120, 3), dt=1.0, steps=27, batch=1000, active=1.0),
    dict(name="784-350-10", sizes=(784, 350, 10), dt=1.0, steps=100, batch=100, active=0.2),
]


def build_network(sizes, rng) -> CompiledNetwork:
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
                delays=np.ones((n_pre, size), dtype=np.int64),
                mask=np.ones((n_pre, size), dtype=bool),
                trainable=True,
            )
        )
    return network


def input_raster(n_steps, batch, size, active, rng) -> Raster:
    """One spike per active input at a random step in the first 2/3 of the run and phase."""
    raster = Raster.empty(n_steps, batch, size)
    b, i = np.nonzero(rng.random((batch, size)) < active)
    steps = rng.integers(0, max(1, (2 * n_steps) // 3), b.size)
    raster.spikes[steps, b, i] = True
    raster.phase[steps, b, i] = rng.random(b.size) * 0.999
    return raster


def measure(config, repeats, dtype, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    network = build_network(config["sizes"], rng)
    disc = LIFDiscretisation(config["dt"])
    batch, steps = config["batch"], config["steps"]
    sim = Simulation(network, disc, batch_size=batch, dtype=dtype, reuse_buffers=True)
    raster = input_raster(steps, batch, config["sizes"][0], config["active"], rng)
    output = len(network.populations) - 1
    record = {i: ("spikes",) for i in range(1, len(network.populations))}

    def one_batch():
        sim.reset()
        return sim.run(steps, sources={0: raster}, record=record)

    out = one_batch()  # warm-up: compiles the numba kernels
    spikes = [float(out[i]["spikes"].spikes.mean()) * steps for i in range(1, output + 1)]
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
