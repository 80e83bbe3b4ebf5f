"""Small compiled networks for the engine tests (built directly, without the PyNN layer)."""

from __future__ import annotations

import numpy as np

from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork, CompiledPopulation, CompiledProjection

DEFAULTS = dict(
    v_rest=-65.0,
    cm=0.5,
    tau_m=10.0,
    tau_refrac=0.0,
    tau_syn_E=5.0,
    tau_syn_I=3.0,
    i_offset=0.0,
    v_reset=-65.0,
    v_thresh=-64.0,
)


def lif(label, size, model="IF_curr_exp", **overrides):
    params = {**DEFAULTS, **overrides}
    if model == "IF_cond_exp":
        params.setdefault("e_rev_E", 0.0)
        params.setdefault("e_rev_I", -70.0)
        syn = ("gsyn_exc", "gsyn_inh")
    else:
        syn = ("isyn_exc", "isyn_inh")
    initial = {"v": np.full(size, params["v_rest"]), syn[0]: np.zeros(size), syn[1]: np.zeros(size)}
    return CompiledPopulation(
        label, size, model, {k: np.full(size, float(v)) for k, v in params.items()}, initial
    )


def source(label, size):
    return CompiledPopulation(label, size, "spike_source")


def dense(label, pre, post, weights, receptor="excitatory", delay=1, trainable=True, dt=1.0):
    """All-to-all projection; ``delay`` in steps of ``dt`` ms (compiled delays are in ms)."""
    weights = np.asarray(weights, float)
    return CompiledProjection(
        label,
        pre,
        post,
        receptor,
        weights,
        np.full(weights.shape, delay * dt),
        np.ones(weights.shape, bool),
        trainable,
    )


def three_layer(rng, n_in=6, n_hidden=8, n_out=3, tau_refrac=1.0, dt=0.5):
    """Input -> hidden (excitatory, delay 2 steps, and inhibitory) -> output (delay 3)."""
    return CompiledNetwork(
        [source("in", n_in), lif("hidden", n_hidden, tau_refrac=tau_refrac), lif("out", n_out)],
        [
            dense("in_hid_E", 0, 1, rng.normal(0.3, 0.3, (n_in, n_hidden)), delay=2, dt=dt),
            dense("in_hid_I", 0, 1, -0.06 * rng.random((n_in, n_hidden)), "inhibitory", dt=dt),
            dense("hid_out", 1, 2, rng.normal(0.3, 0.3, (n_hidden, n_out)), delay=3, dt=dt),
        ],
    )


def random_input(rng, disc, batch, size, n_steps, t_max, per_neuron=3):
    """Random spike times in ``[0, t_max)`` ms as engine input; of two in one step of the time
    grid ``disc`` only the later is kept (the SpiNNaker2 model takes at most one spike per
    input neuron and tick).  ``n_steps`` is not used."""

    def one_per_step(t):
        steps = np.ceil(t / disc.dt - 1e-9)  # the step that ends at or after t
        return t[np.r_[steps[1:] != steps[:-1], True]]

    times = [
        [one_per_step(np.sort(rng.uniform(0, t_max, per_neuron))) for _ in range(size)]
        for _ in range(batch)
    ]
    return SpikeTrains.from_lists(times)


def weight_finite_differences(engine, k, evaluate, structure, eps=1e-6):
    """Central differences of a loss w.r.t. every weight of compiled projection ``k``.

    ``evaluate()`` runs the engine and returns ``(loss, event structure)``; every perturbation
    must leave the structure equal to ``structure`` (the loss is smooth in the weights only
    while no spike appears, vanishes or changes order).  The weights are restored.
    """
    w0 = engine.get_weights(k)
    fd = np.zeros_like(w0)
    for idx in np.ndindex(w0.shape):
        values = []
        for sign in (1, -1):
            w = w0.copy()
            w[idx] += sign * eps
            engine.set_weights(k, w)
            loss, now = evaluate()
            assert now == structure, "event structure changed"
            values.append(loss)
        fd[idx] = (values[0] - values[1]) / (2 * eps)
    engine.set_weights(k, w0)
    return fd
