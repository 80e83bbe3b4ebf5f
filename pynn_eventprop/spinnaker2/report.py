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


class Report:
    """The model's report.  Build with :func:`build_report`; ``data`` is the dict form."""

    def __init__(self, mapping, routing, traffic=None, cost=None, cycles=None, scope=None):
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
        """A human-readable summary of the mapping, the traffic and the cost."""
        d, m = self.data, self.data["mapping"]
        hw = self.mapping.hardware
        lines = [
            "SpiNNaker2 model report",
            f"  mapping: {m['pes_used']} PEs on {m['chips_used']} chip(s) "
            f"({m['replicas']} replicas x {m['pes_per_replica']} PEs, "
            f"{m['local_batch']} sample(s) per replica), "
            f"{m['n_steps']} steps per sample",
        ]
        for p in m["populations"]:
            lines.append(
                f"    {p['label']:>12s}: {p['size']} neurons in {p['slices']} slice(s) "
                f"{p['neurons_per_slice'][:6]}{' ...' if p['slices'] > 6 else ''}"
            )
        s = m["sram_per_pe"]
        lines.append(
            f"  SRAM per PE: max {s['max_used']} / {s['limit']} bytes "
            f"({100 * s['max_used'] / s['limit']:.1f} %), mean {s['mean_used']:.0f}"
        )
        r = d["routing"]
        lines.append(
            f"  routing: max {r['max_entries']} / {r['limit_per_chip']} entries per chip "
            f"({sum(map(int, r['entries_before_merging'].values()))} before merging, "
            f"{sum(map(int, r['entries_per_chip'].values()))} after); "
            f"key fields {r['key_fields_bits']}"
        )
        if "traffic" in d:
            t = d["traffic"]
            scope = f"{t['scope']} " if "scope" in t else ""
            lines.append(f"  packets per sample ({t['samples_counted']} {scope}samples counted):")
            for kind, c in t["packets_per_sample"].items():
                lines.append(
                    f"    {kind:>9s} ({c['program']:>8s}): {c['packets']:12.1f} packets, "
                    f"{c['deliveries']:12.1f} deliveries, {c['hops']:12.1f} hops, "
                    f"{c['bits_per_packet']} bits"
                )
            e = t["event_vs_dense_errors"]
            lines.append(
                f"  error packets: event-based {e['event_packets_per_sample']:.1f} vs dense "
                f"{e['dense_packets_per_sample']:.1f} per sample: saving x{e['saving_ratio']:.1f}"
            )
            sp = t["forward_spike_payload"]
            lines.append(
                f"  spike phase payload: {sp['bits_per_sample']:.0f} bits per sample vs "
                f"{sp['bits_per_sample_key_only']:.0f} key-only"
            )
            for prog, w in t["work"].items():
                if "tick_fraction" in w:
                    frac = ", ".join(
                        f"{f:g} MHz {100 * x:.1f} %"
                        for f, x in zip(hw.clock_levels_mhz, w["tick_fraction"], strict=True)
                    )
                    lines.append(
                        f"  busiest PE {prog}: {w['busiest_pe_cycles_per_tick']:.0f} cycles per "
                        f"tick ({frac} of a {hw.timer_tick_ms:g} ms tick)"
                    )
            sl = t["spike_log"]
            if sl["overflow"]:
                lines.append(
                    f"  WARNING: a neuron spiked {sl['max_spikes_per_neuron']} times in one "
                    f"sample; spike records hold {sl['capacity']}"
                )
        if "cost" in d:
            c = d["cost"]
            for i, f in enumerate(c["clock_mhz"]):
                for mode in ("realtime", "compute"):
                    t_ms = c["time_per_sample_ms"][mode]
                    e_uj = c["energy_per_sample_uJ"][mode]
                    lines.append(
                        f"  {f:g} MHz {mode:>8s}: {t_ms['total'][i]:.3f} ms per sample "
                        f"(fwd {t_ms['forward'][i]:.3f}, loss {t_ms['loss'][i]:.3f}, bwd "
                        f"{t_ms['backward'][i]:.3f}, update {t_ms['update'][i]:.4f}), "
                        f"{e_uj['total'][i]:.2f} uJ per sample"
                    )
                over = [p for p, v in c["overrun"].items() if v[i]]
                if over:
                    lines.append(f"  {f:g} MHz: tick overrun in {', '.join(over)}")
            lines.append("  energy coefficients (all named, overridable):")
            for fig in c["energy_coefficients"]:
                lines.append(f"    {fig['name']} = {fig['value']} {fig['unit']} [{fig['source']}]")
        lines.append("  hardware figures:")
        for fig in d["hardware"]:
            lines.append(f"    {fig['name']} = {fig['value']} {fig['unit']} [{fig['source']}]")
        return "\n".join(lines)

    def plot_pe_map(self, path, dpi: int = 120):
        """Save a PNG of the PE map: chips, QPEs and PEs coloured by population."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
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
        fig, ax = plt.subplots(figsize=(min(4 + 4 * nx, 24), min(1.5 + 2.5 * ny, 20)))
        colours = plt.get_cmap("tab10")
        limit = float(hw.sram_per_pe)
        for c in chips:
            cx, cy = (xy[c][0] - x0) * (chip_w + 2), (xy[c][1] - y0) * (chip_h + 2)
            ax.add_patch(Rectangle((cx, cy), chip_w, chip_h, fill=False, lw=1.5))
            ax.text(cx, cy + chip_h + 0.3, f"chip {c}", fontsize=8)
            for q in range(n_qpe):
                qx = cx + 1 + (q % QPE_COLUMNS) * (side + 1)
                qy = cy + 1 + (qrows - 1 - q // QPE_COLUMNS) * (side + 1)
                ax.add_patch(
                    Rectangle((qx - 0.1, qy - 0.1), side + 0.2, side + 0.2, fill=False, lw=0.3)
                )
        for pl in m.placements:
            c = pl.chip
            cx, cy = (xy[c][0] - x0) * (chip_w + 2), (xy[c][1] - y0) * (chip_h + 2)
            q, i = divmod(pl.core, hw.pes_per_qpe)
            qx = cx + 1 + (q % QPE_COLUMNS) * (side + 1) + i % side
            qy = cy + 1 + (qrows - 1 - q // QPE_COLUMNS) * (side + 1) + i // side
            alpha = 0.25 + 0.75 * min(pl.sram_used / limit, 1.0)
            ax.add_patch(
                Rectangle(
                    (qx, qy),
                    0.9,
                    0.9,
                    color=colours(pl.slice.population % 10),
                    alpha=alpha,
                    lw=0,
                )
            )
            if pl.update:
                ax.plot(qx + 0.45, qy + 0.45, "k.", ms=2)
        handles = [
            Patch(color=colours(k % 10), label=f"{p.label} ({len(m.slices[k])} PE/replica)")
            for k, p in enumerate(m.network.populations)
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        ax.set_xlim(-1, nx * (chip_w + 2))
        ax.set_ylim(-1, ny * (chip_h + 2) + 1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(
            f"SpiNNaker2 PE map: {m.n_pes} PEs on {m.chips_used} chip(s), {m.replicas} replicas "
            f"(opacity = SRAM used / {hw.sram_per_pe} B; dot = update PE)",
            fontsize=9,
        )
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
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
) -> Report:
    """Assemble the report; ``traffic`` and ``cost`` are optional (mapping-only report).

    ``scope`` names what the traffic covers (e.g. ``"training"``), quoted in the report.
    """
    return Report(mapping, routing, traffic, cost, cycles, scope)
