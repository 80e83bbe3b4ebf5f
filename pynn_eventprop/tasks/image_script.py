"""The command-line script of the image tasks: train, evaluate, cost on SpiNNaker2, report.

``examples/mnist.py`` and ``examples/fashion_mnist.py`` call :func:`main` with their
:class:`~pynn_eventprop.tasks.images.ImageTask`; the network recipe, the data augmentation and
the training loop are in :mod:`pynn_eventprop.tasks.images`.

After training, the same PyNN script is set up again with ``platform="spinnaker2"``, loaded
with the trained weights and trained further for a few batches on the SpiNNaker2 packet model
(:mod:`pynn_eventprop.spinnaker2`, float32): its report gives the mapping (PEs, chips, SRAM,
routing entries) and, per training sample, packets, time and energy.  Those are model
**estimates**; Loihi's figures (Renner et al. 2024) are **measurements** on the chip.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

import pynn_eventprop as sim
from pynn_eventprop.datasets import SpikeDataset

from .images import (
    LOSSES,
    ImageTask,
    Settings,
    build_network,
    encode,
    make_trainer,
    silent_log,
    train,
)

LOIHI = {
    "kind": "measured on Loihi",
    "network": "400-400-10",
    "time_per_sample_ms": 1.5,
    "energy_per_sample_mJ": 0.59,
    "source": "Renner et al., Nat. Commun. 15, 9691 (2024), Table 1: on-chip nBP training, MNIST",
}
"""Published Loihi on-chip training figures (measurements), quoted for comparison."""


# --- SpiNNaker2 model --------------------------------------------------------------------------
def spinnaker2_estimate(
    settings: Settings, weights: dict, data: SpikeDataset, batch_size: int, replicas: int, n_batches
) -> dict:
    """Continue training the trained network on the SpiNNaker2 model for ``n_batches`` batches.

    The same PyNN script runs with ``sim.setup(..., platform="spinnaker2", replicas=...)``; the
    trained weights are loaded into its projections and :class:`Trainer` trains ``n_batches``
    batches of ``batch_size`` samples (forward, loss, exact backward and Adam update, in
    float32).  The model's report gives the mapping and, per training sample, the packets,
    time and energy of all four programs.
    """
    net = build_network(
        settings, data.n_inputs, data.n_classes, n_batches, "spinnaker2", replicas=replicas
    )
    for projection in net.projections:
        projection.set(weight=weights[projection.label])
    trainer = make_trainer(settings, net, batch_size)
    pick = np.random.default_rng(settings.seed).permutation(len(data))[: n_batches * batch_size]
    record = trainer.fit(data.subset(np.sort(pick)), 1).records[-1]
    report = trainer.engine.report(scope="training").to_dict()
    summary = summarise(report, batch_size, replicas)
    summary["training_accuracy_on_model"] = record["accuracy"]
    summary["model_seconds"] = record["seconds"]
    return summary


def summarise(report: dict, batch_size: int, replicas: int) -> dict:
    """The figures the examples print from a SpiNNaker2 report dict."""
    mapping, routing, traffic, cost = (report[k] for k in ("mapping", "routing", "traffic", "cost"))
    clocks = cost["clock_mhz"]
    modes = {}
    for mode in ("realtime", "compute"):
        for c, mhz in enumerate(clocks):
            times = cost["time_per_sample_ms"][mode]
            energies = cost["energy_per_sample_uJ"][mode]
            modes[f"{mode}_{mhz:.0f}MHz"] = {
                "time_per_sample_ms": times["total"][c],
                "energy_per_sample_mJ": energies["total"][c] / 1e3,
                "time_by_program_ms": {k: v[c] for k, v in times.items() if k != "total"},
                "energy_by_part_mJ": {k: v[c] / 1e3 for k, v in energies.items() if k != "total"},
            }
    return {
        "kind": "estimate (SpiNNaker2 packet model, assumed coefficients)",
        "batch_size": batch_size,
        "replicas": replicas,
        "samples_counted": report["traffic"]["samples_counted"],
        "pes": mapping["pes_used"],
        "pes_per_replica": mapping["pes_per_replica"],
        "chips": mapping["chips_used"],
        "slices": {p["label"]: p["slices"] for p in mapping["populations"]},
        "sram_max_bytes": mapping["sram_per_pe"]["max_used"],
        "sram_mean_bytes": mapping["sram_per_pe"]["mean_used"],
        "sram_limit_bytes": mapping["sram_per_pe"]["limit"],
        "routing_entries_max_per_chip": routing["max_entries"],
        "routing_limit_per_chip": routing["limit_per_chip"],
        "packets_per_sample": {
            kind: v["packets"] for kind, v in traffic["packets_per_sample"].items()
        },
        "spike_log_overflow": traffic["spike_log"]["overflow"],
        "cost": modes,
    }


# --- output ------------------------------------------------------------------------------------
def spinnaker2_text(est: dict) -> str:
    packets = est["packets_per_sample"]
    lines = [
        f"  batch {est['batch_size']} on {est['replicas']} replica(s): "
        f"{est['samples_counted']} samples trained on the model "
        f"(training accuracy {est['training_accuracy_on_model']:.3f}, "
        f"{est['model_seconds']:.1f} s on this machine)",
        f"    PEs {est['pes']} ({est['pes_per_replica']} per replica), chips {est['chips']}, "
        f"slices {est['slices']}",
        f"    SRAM per PE max {est['sram_max_bytes']:,} / {est['sram_limit_bytes']:,} bytes "
        f"(mean {est['sram_mean_bytes']:,.0f}); routing entries max "
        f"{est['routing_entries_max_per_chip']} / {est['routing_limit_per_chip']} per chip",
        "    packets per training sample: "
        + ", ".join(f"{k} {v:,.1f}" for k, v in packets.items() if v)
        + f" (total {sum(packets.values()):,.1f})",
    ]
    for mode, c in est["cost"].items():
        lines.append(
            f"    {mode:>16}: {c['time_per_sample_ms']:8.3f} ms, "
            f"{c['energy_per_sample_mJ']:8.3f} mJ per training sample  [estimate]"
        )
    return "\n".join(lines)


def loihi_text(task: ImageTask) -> str:
    lines = [
        f"  Loihi on-chip nBP {LOIHI['network']} (MNIST): {LOIHI['time_per_sample_ms']} ms, "
        f"{LOIHI['energy_per_sample_mJ']} mJ per training sample  [measurement; "
        f"{LOIHI['source']}]"
    ]
    if task.loihi_accuracy is not None:
        lines.append(
            f"  Loihi on-chip nBP {task.loihi_task} test accuracy {task.loihi_accuracy:.1%}  "
            f"[measurement; {task.loihi_accuracy_source}]"
        )
    return "\n".join(lines)


# --- command line ------------------------------------------------------------------------------
def _pair(text: str) -> tuple:
    mean, std = (float(x) for x in text.split(","))
    return (mean, std)


def parse_args(task: ImageTask, argv=None):
    from ..cli import output_file

    d = task.defaults
    ap = argparse.ArgumentParser(
        description=f"Train 784-H-10 on {task.name} with EventProp (PyNN API) and map it on "
        "the SpiNNaker2 model."
    )
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--hidden", type=int, default=d.hidden, help="hidden neurons")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--quick", action="store_true", help="a small subset and few epochs")
    ap.add_argument(
        "--json", metavar="PATH", type=output_file, help="write the figures to this JSON file"
    )
    ap.add_argument(
        "--weights", metavar="PATH", type=output_file, help="write the trained weights (.npz)"
    )
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    ap.add_argument("--lr-decay", type=float, default=d.lr_decay, help="factor per epoch")
    ap.add_argument("--loss", choices=LOSSES, default=d.loss)
    ap.add_argument("--dt", type=float, default=d.dt, help="time step (ms)")
    ap.add_argument("--t-late", type=float, default=d.t_late, help="input window (ms)")
    ap.add_argument("--readout", type=float, default=d.readout, help="ms after the window")
    ap.add_argument("--max-shift", type=int, default=d.max_shift, help="pixels (augmentation)")
    ap.add_argument("--input-dropout", type=float, default=d.input_dropout)
    ap.add_argument("--xi", type=float, default=d.xi, help="TTFS softmax temperature (ms)")
    ap.add_argument("--input-weight", type=_pair, default=d.input_weight, help="MEAN,STD (nA)")
    ap.add_argument("--output-weight", type=_pair, default=d.output_weight, help="MEAN,STD (nA)")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument(
        "--revive-dead", type=float, default=d.revive_dead, help="Trainer's dead-neuron rule"
    )
    ap.add_argument("--n-train", type=int, default=d.n_train, help="training subset size")
    ap.add_argument("--n-test", type=int, default=d.n_test, help="test subset size")
    ap.add_argument(
        "--s2-batches", type=int, default=4, help="training batches counted on the SpiNNaker2 model"
    )
    ap.add_argument(
        "--eval-every", type=int, default=0, help="test accuracy every N epochs (curve only)"
    )
    ap.add_argument("--no-spinnaker2", action="store_true", help="skip the SpiNNaker2 model")
    known, _ = ap.parse_known_args(argv)
    if known.quick:  # quick-mode defaults; options given explicitly still win
        ap.set_defaults(**task.quick)
    args = ap.parse_args(argv)
    overrides = dict(
        epochs=args.epochs,
        hidden=args.hidden,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        loss=args.loss,
        dt=args.dt,
        t_late=args.t_late,
        readout=args.readout,
        max_shift=args.max_shift,
        input_dropout=args.input_dropout,
        xi=args.xi,
        input_weight=args.input_weight,
        output_weight=args.output_weight,
        weight_decay=args.weight_decay,
        revive_dead=args.revive_dead,
        n_train=args.n_train,
        n_test=args.n_test,
    )
    return args, dataclasses.replace(d, **overrides)


def main(task: ImageTask, argv=None) -> dict:
    """Train, test, estimate on the SpiNNaker2 model and report.

    Under MPI (``mpirun -n N python examples/mnist.py``) every rank trains its share of each
    batch; rank 0 alone prints and writes files, and the SpiNNaker2 model is skipped (run it
    in one process).
    """
    args, settings = parse_args(task, argv)
    result = train(task, settings, eval_every=args.eval_every)
    root = sim.rank() == 0
    say = print if root else silent_log
    acc = result["test_accuracy"]
    verdict = "reached" if acc >= task.target else "NOT reached"
    say(
        f"test accuracy {acc:.4f} on {result['n_test']} images ({task.test_description}); "
        f"target {task.target:.0%} {verdict}"
    )
    say(
        f"training time {result['train_seconds']:.1f} s for {result['epochs']} epochs "
        f"({result['samples_per_s']:.0f} samples/s, reference engine, float64); "
        f"{result['train_wall_seconds']:.1f} s with data preparation and the network "
        f"compilation of every epoch; test pass {result['test_seconds']:.1f} s"
    )
    figures = {
        "task": task.name,
        "test_accuracy": acc,
        "target": task.target,
        "n_test": result["n_test"],
        "n_train": result["n_train"],
        "train_seconds": result["train_seconds"],
        "train_wall_seconds": result["train_wall_seconds"],
        "samples_per_s": result["samples_per_s"],
        "epochs": result["epochs"],
        "mpi_processes": sim.num_processes(),
        "network": f"784-{settings.hidden}-10",
        "settings": dataclasses.asdict(settings),
        "history": result["history"],
        "loihi": {
            **LOIHI,
            "task": task.loihi_task,
            "test_accuracy": task.loihi_accuracy,
            "test_accuracy_source": task.loihi_accuracy_source,
        },
    }
    if sim.num_processes() > 1 and not args.no_spinnaker2:
        say("SpiNNaker2 model skipped under MPI (run it in one process)")
    elif not args.no_spinnaker2:
        train_set = encode(*result["train_images"], settings, "train", task)
        print("SpiNNaker2 model, training the trained network further (model estimates):")
        estimates = {}
        for name, batch, replicas, n_batches in (
            ("batch", settings.batch_size, settings.batch_size, args.s2_batches),
            ("online", 1, 1, args.s2_batches * 8),
        ):
            est = spinnaker2_estimate(
                settings, result["weights"], train_set, batch, replicas, n_batches
            )
            estimates[name] = est
            print(spinnaker2_text(est))
        print(loihi_text(task))
        figures["spinnaker2"] = estimates
    if args.weights and root:
        np.savez(args.weights, **result["weights"])
        print(f"trained weights written to {args.weights}")
    if args.json and root:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))
        print(f"figures written to {args.json}")
    return figures
