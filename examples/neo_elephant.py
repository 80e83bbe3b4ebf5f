"""Analyse a trained network's recordings with Elephant, as with any PyNN simulator.

The script trains a small Yin-Yang network with EventProp (seconds), then presents test
samples one after another in a single ordinary PyNN run, records spikes with ``record()``
and takes the Neo ``Block`` from ``get_data()``.  The analysis part uses Neo, quantities,
Elephant and matplotlib only; it is the code a pyNN.nest user would write, and runs unchanged
on data recorded by any PyNN backend:

* mean firing rate per neuron (``elephant.statistics.mean_firing_rate``);
* inter-spike intervals and their coefficient of variation (``isi``, ``cv``);
* population rate over time (``time_histogram``);
* pairwise correlation of binned spike trains (``BinnedSpikeTrain``,
  ``elephant.spike_train_correlation.correlation_coefficient``).

Needs the ``elephant`` and ``examples`` extras.  Usage:
``python examples/neo_elephant.py [--samples 50] [--out out/neo_elephant]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import quantities as pq

import pynn_eventprop as sim
from pynn_eventprop.datasets import LatencyCode, yin_yang_dataset
from pynn_eventprop.eventprop import Adam, TTFSCrossEntropy
from pynn_eventprop.eventprop.synapses import EventPropRule, EventPropSynapse
from pynn_eventprop.eventprop.training import Trainer
from pynn_eventprop.neurons import WP_NEURON as NEURON  # tau_m 20, tau_syn 5 ms, threshold 1 mV

SAMPLE_PERIOD = 40.0  # ms between the starts of two presented samples


def train_network(hidden_size=40, epochs=5, train_samples=2000, seed=1):
    """A 5-``hidden_size``-3 Yin-Yang network trained with EventProp; returns populations."""
    sim.setup(timestep=1.0, min_delay=1.0)
    rng = sim.NumpyRNG(seed=seed)
    inputs = sim.Population(5, sim.SpikeSourceArray(), label="input")
    hidden = sim.Population(hidden_size, sim.IF_curr_exp(**NEURON), label="hidden")
    output = sim.Population(3, sim.IF_curr_exp(**NEURON), label="output")
    hidden.initialize(v=0.0)
    output.initialize(v=0.0)
    rule = EventPropRule(Adam(lr=5e-3), max_grad_norm=1.0)
    for pre, post, mean in ((inputs, hidden, 1.5), (hidden, output, 0.5)):
        weights = sim.RandomDistribution("normal", (mean, mean), rng=rng)
        synapse = EventPropSynapse(weight=weights, delay=1.0, rule=rule)
        sim.Projection(pre, post, sim.AllToAllConnector(), synapse)
    code = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
    train = yin_yang_dataset("train", code).subset(np.arange(train_samples))
    loss = TTFSCrossEntropy(xi=0.5, alpha=3e-3, beta=6.4, silent_push=10.0, theta=1.0)
    trainer = Trainer(inputs, output, loss, duration=40.0, batch_size=32, seed=seed,
                      progress=False)  # fmt: skip
    trainer.fit(train, epochs)  # writes the trained weights into the Projections
    test = yin_yang_dataset("test", code)
    print(f"test accuracy after {epochs} epochs: {trainer.evaluate(test)['accuracy']:.3f}")
    return inputs, hidden, output, test


def present(inputs, hidden, output, times):
    """Present samples ``times`` ``(n, 5)`` every SAMPLE_PERIOD ms; return the Neo Blocks."""
    offsets = SAMPLE_PERIOD * np.arange(len(times))[:, None]
    shifted = times + offsets
    inputs.set(spike_times=[sim.Sequence(np.sort(col[np.isfinite(col)])) for col in shifted.T])
    hidden.record("spikes")
    output.record(["spikes", "v"])
    sim.run(SAMPLE_PERIOD * len(times))
    return hidden.get_data(), output.get_data()


# --- the analysis: Neo + Elephant only, whatever simulator recorded the data -----------------
def analyse(block, bin_size=10 * pq.ms):
    """Rates (Hz), ISI CVs, population rate and binned correlations of a Block's first segment."""
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient
    from elephant.statistics import cv, isi, mean_firing_rate, time_histogram

    trains = block.segments[0].spiketrains
    rates = np.array([float(mean_firing_rate(st).rescale(pq.Hz)) for st in trains])
    cvs = np.array([cv(isi(st).magnitude) for st in trains if len(st) >= 3])
    population_rate = time_histogram(list(trains), bin_size=bin_size, output="rate")
    active = [st for st in trains if len(st) > 0]
    correlations = correlation_coefficient(BinnedSpikeTrain(active, bin_size=bin_size))
    return {
        "trains": trains,
        "rates": rates,
        "cvs": cvs,
        "population_rate": population_rate,
        "correlations": correlations,
    }


def plot(hidden, output, path):
    """Raster, population rate, rate and CV distributions, correlation matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    n_hidden = len(hidden["trains"])
    for offset, result, colour in ((0, hidden, "tab:blue"), (n_hidden, output, "tab:red")):
        for k, st in enumerate(result["trains"]):
            axes[0].plot(st.magnitude, np.full(len(st), offset + k), "|", color=colour, ms=3)
    axes[0].set(xlabel="time (ms)", ylabel="neuron (hidden blue, output red)", title="Raster")
    rate = hidden["population_rate"]
    axes[1].plot(rate.times.rescale(pq.ms), rate.rescale(pq.Hz).magnitude.ravel())
    axes[1].set(xlabel="time (ms)", ylabel="rate (Hz)", title="Hidden population rate")
    axes[2].hist(hidden["rates"], bins=20, alpha=0.6, label="rate (Hz), hidden")
    twin = axes[2].twiny()
    twin.hist(hidden["cvs"], bins=20, alpha=0.6, color="tab:green", label="ISI CV")
    axes[2].set(xlabel="mean firing rate (Hz)", ylabel="neurons", title="Rates and ISI CV")
    twin.set_xlabel("ISI coefficient of variation (green)")
    image = axes[3].imshow(hidden["correlations"], vmin=-1, vmax=1, cmap="RdBu_r")
    axes[3].set(title="Correlation of binned trains (active hidden)", xlabel="neuron")
    fig.colorbar(image, ax=axes[3])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50, help="test samples presented")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="out/neo_elephant")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs, hidden_pop, output_pop, test = train_network(epochs=args.epochs)
    hidden_block, output_block = present(inputs, hidden_pop, output_pop, test.times[: args.samples])
    hidden, output = analyse(hidden_block), analyse(output_block)
    for name, result in (("hidden", hidden), ("output", output)):
        off_diagonal = result["correlations"][~np.eye(len(result["correlations"]), dtype=bool)]
        print(
            f"{name}: mean rate {result['rates'].mean():.1f} Hz "
            f"(range {result['rates'].min():.1f}-{result['rates'].max():.1f}), "
            f"median ISI CV {np.median(result['cvs']) if result['cvs'].size else float('nan'):.2f}"
            f", mean pairwise correlation {np.nanmean(off_diagonal):.3f}"
        )
    plot(hidden, output, out / "neo_elephant.png")
    print(f"figure: {out / 'neo_elephant.png'}")
    sim.end()


if __name__ == "__main__":
    main()
