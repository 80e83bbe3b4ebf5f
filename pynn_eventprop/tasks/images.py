"""The image tasks behind ``examples/mnist.py`` and ``examples/fashion_mnist.py``.

A 784-H-10 network of ``IF_curr_exp`` neurons in Wunderlich & Pehle's frame
(``docs/equations.md`` section 1: ``v_rest = v_reset = 0``, ``cm = tau_m``, threshold 1 mV) is
written with the PyNN API, its two projections use :class:`EventPropSynapse`, and
:class:`~pynn_eventprop.eventprop.training.Trainer` trains it with exact EventProp gradients on
the reference engine.  Each image is one latency-coded spike per pixel
(``ImageLatencyCode``: ``t = t_late (1 - pixel/255)``, bright pixels early, black pixels silent).

Default recipe (:class:`Settings`; measured results in ``docs/comparison.md``): 350 hidden
neurons, 20 ms input window plus 10 ms readout at dt = 1 ms, the average-voltage cross-entropy
on non-spiking outputs, Adam (lr 5e-3, batch 16) with a per-epoch decay, initial weights
N(0.078, 0.045) and N(0.2, 0.37) nA (Nowotny et al.'s GeNN EventProp MNIST values).  The
time-to-first-spike loss with spiking outputs is available (``--loss ttfs``; it learned best
here with ``--lr 1e-3 --input-weight 0.1,0.1 --output-weight 0.1,0.2`` but generalised worse).

Training-time regularisation (both optional, fresh random numbers every epoch):

* ``max_shift``: every training image is translated by a random whole number of pixels
  ``(dx, dy)``, ``|dx|, |dy| <= max_shift``, before encoding (pixels shifted out are lost, the
  border is filled with black);
* ``input_dropout``: every input spike is removed with this probability (as in Nowotny et al.'s
  GeNN EventProp MNIST runs, ``PDROP_INPUT``).

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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyNN.random import NumpyRNG, RandomDistribution

import pynn_eventprop as sim
from pynn_eventprop.datasets import ImageLatencyCode, SpikeDataset
from pynn_eventprop.eventprop import (
    Adam,
    AverageVoltageCrossEntropy,
    ExponentialDecay,
    MaxVoltageCrossEntropy,
    PerEpoch,
    TTFSCrossEntropy,
)
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer

LOSSES = ("ttfs", "max_voltage", "avg_voltage", "avg_voltage_exp")

LOIHI = {
    "kind": "measured on Loihi",
    "network": "400-400-10",
    "time_per_sample_ms": 1.5,
    "energy_per_sample_mJ": 0.59,
    "source": "Renner et al., Nat. Commun. 15, 9691 (2024), Table 1: on-chip nBP training, MNIST",
}
"""Published Loihi on-chip training figures (measurements), quoted for comparison."""


@dataclass(frozen=True)
class Settings:
    """Everything that defines one training run (units: ms, nA, mV).

    Neuron parameters are W&P's frame: ``tau_m`` (= ``cm``), ``tau_syn`` for both receptors,
    threshold 1 mV above rest, reset to rest, no refractory period.  With a voltage loss the
    output neurons get an unreachable threshold (they integrate but never spike).
    """

    hidden: int = 350
    epochs: int = 10
    batch_size: int = 16
    dt: float = 1.0
    t_late: float = 20.0
    readout: float = 10.0
    pixel_threshold: float = 0.0
    tau_m: float = 20.0
    tau_syn: float = 5.0
    loss: str = "avg_voltage"
    xi: float = 0.5
    alpha: float = 3e-3
    beta: float = 6.4
    lr: float = 5e-3
    lr_decay: float = 0.95
    weight_decay: float = 0.0
    input_weight: tuple = (0.078, 0.045)
    output_weight: tuple = (0.2, 0.37)
    max_shift: int = 0
    input_dropout: float = 0.0
    revive_dead: float = 0.0
    n_train: int | None = None
    n_test: int | None = None
    seed: int = 1

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not 0 <= self.input_dropout < 1:
            raise ValueError(f"input_dropout must lie in [0, 1), got {self.input_dropout!r}")
        if int(self.max_shift) != self.max_shift or self.max_shift < 0:
            raise ValueError(f"max_shift must be a whole number >= 0, got {self.max_shift!r}")

    @property
    def duration(self) -> float:
        """Simulated time per sample (ms): the input window plus the readout time."""
        return self.t_late + self.readout

    @property
    def code(self) -> ImageLatencyCode:
        return ImageLatencyCode(t_early=0.0, t_late=self.t_late, threshold=self.pixel_threshold)


@dataclass(frozen=True)
class ImageTask:
    """A 10-class 28 x 28 image data set: how to load it and what to reach.

    ``load(split)`` returns ``(images uint8 (n, 28, 28), labels int64 (n,))`` for ``split`` in
    ``"train"``, ``"test"``.
    """

    name: str
    load: object
    class_names: tuple
    target: float
    test_description: str
    defaults: Settings
    quick: dict = field(default_factory=dict)
    loihi_task: str = ""
    loihi_accuracy: float | None = None
    loihi_accuracy_source: str = ""


# --- data --------------------------------------------------------------------------------------
def shift_images(images: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Translate each image by a random ``(dx, dy)`` in ``-max_shift..max_shift`` pixels.

    Pixels moved outside the 28 x 28 frame are lost; uncovered pixels are 0 (black, silent).
    """
    if max_shift == 0:
        return images
    n, height, width = images.shape
    m = int(max_shift)
    padded = np.zeros((n, height + 2 * m, width + 2 * m), images.dtype)
    padded[:, m : m + height, m : m + width] = images
    dx = rng.integers(-m, m + 1, n)
    dy = rng.integers(-m, m + 1, n)
    out = np.empty_like(images)
    for sx in range(-m, m + 1):
        for sy in range(-m, m + 1):
            sel = np.flatnonzero((dx == sx) & (dy == sy))
            # the image moves by (sx, sy): output pixel (r, c) shows input (r - sy, c - sx)
            out[sel] = padded[sel, m - sy : m - sy + height, m - sx : m - sx + width]
    return out


def encode(images, labels, settings: Settings, name: str, task: ImageTask) -> SpikeDataset:
    """Latency-code ``images`` into a :class:`SpikeDataset` (784 inputs, 10 classes)."""
    code = settings.code
    return SpikeDataset(
        code(images),
        labels,
        n_classes=len(task.class_names),
        duration=code.duration,
        class_names=task.class_names,
        name=f"{name} ({code})",
    )


def augmented(images, labels, settings: Settings, rng, task: ImageTask) -> SpikeDataset:
    """One epoch's training set: shifted images, then input spikes dropped at random."""
    ds = encode(shift_images(images, rng, settings.max_shift), labels, settings, "train", task)
    if settings.input_dropout == 0:
        return ds
    times = np.array(ds.times)
    times[rng.random(times.shape) < settings.input_dropout] = np.nan
    return dataclasses.replace(ds, times=times)


def load_data(task: ImageTask, settings: Settings):
    """Training images and labels, and the encoded test set (subsets if requested)."""
    images, labels = _subset(*task.load("train"), settings.n_train, settings.seed)
    test_images, test_labels = _subset(*task.load("test"), settings.n_test, settings.seed)
    return images, labels, encode(test_images, test_labels, settings, "test", task)


def _subset(images, labels, n, seed):
    """``n`` samples drawn at random (seeded), in file order; all of them if ``n`` is None.

    Random rather than the first ``n``: the MNIST-5k splits are sorted by class.
    """
    if n is None or n >= len(labels):
        return images, labels
    pick = np.sort(np.random.default_rng(seed).permutation(len(labels))[:n])
    return images[pick], labels[pick]


# --- network -----------------------------------------------------------------------------------
def neuron_parameters(settings: Settings, v_thresh: float = 1.0) -> dict:
    """``IF_curr_exp`` parameters equal to W&P's LIF model (docs/equations.md section 1)."""
    return dict(
        v_rest=0.0,
        v_reset=0.0,
        v_thresh=v_thresh,
        cm=settings.tau_m,
        tau_m=settings.tau_m,
        tau_syn_E=settings.tau_syn,
        tau_syn_I=settings.tau_syn,
        tau_refrac=0.0,
        i_offset=0.0,
    )


def make_loss(settings: Settings):
    if settings.loss == "ttfs":
        return TTFSCrossEntropy(
            xi=settings.xi, alpha=settings.alpha, beta=settings.beta, silent_push=1.0, theta=1.0
        )
    if settings.loss == "max_voltage":
        return MaxVoltageCrossEntropy()
    weighting = "exponential" if settings.loss == "avg_voltage_exp" else "uniform"
    return AverageVoltageCrossEntropy(weighting=weighting)


@dataclass
class Network:
    """The PyNN objects of one 784-H-10 network."""

    inputs: object
    hidden: object
    outputs: object
    projections: list


def build_network(
    settings: Settings,
    n_inputs: int,
    n_classes: int,
    steps_per_epoch: int,
    platform: str = "reference",
    **platform_options,
) -> Network:
    """``sim.setup`` on ``platform`` and the 784-H-10 network with random initial weights."""
    sim.setup(timestep=settings.dt, platform=platform, **platform_options)
    inputs = sim.Population(n_inputs, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(
        settings.hidden, sim.IF_curr_exp(**neuron_parameters(settings)), label="hidden"
    )
    # voltage losses read the membrane of neurons that never spike (docs/losses.md section 3)
    v_out = 1.0 if settings.loss == "ttfs" else 1e9
    outputs = sim.Population(
        n_classes, sim.IF_curr_exp(**neuron_parameters(settings, v_out)), label="output"
    )
    for pop in (hidden, outputs):
        pop.initialize(v=0.0)  # PyNN's default initial v is -65 mV whatever v_rest is
    rng = NumpyRNG(seed=settings.seed)
    schedule = PerEpoch(ExponentialDecay(settings.lr, settings.lr_decay), steps_per_epoch)
    rule = EventPropRule(Adam(lr=schedule, weight_decay=settings.weight_decay))
    projections = [
        sim.Projection(
            pre,
            post,
            sim.AllToAllConnector(),
            EventPropSynapse(
                weight=RandomDistribution("normal", (mean, std), rng=rng),
                delay=settings.dt,
                rule=rule,
            ),
            label=label,
        )
        for pre, post, (mean, std), label in (
            (inputs, hidden, settings.input_weight, "input->hidden"),
            (hidden, outputs, settings.output_weight, "hidden->output"),
        )
    ]
    return Network(inputs, hidden, outputs, projections)


def make_trainer(settings: Settings, net: Network, batch_size=None, dtype=None) -> Trainer:
    """The :class:`Trainer` of ``net`` (``batch_size`` defaults to the settings')."""
    return Trainer(
        net.inputs,
        net.outputs,
        make_loss(settings),
        duration=settings.duration,
        batch_size=batch_size or settings.batch_size,
        seed=settings.seed,
        dtype=dtype,
        progress=False,
        revive_dead=settings.revive_dead,
    )


# --- training ----------------------------------------------------------------------------------
def train(task: ImageTask, settings: Settings, log=print, eval_every: int = 0) -> dict:
    """Train on the reference engine and test; returns the figures and the trained weights.

    ``eval_every > 0`` also measures test accuracy after every that many epochs (for learning
    curves only: the reported accuracy is always the one after the last epoch).
    """
    images, labels, test = load_data(task, settings)
    steps_per_epoch = -(-len(labels) // settings.batch_size)
    net = build_network(settings, 28 * 28, len(task.class_names), steps_per_epoch)
    trainer = make_trainer(settings, net)
    rng = np.random.default_rng(settings.seed + 1)
    fixed = None
    if settings.max_shift == 0 and settings.input_dropout == 0:
        fixed = encode(images, labels, settings, "train", task)
    log(
        f"{task.name}: {len(labels)} training images, {len(test)} test images "
        f"({task.test_description}); network 784-{settings.hidden}-10, loss {settings.loss}"
    )
    train_seconds = 0.0
    wall = time.perf_counter()
    for _ in range(settings.epochs):
        data = fixed if fixed is not None else augmented(images, labels, settings, rng, task)
        record = trainer.fit(data, 1).records[-1]
        train_seconds += record["seconds"]
        line = (
            f"  epoch {record['epoch']:3d}: loss {record['loss']:.4f}, training accuracy "
            f"{record['accuracy']:.4f}, {record['seconds']:.1f} s "
            f"({len(labels) / record['seconds']:.0f} samples/s)"
        )
        if eval_every and record["epoch"] % eval_every == 0:
            record["test_accuracy"] = trainer.evaluate(test)["accuracy"]
            line += f", test accuracy {record['test_accuracy']:.4f}"
        log(line)
    wall = time.perf_counter() - wall
    start = time.perf_counter()
    metrics = trainer.evaluate(test)
    test_seconds = time.perf_counter() - start
    return {
        "weights": {p.label: p.get("weight", format="array") for p in net.projections},
        "train_images": (images, labels),
        "test_accuracy": metrics["accuracy"],
        "test_loss": metrics["loss"],
        "n_test": metrics["n"],
        "n_train": int(len(labels)),
        "epochs": settings.epochs,
        "train_seconds": train_seconds,
        "train_wall_seconds": wall,
        "samples_per_s": settings.epochs * len(labels) / train_seconds,
        "test_seconds": test_seconds,
        "history": trainer.history.records,
    }


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
    d = task.defaults
    ap = argparse.ArgumentParser(
        description=f"Train 784-H-10 on {task.name} with EventProp (PyNN API) and map it on "
        "the SpiNNaker2 model."
    )
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--hidden", type=int, default=d.hidden, help="hidden neurons")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--quick", action="store_true", help="a small subset and few epochs")
    ap.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
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
    args, settings = parse_args(task, argv)
    result = train(task, settings, eval_every=args.eval_every)
    acc = result["test_accuracy"]
    verdict = "reached" if acc >= task.target else "NOT reached"
    print(
        f"test accuracy {acc:.4f} on {result['n_test']} images ({task.test_description}); "
        f"target {task.target:.0%} {verdict}"
    )
    print(
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
    if not args.no_spinnaker2:
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
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))
        print(f"figures written to {args.json}")
    return figures
