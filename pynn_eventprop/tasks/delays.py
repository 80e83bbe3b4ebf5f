"""The delay task behind ``examples/delays.py``: learned delays against fixed ones.

The class is the interval between a cue and a probe spike (``pynn_eventprop.datasets.
delay_task``; default 2 classes, 20 and 32 ms, onset U(0, 10) ms, 0.5 ms jitter), much longer
than the neurons' time constants (``tau_m = 4``, ``tau_syn = 2`` ms).  The network (2 inputs ->
32 hidden -> one non-spiking output per class, max-voltage loss) starts with input delays
spread over 0.5-50 ms; with ``--learn-delays`` (default) they are trained with their exact
gradients, with ``--no-learn-delays`` only the weights are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..datasets.delay_task import delay_task_dataset
from .temporal import Settings, add_arguments, run, settings_from, write_json

DEFAULTS = Settings(
    hidden=32,
    epochs=20,
    lr=5e-3,
    delay_lr=0.5,
    tau_m=2.0,
    tau_syn=1.0,
    input_weight=(0.2, 1.4),
    input_delay=(0.5, 10.0),
)


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser, DEFAULTS)
    parser.add_argument("--classes", type=int, default=2, help="classes (default %(default)s)")
    parser.add_argument("--train-samples", type=int, default=512, help="default %(default)s")
    parser.add_argument("--test-samples", type=int, default=256, help="default %(default)s")
    parser.add_argument("--task-seed", type=int, default=0, help="default %(default)s")
    return parser.parse_args(argv)


def datasets(args):
    """Train, validation and test splits of one task (same seed, other sample seeds)."""
    task = dict(n_classes=args.classes, seed=args.task_seed)
    return (
        delay_task_dataset(args.train_samples, 0, **task),
        delay_task_dataset(args.test_samples, 1, **task),
        delay_task_dataset(args.test_samples, 2, **task),
    )


def main(argv=None, prog=None) -> dict:
    args = parse_args(argv, prog)
    out = Path(args.out or ("out/delays" + ("" if args.learn_delays else "_fixed")))
    out.mkdir(parents=True, exist_ok=True)
    train, validation, test = datasets(args)
    print(f"delay task: {args.classes} classes, train {len(train)}, test {len(test)} samples, "
          f"window {train.duration:.1f} ms; learn_delays={args.learn_delays}")  # fmt: skip
    figures = run(settings_from(args, DEFAULTS), train, validation, test, out,
                  progress=not args.no_progress)  # fmt: skip
    figures["task"] = {"classes": args.classes, "train": len(train), "test": len(test)}
    write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
