"""The Randman task behind ``examples/randman.py`` (Zenke & Vogels 2021's random manifolds).

Default task: 10 classes, 20 input units, intrinsic dimension 1, smoothness ``alpha = 2``,
spike times in 0-50 ms, 600 training, 250 validation and 500 test samples (one task seed,
three sample seeds).  Network: 20 inputs -> 32 hidden (``--recurrent``: all-to-all recurrent,
weights starting near zero and learning at a tenth of the rate of the others) -> 10
non-spiking outputs, time step 1 ms, max-voltage loss; ``--learn-delays`` trains every delay
as well.  ``--input-fan-in K`` gives every hidden neuron only K of the input units (K random
distinct units per hidden neuron, drawn from ``--seed``); the outputs still read every hidden
neuron; ``--input-weight LOW HIGH`` sets the range of the initial input weights (uniform).

The memory variant (docs/temporal.md, section 5) reads the outputs at a go cue 20 ms after the
data window: ``--go-cue 20 --recurrent-self 0.4 --recurrent-delay 10 30``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..datasets.randman import randman_dataset
from .temporal import Settings, add_arguments, run, settings_from, write_json

DEFAULTS = Settings(
    hidden=32, recurrent=True, learn_delays=True, epochs=12, lr=5e-3, delay_lr=0.2, dt=1.0,
    tau_m=10.0, tau_syn=5.0, tau_refrac=2.0, input_weight=(0.0, 0.15), input_delay=(0.5, 5.0),
    hidden_weight=0.1, recurrent_weight=0.01, recurrent_lr=5e-4, hidden_delay=(0.5, 5.0),
    delay_bounds=(0.5, 30.0),
)  # fmt: skip


def parse_args(argv=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser, DEFAULTS)
    add = parser.add_argument
    add("--input-fan-in", type=int, default=DEFAULTS.input_fan_in, metavar="K",
        help="input units per hidden neuron, K random distinct ones drawn from --seed "
        "(default: all)")  # fmt: skip
    add("--input-weight", type=float, nargs=2, metavar=("LOW", "HIGH"),
        default=list(DEFAULTS.input_weight), help="initial input weights uniform in [LOW, HIGH], "
        "weight units (default %(default)s)")  # fmt: skip
    add("--classes", type=int, default=10, help="classes (default %(default)s)")
    add("--units", type=int, default=20, help="input units (default %(default)s)")
    add("--dim", type=int, default=1, help="intrinsic dimension (default %(default)s)")
    add("--alpha", type=float, default=2.0, help="smoothness (default %(default)s)")
    add("--t-max", type=float, default=50.0, help="spike window, ms (default %(default)s)")
    add("--spikes", type=int, default=1, help="spikes per unit, each its own manifold "
        "coordinate (default %(default)s)")  # fmt: skip
    add("--jitter", type=float, default=0.0, help="spike-time noise, ms (default %(default)s)")
    add("--train-samples", type=int, default=600, help="default %(default)s")
    add("--validation-samples", type=int, default=250, help="default %(default)s")
    add("--test-samples", type=int, default=500, help="default %(default)s")
    add("--task-seed", type=int, default=0, help="seed of the manifolds (default %(default)s)")
    return parser.parse_args(argv)


def datasets(args):
    """Train, validation and test splits of one task (same manifolds, other points)."""
    task = dict(n_classes=args.classes, n_units=args.units, dim=args.dim, alpha=args.alpha,
                t_max=args.t_max, seed=args.task_seed, n_spikes=args.spikes,
                jitter=args.jitter)  # fmt: skip
    return (
        randman_dataset(args.train_samples, 0, **task),
        randman_dataset(args.validation_samples, 1, **task),
        randman_dataset(args.test_samples, 2, **task),
    )


def main(argv=None, prog=None) -> dict:
    args = parse_args(argv, prog)
    out = Path(args.out or "out/randman")
    out.mkdir(parents=True, exist_ok=True)
    train, validation, test = datasets(args)
    print(f"Randman: {args.classes} classes, {args.units} units, dim {args.dim}, "
          f"{args.spikes} spike(s) per unit in {args.t_max:g} ms; train {len(train)}, "
          f"validation {len(validation)}, test {len(test)}; recurrent={args.recurrent}, "
          f"learn_delays={args.learn_delays}")  # fmt: skip
    figures = run(settings_from(args, DEFAULTS), train, validation, test, out,
                  progress=not args.no_progress)  # fmt: skip
    figures["task"] = {k: getattr(args, k) for k in ("classes", "units", "dim", "alpha", "t_max",
                                                     "spikes", "jitter", "train_samples",
                                                     "test_samples")}  # fmt: skip
    write_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
