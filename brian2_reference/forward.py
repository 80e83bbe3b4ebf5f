"""Forward pass: PyNN's ``IF_curr_exp`` equations integrated by Brian2 on its time grid.

Equations (per neuron, ``V = v - v_rest`` in mV, currents in nA, ``R = tau_m/cm`` in MOhm)::

    tau_m dV/dt = -V + R (I_E + I_I + i_offset)        (held at v_reset - v_rest while refractory)
    tau_x dI_x/dt = -I_x                                 (x = E, I)
    V >= theta = v_thresh - v_rest:  spike, V <- v_r = v_reset - v_rest, refractory tau_refrac
    a spike of j reaching i after the delay d_ji:  I_x,i += w_ji

How Brian2 runs it
------------------
One ``NeuronGroup`` (every layer and sample, :mod:`.layout`) integrates the equations with
Brian2's ``exact`` (linear) state updater, which is exact between grid points; its threshold,
reset and ``refractory`` mechanism handle spikes.  The input is a ``SpikeGeneratorGroup``; one
``Synapses`` object per source (input or neurons) carries a real-valued delay per connection.  A
``SpikeMonitor`` and a ``StateMonitor`` (every step, after the resets) record the run.

The error is Brian2's time step ``dt``: Brian2 tests the threshold at grid points, so a
crossing in ``(t_n, t_n+1]`` is detected at ``t_n+1``, where the reset happens and from where
the spike acts; Brian2 stamps it ``t_n``.  Everything else follows the grid:

* the reset code interpolates the crossing linearly between ``V(t_n)`` and ``V(t_n+1)``
  (error ``O(dt^2)``): that is the spike time reported, and when there is no refractory
  period ``V`` is reset to where it would be at ``t_n+1`` (``v_r + (t_n+1 - t*) dV/dt``);
* Brian2 delivers a spike ``D`` whole steps after the step it was detected in, into the state
  of ``t_n+1+D``, and rounds delays to whole steps; the synapses get ``D = floor(d/dt)`` steps
  so that the arrival time ``t_n+1 + D dt`` errs by less than one step either way around the
  true ``t* + d`` (input spikes likewise: Brian2 emits a spike at ``t`` in step
  ``floor(t/dt)``);
* the refractory period gets ``floor(tau_refrac/dt) + 1`` steps from ``t_n``, and at the first
  free step ``V`` is moved to where it would be had it left ``v_r`` at ``t* + tau_refrac``
  (error ``O(dt^2)`` in ``V``);
* readouts: the first spike time as reported; ``v_max`` the largest ``V`` on the grid; ``v_mean``
  the right Riemann sum ``(dt/T) sum_{m=1..N} V(t_m)``.

The arrivals and the refractory ends sit on the grid, so the forward pass converges at first
order in ``dt`` (a spike time moves with its inputs' arrivals; ``V`` after a displaced event by
``O(dt)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import brian2
import numpy as np
from brian2 import ms

from .codegen import numpy_codegen
from .description import INPUT, NetworkSpec, SpikeInput
from .layout import Layout

NEURON_MODEL = """
dV/dt = (-V + R * (I_E + I_I + i_ext)) / tau_m : 1 (unless refractory)
dI_E/dt = -I_E / tau_E : 1
dI_I/dt = -I_I / tau_I : 1
R : 1 (constant)
i_ext : 1 (constant)
theta : 1 (constant)
v_r : 1 (constant)
tau_m : second (constant)
tau_E : second (constant)
tau_I : second (constant)
t_ref : second (constant)
relax : 1 (constant)
tau_ref : second (constant)
ref_steps : integer (constant)
V_prev : 1
t_cross : second
"""
#: At a detected crossing: the crossing time by linear interpolation between ``t_n`` and
#: ``t_n+1``, and the reset value ``V`` would have reached by ``t_n+1`` when not clamped.
RESET = """
after = (V - theta) / (V - V_prev)
t_cross = t + dt * (1 - after)
V = v_r + relax * after * dt * (-v_r + R * (I_E + I_I + i_ext)) / tau_m
"""
ON_PRE = """
I_E_post += w * exc
I_I_post += w * (1 - exc)
"""
#: End of every step ``[t, t + dt]``: if it was the first free step after a clamp, ``V`` is
#: moved by ``(t - t* - tau_refrac) dV/dt``, as if it had left ``v_r`` at ``t* + tau_refrac``
#: rather than at ``t`` (Brian2 keeps a refractory variable unchanged during the step in which
#: the clamp ends, so the shift is applied after it); then ``V_prev`` keeps ``V(t + dt)`` for
#: the interpolation of a crossing in the next step.
UNCLAMP = """
first_free = (1 - relax) * int(timestep(t - lastspike, dt) == ref_steps)
V = V + first_free * (t - t_cross - tau_ref) * (-v_r + R * (I_E + I_I + i_ext)) / tau_m
V_prev = V
"""
RECORDED = ("V", "I_E", "I_I")


def n_steps(spec: NetworkSpec, dt: float) -> int:
    """Number of Brian2 steps of ``dt`` in the run (``duration`` must be a whole multiple)."""
    n = int(round(spec.duration / dt))
    if n < 1 or abs(n * dt - spec.duration) > 1e-9 * spec.duration:
        raise ValueError(f"duration {spec.duration} ms must be a whole multiple of dt={dt} ms")
    return n


def delay_steps(delays: np.ndarray, dt: float) -> np.ndarray:
    """Brian2 delay in whole steps for delays ``d`` (ms): ``floor(d/dt)`` (see module doc)."""
    return np.floor(np.asarray(delays) / dt + 1e-9).astype(np.int64)


def refractory_steps(tau_refrac: np.ndarray, dt: float) -> np.ndarray:
    """Refractory steps counted from Brian2's spike stamp: ``floor(tau_refrac/dt) + 1``."""
    return np.floor(np.asarray(tau_refrac) / dt + 1e-9).astype(np.int64) + 1


@dataclass(frozen=True)
class NeuronParams:
    """Per-neuron constants of the network-wide group (arrays ``(group size,)``, EventProp
    frame: ``theta``, ``v_r``, ``v0`` in mV relative to ``v_rest``; ``R`` MOhm; ``i_ext`` nA;
    time constants ms; ``ref_steps`` Brian2 refractory steps)."""

    R: np.ndarray
    i_ext: np.ndarray
    theta: np.ndarray
    v_r: np.ndarray
    v0: np.ndarray
    cm: np.ndarray
    tau_m: np.ndarray
    tau_E: np.ndarray
    tau_I: np.ndarray
    ref_steps: np.ndarray

    @classmethod
    def of(cls, layout: Layout, dt: float) -> NeuronParams:
        def per(fn):
            return layout.per_neuron({layer.name: fn(layer.param) for layer in layout.spec.layers})

        return cls(
            R=per(lambda p: p("tau_m") / p("cm")),
            i_ext=per(lambda p: p("i_offset")),
            theta=per(lambda p: p("v_thresh") - p("v_rest")),
            v_r=per(lambda p: p("v_reset") - p("v_rest")),
            v0=per(lambda p: p("v_init") - p("v_rest")),
            cm=per(lambda p: p("cm")),
            tau_m=per(lambda p: p("tau_m")),
            tau_E=per(lambda p: p("tau_syn_E")),
            tau_I=per(lambda p: p("tau_syn_I")),
            ref_steps=per(lambda p: refractory_steps(p("tau_refrac"), dt)),
        )


@dataclass(frozen=True)
class ForwardResult:
    """A Brian2 run of ``spec`` on ``inputs`` with step ``dt`` (ms), ``n_steps`` steps.

    Group-wide arrays (see :mod:`.layout`): ``V``, ``I_E``, ``I_I`` ``(n_steps + 1, group)`` at
    ``t_m = m dt`` (after resets and arrivals); ``spike_index``/``spike_step`` the group index
    and Brian2 step ``n`` of every spike (detected at ``t_n+1``); ``input_index``/``input_step``
    the same for the input group.
    """

    spec: NetworkSpec
    dt: float
    n_steps: int
    layout: Layout
    params: NeuronParams
    V: np.ndarray
    I_E: np.ndarray
    I_I: np.ndarray
    spike_index: np.ndarray
    spike_step: np.ndarray
    spike_time: np.ndarray
    input_index: np.ndarray
    input_step: np.ndarray

    @property
    def batch(self) -> int:
        return self.layout.batch

    def spikes(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sample, neuron, time ms)`` of the spikes of layer ``name`` (interpolated)."""
        layer, sample, neuron = self.layout.locate(self.spike_index)
        sel = layer == [x.name for x in self.spec.layers].index(name)
        return sample[sel], neuron[sel], self.spike_time[sel]

    def trace(self, var: str) -> dict[str, np.ndarray]:
        """Layer name -> ``(n_steps + 1, batch, size)`` of ``"V"``, ``"I_E"`` or ``"I_I"``."""
        return self.layout.split(getattr(self, var))

    def readouts(self, name: str) -> dict[str, np.ndarray]:
        """``first_spike_time`` (ms, inf if silent), ``v_max`` (mV), ``v_max_step``,
        ``v_mean_uniform`` (mV) of layer ``name``, each ``(batch, size)``."""
        V = self.trace("V")[name]
        size = V.shape[2]
        first = np.full((self.batch, size), np.inf)
        sample, neuron, times = self.spikes(name)
        np.minimum.at(first, (sample, neuron), times)
        return {
            "first_spike_time": first,
            "v_max": V.max(axis=0),
            "v_max_step": V.argmax(axis=0),
            "v_mean_uniform": V[1:].sum(axis=0) * self.dt / self.spec.duration,
        }


def _neuron_group(layout: Layout, params: NeuronParams, dt: float) -> brian2.NeuronGroup:
    group = brian2.NeuronGroup(
        layout.size,
        NEURON_MODEL,
        threshold="V >= theta",
        reset=RESET,
        refractory="t_ref",
        method="exact",
        dt=dt * ms,
        name="neurons*",
    )
    for name in ("R", "i_ext", "theta", "v_r"):
        setattr(group, name, getattr(params, name))
    for name in ("tau_m", "tau_E", "tau_I"):
        setattr(group, name, getattr(params, name) * ms)
    group.t_ref = params.ref_steps * dt * ms
    group.relax = np.where(params.ref_steps == 1, 1.0, 0.0)
    group.tau_ref = (
        layout.per_neuron({layer.name: layer.param("tau_refrac") for layer in layout.spec.layers})
        * ms
    )
    group.ref_steps = params.ref_steps
    group.run_regularly(UNCLAMP, when="end", order=-1, name="unclamp*")
    group.V = params.v0
    return group


def _input_spikes(layout: Layout, inputs: SpikeInput) -> tuple[np.ndarray, np.ndarray]:
    """Input-group index and time (ms) of every input spike inside the run."""
    sample, neuron, times = inputs.flat()
    keep = times < layout.spec.duration
    return layout.index(INPUT, sample[keep], neuron[keep]), times[keep]


def _synapses(layout: Layout, source, target, from_input: bool, dt: float):
    """One Synapses object for every projection from the input (or from the neurons)."""
    spec = layout.spec
    ks = [k for k, p in enumerate(spec.projections) if (p.pre == INPUT) == from_input]
    if not ks:
        return None
    pre, post, w, exc, d = [], [], [], [], []
    for k in ks:
        i, j, pre_n, post_n = layout.connections(k)
        proj = spec.projections[k]
        pre.append(i)
        post.append(j)
        w.append(proj.weights[pre_n, post_n])
        exc.append(np.full(i.size, float(proj.suffix == "E")))
        d.append(delay_steps(proj.delays[pre_n, post_n], dt))
    syn = brian2.Synapses(
        source,
        target,
        "w : 1 (constant)\nexc : 1 (constant)",
        on_pre=ON_PRE,
        dt=dt * ms,
        name=f"synapses_{'input' if from_input else 'neurons'}*",
    )
    syn.connect(i=np.concatenate(pre), j=np.concatenate(post))
    syn.w, syn.exc = np.concatenate(w), np.concatenate(exc)
    syn.delay = np.concatenate(d) * dt * ms
    return syn


def input_steps(times_ms: np.ndarray, dt: float) -> np.ndarray:
    """The Brian2 step in which a ``SpikeGeneratorGroup`` emits spikes at ``times_ms``
    (Brian2's own arithmetic: ``int((t + 1e-3 dt)/dt)`` in seconds)."""
    t, step = np.asarray(times_ms, float) * 1e-3, dt * 1e-3
    return np.asarray((t + 1e-3 * step) / step, dtype=np.int64)


def forward(spec: NetworkSpec, inputs: SpikeInput, dt: float) -> ForwardResult:
    """Simulate ``spec`` driven by ``inputs`` with Brian2 at step ``dt`` (ms)."""
    if inputs.n_inputs != spec.n_inputs:
        raise ValueError(f"inputs have {inputs.n_inputs} neurons, the network {spec.n_inputs}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0 (ms), got {dt!r}")
    steps = n_steps(spec, dt)
    inputs.check_step(dt)
    layout = Layout(spec, inputs.batch_size)
    params = NeuronParams.of(layout, dt)
    with numpy_codegen():
        neurons = _neuron_group(layout, params, dt)
        inputs_index, input_times = _input_spikes(layout, inputs)
        source = brian2.SpikeGeneratorGroup(
            spec.n_inputs * layout.batch, inputs_index, input_times * ms, dt=dt * ms, name="inputs*"
        )
        synapses = [_synapses(layout, src, neurons, src is source, dt) for src in (source, neurons)]
        spikes = brian2.SpikeMonitor(neurons, variables=["t_cross"], when="end", name="spikes*")
        states = brian2.StateMonitor(
            neurons, RECORDED, record=True, when="end", order=1, name="states*"
        )
        net = brian2.Network(neurons, source, spikes, states)
        net.add([s for s in synapses if s is not None])
        net.run(steps * dt * ms, namespace={})
        traces = {}
        for var in RECORDED:
            rec = np.asarray(getattr(states, var)).T
            initial = params.v0 if var == "V" else np.zeros(layout.size)
            traces[var] = np.concatenate([initial[None], rec[:steps]])
        result = ForwardResult(
            spec=spec,
            dt=dt,
            n_steps=steps,
            layout=layout,
            params=params,
            spike_index=np.asarray(spikes.i[:], np.int64),
            spike_step=np.rint(np.asarray(spikes.t / ms) / dt).astype(np.int64),
            spike_time=np.asarray(spikes.t_cross / ms),
            input_index=inputs_index,
            input_step=input_steps(input_times, dt),
            **traces,
        )
    return result
