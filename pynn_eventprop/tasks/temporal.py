"""What the temporal tasks (Randman, the delay task) share: the network, the run, the outputs.

The network is ``input -> hidden -> output`` of ``IF_curr_exp`` neurons, every projection an
``EventPropSynapse``; optionally the hidden population is recurrent (all-to-all, self
connections included) and the projections learn their delays; with ``input_fan_in = K`` every
hidden neuron receives only K (random, distinct) of the inputs.  The output neurons never fire
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
from pynn_eventprop.datasets.container import SpikeDataset
from pynn_eventprop.datasets.spike_trains import SpikeTrainDataset
from pynn_eventprop.eventprop import (
    Adam,
    AverageVoltageCrossEntropy,
    MaxVoltageCrossEntropy,
    SumVoltageCrossEntropy,
)
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer

LOSSES = ("max", "average", "average_exp", "sum", "sum_exp")


@dataclass
class Settings:
    """Network and training settings (ms, mV, nA; weights in units of
    :func:`threshold_weight`, whose PSP peaks at ``tau_syn / 1 ms`` mV)."""

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
    input_weight: tuple = (0.3, 2.0)  # uniform, in weight units
    input_delay: tuple = (0.5, 50.0)  # uniform initial delays, ms
    hidden_weight: float = 1.0  # std of normal weights hidden -> output
    recurrent_weight: float = 0.2  # std of normal recurrent weights
    recurrent_mean: float = 0.0  # mean of the recurrent weights (< 0: lateral inhibition)
    recurrent_lr: float | None = None  # Adam rate of the recurrent weights (default: lr)
    recurrent_self: float = 0.0  # added to the initial self-connections, weight units
    hidden_delay: tuple = (0.5, 2.0)
    recurrent_delay: tuple | None = None  # initial recurrent delays, ms (None: hidden_delay)
    delay_bounds: tuple = (0.5, 60.0)
    loss: str = "max"
    extra_time: float = 20.0  # simulated after the data window (ms)
    go_cue: float | None = None  # go cue this long after the data window (ms); None: none
    go_weight: float = 20.0  # weight of the go cue onto every output, weight units
    input_fan_in: int | None = None  # inputs per hidden neuron (random, distinct); None: all


def neuron(settings: Settings, spiking: bool = True) -> dict:
    """``IF_curr_exp`` parameters: rest 0 mV, threshold 1 mV, ``cm = 1`` nF."""
    return dict(v_rest=0.0, v_reset=0.0, v_thresh=1.0 if spiking else 1e9, cm=1.0,
                tau_m=settings.tau_m, tau_syn_E=settings.tau_syn, tau_syn_I=settings.tau_syn,
                tau_refrac=settings.tau_refrac, i_offset=0.0)  # fmt: skip


def threshold_weight(settings: Settings) -> float:
    """The weight unit (nA) of the settings: ``1 / (tau_m / (tau_m - tau_s) (exp(-t/tau_m) -
    exp(-t/tau_s)))`` at the time ``t`` of the peak of the PSP.

    Meant as the weight whose PSP peaks at 1 mV, but the PSP per nA (``cm = 1`` nF) is
    ``tau_m tau_s / (tau_m - tau_s) (exp(-t/tau_m) - exp(-t/tau_s))`` mV, ``tau_s / 1 ms``
    times the denominator: one unit peaks at ``tau_s / 1 ms`` mV (5 mV for ``tau_syn = 5``
    ms, 1 mV for 1 ms).  Kept as it is so that measured settings stay reproducible.
    """
    tm, ts = settings.tau_m, settings.tau_syn
    t = np.log(tm / ts) * tm * ts / (tm - ts)  # time of the peak
    return 1.0 / (tm / (tm - ts) * (np.exp(-t / tm) - np.exp(-t / ts)))


def make_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    if name == "max":
        return MaxVoltageCrossEntropy()
    weighting = "exponential" if name.endswith("_exp") else "uniform"
    if name.startswith("sum"):
        return SumVoltageCrossEntropy(weighting)  # the voltage summed over 1 ms units
    return AverageVoltageCrossEntropy(weighting)


def build_network(settings: Settings, n_inputs: int, n_classes: int):
    """``(inputs, hidden, output, projections)`` of a fresh simulation.

    With ``settings.go_cue`` the input population has one more neuron, the go cue (see
    :func:`with_go_cue`), which projects only to the outputs, with the fixed (untrained)
    weight ``settings.go_weight`` weight units; the ``n_inputs`` data inputs project to the
    hidden layer.

    With ``settings.input_fan_in = K`` every hidden neuron receives only K of the ``n_inputs``
    data inputs, K distinct ones drawn at random (:func:`input_mask`, from ``settings.seed``
    but its own generator, so that the weights and delays drawn are those of the all-to-all
    network, with the other connections left out).  ``None``, or K = ``n_inputs``, is
    all-to-all.
    """
    sim.setup(timestep=settings.dt, min_delay=settings.dt)
    rng = np.random.default_rng(settings.seed)
    go = settings.go_cue is not None
    inputs = sim.Population(n_inputs + go, sim.SpikeSourceArray(), label="input")
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
    mask = input_mask(settings, n_inputs)

    def project(pre, post, weight, delay_range, label, lr=settings.lr):
        delay = rng.uniform(max(delay_range[0], dt), max(delay_range[1], dt), weight.shape)
        if pre is inputs and (go or mask is not None):  # the data inputs (not the go cue)
            connector = _list_connector(weight, delay, mask=mask)
            synapse = EventPropSynapse(rule=rule(lr))
        else:
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
        recurrent[np.diag_indices(h)] += settings.recurrent_self
        projections.append(
            project(hidden, hidden, unit * recurrent,
                    settings.recurrent_delay or settings.hidden_delay, "hidden-hidden",
                    settings.recurrent_lr or settings.lr)
        )  # fmt: skip
    if go:  # the go cue to every output, fixed
        cue = _list_connector(np.full((1, n_classes), settings.go_weight * unit),
                              np.full((1, n_classes), dt), first=n_inputs)  # fmt: skip
        sim.Projection(inputs, output, cue, sim.StaticSynapse(), label="go-output")
    return inputs, hidden, output, projections


def input_mask(settings: Settings, n_inputs: int):
    """``(n_inputs, hidden)`` booleans, True where an input reaches a hidden neuron: every
    column has ``settings.input_fan_in`` True entries, at distinct random rows; ``None`` when
    every input reaches every hidden neuron (``input_fan_in`` None or ``n_inputs``)."""
    k = settings.input_fan_in
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_inputs:
        raise ValueError(f"input_fan_in must be an integer in [1, {n_inputs}], got {k!r}")
    if k == n_inputs:
        return None
    rng = np.random.default_rng([settings.seed, 1])  # its own stream: weights stay as dense
    mask = np.zeros((n_inputs, settings.hidden), dtype=bool)
    for j in range(settings.hidden):
        mask[rng.choice(n_inputs, size=k, replace=False), j] = True
    return mask


def _list_connector(weight, delay, first: int = 0, mask=None):
    """A ``FromListConnector`` joining presynaptic neurons ``first, first + 1, ...`` (rows) to
    every postsynaptic neuron (columns) with the given weights and delays; with ``mask`` (the
    shape of ``weight``) only the pairs where it is True."""
    i, j = np.indices(weight.shape).reshape(2, -1)
    keep = np.ones(i.size, dtype=bool) if mask is None else np.asarray(mask).ravel()
    table = np.column_stack([i + first, j, weight.ravel(), delay.ravel()])[keep]
    return sim.FromListConnector(table, column_names=["weight", "delay"])


def with_go_cue(data, gap: float):
    """``data`` (a ``SpikeDataset`` or ``SpikeTrainDataset``) with one more input, a go cue
    firing ``gap`` ms after its window in every sample; the window grows to end at the cue.

    The cue's postsynaptic potential in the outputs (the same in each) rises far above what
    the hidden layer adds and peaks about ``tau_m tau_syn ln(tau_m/tau_syn) / (tau_m -
    tau_syn)`` ms after it arrives; the maximum of every output's voltage, which the
    max-voltage loss reads, then falls close to that peak.  The loss compares the outputs at the
    cue, so the network must carry the class from the data window to the cue.
    """
    end, name = data.duration + gap, f"{data.name}, go cue at {data.duration + gap:g} ms"
    n = len(data.labels)
    if isinstance(data, SpikeTrainDataset):  # the cue is each sample's last entry
        sample = np.concatenate([np.repeat(np.arange(n), data.counts), np.arange(n)])
        order = np.argsort(sample, kind="stable")
        times = np.concatenate([data.times, np.full(n, end)])[order]
        neurons = np.concatenate([data.neurons, np.full(n, data.n_inputs)])[order]
        return SpikeTrainDataset(times, neurons, data.offsets + np.arange(n + 1), data.labels,
                                 data.n_inputs + 1, data.n_classes, end, data.class_names,
                                 name)  # fmt: skip
    cue = np.full((n, 1), end)
    return SpikeDataset(np.hstack([data.times, cue]), data.labels, data.n_classes, end,
                        data.class_names, name)  # fmt: skip


#: Float options of :func:`add_arguments`: Settings field -> help text.
_RATES_AND_RECURRENCE = {
    "lr": "Adam rate of the weights (default %(default)s)",
    "delay_lr": "Adam rate of the delays, ms per update (default %(default)s)",
    "recurrent_lr": "Adam rate of the recurrent weights (default %(default)s; None: --lr)",
    "recurrent_weight": "std of the initial recurrent weights, weight units (default %(default)s)",
    "recurrent_mean": "mean of the initial recurrent weights, weight units (default %(default)s)",
    "recurrent_self": "added to the initial self-connections, weight units (default %(default)s)",
    "go_weight": "weight of the go cue (--go-cue), weight units (default %(default)s)",
}


def add_arguments(parser: argparse.ArgumentParser, defaults: Settings):
    """Command-line options for every field of :class:`Settings` that a user tunes."""
    from ..cli import output_file

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
    _add_memory_options(add, defaults)
    add("--out", default=None, help="output directory")
    add("--json", default=None, type=output_file, help="write the figures as JSON here")
    add("--no-progress", action="store_true", help="no progress bars")  # fmt: skip


def _add_memory_options(add, defaults: Settings):
    """Options of the settings that make a task need memory: the go cue, the delays' reach."""
    add(
        "--go-cue",
        type=float,
        default=defaults.go_cue,
        help="a fixed go cue onto the outputs this many ms after the data window: the loss then "
        "reads the outputs at the cue (default %(default)s: none)",
    )
    add(
        "--max-delay",
        type=float,
        default=defaults.delay_bounds[1],
        help="upper bound of the learned delays, ms (default %(default)s)",
    )
    add(
        "--recurrent-delay",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=defaults.recurrent_delay,
        help="initial recurrent delays uniform in [LOW, HIGH] ms (default: as hidden-output)",
    )


def settings_from(args, defaults: Settings) -> Settings:
    names = ("hidden", "recurrent", "learn_delays", "epochs", "batch_size", "dt", "seed", "loss",
             "go_cue", *_RATES_AND_RECURRENCE)  # fmt: skip
    chosen = {n: getattr(args, n) for n in names}
    if getattr(args, "input_fan_in", None) is not None:  # options of the Randman example
        chosen["input_fan_in"] = args.input_fan_in
    if getattr(args, "input_weight", None) is not None:
        chosen["input_weight"] = tuple(args.input_weight)
    chosen["delay_bounds"] = (defaults.delay_bounds[0], args.max_delay)
    if args.recurrent_delay is not None:
        chosen["recurrent_delay"] = tuple(args.recurrent_delay)
    return Settings(**{**asdict(defaults), **chosen})


def run(settings: Settings, train, validation, test, out=None, progress=False, log=print):
    """Train, test and (with ``out``) write history, Neo and a figure; returns the figures."""
    if settings.go_cue is not None:
        train, validation, test = (
            with_go_cue(d, settings.go_cue) for d in (train, validation, test)
        )
    n_data = train.n_inputs - (settings.go_cue is not None)
    inputs, hidden, output, projections = build_network(settings, n_data, train.n_classes)
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
