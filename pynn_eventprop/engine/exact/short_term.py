"""Tsodyks-Markram short-term plasticity of one projection, exact at the presynaptic spikes.

The model of NEST's ``tsodyks_synapse`` (which PyNN's ``TsodyksMarkramSynapse`` runs on NEST;
Tsodyks, Uziel & Markram 2000, J. Neurosci. 20:RC50).  Every connection ``(i, j)`` has a
release probability ``u``, recovered resources ``x``, active ``y`` and inactive ``z = 1 - x -
y``, which change only at spikes of ``i``.  Over the time ``h`` since the previous spike
(since ``t = 0`` for the first)::

    u <- u exp(-h/tau_facil)              (0 when tau_facil = 0)
    x <- x + P_xy y + (1 - exp(-h/tau_rec)) z,     y <- y exp(-h/tau_psc)
    P_xy = (tau_rec (exp(-h/tau_rec) - 1) - tau_psc (exp(-h/tau_psc) - 1)) / (tau_psc - tau_rec)

(the exact solution of ``dy/dt = -y/tau_psc``, ``dz/dt = y/tau_psc - z/tau_rec``; when
``tau_psc`` and ``tau_rec`` agree to 1e-6 relative, ``P_xy`` is the derivative at their mean,
error ~1e-12), then ``u <- u + U (1 - u)``; the spike is sent with weight ``w u x`` and ``x <-
x - u x``, ``y <- y + u x``.  ``tau_psc`` is the target neuron's ``tau_syn`` of the receptor.
Initially ``u = 0``, ``x = 1``, ``y = 0``.

The arrivals ``(sample, target, t + d, w u x, channel)`` join the target population's spikes
in flight (no gradient index: the efficacies are constants of the backward pass).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ...network import CompiledNetwork

#: Relative difference of ``tau_psc`` and ``tau_rec`` below which ``P_xy`` is a derivative.
NEAR_EQUAL = 1e-6
#: Allowed values: name -> (low, high, whether low itself is excluded).
DOMAINS = {
    "U": (0.0, 1.0, False),
    "tau_rec": (0.0, math.inf, True),
    "tau_facil": (0.0, math.inf, False),
    "tau_psc": (0.0, math.inf, True),
}


def domain_error(name, values, where) -> str | None:
    """A message naming ``name``, the first value outside :data:`DOMAINS` and the interval, or
    None when every value is allowed."""
    low, high, open_low = DOMAINS[name]
    v = np.asarray(values, dtype=float)
    bad = ~np.isfinite(v) | (v > high) | ((v <= low) if open_low else (v < low))
    if not bad.any():
        return None
    interval = f"{'(' if open_low else '['}{low}, {high}]"
    return f"{name} must be in {interval} in {where}, got {v[bad].ravel()[0]!r}"


@numba.njit(cache=True)
def _f(tau, h):
    """``tau (exp(-h/tau) - 1)`` and its derivative in ``tau``."""
    em1 = math.expm1(-h / tau)
    return tau * em1, em1 + (h / tau) * (em1 + 1.0)


@numba.njit(cache=True)
def p_xy(tau_psc, tau_rec, h):
    """``P_xy`` of the module docstring (exact in the limit ``tau_psc -> tau_rec``)."""
    if abs(tau_psc - tau_rec) <= NEAR_EQUAL * tau_rec:
        return -_f(0.5 * (tau_psc + tau_rec), h)[1]
    return (_f(tau_rec, h)[0] - _f(tau_psc, h)[0]) / (tau_psc - tau_rec)


@numba.njit(cache=True)
def efficacy(par, st, t):
    """Update one connection's state ``st = [u, x, y, t_last]`` for a spike at ``t`` (ms) and
    return ``u x``; ``par = (U, tau_rec, tau_facil, tau_psc)``."""
    big_u, tau_rec, tau_facil, tau_psc = par[0], par[1], par[2], par[3]
    h = t - st[3]
    u, x, y = st[0], st[1], st[2]
    z = 1.0 - x - y
    u = u * math.exp(-h / tau_facil) if tau_facil > 0.0 else 0.0
    x += p_xy(tau_psc, tau_rec, h) * y - math.expm1(-h / tau_rec) * z
    y *= math.exp(-h / tau_psc)
    u += big_u * (1.0 - u)
    release = u * x
    st[0], st[1], st[2], st[3] = u, x - release, y + release, t
    return release


@numba.njit(cache=True)
def send(sp_t, sp_n, sp_off, order, mask, w, delay, par, state, chan, out):
    """Arrivals of one projection's spikes into ``out = (b, j, t, w, c)`` from position 0.

    ``order``: the spikes in time order within each sample; ``par`` ``(4, n_pre, n_post)``;
    ``state`` ``(batch, n_pre, n_post, 4)``.  Returns the number written.
    """
    size = mask.shape[1]
    n = 0
    st = np.zeros(4)
    p = np.zeros(4)
    for b in range(sp_off.size - 1):
        for k in range(sp_off[b], sp_off[b + 1]):
            s = order[k]
            i = sp_n[s]
            for j in range(size):
                if not mask[i, j]:
                    continue
                for q in range(4):
                    st[q] = state[b, i, j, q]
                    p[q] = par[q, i, j]
                release = efficacy(p, st, sp_t[s])
                for q in range(4):
                    state[b, i, j, q] = st[q]
                out[0][n], out[1][n], out[2][n] = b, j, sp_t[s] + delay[i, j]
                out[3][n], out[4][n] = w[i, j] * release, chan
                n += 1
    return n


class ShortTermPlasticity:
    """State and parameters of the short-term plastic projection ``k`` of ``network``.

    Raises ``ValueError`` naming the projection for parameters outside the model's domain.
    """

    def __init__(self, network: CompiledNetwork, k: int, batch: int):
        proj = network.projections[k]
        post = network.populations[proj.post]
        stp, mask = proj.short_term, proj.mask
        name = "tau_syn_E" if proj.receptor == "excitatory" else "tau_syn_I"
        if name not in post.params:
            raise ValueError(
                f"projection '{proj.label}': TsodyksMarkramSynapse needs a target with {name}, "
                f"got {post.model} population '{post.label}'"
            )
        tau_psc = np.broadcast_to(np.asarray(post.params[name], float), (post.size,))
        values = {key: np.asarray(stp[key], float) for key in ("U", "tau_rec", "tau_facil")}
        values["tau_psc"] = np.broadcast_to(tau_psc, mask.shape)
        for key, v in values.items():
            message = domain_error(key, v[mask], f"projection '{proj.label}'")
            if message:
                raise ValueError(message)
        names = ("U", "tau_rec", "tau_facil", "tau_psc")
        self.par = np.ascontiguousarray(np.stack([np.where(mask, values[n], 1.0) for n in names]))
        self.mask, self.batch = mask, batch
        self.channel = 0 if proj.receptor == "excitatory" else 1
        self.reset()

    def reset(self):
        """``u = 0``, ``x = 1``, ``y = 0``, last spike at ``t = 0``."""
        self.state = np.zeros((self.batch, *self.mask.shape, 4))
        self.state[..., 1] = 1.0

    def arrivals(self, spikes, weights, delays, dtype):
        """Arrivals ``(b, j, t, w, c, widx, src)`` of this chunk's presynaptic ``spikes =
        (times, neurons, offsets)`` (widx and src -1: no gradient), state advanced."""
        sp_t, sp_n, sp_off = spikes
        bounds = zip(sp_off[:-1], sp_off[1:], strict=True)
        order = [lo + np.argsort(sp_t[lo:hi], kind="stable") for lo, hi in bounds]
        order = np.concatenate([np.zeros(0, np.int64), *order]).astype(np.int64)
        n = int(self.mask.sum(axis=1)[sp_n].sum()) if sp_n.size else 0
        out = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n), np.empty(n),
               np.empty(n, np.int8))  # fmt: skip
        send(np.asarray(sp_t, float), np.asarray(sp_n, np.int64), np.asarray(sp_off, np.int64),
             order, self.mask, np.asarray(weights, float), np.asarray(delays, float), self.par,
             self.state, self.channel, out)  # fmt: skip
        none = np.full(n, -1, np.int64)
        return out[0], out[1], out[2], out[3].astype(dtype), out[4], none, none.copy()


def merge_pending(pending, extra):
    """Spikes in flight ``pending`` and ``extra`` (both ``(b, j, t, w, c, widx, src)``)."""
    pairs = zip(pending, extra, strict=True)
    return tuple(np.concatenate([a, np.asarray(b, a.dtype)]) for a, b in pairs)
