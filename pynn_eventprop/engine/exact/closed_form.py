"""Closed-form membrane of ``IF_curr_exp`` between events, and its guaranteed crossing detector.

Frame: ``V = v - v_rest`` (mV), currents ``I_E``, ``I_I`` and external current ``e`` (nA),
times in ms.  Between two events (no arrival, no reset, ``e`` constant) and outside the
refractory period::

    dV/dt   = -V/tau_m + (I_E + I_I + e)/cm,        dI_x/dt = -I_x/tau_x

whose solution after a time ``s`` is (``kappa_x = 1/tau_x - 1/tau_m``)::

    I_x(s) = I_x(0) exp(-s/tau_x)
    V(s)   = V(0) exp(-s/tau_m) + sum_x I_x(0) q_x(s) + e R (1 - exp(-s/tau_m)),   R = tau_m/cm
    q_x(s) = (s/cm) exp(-s/tau_m) S(s kappa_x),    S(y) = (1 - exp(-y))/y,  S(0) = 1

(``q_x`` is the usual ``tau_m tau_x/(cm (tau_x - tau_m)) (exp(-s/tau_x) - exp(-s/tau_m))``
written so that it stays exact when ``tau_x -> tau_m``).

Crossing detector.  ``dV/dt`` obeys the same linear equation with inputs ``-I_x/tau_x`` and no
constant term, hence ``exp(s/tau_m) dV/dt(s) = h(s) = A + beta_E phi_E(s) + beta_I phi_I(s)``
with ``A = dV/dt(0)``, ``beta_x = -I_x(0)/(tau_x cm)`` and ``phi_x(s) = s S(s kappa_x)``
(increasing, ``phi_x' = exp(-s kappa_x)``).  ``h' = beta_E exp(-s kappa_E) + beta_I
exp(-s kappa_I)`` has at most one zero, in closed form, so ``h`` is monotone on at most two
pieces and has at most one zero on each: ``V`` has at most two extrema between events (one when
``tau_syn_E = tau_syn_I`` or when the currents have the same sign).  Splitting the interval at
the zeros of ``h`` leaves pieces on which ``V`` is monotone; the first piece whose end reaches
``theta`` brackets the first crossing, which a safeguarded Halley iteration (Halley inside the
bracket, bisection otherwise) locates.  No crossing can be missed: a crossing needs ``V >=
theta`` at the end of some monotone piece.

Parameter rows (one per neuron, see :data:`PARAM_NAMES`) are float arrays indexed by the
module constants below.
"""

from __future__ import annotations

import math

import numba

PARAM_NAMES = (
    "inv_tau_m",
    "inv_cm",
    "inv_tau_E",
    "inv_tau_I",
    "kappa_E",
    "kappa_I",
    "R",
    "theta",
    "v_reset",
    "tau_refrac",
    "syn_power",
)
IT_M, INV_CM, IT_E, IT_I, K_E, K_I, R_M, THETA, V_RESET, T_REF, POW = range(len(PARAM_NAMES))
#: Largest ``tau_m/tau_syn`` ratio whose synaptic decay is computed as a power of the membrane's.
MAX_POWER = 8

#: Newton/bisection iterations before giving up on a bracket (bisection alone halves 1 ms to
#: 1e-30 ms in 100 steps).
MAX_ITER = 100


@numba.njit(cache=True)
def rel_expm1(y):
    """``S(y) = (1 - exp(-y))/y`` with ``S(0) = 1`` (second-order series below 1e-9)."""
    if abs(y) < 1e-9:
        return 1.0 - 0.5 * y
    return -math.expm1(-y) / y


@numba.njit(cache=True)
def e1(alpha, d):
    """``int_0^d exp(-alpha s) ds = d S(alpha d)`` (ms)."""
    return d * rel_expm1(alpha * d)


@numba.njit(cache=True)
def _psc(inv_cm, d, em, ax, kappa):
    """``q_x(d)`` from ``em = exp(-d/tau_m)`` and ``ax = exp(-d/tau_x)``.

    ``(em - ax)/(cm kappa)`` when ``|d kappa| > 1e-3`` (relative rounding <= 1e-13), else
    ``d em S(d kappa)/cm`` with ``S`` to third order (truncation < 1e-14).
    """
    y = d * kappa
    if abs(y) > 1e-3:
        return inv_cm * (em - ax) / kappa
    return d * inv_cm * em * (1.0 - y * (0.5 - y * (1.0 / 6.0 - y / 24.0)))


@numba.njit(cache=True)
def flow(p, d):
    """Propagator entries over ``d`` ms: ``(exp(-d/tau_m), a_E, a_I, q_E(d), q_I(d))``.

    When both synaptic time constants equal ``tau_m/k`` for an integer ``k`` (the
    ``syn_power`` column, 0 otherwise) the synaptic decay is ``exp(-d/tau_m)**k``, by
    multiplication: one exponential instead of two, equal to a few units in the last place.
    """
    em = math.exp(-d * p[IT_M])
    if p[POW] > 0.0:
        ae = em
        for _ in range(int(p[POW]) - 1):
            ae *= em
    else:
        ae = math.exp(-d * p[IT_E])
    same = p[IT_I] == p[IT_E]  # then kappa_I = kappa_E too, and q_I = q_E
    ai = ae if same else math.exp(-d * p[IT_I])
    qe = _psc(p[INV_CM], d, em, ae, p[K_E])
    return em, ae, ai, qe, qe if same else _psc(p[INV_CM], d, em, ai, p[K_I])


@numba.njit(cache=True)
def advance(p, v, ie, ii, e, em, ae, ai, qe, qi):
    """Apply propagator entries (from :func:`flow`) to the state ``(V, I_E, I_I)``."""
    return v * em + ie * qe + ii * qi + e * p[R_M] * (1.0 - em), ie * ae, ii * ai


@numba.njit(cache=True)
def propagate(p, v, ie, ii, e, d):
    """State ``(V, I_E, I_I)`` after ``d`` ms of free evolution with external current ``e``."""
    em, ae, ai, qe, qi = flow(p, d)
    return advance(p, v, ie, ii, e, em, ae, ai, qe, qi)


@numba.njit(cache=True)
def vdot(p, v, ie, ii, e):
    """``dV/dt = -V/tau_m + (I_E + I_I + e)/cm`` (mV/ms), free dynamics."""
    return -v * p[IT_M] + (ie + ii + e) * p[INV_CM]


@numba.njit(cache=True)
def _h(p, a, be, bi, s):
    """``h(s) = exp(s/tau_m) dV/dt(s)``, ``h'(s)`` and ``h''(s)``."""
    xe, xi = math.exp(-s * p[K_E]), math.exp(-s * p[K_I])
    val = a + be * s * rel_expm1(s * p[K_E]) + bi * s * rel_expm1(s * p[K_I])
    return val, be * xe + bi * xi, -be * p[K_E] * xe - bi * p[K_I] * xi


@numba.njit(cache=True)
def _fdf(mode, p, v, ie, ii, e, a, be, bi, s):
    """Function and its first two derivatives for the root finder: ``h`` (mode 0) or
    ``V - theta`` (mode 1; ``d2V/dt2 = -(dV/dt)/tau_m - (I_E/tau_E + I_I/tau_I)/cm``)."""
    if mode == 0:
        return _h(p, a, be, bi, s)
    v1, ie1, ii1 = propagate(p, v, ie, ii, e, s)
    slope = vdot(p, v1, ie1, ii1, e)
    return v1 - p[THETA], slope, -slope * p[IT_M] - (ie1 * p[IT_E] + ii1 * p[IT_I]) * p[INV_CM]


@numba.njit(cache=True, error_model="numpy")
def _start(lo, hi, flo, fhi, dlo, dhi):
    """First iterate for :func:`root`: the zero of the cubic Hermite interpolant of ``f`` on
    the bracket when the end slopes ``dlo``, ``dhi`` are known (finite), else the secant point.

    The interpolant uses only what the caller already has, so the guess costs no evaluation
    of ``f``; a few Newton steps on the cubic (clamped to the bracket) locate its zero
    (:func:`hermite_start`).
    """
    if math.isfinite(dlo) and math.isfinite(dhi):
        return hermite_start(lo, hi, flo, fhi, dlo, dhi)
    return _in_bracket(lo, hi, _secant_fraction(flo, fhi))


@numba.njit(cache=True, inline="always", error_model="numpy")
def hermite_start(lo, hi, flo, fhi, dlo, dhi):
    """:func:`_start` without a branch: four Newton steps on the Hermite cubic from the secant
    point, each taken unless a slope of the cubic was 0 (the step stops there) or ``dlo`` or
    ``dhi`` is not finite (the secant point stays), as selects.  A loop over brackets that
    inlines it is vectorised by the compiler (:func:`power_starts`); the same operations in
    the same order as the branches would do, so the same results, bit for bit.
    """
    y = _secant_fraction(flo, fhi)
    span = hi - lo
    m0, m1 = dlo * span, dhi * span
    c1, c2, c3 = m0, 3.0 * (fhi - flo) - 2.0 * m0 - m1, 2.0 * (flo - fhi) + m0 + m1
    moving = (abs(dlo) < math.inf) & (abs(dhi) < math.inf)
    y, moving = _cubic_step(y, moving, flo, c1, c2, c3)
    y, moving = _cubic_step(y, moving, flo, c1, c2, c3)
    y, moving = _cubic_step(y, moving, flo, c1, c2, c3)
    y, moving = _cubic_step(y, moving, flo, c1, c2, c3)
    return _in_bracket(lo, hi, y)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _cubic_step(y, moving, flo, c1, c2, c3):
    """A Newton step on ``flo + y (c1 + y (c2 + y c3))`` clamped to ``[0, 1]``, taken while
    ``moving``; a slope of 0 stops it for good."""
    val = flo + y * (c1 + y * (c2 + y * c3))
    slope = c1 + y * (2.0 * c2 + 3.0 * y * c3)
    moving = moving & (slope != 0.0)
    stepped = min(max(y - val / (slope if moving else 1.0), 0.0), 1.0)
    return (stepped if moving else y), moving


@numba.njit(cache=True, inline="always", error_model="numpy")
def _secant_fraction(flo, fhi):
    """Where the secant of ``f`` crosses 0, as a fraction of the bracket (0.5 if outside)."""
    y = -flo / (fhi - flo)
    return y if 0.0 < y < 1.0 else 0.5


@numba.njit(cache=True, inline="always")
def _in_bracket(lo, hi, y):
    """The point at fraction ``y`` of ``[lo, hi]``, the midpoint if rounding put it outside."""
    x = lo + y * (hi - lo)
    return x if lo < x < hi else 0.5 * (lo + hi)


@numba.njit(cache=True)
def _converged(step, previous, tol):
    """Whether ``x - step`` is within ``tol`` of the root.

    Either the step itself is below ``tol``, or the iteration is visibly in its cubic regime
    (the step shrank by a factor of 1000 or more since the previous one) and the next step
    it predicts, ``|step| (|step| / |previous|)**3`` from ``e_{n+1} = K e_n**3`` with ``K``
    estimated from the last two steps, is below ``tol``: one evaluation fewer per root, without
    trusting a slowly converging (e.g. grazing) case.
    """
    s = abs(step)
    if s <= tol:
        return True
    if not s <= 1e-3 * abs(previous) or math.isinf(previous):
        return False
    r = s / abs(previous)
    return s * r * r * r <= tol


@numba.njit(cache=True)
def root(mode, p, v, ie, ii, e, a, be, bi, lo, hi, flo, fhi, tol, dlo=math.nan, dhi=math.nan):
    """Safeguarded Halley iteration on a bracket ``[lo, hi]``, ``f(lo) = flo`` and ``f(hi) =
    fhi`` of opposite signs (``dlo``, ``dhi``: the slopes there, if known).

    Starts at :func:`_start`; steps that leave the current bracket are replaced by
    bisection, so the bracket shrinks at every step and the iteration converges whatever the
    shape of ``f`` (cubically near the root, where Halley's step applies).  Stops when the step
    or the bracket is below ``tol`` (ms).
    """
    neg_lo = flo < 0.0
    x = _start(lo, hi, flo, fhi, dlo, dhi)
    previous = math.inf
    for _ in range(MAX_ITER):
        f, df, d2f = _fdf(mode, p, v, ie, ii, e, a, be, bi, x)
        done, x, lo, hi, previous = _halley(x, f, df, d2f, lo, hi, neg_lo, previous, tol)
        if done:
            break
    return x


@numba.njit(cache=True)
def _halley(x, f, df, d2f, lo, hi, neg_lo, previous, tol):
    """One step of :func:`root` from ``x`` (``f``, ``f'``, ``f''`` there; ``previous`` the last
    step): ``(converged, next x, lo, hi, this step)``."""
    if f == 0.0:
        return True, x, lo, hi, previous
    if (f < 0.0) == neg_lo:
        lo = x
    else:
        hi = x
    den = 2.0 * df * df - f * d2f
    step = 2.0 * f * df / den if den != 0.0 else math.inf
    if _converged(step, previous, tol):  # tested first, as rounding may put x - step
        if 2.0 * abs(step) >= (abs(f / df) if df != 0.0 else math.inf):
            return True, min(max(x - step, lo), hi), lo, hi, step  # just outside the bracket
        # Halley's step is small but Newton's is not: x is near an extremum of f (f' = 0),
        # where Halley's step vanishes far from the root; bisect
        return hi - lo <= tol, 0.5 * (lo + hi), lo, hi, math.inf
    xn = x - step
    if not (lo < xn < hi):
        xn = 0.5 * (lo + hi)
    return hi - lo <= tol, xn, lo, hi, step


@numba.njit(cache=True)
def power_form(p, v, ie, ii, e):
    """``V`` as a polynomial of ``x = exp(-s/tau_m)`` when ``tau_syn_E = tau_syn_I = tau_m/k``
    for an integer ``k >= 2`` (the ``syn_power`` column): then ``exp(-s/tau_syn) = x**k`` and

        V(s) = a1 x + ak x**k + c,   b = (I_E + I_I)/(cm kappa),  a1 = V(0) + b - e R,  ak = -b,
        c = e R

    Returns ``(a1, ak, k, c)``.  ``dV/ds = -x g'(x)/tau_m``: the one extremum sits at
    ``x**(k-1) = -a1/(k ak)``.
    """
    b = (ie + ii) * p[INV_CM] / p[K_E]
    c = e * p[R_M]
    return v + b - c, -b, int(p[POW]), c


@numba.njit(cache=True)
def _power(args, x):
    """``g(x) = a1 x + ak x**k + c`` and its first two derivatives (``args`` from
    :func:`power_form`, ``c`` already less ``theta``)."""
    a1, ak, k, c = args
    xk2 = 1.0
    for _ in range(k - 2):
        xk2 *= x
    xk1 = xk2 * x
    return a1 * x + ak * xk1 * x + c, a1 + k * ak * xk1, k * (k - 1) * ak * xk2


@numba.njit(cache=True)
def _power_root(g, lo, hi, glo, x, tol):
    """:func:`root` for ``g`` of :func:`_power` on ``[lo, hi]`` in ``x`` (``tol`` in ``x``),
    from ``x`` (:func:`_start`)."""
    neg_lo = glo < 0.0
    previous = math.inf
    for _ in range(MAX_ITER):
        f, df, d2f = _power(g, x)
        done, x, lo, hi, previous = _halley(x, f, df, d2f, lo, hi, neg_lo, previous, tol)
        if done:
            break
    return x


@numba.njit(cache=True)
def power_start(p, v, ie, ii, e, x_end, v_end, vdot_end):
    """First iterate (:func:`_start`) of the crossing in the power form on ``[x_end, 1]``,
    ``x_end = exp(-d/tau_m)``, when ``V`` ends the interval at ``v_end >= theta``."""
    return _start(*power_bracket(p, v, ie, ii, e, x_end, v_end, vdot_end))


@numba.njit(cache=True)
def power_bracket(p, v, ie, ii, e, x_end, v_end, vdot_end):
    """``(lo, hi, f(lo), f(hi), f'(lo), f'(hi))`` of :func:`power_start`'s bracket in ``x``."""
    it_m, theta = p[IT_M], p[THETA]
    return (x_end, 1.0, v_end - theta, v - theta, -vdot_end / (x_end * it_m),
            -vdot(p, v, ie, ii, e) / it_m)  # fmt: skip


@numba.njit(cache=True, error_model="numpy")
def power_starts(rows, n):
    """:func:`power_start` of ``n`` brackets at once: column ``q`` of ``rows`` holds
    :func:`power_bracket`'s values in rows ``4, 5, 3, 6, 7, 8`` (in that order); the first
    iterate replaces row 3.  One loop without branches (:func:`hermite_start`), which the
    compiler vectorises: 9 instead of 30 ns per bracket, the same values bit for bit."""
    for q in range(n):
        rows[3, q] = hermite_start(rows[4, q], rows[5, q], rows[3, q], rows[6, q], rows[7, q],
                                   rows[8, q])  # fmt: skip


@numba.njit(cache=True)
def power_roots(k, rows, flags, tol, n):
    """:func:`_power_root` for ``n`` brackets at once, interleaved.  Bracket ``q`` is column
    ``q`` of ``rows = (a1, ak, c less theta, x, lo, hi, previous)`` (``(7, >= n)``; ``g =
    (a1, ak, k, c)`` of :func:`_power`, the first iterate ``x`` on ``[lo, hi]``) and of
    ``flags = (sign of g at lo < 0, active)`` (``(2, >= n)``); the roots are left in ``x``,
    ``previous`` and ``active`` are scratch.

    Every bracket takes exactly the steps :func:`_power_root` would (so the same roots, bit
    for bit), but the steps of different brackets are independent: the processor overlaps
    their divisions, where one root at a time waits for each.
    """
    for q in range(n):
        rows[6, q] = math.inf
        flags[1, q] = True
    left = n
    for _ in range(MAX_ITER):
        if left == 0:
            break
        for q in range(n):
            if flags[1, q]:
                f, df, d2f = _power((rows[0, q], rows[1, q], k, rows[2, q]), rows[3, q])
                done, rows[3, q], rows[4, q], rows[5, q], rows[6, q] = _halley(
                    rows[3, q], f, df, d2f, rows[4, q], rows[5, q], flags[0, q], rows[6, q], tol
                )
                if done:
                    flags[1, q] = False
                    left -= 1


@numba.njit(cache=True)
def _power_crossing(p, v, ie, ii, e, d, v_end, vdot_end, tol, locate):
    """:func:`first_crossing` in the power form (:func:`power_form`): no exponential per
    iteration, and the test for a maximum above ``theta`` without any.

    The maximum: ``x*^(k-1) = r = a1/(k b)`` and ``V* = c + a1 x* (k - 1)/k``, so ``V* >=
    theta`` iff ``x* >= y = (theta - c) k/(a1 (k - 1))``, i.e. ``y <= 0`` or ``r >= y**(k-1)``.
    The root is found in ``x`` (to ``tol tau_m``-relative, ``ds = -tau_m dx/x``) and returned as
    ``s = -tau_m log x``.
    """
    theta, it_m = p[THETA], p[IT_M]
    a1, ak, k, c = power_form(p, v, ie, ii, e)
    g = (a1, ak, k, c - theta)
    if v_end >= theta:
        if not locate:
            return d
        x_end = math.exp(-d * it_m)
        x0 = power_start(p, v, ie, ii, e, x_end, v_end, vdot_end)
        x = _power_root(g, x_end, 1.0, v_end - theta, x0, tol * it_m * x_end)
        return -math.log(x) / it_m
    if vdot(p, v, ie, ii, e) <= 0.0 or vdot_end >= 0.0 or ak >= 0.0 or a1 <= 0.0:
        return -1.0  # no interior maximum
    r = a1 / (-k * ak)
    y = (theta - c) * k / (a1 * (k - 1))
    if y > 0.0:
        yk = y
        for _ in range(k - 2):
            yk *= y
        if r < yk:
            return -1.0
    if not locate:
        return d
    x_max = r ** (1.0 / (k - 1))
    g_max = c + a1 * x_max * (k - 1) / k - theta
    if g_max < 0.0:  # rounding at a grazing maximum
        return -1.0
    x0 = _start(x_max, 1.0, g_max, v - theta, 0.0, -vdot(p, v, ie, ii, e) / it_m)
    x = _power_root(g, x_max, 1.0, g_max, x0, tol * it_m * x_max)
    return -math.log(x) / it_m


@numba.njit(cache=True)
def vdot_zeros(p, a, be, bi, d, tol):
    """Zeros of ``dV/dt`` strictly inside ``(0, d)``: ``(count, z1, z2)``, increasing."""
    cuts = (0.0, d, d)
    n_cuts = 2
    if be * bi < 0.0 and p[K_E] != p[K_I]:
        sc = math.log(-bi / be) / (p[K_I] - p[K_E])
        if 0.0 < sc < d:
            cuts = (0.0, sc, d)
            n_cuts = 3
    z1, z2 = 0.0, 0.0
    count = 0
    h_lo = a
    for k in range(n_cuts - 1):
        lo, hi = cuts[k], cuts[k + 1]
        h_hi = _h(p, a, be, bi, hi)[0]
        if h_lo * h_hi < 0.0:
            z = root(0, p, 0.0, 0.0, 0.0, 0.0, a, be, bi, lo, hi, h_lo, h_hi, tol)
            if count == 0:
                z1 = z
            else:
                z2 = z
            count += 1
        h_lo = h_hi
    return count, z1, z2


@numba.njit(cache=True)
def slopes(p, v, ie, ii, e):
    """``(A, beta_E, beta_I)`` of ``h`` for the state at the start of an interval."""
    inv_cm = p[INV_CM]
    return vdot(p, v, ie, ii, e), -ie * p[IT_E] * inv_cm, -ii * p[IT_I] * inv_cm


@numba.njit(cache=True)
def _single_zero(p, a, be, bi, d, tol):
    """The zero of ``h`` when ``h`` has one term (equal synaptic time constants or one current).

    ``a + beta phi(s) = 0`` with ``phi(s) = (1 - exp(-s kappa))/kappa``:
    ``s = -log1p(kappa a/beta)/kappa`` (``-a/beta`` when ``kappa = 0``).
    """
    if bi == 0.0 or p[K_E] == p[K_I]:
        beta, kappa = be + bi, p[K_E]
    elif be == 0.0:
        beta, kappa = bi, p[K_I]
    else:
        return vdot_zeros(p, a, be, bi, d, tol)[1]
    if kappa == 0.0:
        return -a / beta
    return -math.log1p(kappa * a / beta) / kappa


@numba.njit(cache=True)
def first_crossing(p, v, ie, ii, e, d, v_end, vdot_end, tol, locate=True):
    """Time ``s`` in ``(0, d]`` of the first upward crossing of ``theta``, or -1 if none
    (without ``locate``: ``d`` if there is one, not located).

    ``v < theta`` at ``s = 0``; ``v_end``, ``vdot_end``: ``V`` and ``dV/dt`` at ``d``.  Cheap
    filters first: when ``h`` is monotone (currents of one sign, or equal synaptic time
    constants) ``V`` has at most one extremum, so ``V(d) >= theta`` means exactly one crossing
    in ``(0, d]`` and ``V(d) < theta`` excludes one unless ``dV/dt`` goes from positive to
    negative; then the maximum is in closed form (:func:`_single_zero`).
    """
    if p[POW] >= 2.0:
        return _power_crossing(p, v, ie, ii, e, d, v_end, vdot_end, tol, locate)
    theta = p[THETA]
    a, be, bi = slopes(p, v, ie, ii, e)
    if be * bi >= 0.0 or p[K_E] == p[K_I]:
        if v_end >= theta:
            if not locate:
                return d
            return root(1, p, v, ie, ii, e, a, be, bi, 0.0, d, v - theta, v_end - theta, tol, a,
                        vdot_end)  # fmt: skip
        if a <= 0.0 or vdot_end >= 0.0:
            return -1.0
        z = min(max(_single_zero(p, a, be, bi, d, tol), 0.0), d)
        v_max = propagate(p, v, ie, ii, e, z)[0]
        if v_max < theta:
            return -1.0
        if not locate:
            return d
        return root(1, p, v, ie, ii, e, a, be, bi, 0.0, z, v - theta, v_max - theta, tol, a, 0.0)
    count, z1, z2 = vdot_zeros(p, a, be, bi, d, tol)
    lo = 0.0
    for k in range(count + 1):
        hi = d if k == count else (z1 if k == 0 else z2)
        v_hi = v_end if k == count else propagate(p, v, ie, ii, e, hi)[0]
        if v_hi >= theta:
            if not locate:
                return d
            f_lo = propagate(p, v, ie, ii, e, lo)[0] - theta
            d_lo = a if k == 0 else 0.0  # interior cuts are extrema: dV/dt = 0
            d_hi = vdot_end if k == count else 0.0
            return root(1, p, v, ie, ii, e, a, be, bi, lo, hi, f_lo, v_hi - theta, tol, d_lo,
                        d_hi)  # fmt: skip
        lo = hi
    return -1.0


@numba.njit(cache=True)
def interval_max(p, v, ie, ii, e, d, tol):
    """Largest interior maximum of ``V`` on ``(0, d)``: ``(value, s)``, ``(-inf, -1)`` if none
    (in closed form when ``h`` is monotone, :func:`_single_zero`; else located by
    :func:`vdot_zeros`)."""
    a, be, bi = slopes(p, v, ie, ii, e)
    best, where = -math.inf, -1.0
    if be * bi >= 0.0 or p[K_E] == p[K_I]:  # h monotone: one maximum if h goes + to -
        if a <= 0.0 or _h(p, a, be, bi, d)[0] >= 0.0:
            return best, where
        z = min(max(_single_zero(p, a, be, bi, d, tol), 0.0), d)
        return propagate(p, v, ie, ii, e, z)[0], z
    count, z1, z2 = vdot_zeros(p, a, be, bi, d, tol)
    for k in range(count):
        z = z1 if k == 0 else z2
        if _h(p, a, be, bi, z)[1] < 0.0:  # h decreasing through zero: a maximum of V
            val = propagate(p, v, ie, ii, e, z)[0]
            if val > best:
                best, where = val, z
    return best, where


@numba.njit(cache=True)
def weighted_integral(p, v, ie, ii, e, d, v_end, gamma):
    """``int_0^d exp(-gamma s) V(s) ds`` (mV ms) over a free interval, in closed form.

    From ``V' = -V/tau_m + (I_E + I_I + e)/cm`` integrated against ``exp(-gamma s)``:
    ``(1/tau_m + gamma) K = V(0) - V(d) exp(-gamma d) + (1/cm) (sum_x I_x(0) E(1/tau_x +
    gamma) + e E(gamma))`` with ``E(alpha) = int_0^d exp(-alpha s) ds``.
    """
    return integral_from(p, v, ie, ii, v_end, integral_coefs(p, e, d, gamma))


@numba.njit(cache=True)
def decay(gamma, d):
    """``exp(-gamma d)``: exactly 1, without a call, for the unweighted integrals (``gamma =
    0``)."""
    return 1.0 if gamma == 0.0 else math.exp(-gamma * d)


@numba.njit(cache=True)
def integral_coefs(p, e, d, gamma):
    """What :func:`weighted_integral` needs of an interval of length ``d`` but not of the
    state: ``(E(1/tau_E + gamma), E(1/tau_I + gamma), e E(gamma), exp(-gamma d),
    1/(1/tau_m + gamma))``, shared by all neurons with these parameters (the inhibitory
    entry is the excitatory one when the time constants are equal)."""
    c_e = e1(p[IT_E] + gamma, d)
    c_i = c_e if p[IT_I] == p[IT_E] else e1(p[IT_I] + gamma, d)
    return c_e, c_i, e * e1(gamma, d), decay(gamma, d), 1.0 / (p[IT_M] + gamma)


@numba.njit(cache=True)
def integral_from(p, v, ie, ii, v_end, c):
    """:func:`weighted_integral` from the interval's :func:`integral_coefs` ``c``."""
    return (v - v_end * c[3] + p[INV_CM] * (ie * c[0] + ii * c[1] + c[2])) * c[4]


@numba.njit(cache=True)
def psc_weighted_integral(p, inv_tau_x, kappa_x, d, gamma, em):
    """``int_0^d exp(-gamma s) q_x(s) ds``: from ``q' = -q/tau_m + exp(-s/tau_x)/cm``;
    ``em = exp(-d/tau_m)`` (as :func:`flow` computes it).

    ``(1/tau_m + gamma) J = E(1/tau_x + gamma)/cm - q_x(d) exp(-gamma d)``.
    """
    q = d * p[INV_CM] * em * rel_expm1(d * kappa_x)
    num = p[INV_CM] * e1(inv_tau_x + gamma, d) - q * decay(gamma, d)
    return num / (p[IT_M] + gamma)
