"""Exact forward integration of ``IF_curr_alpha`` (alpha-shaped synaptic currents; no gradients).

Frame ``V = v - v_rest`` (mV), times in ms, currents in nA.  A spike of weight ``w`` (nA)
arriving at ``t_a`` adds the current ``w ((t - t_a)/tau_x) exp(1 - (t - t_a)/tau_x)`` to
channel ``x`` (E or I): PyNN's and NEST's alpha current, whose peak ``w`` is reached
``tau_x`` after the arrival.  It is the solution of two linear equations per channel::

    dI_x/dt = -I_x/tau_x + J_x,     dJ_x/dt = -J_x/tau_x,      J_x += w e/tau_x at an arrival
    cm dV/dt = -cm V/tau_m + I_E + I_I + e                       (e: external current, nA)

so the subthreshold dynamics are linear with a closed-form propagator over a free interval of
length ``s`` (``a = 1/tau_m``, ``k_x = 1/tau_x``, ``kappa_x = k_x - a``)::

    J_x(s) = J_x exp(-k_x s),   I_x(s) = (I_x + J_x s) exp(-k_x s)
    V(s)   = V exp(-a s) + e R (1 - exp(-a s))
             + (1/cm) exp(-a s) sum_x [I_x E0(kappa_x, s) + J_x E1(kappa_x, s)]

with ``R = tau_m/cm``, ``E0(kappa, s) = int_0^s exp(-kappa r) dr`` and ``E1(kappa, s) =
int_0^s r exp(-kappa r) dr`` (power series for ``|kappa s| <= 1/2``, so ``tau_x = tau_m`` is
exact too).  Refractoriness clamps ``V`` to ``v_reset`` while the currents evolve freely.

Threshold crossings (guaranteed detection).  ``h(s) = exp(a s) dV/dt(s)`` has derivative
``h'(s) = (1/cm) g(s)``, ``g(s) = sum_x (alpha_x + beta_x s) exp(-kappa_x s)`` with ``alpha_x
= J_x - k_x I_x``, ``beta_x = -k_x J_x``.  With one active channel (or ``tau_E = tau_I``) ``g``
has at most one zero, ``-alpha/beta``.  Otherwise ``G = exp(kappa_E s) g`` has ``G' =
exp(-delta s) H`` (``delta = k_I - k_E``) with ``H(s) = beta_E exp(delta s) + beta_I - delta
alpha_I - delta beta_I s``, whose derivative vanishes at most once, in closed form.  Working
up this chain (zeros of ``H'`` -> zeros of ``H`` -> zeros of ``g`` -> zeros of ``h``), each
level is monotone between the zeros of the level below it, so a sign change at the ends of a
piece brackets its only zero; the zeros of ``h`` cut the interval into pieces on which ``V``
is monotone, and the first piece whose end reaches ``theta`` brackets the first crossing.  No
crossing can be missed (except one that only touches ``theta``).  A cheap bound skips the
chain on intervals that cannot reach ``theta``.  Roots are located by the Illinois variant
of regula falsi inside the bracket (bisection where it stalls) to ``tol`` (1e-13 ms).

Free intervals end at every arrival, end of refractoriness, spike and grid point, so they are
at most one time step long.  References: Rotter & Diesmann (1999), Biol. Cybern. 81:381, exact
integration of linear neuron models; NEST's ``iaf_psc_alpha_ps`` locates crossings within a
step (Morrison et al. 2007, Neural Comput. 19:47).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ...network import CompiledPopulation

#: Parameter row layout of an ``IF_curr_alpha`` neuron.
ALPHA_NAMES = ("inv_tau_m", "inv_cm", "k_E", "k_I", "R", "theta", "v_reset", "tau_refrac",
               "jump_E", "jump_I")  # fmt: skip
A_ITM, A_ICM, A_KE, A_KI, A_R, A_THETA, A_VR, A_TREF, A_JE, A_JI = range(len(ALPHA_NAMES))

#: Root-finder iterations before giving up (bisection alone halves 1 ms to 1e-30 ms in 100).
MAX_ITER = 200
#: ``|kappa s|`` below which ``E0``, ``E1`` use their power series (16 terms: < 1e-19 relative).
SERIES_MAX = 0.5
_C0 = np.array([(-1.0) ** m / math.factorial(m + 1) for m in range(16)])
_C1 = np.array([(-1.0) ** m * (m + 1) / math.factorial(m + 2) for m in range(16)])


def alpha_rows(pop: CompiledPopulation) -> np.ndarray:
    """``(size, len(ALPHA_NAMES))`` float64 rows in the frame above (``jump_x = e/tau_x``,
    1/ms: the jump of ``J_x`` per nA of weight)."""
    p = {k: np.broadcast_to(np.asarray(v, float), (pop.size,)) for k, v in pop.params.items()}
    for name in ("cm", "tau_m", "tau_syn_E", "tau_syn_I"):
        bad = ~np.isfinite(p[name]) | (p[name] <= 0)
        if bad.any():
            raise ValueError(f"{name} must be finite and > 0 in IF_curr_alpha population "
                             f"'{pop.label}', got {p[name][bad][0]!r}")  # fmt: skip
    bad = ~np.isfinite(p["tau_refrac"]) | (p["tau_refrac"] < 0)
    if bad.any():
        raise ValueError(f"tau_refrac must be finite and >= 0 in IF_curr_alpha population "
                         f"'{pop.label}', got {p['tau_refrac'][bad][0]!r}")  # fmt: skip
    if np.any(p["v_reset"] >= p["v_thresh"]):
        raise ValueError(f"v_reset must be below v_thresh in population '{pop.label}'")
    cols = {
        "inv_tau_m": 1 / p["tau_m"],
        "inv_cm": 1 / p["cm"],
        "k_E": 1 / p["tau_syn_E"],
        "k_I": 1 / p["tau_syn_I"],
        "R": p["tau_m"] / p["cm"],
        "theta": p["v_thresh"] - p["v_rest"],
        "v_reset": p["v_reset"] - p["v_rest"],
        "tau_refrac": p["tau_refrac"],
        "jump_E": math.e / p["tau_syn_E"],
        "jump_I": math.e / p["tau_syn_I"],
    }
    return np.ascontiguousarray(np.stack([cols[n] for n in ALPHA_NAMES], axis=1))


@numba.njit(cache=True)
def _series(coef, y):
    acc = 0.0
    for m in range(coef.size - 1, -1, -1):
        acc = acc * y + coef[m]
    return acc


@numba.njit(cache=True)
def e0(kappa, s):
    """``int_0^s exp(-kappa r) dr`` (ms)."""
    y = kappa * s
    if abs(y) <= SERIES_MAX:
        return s * _series(_C0, y)
    return -math.expm1(-y) / kappa


@numba.njit(cache=True)
def e1(kappa, s):
    """``int_0^s r exp(-kappa r) dr`` (ms^2)."""
    y = kappa * s
    if abs(y) <= SERIES_MAX:
        return s * s * _series(_C1, y)
    return (1.0 - math.exp(-y) * (1.0 + y)) / (kappa * kappa)


@numba.njit(cache=True)
def propagate(p, v, ie, je, ii, ji, e, s):
    """State ``(V, I_E, J_E, I_I, J_I)`` after ``s`` ms of free evolution."""
    a = p[A_ITM]
    em = math.exp(-a * s)
    xe, xi = math.exp(-p[A_KE] * s), math.exp(-p[A_KI] * s)
    ke, ki = p[A_KE] - a, p[A_KI] - a
    syn = ie * e0(ke, s) + je * e1(ke, s) + ii * e0(ki, s) + ji * e1(ki, s)
    v1 = v * em + e * p[A_R] * (1.0 - em) + p[A_ICM] * em * syn
    return v1, (ie + je * s) * xe, je * xe, (ii + ji * s) * xi, ji * xi


@numba.njit(cache=True)
def vdot(p, v, ie, ii, e):
    """``dV/dt`` (mV/ms) of free dynamics."""
    return -v * p[A_ITM] + (ie + ii + e) * p[A_ICM]


@numba.njit(cache=True)
def _level(level, p, c, s):
    """Functions of the crossing chain (module docstring) at ``s``.

    ``c = (V, I_E, J_E, I_I, J_I, e, A, alpha_E, beta_E, alpha_I, beta_I)``; level 0:
    ``V - theta``; 1: ``h``; 2: ``g`` (``G`` when ``p`` has two channels, same zeros); 3: ``H``.
    """
    a = p[A_ITM]
    ke, ki = p[A_KE] - a, p[A_KI] - a
    if level == 0:
        return propagate(p, c[0], c[1], c[2], c[3], c[4], c[5], s)[0] - p[A_THETA]
    if level == 1:
        return c[6] + p[A_ICM] * (c[7] * e0(ke, s) + c[8] * e1(ke, s) + c[9] * e0(ki, s)
                                  + c[10] * e1(ki, s))  # fmt: skip
    delta = ki - ke
    if level == 2:
        return c[7] + c[8] * s + (c[9] + c[10] * s) * math.exp(-delta * s)
    return c[8] * math.exp(delta * s) + c[10] - delta * c[9] - delta * c[10] * s


@numba.njit(cache=True)
def _root(level, p, c, lo, hi, flo, fhi, tol):
    """The zero of a level in ``[lo, hi]`` (``flo``, ``fhi`` of opposite signs): Illinois
    regula falsi, with bisection when the bracket does not halve within three steps."""
    side, width, count = 0, hi - lo, 0
    for _ in range(MAX_ITER):
        if hi - lo <= tol:
            break
        count += 1
        if count == 3:
            count = 0
            if hi - lo > 0.5 * width:
                x = 0.5 * (lo + hi)
            else:
                x = (lo * fhi - hi * flo) / (fhi - flo)
            width = hi - lo
        else:
            x = (lo * fhi - hi * flo) / (fhi - flo)
        if not lo < x < hi:
            x = 0.5 * (lo + hi)
        fx = _level(level, p, c, x)
        if fx == 0.0:
            return x
        if (fx < 0.0) == (flo < 0.0):
            lo, flo = x, fx
            if side == -1:
                fhi *= 0.5
            side = -1
        else:
            hi, fhi = x, fx
            if side == 1:
                flo *= 0.5
            side = 1
    return 0.5 * (lo + hi)


@numba.njit(cache=True)
def _refine(level, p, c, cuts, n, out, tol):
    """``out``: the cuts plus the zeros of ``level`` between them (at most one per piece, as
    the level is monotone there); returns the new count."""
    m = 0
    out[m] = cuts[0]
    m += 1
    f_lo = _level(level, p, c, cuts[0])
    for q in range(1, n):
        f_hi = _level(level, p, c, cuts[q])
        if f_lo * f_hi < 0.0:
            out[m] = _root(level, p, c, cuts[q - 1], cuts[q], f_lo, f_hi, tol)
            m += 1
        out[m] = cuts[q]
        m += 1
        f_lo = f_hi
    return m


@numba.njit(cache=True)
def monotone_pieces(p, v, ie, je, ii, ji, e, d, tol):
    """Cut points ``0 = c_0 < ... < c_{n-1} = d`` between which ``V`` is monotone: ``(cuts,
    n)``."""
    ke, ki = p[A_KE], p[A_KI]
    al_e, be_e, al_i, be_i = je - ke * ie, -ke * je, ji - ki * ii, -ki * ji
    c = np.array([v, ie, je, ii, ji, e, vdot(p, v, ie, ii, e), al_e, be_e, al_i, be_i])
    cuts, tmp = np.zeros(8), np.zeros(8)
    cuts[1] = d
    n = 2
    one_e, one_i = al_i == 0.0 and be_i == 0.0, al_e == 0.0 and be_e == 0.0
    if ke == ki or one_e or one_i:  # g = (alpha + beta s) exp(-kappa s): zero at -alpha/beta
        al, be = al_e + al_i, be_e + be_i
        if be != 0.0 and 0.0 < -al / be < d:
            cuts[1], cuts[2] = -al / be, d
            n = 3
    else:
        delta = ki - ke
        if be_e != 0.0 and be_i / be_e > 0.0:  # zero of H'
            z = math.log(be_i / be_e) / delta
            if 0.0 < z < d:
                cuts[1], cuts[2] = z, d
                n = 3
        n = _refine(3, p, c, cuts, n, tmp, tol)
        n = _refine(2, p, c, tmp, n, cuts, tol)
    n = _refine(1, p, c, cuts, n, tmp, tol)
    return tmp, n


@numba.njit(cache=True)
def first_crossing(p, v, ie, je, ii, ji, e, d, v_end, tol):
    """Offset ``s`` in ``[0, d]`` of the first crossing of ``theta``, or -1 if none.

    ``v_end = V(d)``.  ``V >= theta`` at the start is a crossing at 0.
    """
    theta = p[A_THETA]
    if v >= theta:
        return 0.0
    if v_end < theta:  # upper bound of V on [0, d]: positive terms at their largest
        em = math.exp(-p[A_ITM] * d)
        bound = max(v, v * em + e * p[A_R] * (1.0 - em))
        bound += p[A_ICM] * (max(ie, 0.0) * d + max(ii, 0.0) * d
                             + 0.5 * (max(je, 0.0) + max(ji, 0.0)) * d * d)  # fmt: skip
        if bound < theta:
            return -1.0
    cuts, n = monotone_pieces(p, v, ie, je, ii, ji, e, d, tol)
    c = np.array([v, ie, je, ii, ji, e])
    f_lo = v - theta
    for q in range(1, n):
        f_hi = v_end - theta if q == n - 1 else _level(0, p, c, cuts[q])
        if f_hi >= 0.0:
            return _root(0, p, c, cuts[q - 1], cuts[q], f_lo, f_hi, tol)
        f_lo = f_hi
    return -1.0


@numba.njit(cache=True)
def _free_or_spike(p, st, e, d, tol):
    """Advance the state ``st = [V, I_E, J_E, I_I, J_I, ...]`` by ``d`` ms or to its first
    crossing; returns the crossing offset or -1."""
    nxt = propagate(p, st[0], st[1], st[2], st[3], st[4], e, d)
    s = -1.0
    if d > 0.0 or st[0] >= p[A_THETA]:
        s = first_crossing(p, st[0], st[1], st[2], st[3], st[4], e, d, nxt[0], tol)
    if s >= 0.0:
        nxt = propagate(p, st[0], st[1], st[2], st[3], st[4], e, s)
    for q in range(5):
        st[q] = nxt[q]
    return s


@numba.njit(cache=True)
def _emit(spk, ns, t, j):
    """Write spike ``ns`` (time ``t``, neuron ``j``); the next free slot, or -1 when full."""
    if ns >= spk[0].size:
        return -1
    spk[0][ns], spk[1][ns] = t, j
    return ns + 1


@numba.njit(cache=True)
def _neuron(p, ext_j, st, lo, hi, arr, t0, dt, n_steps, rec_j, spk, ns, j, tol):
    """Integrate one neuron over ``(t0, t0 + n_steps dt]`` from ``st = [V, I_E, J_E, I_I, J_I,
    refractory end]`` (updated in place) with its arrivals ``lo:hi``.

    ``ext_j``: external current per step; ``rec_j``: ``(V, I_E, I_I)`` sample buffers
    (``(n_steps,)`` each, or empty).  Returns ``(ns, first spike time - t0)``; ``ns = -1``
    when the spike buffer is full.
    """
    arr_t, arr_w, arr_c = arr
    first, t, k, a = math.inf, t0, 0, lo
    while True:
        tg = t0 + (k + 1) * dt
        tn = min(tg, arr_t[a]) if a < hi else tg
        if st[5] > t:  # refractory: V clamped, the currents evolve
            tn = min(tn, st[5])
            nxt = propagate(p, p[A_VR], st[1], st[2], st[3], st[4], 0.0, tn - t)
            st[1], st[2], st[3], st[4] = nxt[1], nxt[2], nxt[3], nxt[4]
            st[0], t = p[A_VR], tn
        else:
            s = _free_or_spike(p, st, ext_j[k], tn - t, tol)
            if s >= 0.0:  # spike: reset, refractory until t + tau_refrac
                t += s
                ns = _emit(spk, ns, t, j)
                if ns < 0:
                    return -1, first
                first = min(first, t - t0)
                st[0], st[5] = p[A_VR], t + p[A_TREF]
                continue
            t = tn
        while a < hi and arr_t[a] <= t:
            st[2 + 2 * arr_c[a]] += arr_w[a] * (p[A_JE] if arr_c[a] == 0 else p[A_JI])
            a += 1
        if t >= tg:
            if rec_j[0].size:
                rec_j[0][k], rec_j[1][k], rec_j[2][k] = st[0], st[1], st[3]
            k += 1
            if k >= n_steps:
                return ns, first


@numba.njit(cache=True)
def forward_alpha_layer(par, ext, state, arr_off, arr, t0, dt, n_steps, record, rec, spk, first,
                        tol):  # fmt: skip
    """Integrate every ``IF_curr_alpha`` neuron over ``(t0, t0 + n_steps dt]``.

    ``state = (V, I_E, I_I, refractory end, J_E, J_I)`` arrays ``(batch, size)``, updated in
    place; other arguments as :func:`.conductance.forward_cond_layer` (``rec`` samples ``V``,
    ``I_E``, ``I_I``).  Returns the number of spikes, or -1 when ``spk`` is too small.
    """
    batch, size = state[0].shape
    order = (0, 1, 4, 2, 5, 3)  # state arrays in the order of the neuron's vector
    st = np.zeros(6)
    ns = 0
    for row in range(batch * size):
        b, j = row // size, row % size
        spk[2][row] = ns
        for q in range(6):
            st[q] = state[order[q]][b, j]
        rec_j = (rec[0][:, b, j], rec[1][:, b, j], rec[2][:, b, j]) if record else (
            rec[0][:0, 0, 0], rec[0][:0, 0, 0], rec[0][:0, 0, 0])  # fmt: skip
        ext_j = ext[:, b if ext.shape[1] > 1 else 0, j]
        ns, first[b, j] = _neuron(par[j], ext_j, st, arr_off[row], arr_off[row + 1], arr, t0, dt,
                                  n_steps, rec_j, spk, ns, j, tol)  # fmt: skip
        if ns < 0:
            return -1
        for q in range(6):
            state[order[q]][b, j] = st[q]
    spk[2][batch * size] = ns
    return ns
