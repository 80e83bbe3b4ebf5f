"""What the temporal tasks (Randman, the delay task) share: the network, the run, the outputs.

The network is ``input -> hidden -> output`` of ``IF_curr_exp`` neurons, every projection an
``EventPropSynapse``; optionally the hidden population is recurrent (all-to-all, self
connections included) and the projections learn their delays.  The output neurons never fire
(threshold out of reach) and the loss reads their voltage (``MaxVoltageCrossEntropy`` by
default, Zenke & Vogels' max-over-time readout).  :func:`run` trains, evaluates on the test
split, and writes the history (CSV, JSON), a Neo file of recorded test samples (spikes and
voltages) and a figure (learning curves, a recorded sample, the delays before and after).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import pynn_eventprop as sim
from pynn_eventprop.eventprop import (
    Adam,
    AverageVoltageCrossEntropy,
    MaxVoltageCrossEntropy,
)
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer

LOSSES = ("max", "average", "average_exp")


@dataclass
class Settings:
    """Network and training settings (ms, mV, nA; weights in units of the weight whose
    postsynaptic potential peaks at the threshold, so that they do not depend on the
    time constants)."""

    hidden: int = 32
    recurrent: bool = False
    learn_delays: bool = True
    epochs: int = 20
    batch_size: int = 32
    lr: float = 5e-3
    delay_lr: float = 0.5
    dt: float = 0.5
    seed: int = 0
    tau_m: float = 4.0
    tau_syn: float = 2.0
    tau_refrac: float = 2.0
    input_weight: tuple = (0.3, 2.0)  # uniform, in threshold units
    input_delay: tuple = (0.5, 50.0)  # uniform initial delays, ms
    hidden_weight: float = 1.0  # std of normal weights hidden -> output
    recurrent_weight: float = 0.2  # std of normal recurrent weights
    recurrent_mean: float = 0.0  # mean of the recurrent weights (< 0: lateral inhibition)
    recurrent_lr: float | None = None  # Adam rate of the recurrent weights (default: lr)
    hidden_delay: tuple = (0.5, 2.0)
    delay_bounds: tuple = (0.5, 60.0)
    loss: str = "max"
    extra_time: float = 20.0  # simulated after the data window (ms)


def neuron(settings: Settings, spiking: bool = True) -> dict:
    """``IF_curr_exp`` parameters: rest 0 mV, threshold 1 mV, ``cm = 1`` nF."""
    return dict(v_rest=0.0, v_reset=0.0, v_thresh=1.0 if spiking else 1e9, cm=1.0,
                tau_m=settings.tau_m, tau_syn_E=settings.tau_syn, tau_syn_I=settings.tau_syn,
                tau_refrac=settings.tau_refrac, i_offset=0.0)  # fmt: skip


def threshold_weight(settings: Settings) -> float:
    """Weight (nA) of one spike whose PSP peaks at 1 mV: ``cm = 1`` nF, peak of
    ``tau_m tau_s / (tau_m - tau_s) (exp(-t/tau_m) - exp(-t/tau_s)) / tau_s`` per nA."""
    tm, ts = settings.tau_m, settings.tau_syn
    t = np.log(tm / ts) * tm * ts / (tm - ts)  # time of the peak
    return 1.0 / (tm / (tm - ts) * (np.exp(-t / tm) - np.exp(-t / ts)))


def make_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    if name == "max":
        return MaxVoltageCrossEntropy()
    return AverageVoltageCrossEntropy("uniform" if name == "average" else "exponential")


def build_network(settings: Settings, n_inputs: int, n_classes: int):
    """``(inputs, hidden, output, projections)`` of a fresh simulation."""
    sim.setup(timestep=settings.dt, min_delay=settings.dt)
    rng = np.random.default_rng(settings.seed)
    inputs = sim.Population(n_inputs, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(settings.hidden, sim.IF_curr_exp(**neuron(settings)), label="hidden")
    output = sim.Population(n_classes, sim.IF_curr_exp(**neuron(settings, False)), label="output")
    for population in (hidden, output):
        population.initialize(v=0.0)
    dt = settings.dt  # delays are at least one step
    bounds = (max(settings.delay_bounds[0], dt), settings.delay_bounds[1])

    def rule(lr):
        return EventPropRule(Adam(lr=lr), learn_delays=settings.learn_delays,
                             delay_bounds=bounds if settings.learn_delays else None,
                             delay_lr=settings.delay_lr)  # fmt: skip

    unit, h = threshold_weight(settings), settings.hidden

    def project(pre, post, weight, delay_range, label, lr=settings.lr):
        delay = rng.uniform(max(delay_range[0], dt), max(delay_range[1], dt), weight.shape)
        synapse = EventPropSynapse(weight=weight, delay=delay, rule=rule(lr))
        connector = sim.AllToAllConnector(allow_self_connections=True)
        return sim.Projection(pre, post, connector, synapse, label=label)

    projections = [
        project(inputs, hidden, unit * rng.uniform(*settings.input_weight, (n_inputs, h)),
                settings.input_delay, "input-hidden"),
        project(hidden, output, unit * rng.normal(0.0, settings.hidden_weight, (h, n_classes)),
                settings.hidden_delay, "hidden-output"),
    ]  # fmt: skip
    if settings.recurrent:
        recurrent = rng.normal(settings.recurrent_mean, settings.recurrent_weight, (h, h))
        projections.append(
            project(hidden, hidden, unit * recurrent, settings.hidden_delay, "hidden-hidden",
                    settings.recurrent_lr or settings.lr)
        )  # fmt: skip
    return inputs, hidden, output, projections


#: Float options of :func:`add_arguments`: Settings field -> help text.
_RATES_AND_RECURRENCE = {
    "lr": "Adam rate of the weights (default %(default)s)",
    "delay_lr": "Adam rate of the delays, ms per update (default %(default)s)",
    "recurrent_lr": "Adam rate of the recurrent weights (default %(default)s; None: --lr)",
    "recurrent_weight": "std of the initial recurrent weights, threshold units "
    "(default %(default)s)",
    "recurrent_mean": "mean of the initial recurrent weights, threshold units "
    "(default %(default)s)",
}


def add_arguments(parser: argparse.ArgumentParser, defaults: Settings):
    """Command-line options for every field of :class:`Settings` that a user tunes."""
    add = parser.add_argument
    add("--hidden", type=int, default=defaults.hidden, help="hidden neurons (default %(default)s)")
    add(
        "--recurrent",
        action=argparse.BooleanOptionalAction,
        default=defaults.recurrent,
        help="all-to-all recurrent hidden layer (default %(default)s)",
    )
    add(
        "--learn-delays",
        action=argparse.BooleanOptionalAction,
        default=defaults.learn_delays,
        help="learn the delays too (default %(default)s)",
    )
    add("--epochs", type=int, default=defaults.epochs, help="epochs (default %(default)s)")
    add("--batch-size", type=int, default=defaults.batch_size, help="default %(default)s")
    for name, text in _RATES_AND_RECURRENCE.items():
        option = "--" + name.replace("_", "-")
        add(option, type=float, default=getattr(defaults, name), help=text)
    add("--dt", type=float, default=defaults.dt, help="time step, ms (default %(default)s)")
    add("--seed", type=int, default=defaults.seed, help="seed (default %(default)s)")
    add("--loss", choices=LOSSES, default=defaults.loss, help="voltage loss (default %(default)s)")
    add("--out", default=None, help="output directory")
    add("--json", default=None, help="write the figures as JSON here")
    add("--no-progress", action="store_true", help="no progress bars")  # fmt: skip


def settings_from(args, defaults: Settings) -> Settings:
    names = ("hidden", "recurrent", "learn_delays", "epochs", "batch_size", "lr", "delay_lr",
             "recurrent_lr", "recurrent_weight", "recurrent_mean", "dt", "seed",
             "loss")  # fmt: skip
    return Settings(**{**asdict(defaults), **{n: getattr(args, n) for n in names}})


def run(settings: Settings, train, validation, test, out=None, progress=False, log=print):
    """Train, test and (with ``out``) write history, Neo and a figure; returns the figures."""
    inputs, hidden, output, projections = build_network(settings, train.n_inputs,
                                                        train.n_classes)  # fmt: skip
    initial_delays = {p.label: p.get("delay", format="array") for p in projections}
    trainer = Trainer(inputs, output, make_loss(settings.loss),
                      duration=train.duration + settings.extra_time,
                      batch_size=settings.batch_size, seed=settings.seed,
                      progress=progress)  # fmt: skip
    start = time.perf_counter()
    checkpoint = None if out is None else Path(out) / "checkpoint.npz"
    history = trainer.fit(train, settings.epochs, validation=validation, keep_best=True,
                          checkpoint=checkpoint)  # fmt: skip
    seconds = time.perf_counter() - start
    metrics = trainer.evaluate(test)
    figures = {
        "test_accuracy": metrics["accuracy"],
        "test_loss": metrics["loss"],
        "best_epoch": trainer.best_epoch,
        "train_seconds": seconds,
        "samples_per_s": settings.epochs * len(train) / seconds,
        "settings": asdict(settings),
    }
    log(f"test accuracy {metrics['accuracy']:.4f} ({metrics['n']} samples, weights of epoch "
        f"{trainer.best_epoch}, best on validation); {settings.epochs} epochs in {seconds:.1f} s, "
        f"{figures['samples_per_s']:.0f} samples/s")  # fmt: skip
    if out is not None:
        write_outputs(trainer, history, hidden, output, projections, initial_delays, test, out)
        log(f"outputs in {out}/")
    sim.end()
    return figures


def write_outputs(trainer, history, hidden, output, projections, initial_delays, test, out):
    """history.csv/json, test_samples.pkl (Neo: spikes and v of 3 test samples), a figure."""
    out = Path(out)
    history.to_csv(out / "history.csv")
    history.to_json(out / "history.json")
    hidden.record("spikes")
    output.record(["v"])
    trainer.record_samples(test, np.arange(3))
    output.write_data(str(out / "test_samples.pkl"))
    block = output.get_data()
    hidden_block = hidden.get_data()
    final = {p.label: p.get("delay", format="array") for p in projections}
    plot(history, block, hidden_block, initial_delays, final, out / "training.png")


def plot(history, block, hidden_block, initial, final, path):
    """Learning curves, a test sample (hidden raster, output voltages), delay histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    for key in ("accuracy", "val_accuracy"):
        values = [np.nan if v is None else v for v in history[key]]
        axes[0].plot(history["epoch"], values, "o-", markersize=3, label=key)
    axes[0].set(xlabel="epoch", ylabel="accuracy", title="Learning curve")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    segment, hidden_segment = block.segments[0], hidden_block.segments[0]
    for i, train in enumerate(hidden_segment.spiketrains):
        axes[1].plot(train.magnitude, np.full(len(train), i), "|", color="black")
    label = segment.annotations.get("label")
    axes[1].set(xlabel="time (ms)", ylabel="hidden neuron", title=f"Test sample 0 (label {label})")
    v = segment.filter(name="v")[0]
    for i in range(v.shape[1]):
        axes[2].plot(v.times.magnitude, v.magnitude[:, i], label=f"output {i}")
    axes[2].set(xlabel="time (ms)", ylabel="V (mV)", title="Output voltages, sample 0")
    axes[2].legend(fontsize="small")
    for name, delays in final.items():
        before = initial[name][np.isfinite(initial[name])]
        after = delays[np.isfinite(delays)]
        axes[3].hist(before, bins=30, histtype="step", ls=":", label=f"{name} before")
        axes[3].hist(after, bins=30, histtype="step", label=f"{name} after")
    axes[3].set(xlabel="delay (ms)", ylabel="connections", title="Delays")
    axes[3].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(figures, path) -> None:
    """Write ``figures`` (JSON-serialisable) to ``path`` unless it is None or empty."""
    if path:
        Path(path).write_text(json.dumps(figures, indent=1))
