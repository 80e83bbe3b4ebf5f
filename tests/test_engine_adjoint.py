"""The reference engine's spike-time gradient against a hand derivation.

One input spike of weight ``w`` (nA) arrives at time ``d`` (its delay) at a neuron at rest
(``v_rest = 0``, threshold ``theta``), which then follows ``V(t) = w k(t - d)`` with the unit
PSP kernel ``k(s) = tau_m tau_s / (cm (tau_m - tau_s)) (exp(-s/tau_m) - exp(-s/tau_s))``.
Its first spike is at ``t* = d + s*`` with ``w k(s*) = theta``, so by implicit differentiation
``dt*/dw = -k(s*) / (w k'(s*)) = -theta / (w^2 k'(s*))`` and ``dt*/dd = 1``.

Tolerances: the engine locates ``t*`` to about 1e-13 ms and ``scipy.optimize.brentq`` here to
1e-15 ms, so spike times agree to 1e-9 ms; the gradients are closed forms evaluated at ``t*``
(relative error of order 1e-12), checked to 1e-9 relative.  A wrong sign or a missing factor
``w`` fails by orders of magnitude.
"""

import math

import numpy as np
import pytest
from engine_networks import dense, lif, source
from scipy import optimize

from pynn_eventprop.discretisation import LIFDiscretisation
from pynn_eventprop.engine import make_engine
from pynn_eventprop.engine.interface import SpikeTrains
from pynn_eventprop.network import CompiledNetwork

TAU_M, TAU_S, CM, THETA = 10.0, 5.0, 1.0, 1.0


def kernel(s):
    """Unit PSP kernel ``k(s)`` (mV per nA) and its derivative ``k'(s)`` (mV per nA and ms)."""
    a = TAU_M * TAU_S / (CM * (TAU_M - TAU_S))
    k = a * (math.exp(-s / TAU_M) - math.exp(-s / TAU_S))
    dk = a * (-math.exp(-s / TAU_M) / TAU_M + math.exp(-s / TAU_S) / TAU_S)
    return k, dk


@pytest.mark.parametrize("w, delay", [(2.0, 0.5), (1.3, 1.7)])
def test_spike_time_gradient_matches_hand_derivation(w, delay):
    disc = LIFDiscretisation(0.5)
    params = dict(v_rest=0.0, v_reset=0.0, v_thresh=THETA, cm=CM, tau_m=TAU_M, tau_syn_E=TAU_S)
    net = CompiledNetwork(
        [source("in", 1), lif("a", 1, **params)],
        [dense("p", 0, 1, [[w]], delay=delay / disc.dt, dt=disc.dt)],
    )
    engine = make_engine("reference", net, disc)
    result = engine.run(40, sources={0: SpikeTrains.from_lists([[np.array([0.0])]])},
                        keep_for_backward=True)  # fmt: skip
    t_first = engine.readouts(result, 1, ["first_spike_time"])["first_spike_time"][0, 0]
    peak = math.log(TAU_M / TAU_S) * TAU_M * TAU_S / (TAU_M - TAU_S)  # time of k's maximum
    assert w * kernel(peak)[0] > THETA  # the neuron fires on the rising flank
    s_star = optimize.brentq(lambda s: w * kernel(s)[0] - THETA, 0.0, peak, xtol=1e-15)
    assert t_first == pytest.approx(delay + s_star, abs=1e-9)

    grads = engine.backward(result, {1: {"first_spike_time": np.ones((1, 1))}})
    expected = -THETA / (w**2 * kernel(s_star)[1])
    assert grads.weights[0][0, 0] == pytest.approx(expected, rel=1e-9)
    assert grads.delays[0][0, 0] == pytest.approx(1.0, rel=1e-9)
