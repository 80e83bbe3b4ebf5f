"""Random, well-conditioned feed-forward networks for the oracle comparisons.

The networks cover what users build: 1-3 hidden layers of ``IF_curr_exp`` neurons with
per-neuron parameters (``tau_m``, ``cm``, both ``tau_syn``, ``v_thresh``, ``v_reset``,
``tau_refrac`` > 0, ``i_offset``), excitatory and inhibitory projections (negative weights) with
real-valued delays of 1-4 ms that differ within a projection (so, off any grid), a skip
projection from the input to the last layer when there are two hidden layers or more, and spike
sources with several spikes per neuron.  The weight scale of every layer is calibrated with the
oracle so that its neurons fire 1-4 times, and a network is only accepted when its spike times
are well conditioned (:func:`well_conditioned`), because comparisons at 1e-9 ms are meaningless
for a crossing that grazes the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from oracle_lif import Connections, Network, OracleResult, Sources, neurons, simulate

#: Smallest delay (ms): not below the coarsest dt the engines are run with (1.0 ms).
MIN_DELAY = 1.0
#: Conditioning limits (see :func:`well_conditioned`).
MIN_SLOPE = 0.05  # mV/ms at every threshold crossing
MIN_NEAR_MISS = 0.02  # mV between threshold and every local maximum below it
END_MARGIN = 1.0  # ms between the last spike and the end of the run


@dataclass
class Case:
    """A network with a batch of inputs: ``inputs[b]`` are the source spike trains of sample
    ``b`` (population 0); ``network`` carries those of sample 0."""

    network: Network
    t_stop: float
    inputs: list
    seed: int

    def sample(self, b: int) -> Network:
        return self.network.with_sources(0, self.inputs[b])

    def simulate(self, b: int = 0) -> OracleResult:
        return simulate(self.sample(b), self.t_stop)


def _synaptic_tau(rng, tau_m, low, high, wide):
    """Synaptic time constants for neurons with ``tau_m``.

    Default: ``low..high`` ms, below every ``tau_m`` (8-20 ms).  ``wide``: 1.5-30 ms, so above
    ``tau_m`` too, a third of them exactly equal to ``tau_m`` (the closed forms' limit case);
    none within 1 ms of ``tau_m`` otherwise (the closed forms divide by the difference, and
    near-equality would test rounding, not the model).
    """
    if not wide:
        return rng.uniform(low, high, tau_m.size)
    tau = rng.uniform(1.5, 30.0, tau_m.size)
    near = np.abs(tau - tau_m) < 1.0
    tau[near] = tau_m[near] + np.where(tau[near] > tau_m[near], 1.0, -1.0)
    return np.where(rng.random(tau_m.size) < 1 / 3, tau_m, tau)


def _layer(rng, size, wide=False):
    tau_m = rng.uniform(4.0, 20.0, size) if wide else rng.uniform(8.0, 20.0, size)
    tau_e = _synaptic_tau(rng, tau_m, 2.0, 6.0, wide)
    tau_i = _synaptic_tau(rng, tau_m, 1.5, 6.5, wide)
    cm = rng.uniform(0.5, 1.5, size)
    v_rest = rng.uniform(-66.0, -60.0, size)
    theta = rng.uniform(6.0, 12.0, size)
    return neurons(
        size,
        v_init=v_rest + rng.uniform(-2.0, 3.0, size),
        tau_m=tau_m,
        tau_syn_E=tau_e,
        tau_syn_I=tau_i,
        cm=cm,
        v_rest=v_rest,
        v_thresh=v_rest + theta,
        v_reset=v_rest - rng.uniform(0.0, 4.0, size),
        tau_refrac=rng.uniform(0.5, 3.0, size),
        # up to 40 % of the threshold from the offset current alone
        i_offset=rng.uniform(0.0, 0.4, size) * theta * cm / tau_m,
    )


def _input_trains(rng, n_in, t_stop):
    return [np.sort(rng.uniform(0.0, 0.5 * t_stop, rng.integers(2, 5))) for _ in range(n_in)]


def _projection(rng, pre, post, n_pre, n_post, receptor, p_connect):
    mask = rng.random((n_pre, n_post)) < p_connect
    mask[rng.integers(n_pre), :] = True  # every target has an input
    magnitude = rng.uniform(0.3, 1.0, (n_pre, n_post))
    sign = 1.0 if receptor == "excitatory" else -0.6
    return Connections(
        pre,
        post,
        np.where(mask, sign * magnitude, 0.0),
        np.where(mask, rng.uniform(MIN_DELAY, 4.0, (n_pre, n_post)), 0.0),
        receptor,
        mask,
    )


def well_conditioned(result: OracleResult, layers) -> bool:
    """Whether spike times of ``result`` are robust enough to compare at 1e-9 ms.

    Every crossing has ``dV/dt >= MIN_SLOPE`` (a spike time then moves by at most
    ``error / MIN_SLOPE`` for a voltage error), no local maximum lies within ``MIN_NEAR_MISS`` of
    the threshold (a small perturbation then adds no spike), and no spike falls within
    ``END_MARGIN`` of the end.
    """
    d = result.diagnostics
    if d.min_crossing_slope < MIN_SLOPE or d.min_near_miss < MIN_NEAR_MISS:
        return False
    last = max((t[-1] for p in layers for t in result.spikes[p] if len(t)), default=0.0)
    return last < result.t_stop - END_MARGIN


def _activity_ok(counts) -> bool:
    return counts.max() <= 4 and counts.mean() >= 1.0 and (counts >= 2).any()


def random_case(
    seed: int, hidden=(6,), n_in=6, n_out=3, t_stop=50.0, batch=2, wide_time_constants=False
) -> Case | None:
    """A random network (module docstring) with ``hidden`` layer sizes, or None if the seed gives
    no well-conditioned network with the wanted activity (try another seed).

    ``wide_time_constants``: see :func:`_synaptic_tau`.
    """
    rng = np.random.default_rng(seed)
    sizes = [n_in, *hidden, n_out]
    inputs = [_input_trains(rng, n_in, t_stop) for _ in range(batch)]
    pops = [Sources(inputs[0])] + [_layer(rng, s, wide_time_constants) for s in sizes[1:]]
    conns = []
    for layer in range(1, len(sizes)):
        n_pre, n_post = sizes[layer - 1], sizes[layer]
        conns.append(_projection(rng, layer - 1, layer, n_pre, n_post, "excitatory", 0.8))
        conns.append(_projection(rng, layer - 1, layer, n_pre, n_post, "inhibitory", 0.3))
    if len(hidden) >= 2:
        conns.append(_projection(rng, 0, len(sizes) - 1, n_in, n_out, "excitatory", 0.3))
    network = Network(pops, conns)
    # calibrate layer by layer: one scale for all projections into the layer
    for layer in range(1, len(sizes)):
        into = [k for k, c in enumerate(conns) if c.post == layer]
        base = {k: conns[k].weights.copy() for k in into}
        lo, hi, scale = 0.0, None, 1.0
        for _ in range(30):
            for k in into:
                conns[k].weights = base[k] * scale
            counts = simulate(network, t_stop).spike_counts()[layer]
            if _activity_ok(counts):
                break
            if counts.mean() < 1.0 or not (counts >= 2).any():
                lo = scale
            else:
                hi = scale
            scale = 2.0 * scale if hi is None else 0.5 * (lo + hi)
        else:
            return None
    case = Case(network, t_stop, inputs, seed)
    layers = range(1, len(sizes))
    for b in range(batch):
        result = case.simulate(b)
        if not well_conditioned(result, layers):
            return None
        if b == 0 and not all(result.spike_counts()[p].max() >= 1 for p in layers):
            return None
    return case


def find_case(first_seed: int, **kwargs) -> Case:
    """The first accepted :func:`random_case` from seed ``first_seed`` on (deterministic)."""
    for seed in range(first_seed, first_seed + 200):
        case = random_case(seed, **kwargs)
        if case is not None:
            return case
    raise RuntimeError(f"no well-conditioned network in seeds {first_seed}..{first_seed + 199}")
