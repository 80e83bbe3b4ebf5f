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

The script around it (command line, the SpiNNaker2 estimate, the printed report) is
:mod:`pynn_eventprop.tasks.image_script`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

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


def silent_log(*args, **kwargs):
    """A ``log``/``print`` that prints nothing (for ranks other than 0)."""


# --- training ----------------------------------------------------------------------------------
def train(task: ImageTask, settings: Settings, log=print, eval_every: int = 0) -> dict:
    """Train on the reference engine and test; returns the figures and the trained weights.

    ``eval_every > 0`` also measures test accuracy after every that many epochs (for learning
    curves only: the reported accuracy is always the one after the last epoch).

    Under MPI (``mpirun -n N``) every rank runs this function and the Trainer splits each
    batch over the ranks; only rank 0 logs.
    """
    if sim.rank() != 0:
        log = silent_log
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
