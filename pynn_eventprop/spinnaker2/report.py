"""Mapping and cost report: as a dict (JSON-ready), as text and as a PNG picture of the PE map."""

from __future__ import annotations

import json

import numpy as np

from .energy import CostEstimate
from .keys import KIND_BITS
from .mapping import Mapping
from .packets import PROGRAM_OF, Traffic
from .routing import RoutingTables

QPE_COLUMNS = 8  # drawing only: QPEs of a chip in rows of 8


def _mapping_dict(m: Mapping) -> dict:
    hw = m.hardware
    used = m.sram_used()
    return {
        "chips_used": m.chips_used,
        "pes_used": m.n_pes,
        "pes_available": hw.max_chips * hw.pes_per_chip,
        "replicas": m.replicas,
        "local_batch": m.local_batch,
        "pes_per_replica": m.pes_per_replica,
        "n_steps": m.n_steps,
        "batch_size": m.batch_size,
        "training": m.training,
        "populations": [
            {
                "label": pop.label,
                "size": pop.size,
                "model": pop.model,
                "slices": len(m.slices[k]),
                "neurons_per_slice": [sl.size for sl in m.slices[k]],
                "backward": bool(m.flow.backward[k]),
                "loss": k in m.flow.loss_populations,
            }
            for k, pop in enumerate(m.network.populations)
        ],
        "sram_per_pe": {
            "limit": int(hw.sram_per_pe),
            "max_used": int(used.max()),
            "mean_used": float(used.mean()),
        },
        "pes": [
            {
                "pe": pl.pe,
                "chip": pl.chip,
                "core": pl.core,
                "qpe": pl.core // hw.pes_per_qpe,
                "replica": pl.replica,
                "population": m.network.populations[pl.slice.population].label,
                "neurons": [pl.slice.start, pl.slice.stop],
                "update": pl.update,
                "sram_used": pl.sram_used,
                "sram": dict(pl.sram),
            }
            for pl in m.placements
        ],
    }


def _routing_dict(rt: RoutingTables) -> dict:
    ks = rt.keyspace
    return {
        "limit_per_chip": int(rt.mapping.hardware.router_entries_per_chip),
        "entries_per_chip": {str(c): len(t) for c, t in rt.tables.items()},
        "entries_before_merging": {str(c): t.unmerged for c, t in rt.tables.items()},
        "max_entries": max((len(t) for t in rt.tables.values()), default=0),
        "key_fields_bits": {"kind": KIND_BITS, "pe": ks.pe_bits, "index": ks.index_bits},
        "flows": len(rt.flows),
    }


def _traffic_dict(m: Mapping, tr: Traffic) -> dict:
    hw, n = m.hardware, tr.samples
    spike = tr.kinds["spike"]
    kinds = {
        kind: {
            "program": PROGRAM_OF[kind],
            "packets": c.packets / n,
            "deliveries": c.deliveries / n,
            "hops": c.hops / n,
            "bits_per_packet": c.bits_per_packet,
        }
        for kind, c in tr.kinds.items()
    }
    work = {}
    tick_cycles = np.asarray(hw.clock_levels_mhz) * 1e3 * hw.timer_tick_ms
    for program in ("forward", "backward", "loss"):
        peak = float(tr.peak_cycles[program].max(initial=0.0))
        work[program] = {
            "busiest_pe_cycles_per_tick": peak,
            "busiest_pe": int(np.argmax(tr.peak_cycles[program])),
            "tick_cycles": tick_cycles.tolist(),
            "tick_fraction": (peak / tick_cycles).tolist(),
            "overrun_ticks_per_batch": (
                np.asarray(tr.overrun_ticks[program]) / tr.batches
            ).tolist(),
        }
    work["update"] = {"busiest_pe_cycles_per_batch": float(tr.peak_cycles["update"].max())}
    return {
        "samples_counted": n,
        "packets_per_sample": kinds,
        "packets_per_step_per_sample": {
            k: (tr.kinds[k].per_step / n).tolist() for k in ("spike", "error")
        },
        "forward_spike_payload": {
            "payload_bits_per_packet": spike.bits_per_packet - int(hw.key_bits),
            "bits_per_sample": spike.packets / n * spike.bits_per_packet,
            "bits_per_sample_key_only": spike.packets / n * int(hw.key_bits),
        },
        "event_vs_dense_errors": {
            "event_packets_per_sample": tr.kinds["error"].packets / n,
            "dense_packets_per_sample": tr.dense_error_packets / n,
            "saving_ratio": tr.error_saving,
        },
        "operations_per_sample": {k: v / n for k, v in tr.operations.items()},
        "work": work,
        "spike_log": {
            "max_spikes_per_neuron": tr.max_spikes_per_neuron,
            "capacity": tr.spike_log_capacity,
            "overflow": tr.spike_log_overflow,
        },
        "dma_bytes_per_sample": tr.dma_bytes / n,
    }


#: Count nouns the report puts in the singular for one of them.
SINGULAR = {"entries": "entry", "boards": "board", "chips": "chip", "PEs": "PE", "links": "link",
            "neurons": "neuron", "bits": "bit", "bytes": "byte", "replicas": "replica",
            "samples": "sample", "slices": "slice", "ticks": "tick"}  # fmt: skip


def _plural(value, unit: str) -> str:
    """``unit`` for ``value`` of it: "1 board", "2 boards", "1 entry"."""
    return SINGULAR.get(unit, unit) if value == 1 else unit


def _count(value, unit: str) -> str:
    return f"{value} {_plural(value, unit)}"


def _figure_line(fig) -> str:
    value = fig["value"]

    def fmt(v):
        return str(v) if isinstance(v, int) else f"{v:g}"

    shown = ", ".join(fmt(v) for v in value) if isinstance(value, list) else fmt(value)
    unit = fig["unit"] if isinstance(value, list) else _plural(value, fig["unit"])
    return f"    {fig['name']} = {shown} {unit} [{fig['source']}]"


#: Why a packet kind can have no packets (the report says so instead of printing a zero row).
UNUSED = {
    "loss": "each output population is one slice per replica: no readout exchange",
    "norm": "no gradient-norm clip over several update PEs",
    "gradient": "one replica: no gradient reduction",
    "weight": "one replica: no weight broadcast",
    "error": "no population upstream of the loss needs its adjoint",
    "label": "no loss program ran",
    "spike": "no spike was sent",
    "tally": "no phase ended",
}


class Report:
    """The model's report.  Build with :func:`build_report`; ``data`` is the dict form."""

    def __init__(self, mapping, routing, traffic=None, cost=None, cycles=None, scope=None,
                 sensitivity=None):  # fmt: skip
        self.mapping, self.routing, self.traffic, self.cost = mapping, routing, traffic, cost
        self.data = {
            "hardware": mapping.hardware.figures(),
            "mapping": _mapping_dict(mapping),
            "routing": _routing_dict(routing),
        }
        if cycles is not None:
            self.data["operation_cycles"] = cycles.figures()
        if traffic is not None:
            self.data["traffic"] = _traffic_dict(mapping, traffic)
            if scope is not None:
                self.data["traffic"]["scope"] = scope
        if cost is not None:
            self.data["cost"] = cost.to_dict()
        if sensitivity is not None:
            self.data["sensitivity"] = sensitivity

    def to_dict(self) -> dict:
        return self.data

    def to_json(self, path=None, indent: int = 1) -> str:
        """The dict as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.data, indent=indent, default=_json_default)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    def text(self) -> str:
        """A summary a hardware engineer can read: mapping, packets, time, energy, sources."""
        d = self.data
        lines = ["SpiNNaker2 model report"] + self._mapping_lines()
        if "traffic" in d:
            lines += self._traffic_lines()
        if "cost" in d:
            lines += self._cost_lines()
        if "sensitivity" in d:
            lines += self._sensitivity_lines()
        if "cost" in d:
            lines.append("  energy coefficients:")
            lines += [_figure_line(f) for f in d["cost"]["energy_coefficients"]]
        if "operation_cycles" in d:
            lines.append("  cycles per operation (one PE):")
            lines += [_figure_line(f) for f in d["operation_cycles"]]
        lines.append("  hardware figures:")
        lines += [_figure_line(f) for f in d["hardware"]]
        return "\n".join(lines)

    def _mapping_lines(self):
        m, hw = self.data["mapping"], self.mapping.hardware
        lines = [
            f"  mapping: {_count(m['pes_used'], 'PEs')} on {_count(m['chips_used'], 'chips')}: "
            f"{_count(m['replicas'], 'replicas')} of the network x {m['pes_per_replica']} PEs, "
            f"each replica running {_count(m['local_batch'], 'samples')} of a batch of "
            f"{m['batch_size']} at once; {m['n_steps']} ticks of {hw.timer_tick_ms:g} ms per "
            "sample"
        ]
        for p in m["populations"]:
            more = " ..." if p["slices"] > 6 else ""
            lines.append(
                f"    {p['label']:>12s}: {_count(p['size'], 'neurons')} in "
                f"{_count(p['slices'], 'slices')} of {p['neurons_per_slice'][:6]}{more}"
            )
        s, r = m["sram_per_pe"], self.data["routing"]
        lines.append(
            f"  SRAM per PE: at most {s['max_used']} of {s['limit']} bytes "
            f"= {100 * s['max_used'] / s['limit']:.1f} %, mean {s['mean_used']:.0f} bytes"
        )
        fields = ", ".join(f"{k} {v}" for k, v in r["key_fields_bits"].items())
        lines.append(
            f"  routing: at most {r['max_entries']} of {r['limit_per_chip']} entries per chip; "
            f"{sum(map(int, r['entries_before_merging'].values()))} entries before key/mask "
            f"merging, {sum(map(int, r['entries_per_chip'].values()))} after; key fields in "
            f"bits: {fields}"
        )
        return lines

    def _traffic_lines(self):
        t = self.data["traffic"]
        scope = f"{t['scope']} " if "scope" in t else ""
        lines = [
            f"  packets per {scope}sample, {t['samples_counted']} samples counted. A hop is one "
            "chip router a packet passes, the sending chip's included; a delivery is one PE "
            "that receives it:"
        ]
        lines.append(f"    {'kind':>9s} {'program':>9s} {'packets':>10s} {'deliveries':>11s} "
                     f"{'hops':>10s} {'bits':>5s}")  # fmt: skip
        unused = []
        for kind, c in t["packets_per_sample"].items():
            if c["packets"] == 0:
                unused.append(f"{kind} ({UNUSED.get(kind, 'not used')})")
                continue
            lines.append(
                f"    {kind:>9s} {c['program']:>9s} {c['packets']:10.1f} {c['deliveries']:11.1f} "
                f"{c['hops']:10.1f} {c['bits_per_packet']:5d}"
            )
        if unused:
            lines.append("    no packets: " + "; ".join(unused))
        if t["packets_per_sample"].get("label", {}).get("packets"):
            lines.append("    label packets come from the host, routed from the chip it is "
                         "attached to (chip 0); tally packets close every phase of every sender "
                         "(the model's packet-count check)")  # fmt: skip
        e = t["event_vs_dense_errors"]
        event, dense = e["event_packets_per_sample"], e["dense_packets_per_sample"]
        if event and dense:
            verdict = (f"{dense / event:.1f} times fewer than dense" if event <= dense
                       else f"a cost: {event / dense:.1f} times the dense count")  # fmt: skip
            lines.append(
                f"  error packets: event-based {event:.1f} per sample (one per presynaptic spike "
                f"and receiving PE) against {dense:.1f} for sending every adjoint value every "
                f"tick (dense): {verdict}"
            )
        hw = self.mapping.hardware
        for prog, w in t["work"].items():
            if "tick_fraction" in w and w["busiest_pe_cycles_per_tick"] > 0:
                frac = ", ".join(
                    f"{100 * x:.1f} % at {f:g} MHz"
                    for f, x in zip(hw.clock_levels_mhz, w["tick_fraction"], strict=True)
                )
                lines.append(
                    f"  busiest PE in the {prog} program: {w['busiest_pe_cycles_per_tick']:.0f} "
                    f"cycles in one tick = {frac} of a {hw.timer_tick_ms:g} ms tick"
                )
        sl = t["spike_log"]
        if sl["overflow"]:
            lines.append(
                f"  WARNING: a neuron spiked {sl['max_spikes_per_neuron']} times in one sample; "
                f"the spike records hold {sl['capacity']}"
            )
        return lines

    def _cost_lines(self):
        c = self.data["cost"]
        per_batch = c["samples_per_batch"]
        lines = [
            f'  time and energy per training batch of {per_batch:g} samples. "realtime": the '
            "machine advances one tick per timer tick unless its busiest PE needs longer (the "
            'way SpiNNaker runs); "compute-bound": every tick lasts exactly the busiest PE\'s '
            "work (the fastest the programs can run):"
        ]
        for i, f in enumerate(c["clock_mhz"]):
            for mode in ("realtime", "compute"):
                t = {k: v[i] for k, v in c["time_per_sample_ms"][mode].items()}
                e = c["energy_per_sample_uJ"][mode]["total"][i]
                name = "realtime" if mode == "realtime" else "compute-bound"
                lines.append(
                    f"    {f:g} MHz {name:>13s}: batch latency {c['batch_latency_ms'][mode][i]:.3f}"
                    f" ms = forward {t['forward'] * per_batch:.3f} + loss "
                    f"{t['loss'] * per_batch:.3f} + backward {t['backward'] * per_batch:.3f} + "
                    f"update {t['update'] * per_batch:.4f} ms; per sample {t['total']:.4f} ms "
                    f"and {e:.3f} uJ"
                )
            over = [p for p, v in c["overrun"].items() if v[i]]
            if over:
                lines.append(
                    f"    {f:g} MHz: the busiest PE overruns the timer tick in: {', '.join(over)}"
                )
        e = {k: v[0] for k, v in c["energy_per_sample_uJ"]["realtime"].items()}
        lines.append(
            f"  energy per training sample at {c['clock_mhz'][0]:g} MHz, realtime: PE baseline "
            f"{e['pe_baseline']:.3f} + chip baseline {e['chip_baseline']:.3f} + synaptic "
            f"operations {e['synaptic']:.3f} + other processor work {e['dynamic']:.3f} + packet "
            f"transport {e['packets']:.3f} = {e['total']:.3f} uJ"
        )
        return lines

    def _sensitivity_lines(self):
        sv = self.data["sensitivity"]
        b = sv["baseline"]
        lines = [
            f"  sensitivity at {sv['clock_mhz']:g} MHz (one batch recounted): change of the time "
            f"per sample, realtime ({b['time_realtime_ms']:.4f} ms) and compute-bound "
            f"({b['time_compute_ms']:.4f} ms), and of the energy per sample, realtime "
            f"({b['energy_uJ']:.3f} uJ), when one figure is doubled or halved:",
            f"    {'figure':>24s} | {'x2: time rt':>11s} {'time cb':>8s} {'energy':>8s} | "
            f"{'x0.5: time rt':>13s} {'time cb':>8s} {'energy':>8s}",
        ]
        still = []
        for row in sv["rows"]:
            up, down = row["x2"], row["x0.5"]
            values = [up[k] for k in up] + [down[k] for k in down]
            if not any(abs(v) >= 5e-4 for v in values):
                still.append(row["name"])
                continue
            lines.append(
                f"    {row['name']:>24s} | {100 * up['time_realtime']:+10.1f}% "
                f"{100 * up['time_compute']:+7.1f}% {100 * up['energy']:+7.1f}% | "
                f"{100 * down['time_realtime']:+12.1f}% {100 * down['time_compute']:+7.1f}% "
                f"{100 * down['energy']:+7.1f}%"
            )
        if still:
            lines.append("    no effect (below 0.05 %): " + ", ".join(still))
        return lines

    def plot_pe_map(self, path, dpi: int = 120):
        """Save a PNG of the PE map: every used chip's QPEs and PEs, each PE coloured by the
        SRAM it uses (colour scale), outlined in its population's colour, a dot on update PEs."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.patches import Patch, Rectangle

        m, hw = self.mapping, self.mapping.hardware
        n_qpe = hw.pes_per_chip // hw.pes_per_qpe
        qrows = -(-n_qpe // QPE_COLUMNS)
        side = int(np.ceil(np.sqrt(hw.pes_per_qpe)))
        chip_w, chip_h = QPE_COLUMNS * (side + 1) + 1, qrows * (side + 1) + 1
        chips = sorted({pl.chip for pl in m.placements})
        xy = {c: hw.chip_xy(c) for c in chips}
        x0, y0 = min(v[0] for v in xy.values()), min(v[1] for v in xy.values())
        nx = max(v[0] for v in xy.values()) - x0 + 1
        ny = max(v[1] for v in xy.values()) - y0 + 1
        width, height = nx * (chip_w + 2), ny * (chip_h + 2) + 1
        scale = min(10.0 / width, 8.0 / height, 0.35)
        fig, ax = plt.subplots(figsize=(width * scale + 2.2, height * scale + 0.9))
        cmap, norm = plt.get_cmap("viridis"), Normalize(0.0, 100.0)
        outline = plt.get_cmap("tab10")
        limit = float(hw.sram_per_pe)

        def origin(c):
            return (xy[c][0] - x0) * (chip_w + 2), (xy[c][1] - y0) * (chip_h + 2)

        for c in chips:
            cx, cy = origin(c)
            ax.add_patch(Rectangle((cx, cy), chip_w, chip_h, fill=False, lw=1.5))
            ax.text(cx, cy + chip_h + 0.3, f"chip {c}", fontsize=8)
            for q in range(n_qpe):
                qx = cx + 1 + (q % QPE_COLUMNS) * (side + 1)
                qy = cy + 1 + (qrows - 1 - q // QPE_COLUMNS) * (side + 1)
                ax.add_patch(Rectangle((qx - 0.1, qy - 0.1), side + 0.2, side + 0.2,
                                       fill=False, lw=0.3, color="0.6"))  # fmt: skip
        for pl in m.placements:
            cx, cy = origin(pl.chip)
            q, i = divmod(pl.core, hw.pes_per_qpe)
            qx = cx + 1 + (q % QPE_COLUMNS) * (side + 1) + i % side
            qy = cy + 1 + (qrows - 1 - q // QPE_COLUMNS) * (side + 1) + i // side
            used = 100.0 * pl.sram_used / limit
            colour, edge = cmap(norm(used)), outline(pl.slice.population % 10)
            ax.add_patch(Rectangle((qx + 0.05, qy + 0.05), 0.85, 0.85, facecolor=colour,
                                   edgecolor=edge, lw=1.2))  # fmt: skip
            if pl.update:
                ax.plot(qx + 0.475, qy + 0.475, "w.", ms=3)
        handles = [
            Patch(facecolor="white", edgecolor=outline(k % 10), lw=1.5,
                  label=f"{p.label}: {_count(len(m.slices[k]), 'PEs')} per replica")
            for k, p in enumerate(m.network.populations)
        ]  # fmt: skip
        handles.append(
            Patch(facecolor="white", edgecolor="0.6", label=f"QPE ({hw.pes_per_qpe} PEs)")
        )
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7,
                  title="outline: population", title_fontsize=7, frameon=False)  # fmt: skip
        bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, fraction=0.03, pad=0.01, shrink=0.7,
                           location="left")  # fmt: skip
        bar.set_label(f"SRAM used, % of {hw.sram_per_pe // 1024} KB", fontsize=8)
        bar.ax.tick_params(labelsize=7)
        ax.set_xlim(-0.5, width - 1.5)
        ax.set_ylim(-0.5, height)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(
            f"SpiNNaker2 PE map: {_count(m.n_pes, 'PEs')} on {_count(m.chips_used, 'chips')}, "
            f"{_count(m.replicas, 'replicas')}; white dot: update PE",
            fontsize=9,
        )
        fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
        plt.close(fig)
        return path


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def build_report(
    mapping: Mapping,
    routing: RoutingTables,
    traffic: Traffic | None = None,
    cost: CostEstimate | None = None,
    cycles=None,
    scope: str | None = None,
    sensitivity: dict | None = None,
) -> Report:
    """Assemble the report; ``traffic``, ``cost`` and ``sensitivity`` (a
    :func:`~.sensitivity.sensitivity` table) are optional (mapping-only report).

    ``scope`` names what the traffic covers (e.g. ``"training"``), quoted in the report.
    """
    return Report(mapping, routing, traffic, cost, cycles, scope, sensitivity)
