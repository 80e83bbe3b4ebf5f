"""Spike-pattern classification with several spikes per input neuron (a ``SpikeTrainDataset``).

Run with ``python -m pynn_eventprop.tasks.spike_patterns [--first-spikes] [--epochs 10]``.
Default task (:func:`~pynn_eventprop.datasets.spike_patterns.spike_pattern_dataset`): 5
classes, 40 inputs, one Poisson pattern of 20 Hz per class over 100 ms, 30 % of its spikes
deleted, 2 ms jitter, 10 Hz noise spikes; 300 training, 100 validation and 200 test samples
(one task seed, three sample seeds).  Network: 40 inputs -> 40 hidden -> 5 non-spiking
outputs, time step 1 ms, ``tau_m = 20``, ``tau_syn = 5`` ms, exponentially weighted average
voltage loss.  ``--first-spikes`` trains the same network on the first spike of every input
neuron only (a :class:`~pynn_eventprop.datasets.SpikeDataset`), to see what the later spikes
add (docs/temporal.md, section 3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..datasets.container import SpikeDataset
from ..datasets.spike_patterns import spike_pattern_dataset
from .temporal import Settings, add_arguments, run, settings_from, write_json

DEFAULTS = Settings(
    hidden=40, recurrent=False, learn_delays=False, epochs=10, lr=5e-3, dt=1.0, tau_m=20.0,
    tau_syn=5.0, tau_refrac=0.0, input_weight=(0.0, 0.2), input_delay=(1.0, 1.0),
    hidden_weight=0.2, hidden_delay=(1.0, 1.0), loss="average_exp", extra_time=10.0,
)  # fmt: skip


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser, DEFAULTS)
    add = parser.add_argument
    add("--classes", type=int, default=5, help="classes (default %(default)s)")
    add("--inputs", type=int, default=40, help="input neurons (default %(default)s)")
    add("--rate", type=float, default=20.0, help="pattern rate, Hz (default %(default)s)")
    add("--window", type=float, default=100.0, help="window, ms (default %(default)s)")
    add("--jitter", type=float, default=2.0, help="spike jitter, ms (default %(default)s)")
    add("--p-drop", type=float, default=0.3, help="deleted spikes (default %(default)s)")
    add("--noise-rate", type=float, default=10.0, help="noise spikes, Hz (default %(default)s)")
    add("--train-samples", type=int, default=300, help="default %(default)s")
    add("--validation-samples", type=int, default=100, help="default %(default)s")
    add("--test-samples", type=int, default=200, help="default %(default)s")
    add("--task-seed", type=int, default=0, help="seed of the patterns (default %(default)s)")
    add("--first-spikes", action="store_true", help="train on the first spike per input only")
    return parser.parse_args(argv)


def first_spikes(data) -> SpikeDataset:
    """The first spike of every input neuron of every sample of a ``SpikeTrainDataset``."""
    times = [[t[0] if t.size else np.nan for t in data.spike_times(i)] for i in range(len(data))]
    return SpikeDataset(np.array(times).reshape(len(data), data.n_inputs), data.labels,
                        data.n_classes, data.duration, data.class_names,
                        f"{data.name}, first spikes")  # fmt: skip


def datasets(args):
    """Train, validation and test splits of one task (same patterns, other samples)."""
    task = dict(n_classes=args.classes, n_inputs=args.inputs, rate=args.rate,
                duration=args.window, jitter=args.jitter, p_drop=args.p_drop,
                noise_rate=args.noise_rate, seed=args.task_seed)  # fmt: skip
    sizes = (args.train_samples, args.validation_samples, args.test_samples)
    splits = [spike_pattern_dataset(n, sample_seed=s + 1, **task) for s, n in enumerate(sizes)]
    return [first_spikes(d) for d in splits] if args.first_spikes else splits


def main(argv=None, prog=None) -> dict:
    args = parse_args(argv, prog)
    out = Path(args.out or "out/spike_patterns")
    out.mkdir(parents=True, exist_ok=True)
    train, validation, test = datasets(args)
    spikes = "first spikes" if args.first_spikes else "all spikes"
    print(f"Spike patterns: {args.classes} classes, {args.inputs} inputs, {args.window:g} ms, "
          f"{spikes}; train {len(train)}, validation {len(validation)}, test "
          f"{len(test)}")  # fmt: skip
    figures = run(settings_from(args, DEFAULTS), train, validation, test, out,
                  progress=not args.no_progress)  # fmt: skip
    figures["task"] = {k: getattr(args, k) for k in ("classes", "inputs", "rate", "window",
                                                     "jitter", "p_drop", "noise_rate",
                                                     "first_spikes")}  # fmt: skip
    write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
