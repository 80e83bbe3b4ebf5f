"""Benchmark of the SpiNNaker2 packet model on the Yin-Yang network (5-120-3).

Prints the mapping and cost report, the packet-counting throughput and the speed of a
forward + loss + backward step on the model relative to the reference engine (both float32).
Training proper (weight updates over epochs) is added when the training code exists.

    python benchmarks/spinnaker2.py [--json PATH] [--png PATH] [--batches 30]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from pynn_eventprop.datasets.encoding import times_to_raster
from pynn_eventprop.datasets.yin_yang import yin_yang_dataset
from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine.adjoint import backward
from pynn_eventprop.engine.raster import Raster
from pynn_eventprop.engine.simulation import Simulation
from pynn_eventprop.eventprop.losses import TTFSCrossEntropy
from pynn_eventprop.spinnaker2 import build_routing, count_traffic, map_network, plan_traffic
from pynn_eventprop.spinnaker2.simulation import Spinnaker2Simulation
from pynn_eventprop.spinnaker2.testing import feedforward


def yin_yang_network(hidden: int, seed: int):
    """5-hidden-3 with Wunderlich & Pehle-like initial weights (hidden N(1.5, 0.8) nA)."""
    rng = np.random.default_rng(seed)
    weights = [rng.normal(1.5, 0.8, (5, hidden)), rng.normal(0.9, 0.8, (hidden, 3))]
    return feedforward([5, hidden, 3], weights=weights)


def batches(dataset, disc, n_steps, batch, n_batches):
    for b in range(n_batches):
        sel = slice(b * batch, (b + 1) * batch)
        spikes, phase = times_to_raster(dataset.times[sel], disc, n_steps)
        yield Raster(spikes, phase.astype(np.float32)), dataset.labels[sel]


def train_step(sim, raster, labels, loss, n_steps, dt):
    """Forward, loss and exact backward of one batch; returns (loss, spikes by population)."""
    sim.reset()
    out = sim.run(n_steps, sources={0: raster}, keep_trajectory=True)
    out_pop = max(out["trajectory"])
    traj = out["trajectory"][out_pop]
    res = loss(traj.spikes.spikes, traj.spikes.phase, traj.v, labels, dt)
    grads = {out_pop: {"phase": res.dL_dphase, "v": res.dL_dv}}
    if isinstance(sim, Spinnaker2Simulation):
        sim.backward(out["trajectory"], out["rasters"], grads)
    else:
        backward(sim, out["trajectory"], out["rasters"], grads)
    return res.loss, {k: r.spikes for k, r in out["rasters"].items()}


def timed(fn, repeat):
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


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
    args = ap.parse_args(argv)

    disc = LIFDiscretisation(args.dt)
    net = yin_yang_network(args.hidden, args.seed)
    data = list(batches(yin_yang_dataset("train"), disc, args.steps, args.batch, args.batches))
    loss = TTFSCrossEntropy()

    t0 = time.perf_counter()
    mapping = map_network(net, args.steps, args.batch)
    routing = build_routing(mapping)
    plan = plan_traffic(mapping, routing)
    build_s = time.perf_counter() - t0

    ref = Simulation(net, disc, args.batch, dtype=np.float32)
    model = Spinnaker2Simulation(net, disc, args.batch, n_steps=args.steps)
    spikes = [train_step(ref, r, y, loss, args.steps, args.dt)[1] for r, y in data]

    def run_all(sim):
        for r, y in data:
            train_step(sim, r, y, loss, args.steps, args.dt)

    def count_all():
        for s in spikes:
            count_traffic(plan, s)

    run_all(model)  # warm-up (numba compilation) and the counted traffic of one pass
    run_all(ref)
    report = model.report()
    t_ref = timed(lambda: run_all(ref), 3)
    model_traffic = model.traffic
    t_model = timed(lambda: run_all(model), 3)
    model.traffic = model_traffic  # keep the report's traffic to one pass over the batches
    t_count = timed(count_all, 3)
    n = args.batch * args.batches

    d = report.to_dict()
    tr = d["traffic"]
    numbers = {
        "config": vars(args),
        "mapping_and_routing_build_s": build_s,
        "pes_used": d["mapping"]["pes_used"],
        "chips_used": d["mapping"]["chips_used"],
        "sram_max_used_bytes": d["mapping"]["sram_per_pe"]["max_used"],
        "routing_max_entries": d["routing"]["max_entries"],
        "packets_per_sample": {k: v["packets"] for k, v in tr["packets_per_sample"].items()},
        "hops_per_sample": {k: v["hops"] for k, v in tr["packets_per_sample"].items()},
        "error_saving_ratio": tr["event_vs_dense_errors"]["saving_ratio"],
        "time_per_sample_ms": d["cost"]["time_per_sample_ms"],
        "energy_per_sample_uJ_total": {
            m: v["total"] for m, v in d["cost"]["energy_per_sample_uJ"].items()
        },
        "reference_samples_per_s": n / t_ref,
        "model_samples_per_s": n / t_model,
        "speed_ratio_model_to_reference": t_ref / t_model,
        "packet_counting_samples_per_s": n / t_count,
    }
    print(report.text())
    print()
    print(f"mapping + routing + plan built in {build_s * 1e3:.1f} ms")
    print(
        f"forward+loss+backward, batch {args.batch}, {args.steps} steps of {args.dt} ms: "
        f"reference {numbers['reference_samples_per_s']:.0f} samples/s, model "
        f"{numbers['model_samples_per_s']:.0f} samples/s "
        f"(ratio {numbers['speed_ratio_model_to_reference']:.2f})"
    )
    print(f"packet counting alone: {numbers['packet_counting_samples_per_s']:.0f} samples/s")
    if args.png:
        report.plot_pe_map(args.png)
        print(f"PE map written to {args.png}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"numbers": numbers, "report": d}, fh, indent=1, default=float)
        print(f"numbers written to {args.json}")
    return numbers


if __name__ == "__main__":
    main()
