"""Training throughput of the Randman example (forward + backward + update), in samples/s.

The network and task are those of ``examples/randman.py`` (``pynn_eventprop/tasks/randman.py``:
20 inputs -> 32 hidden -> 10 non-spiking outputs, dt 1 ms, 70 ms per sample, batch 32,
max-voltage loss).  Three configurations: ``full`` (recurrent hidden layer, learned delays),
``no_recurrence`` (learned delays) and ``fixed_delays`` (recurrent, weights only).  Each trains
``--repeats`` epochs of ``--samples`` training samples after one warm-up epoch (kernel
compilation); the figure is the median samples per second of those epochs, in wall-clock time
and in CPU time of this process (all its threads): on a shared machine the CPU-time rate is
the one to compare.

With ``--breakdown`` the timed epochs also report where a batch's time goes: the time spent in
the engine's compiled calls of a step-by-step run (integration and adjoint kernels, taking each
step's arrivals from the step queue per neuron, filing the arrivals of new spikes into it,
gathering feed-forward arrivals), per batch, and the rest (Python between the calls, loss,
optimiser).  Run it on one thread (``NUMBA_NUM_THREADS=1``) to see the serial costs.

    python benchmarks/train_randman.py [--json PATH] [--repeats N] [--samples N] [--t-max MS]
                                       [--configs NAME ...] [--breakdown]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict, replace

import numpy as np
from timing import timed_calls

import pynn_eventprop as sim
from pynn_eventprop.datasets.randman import randman_dataset
from pynn_eventprop.engine.exact import simulation
from pynn_eventprop.engine.exact.step_queue import StepQueue
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.tasks.randman import DEFAULTS
from pynn_eventprop.tasks.temporal import build_network, make_loss, write_json

CONFIGS = {
    "full": dict(recurrent=True, learn_delays=True),
    "no_recurrence": dict(recurrent=False, learn_delays=True),
    "fixed_delays": dict(recurrent=True, learn_delays=False),
}
TASK = dict(n_classes=10, n_units=20, dim=1, t_max=50.0, seed=0)
BREAKDOWN = {
    "forward kernels": (simulation, "forward_layer"),
    "adjoint kernels": (simulation, "backward_layer"),
    "taking a step's arrivals per neuron": (StepQueue, "take_by_neuron"),
    "filing new spikes' arrivals": (StepQueue, "push_spikes"),
    "gathering feed-forward arrivals": (simulation, "gather"),
}
"""``--breakdown``: label -> (owner, attribute) of the calls timed."""


def measure(name, overrides, samples, repeats, t_max=TASK["t_max"], breakdown=False):
    settings = replace(DEFAULTS, **overrides)
    task = {**TASK, "t_max": t_max}
    train = randman_dataset(samples, 0, **task)
    inputs, _, output, _ = build_network(settings, train.n_inputs, train.n_classes)
    trainer = Trainer(inputs, output, make_loss(settings.loss),
                      duration=train.duration + settings.extra_time,
                      batch_size=settings.batch_size, seed=0, progress=False)  # fmt: skip
    trainer.fit(train.subset(np.arange(settings.batch_size * 2)), epochs=1)  # warm-up
    rates, cpu_rates = [], []
    with timed_calls(BREAKDOWN if breakdown else {}) as spent:
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            trainer.fit(train, epochs=1)
            rates.append(len(train) / (time.perf_counter() - start))
            cpu_rates.append(len(train) / (time.process_time() - cpu))
    sim.end()
    result = {"config": name, "samples_per_s": statistics.median(rates), "per_epoch": rates,
              "samples_per_cpu_s": statistics.median(cpu_rates), "per_epoch_cpu": cpu_rates,
              "settings": asdict(settings), "task": task, "samples": samples}  # fmt: skip
    print(f"{name}: {result['samples_per_s']:.1f} samples/s, "
          f"{result['samples_per_cpu_s']:.1f} samples per CPU second (epochs: "
          f"{', '.join(f'{r:.1f}' for r in rates)})")  # fmt: skip
    if breakdown:
        batches = repeats * -(-samples // settings.batch_size)
        total = sum(samples / r for r in rates)
        per_batch = {label: 1e3 * seconds / batches for label, seconds in spent.items()}
        per_batch["rest"] = 1e3 * (total - sum(spent.values())) / batches
        result["ms_per_batch"] = per_batch
        print(f"  per batch of {settings.batch_size}: {1e3 * total / batches:.1f} ms, of which "
              + "; ".join(f"{label} {ms:.1f}" for label, ms in per_batch.items()))  # fmt: skip
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed (default 2)")
    parser.add_argument("--samples", type=int, default=256, help="per epoch (default 256)")
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--t-max", type=float, default=TASK["t_max"],
                        help="spike window, ms (default %(default)s)")  # fmt: skip
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the engine's compiled calls per batch")  # fmt: skip
    args = parser.parse_args(argv)
    results = [measure(n, CONFIGS[n], args.samples, args.repeats, args.t_max, args.breakdown)
               for n in args.configs]  # fmt: skip
    write_json(results, args.json)
    return results


if __name__ == "__main__":
    main()
