"""Brian2 reference recordings as Neo objects, laid out like PyNN's ``get_data()``.

One ``neo.Block`` per population (``"input"`` and every layer), one ``Segment`` per sample of
the batch.  Each segment holds

* a ``SpikeTrain`` per neuron (ms, ``t_start = 0``, ``t_stop = n_steps dt``) annotated with
  ``source_population``, ``source_index`` and ``sample``, and with the grid ``step`` and
  ``phase`` of every spike as array annotations (``t = (step - phase) dt``);
* for layers, ``AnalogSignal`` s sampled every ``dt`` from ``t = 0`` (``n_steps + 1`` samples,
  one channel per neuron, ``channel_index`` array annotation): ``v`` (mV, PyNN's membrane
  potential after the reset) and, when an adjoint is given, ``lambda_v`` (1/mV),
  ``lambda_i`` (``dL/dI_E``, 1/nA) and ``lambda_i_inh`` (``dL/dI_I``, 1/nA).
"""

from __future__ import annotations

import neo
import numpy as np
import quantities as pq

from .adjoint import AdjointResult
from .description import INPUT
from .forward import ForwardResult


def _spiketrains(name, spikes, phase, dt, t_stop, sample) -> list[neo.SpikeTrain]:
    trains = []
    for i in range(spikes.shape[1]):
        steps = np.nonzero(spikes[:, i])[0]
        phases = phase[steps, i]
        trains.append(
            neo.SpikeTrain(
                (steps - phases) * dt * pq.ms,
                t_start=0 * pq.ms,
                t_stop=t_stop * pq.ms,
                source_population=name,
                source_index=i,
                sample=sample,
                array_annotations={"step": steps, "phase": phases},
            )
        )
    return trains


def _signal(name, values, units, dt) -> neo.AnalogSignal:
    return neo.AnalogSignal(
        values,
        units=units,
        sampling_period=dt * pq.ms,
        t_start=0 * pq.ms,
        name=name,
        array_annotations={"channel_index": np.arange(values.shape[1])},
    )


def to_neo(fwd: ForwardResult, adj: AdjointResult | None = None) -> dict[str, neo.Block]:
    """Blocks keyed by population name (``"input"`` first, then the layers in order)."""
    spec = fwd.spec
    dt, t_stop = spec.dt, spec.n_steps * spec.dt
    blocks = {}
    populations = [(INPUT, fwd.input_spikes, fwd.input_phase)] + [
        (name, trace.spikes, trace.phase) for name, trace in fwd.layers.items()
    ]
    for name, spikes, phase in populations:
        block = neo.Block(name=name, description="brian2_reference recording")
        for b in range(fwd.batch_size):
            seg = neo.Segment(name=f"sample {b}", index=b)
            seg.spiketrains.extend(_spiketrains(name, spikes[:, b], phase[:, b], dt, t_stop, b))
            if name != INPUT:
                seg.analogsignals.append(_signal("v", fwd.layers[name].v[:, b], pq.mV, dt))
                if adj is not None:
                    lam = adj.layers[name]
                    for sig, values, units in (
                        ("lambda_v", lam.lambda_v, 1 / pq.mV),
                        ("lambda_i", lam.lambda_i_E, 1 / pq.nA),
                        ("lambda_i_inh", lam.lambda_i_I, 1 / pq.nA),
                    ):
                        seg.analogsignals.append(_signal(sig, values[:, b], units, dt))
            block.segments.append(seg)
        blocks[name] = block
    return blocks
