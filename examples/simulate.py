"""A forward simulation with pynn_eventprop: an ordinary PyNN script.

Poisson inputs drive an excitatory/inhibitory pair of IF_curr_exp populations and a small
IF_cond_exp readout; one neuron also receives a DC pulse.  The script prints the spike counts per
population and writes everything recorded to a Neo file (``.pkl``, or ``.nix`` if nixio is
installed).  Change the import to ``import pyNN.brian2 as sim`` (or nest, neuron) and the same
script runs on another simulator.

Usage: ``python examples/simulate.py [--output results/simulate.pkl] [--duration 500]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import neo
from pyNN.recording import get_io

import pynn_eventprop as sim


def build_and_run(duration: float, seed: int):
    sim.setup(timestep=0.1, min_delay=1.0, rng_seed=seed)
    rng = sim.NumpyRNG(seed=seed)

    inputs = sim.Population(100, sim.SpikeSourcePoisson(rate=20.0), label="inputs")
    cell = sim.IF_curr_exp(tau_m=20.0, tau_syn_E=5.0, tau_syn_I=10.0, v_thresh=-50.0)
    excitatory = sim.Population(80, cell, label="excitatory")
    inhibitory = sim.Population(20, cell, label="inhibitory")
    readout = sim.Population(5, sim.IF_cond_exp(), label="readout")
    excitatory.initialize(v=sim.RandomDistribution("uniform", (-65.0, -55.0), rng=rng))

    def connect(pre, post, p, weight, receptor="excitatory"):
        sim.Projection(
            pre,
            post,
            sim.FixedProbabilityConnector(p, rng=rng),
            sim.StaticSynapse(weight=weight, delay=1.0),
            receptor_type=receptor,
        )

    connect(inputs, excitatory, 0.2, 0.8)
    connect(inputs, inhibitory, 0.2, 0.5)
    connect(excitatory, inhibitory, 0.2, 0.3)
    connect(inhibitory, excitatory, 0.3, -0.4, "inhibitory")
    connect(excitatory, readout, 0.5, 0.01)
    sim.DCSource(amplitude=2.0, start=100.0, stop=200.0).inject_into(excitatory[0:1])

    populations = (inputs, excitatory, inhibitory, readout)
    for population in populations:
        population.record("spikes")
    excitatory[0:5].record("v")
    readout.record(["v", "gsyn_exc"])
    sim.run(duration)
    return populations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("results/simulate.pkl"))
    parser.add_argument("--duration", type=float, default=500.0, help="ms")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    populations = build_and_run(args.duration, args.seed)
    block = neo.Block(name="simulate.py")
    print(f"spike counts after {args.duration:g} ms:")
    for population in populations:
        data = population.get_data()
        counts = [len(train) for train in data.segments[0].spiketrains]
        rate = 1000.0 * sum(counts) / (len(counts) * args.duration)
        print(f"  {population.label:>11}: {sum(counts):6d} spikes ({rate:.1f} Hz per neuron)")
        block.segments.extend(data.segments)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    get_io(str(args.output)).write_block(block)
    sim.end()
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
