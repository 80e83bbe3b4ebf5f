"""Side by side: the pytorch-eventprop twin and this package on the Yin-Yang twin configuration.

The twin is the off-chip model of the SpiNNaker2 EventProp work (github GabrielBena/
pytorch-eventprop, ``pytorch_eventprop/models.py``: ``SNN`` of ``SpikingLinear_ev`` layers,
a time-stepped forward and adjoint in torch, and ``SpikeCELoss``).  Both sides train the
same network on the same data in this one process, epoch by epoch in turn:

* 5-120-3, dt 1 ms, 27 steps, batch 22, tau_m 20 ms, tau_syn 5 ms, threshold 1, Adam
  (lr 1e-3), time-to-first-spike cross-entropy (xi 0.5); the 5,000 training samples of
  Yin-Yang latency-coded in a 20 ms window (as ``benchmarks/train_yinyang.py``'s ``twin``
  configuration);
* ours: the PyNN API and ``Trainer`` on the reference engine (exact event times);
* the twin: its ``SNN(model_type="eventprop")`` on CPU torch; the input spikes of every
  sample are put on its 1 ms grid once, before timing (in its own training loop this
  encoding runs per batch, so the twin's figure here is, if anything, generous).

After a warm-up epoch of each (numba compilation; torch's first calls), ``--rounds`` rounds
each time one epoch of ours, then one of the twin.  Printed: samples/s of each side (median
and range) and the ratio of the medians.

The twin's source is not installed: give the path of a local checkout (its
``pytorch_eventprop/models.py`` is loaded from there).  It needs ``torch`` (CPU build) and
``snntorch``::

    pip install snntorch torch  # a CPU build of torch is enough
    python benchmarks/peers/twin.py --twin-path ~/src/pytorch-eventprop [--rounds 3]
        [--threads 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

CONFIG = dict(hidden=120, dt=1.0, steps=27, batch=22, t_late=20.0, lr=1e-3, xi=0.5)
WEIGHTS = ((1.5, 1.5), (0.5, 0.5))
"""Initial weights (mean, std) of the two layers (nA for ours; the twin's own units)."""


def load_twin(path: Path):
    """The twin's ``models`` module, loaded from its checkout by file path."""
    source = Path(path).expanduser() / "pytorch_eventprop" / "models.py"
    if not source.is_file():
        raise SystemExit(f"--twin-path: no pytorch_eventprop/models.py under {str(path)!r}")
    spec = importlib.util.spec_from_file_location("pytorch_eventprop_twin_models", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Ours:
    """Our side: the PyNN network and Trainer; ``epoch()`` trains the data once."""

    def __init__(self, data):
        from pyNN.random import NumpyRNG, RandomDistribution

        import pynn_eventprop as sim
        from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
        from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
        from pynn_eventprop.eventprop.training import Trainer
        from pynn_eventprop.neurons import WP_NEURON

        dt = CONFIG["dt"]
        sim.setup(timestep=dt, min_delay=dt)
        rng = NumpyRNG(seed=1)
        layers = [sim.Population(5, sim.SpikeSourceArray())]
        layers += [sim.Population(n, sim.IF_curr_exp(**WP_NEURON)) for n in (CONFIG["hidden"], 3)]
        rule = EventPropRule(Adam(lr=CONFIG["lr"]))
        for pre, post, (mean, std) in zip(layers[:-1], layers[1:], WEIGHTS, strict=True):
            post.initialize(v=0.0)
            weight = RandomDistribution("normal", (mean, std), rng=rng)
            synapse = EventPropSynapse(weight=weight, rule=rule)
            sim.Projection(pre, post, sim.AllToAllConnector(), synapse)
        loss = TTFSCrossEntropy(xi=CONFIG["xi"], silent_push=1.0, theta=1.0)
        duration = CONFIG["steps"] * dt
        self.trainer = Trainer(
            layers[0],
            layers[-1],
            loss,
            duration,
            batch_size=CONFIG["batch"],
            seed=0,
            progress=False,
        )
        self.data = data

    def epoch(self, data=None) -> tuple[float, float]:
        """Train one epoch; seconds and training accuracy."""
        start = time.perf_counter()
        record = self.trainer.fit(self.data if data is None else data, 1).records[-1]
        return time.perf_counter() - start, record["accuracy"]


class Twin:
    """The twin's side: its SNN, loss and torch's Adam; ``epoch()`` trains the data once."""

    def __init__(self, models, data, seed=0):
        import torch

        self.torch = torch
        steps, dt = CONFIG["steps"], CONFIG["dt"]
        self.model = models.SNN(
            [5, CONFIG["hidden"], 3],
            T=steps,
            dt=dt,
            tau_m=20.0,
            tau_s=5.0,
            model_type="eventprop",
            init_mode="normal",
            scale=1.0,
            mu=[m for m, _ in WEIGHTS],
            sigma=[s for _, s in WEIGHTS],
            device=torch.device("cpu"),
            seed=seed,
        )
        self.loss = models.SpikeCELoss(xi=CONFIG["xi"])
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=CONFIG["lr"])
        self.spikes = grid_spikes(data.times, steps, dt, torch)
        self.labels = torch.as_tensor(np.array(data.labels), dtype=torch.long)
        self.rng = np.random.default_rng(seed)

    def epoch(self, n=None) -> tuple[float, float]:
        """Train one epoch (or ``n`` samples) in shuffled batches; seconds and accuracy.

        The accuracy counts a sample as correct when the label neuron fires first (the
        twin's ``argmin`` of first-spike times).
        """
        total = self.labels.shape[0] if n is None else n
        order = self.torch.as_tensor(self.rng.permutation(total))
        batch = CONFIG["batch"]
        correct = 0
        start = time.perf_counter()
        for first in range(0, total, batch):
            pick = order[first : first + batch]
            self.optimiser.zero_grad()
            output, _ = self.model(self.spikes[:, pick])
            loss, _, first_spikes = self.loss(output, self.labels[pick])
            loss.backward()
            self.optimiser.step()
            correct += int((first_spikes.argmin(-1) == self.labels[pick]).sum())
        return time.perf_counter() - start, correct / total


def grid_spikes(times, steps, dt, torch):
    """Input spike times (ms, NaN = none) ``(n, 5)`` as a 0/1 tensor ``(steps, n, 5)``."""
    times = np.asarray(times, float)
    grid = np.zeros((steps, *times.shape), np.float32)
    sample, neuron = np.nonzero(np.isfinite(times))
    index = np.minimum((times[sample, neuron] / dt).astype(int), steps - 2)
    grid[index, sample, neuron] = 1.0
    return torch.from_numpy(grid)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twin-path", required=True, help="checkout of pytorch-eventprop")
    ap.add_argument("--rounds", type=int, default=3, help="epochs of each side, interleaved")
    ap.add_argument("--threads", type=int, default=1, help="torch and numba threads")
    ap.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)  # before numba is imported
    models = load_twin(args.twin_path)
    import torch

    from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset

    torch.set_num_threads(args.threads)
    code = LatencyCode(t_early=0.0, t_late=CONFIG["t_late"], bias_time=0.0)
    data = yin_yang_dataset("train", code)
    ours, twin = Ours(data), Twin(models, data)
    ours.epoch(data.subset(np.arange(4 * CONFIG["batch"])))  # numba compilation
    twin.epoch(4 * CONFIG["batch"])
    rates = {"ours": [], "twin": []}
    accuracy = {"ours": [], "twin": []}
    for _ in range(args.rounds):
        for side, model in (("ours", ours), ("twin", twin)):
            seconds, correct = model.epoch()
            rates[side].append(len(data) / seconds)
            accuracy[side].append(correct)
    figures = {
        "configuration": {**CONFIG, "network": "5-120-3", "samples_per_epoch": len(data)},
        "threads": args.threads,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        **{
            side: dict(samples_per_s=r, median=statistics.median(r), min=min(r), max=max(r))
            for side, r in rates.items()
        },
        "training_accuracy_per_epoch": accuracy,
    }
    figures["ratio_ours_over_twin"] = figures["ours"]["median"] / figures["twin"]["median"]
    print(
        f"Yin-Yang twin configuration 5-120-3, dt 1 ms, 27 steps, batch 22, {len(data)} "
        f"samples per epoch, {args.threads} thread(s), {args.rounds} interleaved rounds"
    )
    for side, name in (("ours", "pynn_eventprop (reference engine)"), ("twin", "twin (torch)")):
        s = figures[side]
        print(
            f"  {name:36s} {s['median']:8.0f} training samples/s "
            f"(median; range {s['min']:.0f}-{s['max']:.0f}); training accuracy "
            + ", ".join(f"{a:.3f}" for a in accuracy[side])
        )
    print(f"  ratio ours / twin: {figures['ratio_ours_over_twin']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
        print(f"figures written to {args.json}")
    return figures


if __name__ == "__main__":
    main()
