"""Weight gradients of the reference engine through projections whose connections have
different delays.

Each projection below mixes several delays, whole steps of the grid (the input projection
every delay from 1 to 5 steps), so a spike of one presynaptic neuron reaches its targets at
different times and arrivals of one neuron's spikes fall on grid points.  Every weight
gradient the engine returns for a loss of the output readouts is compared with central finite
differences of the same loss.
"""

import numpy as np
from engine_networks import lif, random_input, source, weight_finite_differences

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine import make_engine
from pynn_eventprop.network import CompiledNetwork, CompiledProjection

DT, N_STEPS, BATCH = 0.5, 80, 3
READOUTS = ("first_spike_time", "v_max", "v_mean_uniform", "v_mean_exponential")


def _projection(label, pre, post, weights, delay_steps, receptor="excitatory"):
    mask = np.ones(weights.shape, bool)
    return CompiledProjection(
        label, pre, post, receptor, weights, delay_steps * DT, mask, trainable=True
    )


def mixed_delay_network(rng):
    """in(6) -> hidden(8): delays 1-5 steps mixed, plus inhibition at 1 or 4 steps;
    hidden -> out(3): delays 1-3 steps mixed."""
    d_in = rng.integers(1, 6, (6, 8))
    assert set(np.unique(d_in)) == {1, 2, 3, 4, 5}
    return CompiledNetwork(
        [source("in", 6), lif("hidden", 8, tau_refrac=1.0), lif("out", 3)],
        [
            _projection("in_hid", 0, 1, rng.normal(0.35, 0.3, (6, 8)), d_in),
            _projection(
                "in_hid_I",
                0,
                1,
                -0.06 * rng.random((6, 8)),
                rng.choice([1, 4], (6, 8)),
                "inhibitory",
            ),
            _projection("hid_out", 1, 2, rng.normal(0.3, 0.3, (8, 3)), rng.integers(1, 4, (8, 3))),
        ],
    )


def _loss(engine, src, coefficients):
    """L = sum over readouts r of sum c_r * r (first spike times of silent neurons count 0)."""
    engine.reset()
    result = engine.run(N_STEPS, sources={0: src}, keep_for_backward=True)
    values = engine.readouts(result, 2, READOUTS)
    loss, grads = 0.0, {}
    for name in READOUTS:
        value, c = values[name], coefficients[name]
        finite = np.isfinite(value)
        loss += float(np.sum(np.where(finite, c * np.where(finite, value, 0.0), 0.0)))
        grads[name] = np.where(finite, c, 0.0)
    return loss, result, grads, engine.event_structure(result)


def test_mixed_delay_gradients_match_central_finite_differences():
    """Tolerance: eps = 1e-6 nA keeps the event structure fixed (asserted), so the loss is
    smooth, and the truncation error O(eps^2 L''') is ~1e-12.  The forward pass locates
    spike times to about 1e-13 ms and every readout depends on them, so the loss carries an
    error of ~1e-12 and the central difference one of ~1e-12 / eps = 1e-6 (measured: 1.2e-6
    at most): 5e-6 absolute on gradients of order 0.01-4.  Summing one delay group's
    adjoint into the connections of another, as a per-projection mask would, is wrong by
    factors of order one and fails by orders of magnitude more than this.
    """
    rng = np.random.default_rng(11)
    disc = LIFDiscretisation(DT)
    net = mixed_delay_network(rng)
    src = random_input(rng, disc, BATCH, 6, N_STEPS, t_max=25)
    coefficients = {name: rng.normal(size=(BATCH, 3)) for name in READOUTS}
    engine = make_engine("reference", net, disc, BATCH)
    _, result, grads, structure = _loss(engine, src, coefficients)
    assert all(result.spikes[i].times.size > 20 for i in (1, 2))  # spikes in every layer
    gradients = engine.backward(result, {2: grads}).weights

    def evaluate():
        loss, _, _, now = _loss(engine, src, coefficients)
        return loss, now

    for k in range(len(net.projections)):
        fd = weight_finite_differences(engine, k, evaluate, structure)
        assert np.abs(gradients[k] - fd).max() < 5e-6, net.projections[k].label
        assert np.abs(fd).max() > 0.1  # the check is not vacuous
    assert not np.shares_memory(engine.get_weights(0), net.projections[0].weights)


def test_leaving_out_delay_gradients_changes_no_weight_gradient():
    """``backward(..., delays=False)`` (training without delay learners) on mixed delays,
    inhibition, refractoriness, neurons firing several times and every readout: the same
    weight gradients and spike-time gradients, bit for bit, and no delay gradients."""
    rng = np.random.default_rng(5)
    disc = LIFDiscretisation(DT)
    net = mixed_delay_network(rng)
    src = random_input(rng, disc, BATCH, 6, N_STEPS, t_max=25)
    coefficients = {name: rng.normal(size=(BATCH, 3)) for name in READOUTS}
    engine = make_engine("reference", net, disc, BATCH)
    _, result, grads, _ = _loss(engine, src, coefficients)
    hidden = result.spikes[1]
    fired = [np.bincount(hidden.neurons[hidden.offsets[b] : hidden.offsets[b + 1]])
             for b in range(BATCH)]  # fmt: skip
    assert max(f.max() for f in fired) > 1  # some neuron fires several times
    full = engine.backward(result, {2: grads})
    lean = engine.backward(result, {2: grads}, delays=False)
    assert lean.delays is None and any(np.any(d != 0) for d in full.delays)
    for x, y in zip(full.weights, lean.weights, strict=True):
        assert np.any(x != 0)
        np.testing.assert_array_equal(x, y)
    for p in (0, 1):
        np.testing.assert_array_equal(full.spike_times[p], lean.spike_times[p])
