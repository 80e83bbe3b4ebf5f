"""Benchmark of the SpiNNaker2 packet model on the Yin-Yang network (5-120-3).

Prints the model's report (mapping, packets, time and energy per training sample, the
sensitivity table) after training a few batches, the speed of a training step (forward, loss,
backward, update) on the model relative to the reference engine (both float32, alternating),
and the training throughput: the Yin-Yang example network trained through the PyNN API and the
:class:`~pynn_eventprop.eventprop.training.Trainer` for one epoch at a time, on the model
(``sim.setup(..., platform="spinnaker2")``) and on the reference engine in float32 and in its
default float64, in alternating repeats (the machine is shared: a ratio of neighbouring
measurements is steadier than a ratio of medians).  The model's packets per *training* sample
are quoted from the last trained epoch.

    python benchmarks/spinnaker2.py [--json PATH] [--png PATH] [--batches 30]
                                    [--train-repeats 5] [--train-samples 5000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from pynn_eventprop.datasets.yin_yang import yin_yang_dataset
from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine.platforms import make_engine
from pynn_eventprop.spinnaker2 import build_routing, map_network, plan_traffic
from pynn_eventprop.spinnaker2.testing import feedforward
from pynn_eventprop.training import SGD, Learner, TrainingStep, TTFSCrossEntropy

#: the training runs' platforms: (name, platform, Trainer dtype)
TRAINING_RUNS = (
    ("model", "spinnaker2", np.float32),
    ("reference_float32", "reference", np.float32),
    ("reference_float64", "reference", None),
)


def yin_yang_network(hidden: int, seed: int, dt: float):
    """5-hidden-3 with Wunderlich & Pehle-like initial weights (hidden N(1.5, 0.8) nA)."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(1.5, 0.8, (5, hidden)), rng.normal(0.9, 0.8, (hidden, 3))]
    return feedforward([5, hidden, 3], weights=weights, dt=dt)


def batches(dataset, batch, n_batches):
    for b in range(n_batches):
        sel = slice(b * batch, (b + 1) * batch)
        yield dataset.times[sel], dataset.labels[sel]


def train_step(engine, times, labels, loss, n_steps, lr=1e-3):
    """Forward, loss, exact backward and an SGD update of one batch (``TrainingStep.train``:
    on the model the loss and update programs run on its PEs); returns the loss."""
    step = TrainingStep(engine, 0, len(engine.network.populations) - 1, loss, n_steps)
    learners = {k: Learner(SGD(lr)) for k in range(len(engine.network.projections))}
    forward, _ = step.train(times, labels, learners)
    return forward.loss.loss


def timed(fn, repeat):
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def train_epoch(args, platform, dtype, train, epochs=1):
    """Build the Yin-Yang example network on ``platform`` and train it.

    Returns ``(wall seconds, process CPU seconds, trainer)`` of the training alone.

    Every call starts from the same initial weights (the example's seeded initialisation), so
    the platforms compute the same training (identical on the model and the float32 engine).
    """
    import pynn_eventprop as sim
    from pynn_eventprop.eventprop.training import Trainer
    from pynn_eventprop.tasks import yin_yang

    options = ["--hidden", str(args.hidden), "--dt", str(args.dt), "--platform", platform]
    options += ["--duration", str(args.steps * args.dt), "--batch-size", str(args.batch)]
    options += ["--train-samples", str(len(train)), "--seed", str(args.seed)]
    example = yin_yang.parse_args(options)
    inputs, _, output = yin_yang.build_network(example)
    loss = TTFSCrossEntropy(xi=0.5, alpha=3e-3, beta=6.4, silent_push=1.0, theta=1.0)
    trainer = Trainer(
        inputs,
        output,
        loss,
        duration=example.duration,
        batch_size=example.batch_size,
        seed=example.seed,
        dtype=dtype,
        progress=False,
    )
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(train, epochs)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    sim.end()
    return seconds, cpu, trainer


def training_throughput(args) -> dict:
    """Samples per second of Trainer epochs on the model and the reference engine.

    Repeats alternate between the platforms; the speed ratio is the median over repeats of
    model / reference samples per second measured next to each other, by wall-clock time and
    by the process's CPU time (less sensitive to other work on a shared machine).
    """
    from pynn_eventprop.datasets import LatencyCode

    code = LatencyCode(t_early=0.0, t_late=30.0, bias_time=0.0)
    train = yin_yang_dataset("train", code).subset(np.arange(args.train_samples))
    for _, platform, dtype in TRAINING_RUNS:  # numba compilation, caches
        train_epoch(args, platform, dtype, train.subset(np.arange(4 * args.batch)))
    rates = {name: [] for name, _, _ in TRAINING_RUNS}
    cpu_rates = {name: [] for name, _, _ in TRAINING_RUNS}
    weights = {}
    for _ in range(args.train_repeats):
        for name, platform, dtype in TRAINING_RUNS:
            seconds, cpu, trainer = train_epoch(args, platform, dtype, train)
            rates[name].append(len(train) / seconds)
            cpu_rates[name].append(len(train) / cpu)
            engine = trainer.engine
            weights[name] = [engine.get_weights(k) for k in range(len(engine.network.projections))]
            if platform == "spinnaker2":
                model = engine

    def ratio(values, ref):
        pairs = zip(values["model"], values[ref], strict=True)
        return statistics.median(m / r for m, r in pairs)

    references = ("reference_float32", "reference_float64")
    ratios = {f"model_to_{ref}": ratio(rates, ref) for ref in references}
    cpu_ratios = {f"model_to_{ref}": ratio(cpu_rates, ref) for ref in references}
    difference = max(
        float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
        for a, b in zip(weights["model"], weights["reference_float32"], strict=True)
    )
    d = model.report().to_dict()
    tr = d["traffic"]
    return {
        "network": f"5-{args.hidden}-3",
        "train_samples": len(train),
        "repeats": args.train_repeats,
        "samples_per_s": {k: v for k, v in rates.items()},
        "samples_per_s_median": {k: statistics.median(v) for k, v in rates.items()},
        "speed_ratio": ratios,
        "cpu_samples_per_s_median": {k: statistics.median(v) for k, v in cpu_rates.items()},
        "cpu_speed_ratio": cpu_ratios,
        "weights_max_relative_difference_model_vs_reference_float32": difference,
        "pes_used": d["mapping"]["pes_used"],
        "chips_used": d["mapping"]["chips_used"],
        "traffic_scope": tr["scope"],
        "training_samples_counted": tr["samples_counted"],
        "packets_per_training_sample": {
            k: v["packets"] for k, v in tr["packets_per_sample"].items()
        },
        "deliveries_per_training_sample": {
            k: v["deliveries"] for k, v in tr["packets_per_sample"].items()
        },
        "error_saving_ratio": tr["event_vs_dense_errors"]["saving_ratio"],
        "dense_error_packets_per_sample": tr["event_vs_dense_errors"]["dense_packets_per_sample"],
        "report": d,
    }


def print_training(t: dict):
    med, ratio = t["samples_per_s_median"], t["speed_ratio"]
    print(
        f"training through the Trainer, {t['network']}, {t['train_samples']} samples per epoch, "
        f"median of {t['repeats']} alternating repeats:"
    )
    for name, rate in med.items():
        runs = ", ".join(f"{r:.0f}" for r in t["samples_per_s"][name])
        cpu = t["cpu_samples_per_s_median"][name]
        print(f"  {name:>18s}: {rate:7.0f} samples/s ({runs}); per CPU second {cpu:.0f}")
    for label, r in (("wall clock", ratio), ("CPU time", t["cpu_speed_ratio"])):
        print(
            f"  speed ratio model / reference ({label}): {r['model_to_reference_float32']:.2f} "
            f"(float32), {r['model_to_reference_float64']:.2f} (float64); target >= 0.33"
        )
    diff = t["weights_max_relative_difference_model_vs_reference_float32"]
    print(
        f"  model weights after the last epoch against the float32 reference's: largest "
        f"difference {diff:.1e} of the largest weight (32-bit packet payloads round spike "
        "times, errors and gradient words to float32)"
    )
    packets = ", ".join(f"{k} {v:.1f}" for k, v in t["packets_per_training_sample"].items())
    print(
        f"  model: {t['pes_used']} PEs on {t['chips_used']} "
        f"{'chip' if t['chips_used'] == 1 else 'chips'}; packets per training sample "
        f"({t['training_samples_counted']} counted): {packets}; event-based error packets: "
        f"{t['dense_error_packets_per_sample'] / t['error_saving_ratio']:.1f} against "
        f"{t['dense_error_packets_per_sample']:.0f} dense"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the numbers (and the report dict) to this file")
    ap.add_argument("--png", help="write the PE map picture to this file")
    ap.add_argument("--batch", type=int, default=22)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=120)
    ap.add_argument("--dt", type=float, default=1.0, help="ms")
    ap.add_argument("--steps", type=int, default=40, help="steps per sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-repeats", type=int, default=5, help="0: skip the training runs")
    ap.add_argument("--train-samples", type=int, default=5000, help="samples per epoch")
    args = ap.parse_args(argv)

    disc = LIFDiscretisation(args.dt)
    net = yin_yang_network(args.hidden, args.seed, args.dt)
    data = list(batches(yin_yang_dataset("train"), args.batch, args.batches))
    loss = TTFSCrossEntropy()

    t0 = time.perf_counter()
    mapping = map_network(net, args.steps, args.batch, dt=args.dt)
    routing = build_routing(mapping)
    plan_traffic(mapping, routing)
    build_s = time.perf_counter() - t0

    ref = make_engine("reference", net, disc, args.batch, np.float32)
    model = make_engine("spinnaker2", net, disc, args.batch, options={"n_steps": args.steps})

    def run_all(engine):
        for t, y in data:
            train_step(engine, t, y, loss, args.steps)

    run_all(model)  # warm-up (numba compilation) and the counted traffic of one pass
    run_all(ref)
    report = model.report()
    traffic = model.traffic, model.training_traffic, model._last_batch
    t_ref, t_model = [], []
    for _ in range(3):  # alternating: the machine is shared
        t_ref.append(timed(lambda: run_all(ref), 1))
        t_model.append(timed(lambda: run_all(model), 1))
    model.traffic, model.training_traffic, model._last_batch = traffic  # one pass in the report
    ratio = statistics.median(r / m for r, m in zip(t_ref, t_model, strict=True))
    n = args.batch * args.batches

    d = report.to_dict()
    tr = d["traffic"]
    cost = d["cost"]
    numbers = {
        "config": vars(args),
        "mapping_and_routing_build_s": build_s,
        "pes_used": d["mapping"]["pes_used"],
        "chips_used": d["mapping"]["chips_used"],
        "replicas": d["mapping"]["replicas"],
        "sram_max_used_bytes": d["mapping"]["sram_per_pe"]["max_used"],
        "routing_max_entries": d["routing"]["max_entries"],
        "packets_per_sample": {k: v["packets"] for k, v in tr["packets_per_sample"].items()},
        "hops_per_sample": {k: v["hops"] for k, v in tr["packets_per_sample"].items()},
        "error_packets_event_vs_dense": tr["event_vs_dense_errors"],
        "time_per_sample_ms": cost["time_per_sample_ms"],
        "batch_latency_ms": cost["batch_latency_ms"],
        "energy_per_sample_uJ_total": {
            m: v["total"] for m, v in cost["energy_per_sample_uJ"].items()
        },
        "reference_samples_per_s": n / statistics.median(t_ref),
        "model_samples_per_s": n / statistics.median(t_model),
        "speed_ratio_model_to_reference": ratio,
        "packet_problems": list(model.problems),
    }
    print(report.text())
    print()
    print(f"mapping + routing + plan built in {build_s * 1e3:.1f} ms")
    print(
        f"training steps (forward, loss, backward, update), batch {args.batch}, {args.steps} "
        f"steps of {args.dt} ms, 3 alternating repeats: reference "
        f"{numbers['reference_samples_per_s']:.0f} samples/s, model "
        f"{numbers['model_samples_per_s']:.0f} samples/s (median ratio {ratio:.2f}; "
        "target >= 0.33)"
    )
    if args.png:
        report.plot_pe_map(args.png)
        print(f"PE map written to {args.png}")
    training = None
    if args.train_repeats > 0:
        training = training_throughput(args)
        print()
        print_training(training)
        numbers["training"] = {k: v for k, v in training.items() if k != "report"}
    if args.json:
        out = {"numbers": numbers, "report": d}
        if training is not None:
            out["training_report"] = training["report"]
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
        print(f"numbers written to {args.json}")
    return numbers


if __name__ == "__main__":
    main()
