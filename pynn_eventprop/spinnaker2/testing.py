"""Small compiled networks for the model's tests, benchmark and documentation examples.

Built directly as :class:`~pynn_eventprop.network.CompiledNetwork` (no PyNN layer) with the
Yin-Yang twin's neuron parameters in PyNN units (``docs/equations.md`` section 1).
"""

from __future__ import annotations

import numpy as np

from ..network import CompiledNetwork, CompiledPopulation, CompiledProjection
from ..neurons import WP_NEURON

#: The Yin-Yang twin's neuron: Wunderlich & Pehle's (see :mod:`pynn_eventprop.neurons`).
TWIN_PARAMETERS = WP_NEURON


def lif_population(label: str, size: int, **overrides) -> CompiledPopulation:
    """An ``IF_curr_exp`` population with the twin's parameters (overridable)."""
    params = {**TWIN_PARAMETERS, **overrides}
    initial = {"v": np.full(size, params["v_rest"]), "isyn_exc": np.zeros(size)}
    initial["isyn_inh"] = np.zeros(size)
    return CompiledPopulation(
        label, size, "IF_curr_exp", {k: np.full(size, float(v)) for k, v in params.items()}, initial
    )


def feedforward(
    sizes,
    *,
    weights=None,
    delays=1,
    masks=None,
    trainable=True,
    receptor="excitatory",
    seed=0,
    dt=1.0,
) -> CompiledNetwork:
    """A source layer followed by LIF layers, all-to-all (or ``masks``) between neighbours.

    Parameters
    ----------
    sizes : sequence of int
        ``sizes[0]`` spike sources, then one LIF population per further entry.
    weights : list of arrays, optional
        Per projection ``(n_pre, n_post)`` nA; default normal with std ``2/sqrt(n_pre)``.
    delays : int or list of (int or int array)
        Delays in steps of ``dt`` per projection.
    masks : list of bool arrays, optional
    trainable : bool or list of bool
    dt : float
        Time step (ms): the compiled delays are ``delays * dt`` ms.
    """
    rng = np.random.default_rng(seed)
    n = len(sizes) - 1
    pops = [CompiledPopulation("input", int(sizes[0]), "spike_source")]
    pops += [lif_population(f"layer{k}", int(s)) for k, s in enumerate(sizes[1:], start=1)]

    def per(value, k):
        return value[k] if isinstance(value, list) else value

    projs = []
    for k in range(n):
        shape = (int(sizes[k]), int(sizes[k + 1]))
        mask = np.ones(shape, bool) if masks is None else np.asarray(masks[k], bool)
        w = (
            rng.normal(0.0, 2.0 / np.sqrt(shape[0]), shape)
            if weights is None
            else np.asarray(weights[k], float)
        )
        d = np.broadcast_to(np.asarray(per(delays, k), np.int64) * float(dt), shape).copy()
        projs.append(
            CompiledProjection(
                f"p{k}", k, k + 1, receptor, np.where(mask, w, 0.0), d, mask, per(trainable, k)
            )
        )
    return CompiledNetwork(pops, projs)


def random_spikes(network: CompiledNetwork, n_steps: int, batch: int, rate=0.05, seed=0) -> dict:
    """Bernoulli spike rasters ``(n_steps, batch, size)`` for every population (for counting)."""
    rng = np.random.default_rng(seed)
    return {
        k: rng.random((n_steps, batch, p.size)) < rate for k, p in enumerate(network.populations)
    }
