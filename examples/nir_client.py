"""A trained Yin-Yang network leaves through NIR and runs in Norse.

1. trains a small 5-30-3 network (W&P's neuron, TTFS loss) with exact EventProp for a few
   epochs on part of the training split (seconds);
2. exports it with ``pynn_eventprop.interop.export_nir`` and writes ``yin_yang.nir`` (HDF5);
3. reads the file back with ``nir.read`` and loads it into Norse (``norse.torch.from_nir``,
   PyTorch on the CPU) for several time steps ``dt``;
4. runs the canonical test split there and compares Norse's predicted classes (first output
   spike) with this package's.

Agreement is not exact because Norse steps time (see ``docs/nir.md``): spikes on a grid of
``dt``, forward Euler, and no delays on edges without a ``Delay`` node (the uniform 1 ms delays
are kept in metadata only; Norse's window is shortened by their sum, 2 ms, to match).  It rises
to 100 % as ``dt`` shrinks.

Needs the ``nir-client`` extra (``pip install "pynn_eventprop[nir-client]"``: nir, torch,
norse).  Usage: ``python examples/nir_client.py [--epochs 5] [--dt 0.5 0.1 0.01]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import pynn_eventprop as sim
from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
from pynn_eventprop.eventprop import TTFSCrossEntropy
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.interop import export_nir
from pynn_eventprop.neurons import WP_NEURON as NEURON
from pynn_eventprop.tasks.yin_yang import build_network, parse_args


def train(hidden=30, epochs=5, train_samples=1500, seed=1):
    """Train 5-``hidden``-3 on the first ``train_samples`` of the training split.

    Returns the Trainer (its weights written back into the PyNN projections) and the test
    split.
    """
    args = parse_args(
        ["--preset", "quick", "--hidden", str(hidden), "--epochs", str(epochs)]
        + ["--train-samples", str(train_samples), "--seed", str(seed), "--no-progress"]
    )
    code = LatencyCode(t_early=0.0, t_late=args.t_late, bias_time=0.0)
    data = yin_yang_dataset("train", code).subset(np.arange(train_samples))
    test = yin_yang_dataset("test", code)
    inputs, _, output = build_network(args)
    theta = NEURON["v_thresh"] - NEURON["v_rest"]
    loss = TTFSCrossEntropy(xi=args.xi, alpha=3e-3, beta=6.4, silent_push=10.0, theta=theta)
    trainer = Trainer(
        inputs,
        output,
        loss,
        duration=args.duration,
        batch_size=args.batch_size,
        seed=seed,
        progress=False,
    )
    trainer.fit(data, args.epochs)
    return trainer, test


def path_delay(graph) -> float:
    """Sum of the uniform delays (ms) kept in the weight nodes' metadata, input to output."""
    return sum(float(node.metadata.get("delay", 0.0)) for node in graph.nodes.values())


def compare(graph, ours, test, duration, dts):
    """Norse's predictions for each ``dt`` against ``ours``: one dict of figures per ``dt``."""
    from pynn_eventprop.interop.nir_clients import norse_first_spike_times, ttfs_predictions

    rows = []
    window = duration - path_delay(graph)
    for dt in dts:
        start = time.perf_counter()
        first = norse_first_spike_times(graph, test.times, window, dt)
        predicted = ttfs_predictions(first)
        finite = np.sort(first, axis=1)
        rows.append(
            {
                "dt_ms": dt,
                "agreement": float(np.mean(predicted == ours)),
                "accuracy_norse": float(np.mean(predicted == test.labels)),
                "ties": int(np.sum(finite[:, 0] == finite[:, 1]) - np.sum(np.isinf(finite[:, 0]))),
                "seconds": time.perf_counter() - start,
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-samples", type=int, default=1500)
    parser.add_argument("--dt", type=float, nargs="+", default=[0.5, 0.1, 0.05, 0.01])
    parser.add_argument("--out", default="out/nir_client")
    args = parser.parse_args(argv)
    import nir

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    trainer, test = train(args.hidden, args.epochs, args.train_samples)
    ours = trainer.predict(test.times)
    print(f"trained in {time.perf_counter() - start:.1f} s; our test accuracy "
          f"{np.mean(ours == test.labels):.3f}")  # fmt: skip
    nir.write(out / "yin_yang.nir", export_nir())
    graph = nir.read(out / "yin_yang.nir")
    rows = compare(graph, ours, test, trainer.duration, args.dt)
    for row in rows:
        print(
            f"Norse dt={row['dt_ms']:g} ms: agreement {row['agreement']:.3f}, accuracy "
            f"{row['accuracy_norse']:.3f}, first-spike ties {row['ties']}, {row['seconds']:.1f} s"
        )
    (out / "nir_client.json").write_text(json.dumps(rows, indent=1))
    sim.end()
    return rows


if __name__ == "__main__":
    main()
