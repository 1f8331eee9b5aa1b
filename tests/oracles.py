"""Independent reference ("oracle") implementations of the state evolution in theory.md.

These are written from the text of the specification (theory.md, sections 1-4) in plain
numpy/scipy, sharing no code with the C++ engine, so that pytest can check the engine against them.

* ``stage1_logistic_adaptive``: 0-SD (T = 1), logistic loss. Every expectation is a 1-D Gaussian
  integral per label class, done with adaptive ``scipy.integrate.quad``; the proximal step is a
  ``brentq`` root. The fixed point is found with ``scipy.optimize.root``.
* ``square_soft_exact``: T-stage SD, square loss, soft labels. Per label class every field is affine
  in the Gaussian vector xi, so every expectation is an exact Gaussian moment (no quadrature).
* ``square_stage1_closed_form``: T = 1, square loss, learned bias, fully explicit formulas.

Derivations: docs/square_loss_closed_form.md. Nothing here imports pytest.

The order-parameter recursion is section 4's, with the response summed over every earlier coupling,
chi_kt = -sum_{j=k..t-1} Qh_jt chi_kj / g_t, as docs/theory.md corrects it (the specification keeps j = t - 1
alone, which drifts from simulation from T = 3 on; tests/api/test_theory_many_stages.py). The table's T = 3
entries were computed with the one-term form: this oracle reproduces its square-loss row to 3e-10 at stages
1-2 and moves eps_3 by 4.8e-4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import integrate, optimize
from scipy.linalg import solve_triangular
from scipy.special import erfc, expit

__all__ = [
    "ConvergenceError",
    "H",
    "generalization_error",
    "label_classes",
    "square_soft_exact",
    "square_stage1_closed_form",
    "stage1_logistic_adaptive",
]


class ConvergenceError(RuntimeError):
    """A fixed point or root was not reached to the requested tolerance."""


# ----------------------------------------------------------------------------------------------
# Shared pieces: label classes (section 4) and the generalisation error (section 3)
# ----------------------------------------------------------------------------------------------


def H(x):
    """Gaussian tail H(x) = P(g > x) = erfc(x / sqrt 2) / 2."""
    return 0.5 * erfc(np.asarray(x, dtype=float) / math.sqrt(2.0))


def label_classes(rho, theta, theta_plus=None, theta_minus=None):
    """The four label classes c = (s, flipped) as arrays (p, s, y_obs).

    ``theta_plus`` / ``theta_minus`` are the flip rates of the classes s = +1 / s = -1 and
    default to the symmetric rate ``theta``. ``y_obs`` is the observed label in {0, 1}.
    """
    tp = theta if theta_plus is None else theta_plus
    tm = theta if theta_minus is None else theta_minus
    #               (s=-1, no)          (s=+1, no)       (s=-1, yes)      (s=+1, yes)
    p = np.array([(1 - rho) * (1 - tm), rho * (1 - tp), (1 - rho) * tm, rho * tp])
    s = np.array([-1.0, 1.0, -1.0, 1.0])
    y_obs = np.array([0.0, 1.0, 1.0, 0.0])
    return p, s, y_obs


def generalization_error(m, b, Q, delta, rho):
    """eps = rho H((m + b)/sqrt(delta Q)) + (1 - rho) H((m - b)/sqrt(delta Q)) (elementwise)."""
    m, b, Q = (np.asarray(v, dtype=float) for v in (m, b, Q))
    sd = np.sqrt(delta * Q)
    return rho * H((m + b) / sd) + (1 - rho) * H((m - b) / sd)


# ----------------------------------------------------------------------------------------------
# 1. Stage 1 (0-SD), logistic loss, adaptive quadrature
# ----------------------------------------------------------------------------------------------

_SQRT_2PI = math.sqrt(2.0 * math.pi)
# brentq's smallest allowed relative tolerance is 4 machine epsilons.
_BRENT_RTOL = 4.0 * np.finfo(float).eps


def _logistic_prox_z(h, y, c):
    """z solving z + c (sigmoid(h + z) - y) = 0, i.e. the logistic proximal step with c = delta chi.

    Solved for w = z / c, the root of w + sigmoid(h + c w) - y = 0 (the equation u - h +
    c (sigmoid(u) - y) = 0 with u = h + z, divided by c), which lies in [-(1 - y), y]: there
    the left-hand side is sigmoid - 1 <= 0 and sigmoid >= 0. Working with w makes the 1e-15
    absolute tolerance relative to c, so z stays accurate when c is tiny (large lam) and when
    |h| is large.
    """
    w = optimize.brentq(
        lambda w: w + expit(h + c * w) - y,
        -(1.0 - y),
        y,
        xtol=1e-15,
        rtol=_BRENT_RTOL,
        maxiter=500,
    )
    return c * w


def _logistic_class_moments(s, y, m, b, sd, c):
    """(E[z], E[z xi], E[z^2]) for one label class, xi ~ N(0, 1), h = s m + b + sd xi.

    Each moment is one adaptive ``quad`` over the real line. The integrands share the proximal
    solution z(xi); QUADPACK evaluates them largely at the same nodes, so z is cached (about
    2.5x fewer root solves).

    E[z xi] is computed as sd E[dz/dh] (Gaussian integration by parts, an exact identity), with
    dz/dh = -c s'(u) / (1 + c s'(u)), s' = sigmoid', from differentiating the prox equation.
    The direct integrand z xi is O(c) while its integral is O(c sd): for small sd (large lam)
    the cancellation between xi > 0 and xi < 0 costs digits and trips QUADPACK's roundoff check.
    """
    cache: dict[float, float] = {}

    def z_of(x):
        z = cache.get(x)
        if z is None:
            z = _logistic_prox_z(s * m + b + sd * x, y, c)
            cache[x] = z
        return z

    def phi(x):
        return math.exp(-0.5 * x * x) / _SQRT_2PI

    def dz_dh(x):
        sig = expit(s * m + b + sd * x + z_of(x))
        curv = c * sig * (1.0 - sig)
        return -curv / (1.0 + curv)

    # Tolerances: epsrel 1e-13, and epsabs 1e-14 times the natural size of each integral
    # (|z| <= c, |dz/dh| <= c/4), so the accuracy stays ~1e-13 relative even when lam is large
    # and every order parameter is tiny; far beyond the 1e-8 of the table values. The
    # integrands are smooth and Gaussian-tailed, so QUADPACK's infinite-interval
    # transformation (qagi) is accurate.
    out = []
    for f, size in (
        (lambda x: phi(x) * z_of(x), c),
        (lambda x: phi(x) * dz_dh(x), c),
        (lambda x: phi(x) * z_of(x) ** 2, c * c),
    ):
        val, _err = integrate.quad(f, -np.inf, np.inf, epsabs=1e-14 * size, epsrel=1e-13, limit=400)
        out.append(val)
    out[1] *= sd  # E[z xi] = sd E[dz/dh]
    return out


def _logistic_moments(m, b, Q, chi, delta, classes):
    """Mixture moments E[z], E[s z], E[z xi], E[z^2] of the stage-1 effective process."""
    p, s, y_obs = classes
    sd = math.sqrt(delta * Q)
    c = delta * chi
    Ez = Esz = Ezx = Ez2 = 0.0
    for pc, sc, yc in zip(p, s, y_obs):
        if pc == 0.0:
            continue
        i0, i1, i2 = _logistic_class_moments(sc, yc, m, b, sd, c)
        Ez += pc * i0
        Esz += pc * sc * i0
        Ezx += pc * i1
        Ez2 += pc * i2
    return Ez, Esz, Ezx, Ez2


def _stage1_hats(alpha, delta, Q, chi, Esz, Ezx, Ez2):
    """Stage-1 conjugates (section 4 with t = 1): returns (mh, Qh, chih)."""
    sd = math.sqrt(delta * Q)
    Qh = -(alpha / chi) * Ezx / sd
    chih = alpha / (delta * chi**2) * Ez2
    mh = alpha / (delta * chi) * Esz
    return mh, Qh, chih


def stage1_logistic_adaptive(
    alpha,
    delta,
    rho,
    theta,
    lam,
    bias="learn",
    theta_plus=None,
    theta_minus=None,
    tol=1e-13,
):
    """0-SD (T = 1) with logistic loss, by adaptive quadrature.

    ``bias`` is "learn" (stationarity E[z] = 0) or a float (b fixed at that value).
    Returns a dict of floats: eps, m, Q, chi, b, mh, Qh, chih.
    """
    classes = label_classes(rho, theta, theta_plus, theta_minus)
    if isinstance(bias, str) and bias != "learn":
        raise ValueError(f"bias must be 'learn' or a float, got {bias!r}")
    learn = bias == "learn"

    def unpack(x):
        # Q and chi are positive: iterate on their logarithms so that no trial step leaves
        # the domain of sqrt(delta Q) and of the prox.
        m, logQ, logchi = x[:3]
        b = x[3] if learn else float(bias)
        return m, math.exp(logQ), math.exp(logchi), b

    def residual(x):
        # Each component is scale free: m relative to sqrt(Q) (|m| <= sqrt(Q)), Q and chi in
        # logs, and the bias in units of b: E[z] / E[dz/db] with E[dz/db] = E[dz/dh] =
        # E[z xi] / sqrt(delta Q) (Stein), i.e. the Newton step of b.
        m, Q, chi, b = unpack(x)
        Ez, Esz, Ezx, Ez2 = _logistic_moments(m, b, Q, chi, delta, classes)
        mh, Qh, chih = _stage1_hats(alpha, delta, Q, chi, Esz, Ezx, Ez2)
        g = Qh + lam
        r = [(mh / g - m) / math.sqrt(Q), math.log((mh**2 + chih) / g**2) - x[1], -math.log(g) - x[2]]
        if learn:
            r.append(Ez * math.sqrt(delta * Q) / Ezx)
        return np.array(r)

    # Each residual costs 12 adaptive quadratures, so rather than a long damped plain iteration
    # the fixed point is a root of map(x) - x found by Powell's hybrid method (MINPACK hybrd),
    # started from the rescaled square-loss solution; it takes ~10-25 residual evaluations.
    x0 = _logistic_start(alpha, delta, rho, theta, lam, bias, theta_plus, theta_minus, learn)
    try:
        sol = optimize.root(residual, x0, method="hybr", options={"xtol": tol, "maxfev": 400})
        res = np.max(np.abs(residual(sol.x)))
    except (ValueError, ZeroDivisionError, OverflowError) as err:
        # A trial point so far out that the prox or the moments break down (seen only in
        # extreme regimes, e.g. lam = 1e-6 near the separability threshold).
        raise ConvergenceError(f"logistic stage 1: trial point left the valid domain ({err})") from err
    # Typically ~1e-16 at the root; the quadrature (~1e-13 relative) can limit it, hence 100 tol.
    if not np.all(np.isfinite(sol.x)) or res > 100.0 * tol:
        raise ConvergenceError(f"logistic stage 1 did not converge: {sol.message} (residual {res:.2e})")

    m, Q, chi, b = unpack(sol.x)
    _, Esz, Ezx, Ez2 = _logistic_moments(m, b, Q, chi, delta, classes)
    mh, Qh, chih = _stage1_hats(alpha, delta, Q, chi, Esz, Ezx, Ez2)
    # Report the order parameters produced by the hats (one last half-step of the map).
    g = Qh + lam
    m, Q, chi = float(mh / g), float((mh**2 + chih) / g**2), float(1.0 / g)
    mh, Qh, chih, b = float(mh), float(Qh), float(chih), float(b)
    eps = float(generalization_error(m, b, Q, delta, rho))
    return {"eps": eps, "m": m, "Q": Q, "chi": chi, "b": b, "mh": mh, "Qh": Qh, "chih": chih}


def _logistic_start(alpha, delta, rho, theta, lam, bias, theta_plus, theta_minus, learn):
    """Initial guess (m, log Q, log chi[, b]) for the logistic root solve.

    Near u = 0 the logistic loss is log 2 + (1/2 - y) u + u^2 / 8 + O(u^4), and with u = 2 v this
    is 2 ((v + 1)/2 - y)^2 + const, twice the square loss. So the logistic problem at lam is
    roughly the square problem at 2 lam with w, B doubled (m x2, Q x4, b x2) and chi doubled.
    Only a starting point: Powell's hybrid method does the rest.
    """
    sq = square_soft_exact(
        alpha,
        delta,
        rho,
        theta,
        [2.0 * lam],
        [],
        bias="learn" if learn else float(bias) / 2.0,
        theta_plus=theta_plus,
        theta_minus=theta_minus,
        tol=1e-10,
    )
    x0 = [2.0 * sq["m"][0], math.log(4.0 * sq["Q"][0, 0]), math.log(2.0 * sq["chi"][0, 0])]
    if learn:
        x0.append(2.0 * sq["b"][0])
    return np.array(x0)


# ----------------------------------------------------------------------------------------------
# 2. T-stage SD, square loss, soft labels: exact Gaussian moments of affine fields
# ----------------------------------------------------------------------------------------------
#
# At stage t (1-based), a field is represented by an array A of shape (4, t + 1): row = class,
# column 0 = constant, column k >= 1 = coefficient of xi_k. Then, with xi ~ N(0, I_t),
#   E_c[A] = A[c, 0],  E_c[A xi_k] = A[c, k],  E_c[A B] = A[c, 0] B[c, 0] + A[c, 1:] . B[c, 1:].


def _square_prox(h, y_minus_half, c):
    """Square-loss proximal step, affine in (h, y): returns (u, z) with u = h + z and

        u = (h + c (y - 1/2)) / (1 + c/2),   i.e.   z = c (y - 1/2 - h/2) / (1 + c/2).

    z is formed directly rather than as u - h, which would lose digits ~ eps / c when c is
    small (large lam).
    """
    z = c * (y_minus_half - 0.5 * h) / (1.0 + 0.5 * c)
    return h + z, z


def _normalize_bias(bias, T):
    """Per-stage bias policy: list of "learn", "stage1" (b_t = b_1) or a float."""
    if isinstance(bias, str) or np.isscalar(bias):
        if isinstance(bias, str) and bias == "stage1":
            return ["learn"] + ["stage1"] * (T - 1)
        return [bias] * T
    policy = list(bias)
    if len(policy) != T:
        raise ValueError(f"bias sequence has length {len(policy)}, expected T = {T}")
    if isinstance(policy[0], str) and policy[0] == "stage1":
        raise ValueError("stage 1 cannot copy its own bias; use 'learn' or a float")
    return policy


def _is_learn(policy):
    """True for "learn"; False for "stage1" or a float."""
    if isinstance(policy, str):
        if policy not in ("learn", "stage1"):
            raise ValueError(f"unknown bias policy {policy!r}")
        return policy == "learn"
    return False


def _central_difference(F, x, r, i, h, what):
    """dF/dx_i by central differences with step h, falling back to one-sided ones at infeasible
    points. Callers use h = 1e-6 x (natural scale of x_i), about the cube root of machine
    epsilon: the truncation error is O(h^2) (zero for the quadratic dependence on the Cholesky
    column) and the rounding error O(eps / h), so Newton's linear rate stays ~1e-10."""
    xp, xm = x.copy(), x.copy()
    xp[i] += h
    xm[i] -= h
    rp, rm = F(xp), F(xm)
    if rp is not None and rm is not None:
        return (rp - rm) / (2.0 * h)
    if rp is not None:
        return (rp - r) / h
    if rm is not None:
        return (r - rm) / h
    raise ConvergenceError(f"{what}: no feasible point for the Jacobian")


def _damped_newton(F, x0, scales, tol, what, max_iter=100):
    """Solve F(x) = 0 by Newton's method with a finite-difference Jacobian and backtracking.

    ``scales(x)`` returns (natural size of each x_i, natural size of each F_i), so that the
    test max |F_i| / size_i <= tol is scale invariant (order parameters can be ~1e-6 at large
    lam). F returns None at infeasible points; those are avoided by halving the step. If
    rounding stops the decrease first, the residual is accepted only within 10x the rounding
    spread of F; anything else raises ConvergenceError.
    """

    def size(r, x):
        return np.max(np.abs(r) / scales(x)[1])

    x = np.array(x0, dtype=float)
    r = F(x)
    if r is None:
        raise ConvergenceError(f"{what}: infeasible starting point")
    for _ in range(max_iter):
        if size(r, x) <= tol:
            return x
        xs, rs = scales(x)
        J = np.empty((len(x), len(x)))
        for i in range(len(x)):
            J[:, i] = _central_difference(F, x, r, i, 1e-6 * xs[i], what)
        dx = np.linalg.solve(J, -r)
        # Backtracking on max |F_i| / rs_i with the scales of the current point held fixed
        # (scales that move with the trial point would distort the merit function).
        merit = np.max(np.abs(r) / rs)
        step = 1.0
        while step > 1e-12:
            x_try = x + step * dx
            r_try = F(x_try)
            if r_try is not None and np.max(np.abs(r_try) / rs) < merit:
                break
            step *= 0.5
        else:
            break  # no decrease along the Newton direction: at the rounding floor
        x, r = x_try, r_try
    # Newton stalled above tol. Accept only if that is the rounding floor of F itself, measured
    # as the spread of F under relative perturbations of x by a few ulps (ill-conditioned stages,
    # e.g. nearly collinear ones with tiny lam, have floors ~1e-12).
    rng = np.random.default_rng(0)
    spread = 0.0
    for _ in range(8):
        x_try = x * (1.0 + 4.0 * np.finfo(float).eps * rng.standard_normal(len(x)))
        r_try = F(x_try)
        if r_try is not None:
            spread = max(spread, size(r_try - r, x))
    if size(r, x) <= 10.0 * max(tol, spread):
        return x
    raise ConvergenceError(
        f"{what}: Newton stopped at residual {size(r, x):.2e} (rounding spread {spread:.2e})"
    )


def square_soft_exact(
    alpha,
    delta,
    rho,
    theta,
    lams: Sequence[float],
    betas: Sequence[float],
    bias="learn",
    theta_plus=None,
    theta_minus=None,
    tol=1e-13,
):
    """T-stage self-distillation, square loss, soft targets y_t = (beta_{t-1} u_{t-1} + 1) / 2.

    ``lams`` has length T, ``betas`` length T - 1. ``bias`` is "learn", a float (every stage
    fixed at it), "stage1" (learn at stage 1, then b_t = b_1), or a length-T sequence of
    "learn" / "stage1" / float. Stages are solved in turn with the earlier ones frozen; each
    stage's fixed point is solved until |map(x) - x| <= tol relative to the natural size of
    each order parameter (sqrt(Q_tt) for m_t, sqrt(Q_kk Q_tt) for Q_kt, sqrt(chi_kk chi_tt)
    for chi_kt).

    Returns a dict of numpy arrays: eps, m, b, mh of shape (T,); Q (T, T) symmetric; chi, Qh,
    chih (T, T) upper triangular (entry [k, t] for k <= t).
    """
    lams = np.asarray(lams, dtype=float)
    betas = np.asarray(betas, dtype=float)
    T = len(lams)
    if len(betas) != T - 1:
        raise ValueError(f"need len(betas) == len(lams) - 1, got {len(betas)} and {T}")
    policy = _normalize_bias(bias, T)
    p, s, y_obs = label_classes(rho, theta, theta_plus, theta_minus)

    m = np.zeros(T)
    b = np.zeros(T)
    mh = np.zeros(T)
    Q = np.zeros((T, T))
    chi = np.zeros((T, T))
    Qh = np.zeros((T, T))
    chih = np.zeros((T, T))
    R = np.zeros((T, T))  # auxiliary R_{k,t} of the order-parameter recursion (not symmetric)
    U_all = np.zeros((T, T))  # upper Cholesky factor of delta Q, one column per solved stage

    def fields(t, U):
        """Affine proximal steps z_r, r = 0..t, per class, given the current parameters."""
        us, zs = [], []
        for r in range(t + 1):
            h = np.zeros((4, t + 2))
            h[:, 0] = s * m[r] + b[r]
            h[:, 1 : r + 2] += U[: r + 1, r]
            for k in range(r):
                h += (chi[k, r] / chi[k, k]) * zs[k]
            if r == 0:
                ymh = np.zeros((4, t + 2))
                ymh[:, 0] = y_obs - 0.5
            else:
                ymh = 0.5 * betas[r - 1] * us[r - 1]
            u, z = _square_prox(h, ymh, delta * chi[r, r])
            us.append(u)
            zs.append(z)
        return zs

    def mean(A):
        return p @ A[:, 0]

    def mom(A, B):
        return p @ (A[:, 0] * B[:, 0] + np.sum(A[:, 1:] * B[:, 1:], axis=1))

    def sweep(t, U, learn):
        """One pass of the stage-t equations at the current order parameters.

        Solves the learned bias exactly (written into b[t]), writes the stage-t conjugates and
        R entries, and returns the order parameters (m_t, Q_{1..t,t}, chi_{1..t,t}) they imply.
        """
        zs = fields(t, U)
        if learn:
            # E[z_t] is affine in b_t with slope dz_t/dh_t = -(c/2)/(1 + c/2): solve E[z_t] = 0
            # exactly for b_t with everything else held, then rebuild the fields.
            c = delta * chi[t, t]
            b[t] += mean(zs[t]) * (2.0 + c) / c
            zs = fields(t, U)
        zt = zs[t]

        # Conjugates of stage t.
        a = -(alpha / chi[t, t]) * (p @ zt[:, 1:])  # a_k = -(alpha/chi_tt) E[z_t xi_k]
        Qh[: t + 1, t] = solve_triangular(U, a, lower=False)
        for k in range(t):
            chih[k, t] = alpha / (delta * chi[t, t] * chi[k, k]) * mom(zt, zs[k])
        chih[t, t] = alpha / (delta * chi[t, t] ** 2) * mom(zt, zt)
        mh[t] = alpha / (delta * chi[t, t]) * (p @ (s * zt[:, 0]))

        # Order parameters of stage t (g_k = Qh_kk + lam_k; earlier stages frozen).
        g = np.diag(Qh)[: t + 1] + lams[: t + 1]
        chi_new = np.empty(t + 1)
        chi_new[t] = 1.0 / g[t]
        for k in range(t):
            chi_new[k] = -(Qh[k:t, t] @ chi[k, k:t]) / g[t]
        m_new = (mh[t] - Qh[:t, t] @ m[:t]) / g[t]
        for k in range(t + 1):
            R[t, k] = (chih[k, t] - Qh[:k, k] @ R[t, :k]) / g[k]
        for k in range(t):
            R[k, t] = (chih[k, t] - Qh[:t, t] @ R[k, :t]) / g[t]
        Q_new = np.empty(t + 1)
        for k in range(t + 1):
            # Q_jt for j < k are the new values just computed (the recursion runs upward in k).
            Q_new[k] = (m_new * mh[k] + R[k, t] - Qh[:k, k] @ Q_new[:k]) / g[k]
        return m_new, Q_new, chi_new

    for t in range(T):
        pol = policy[t]
        learn = _is_learn(pol)
        if pol == "stage1":
            b[t] = b[0]
        elif not learn:
            b[t] = float(pol)
        else:
            b[t] = 0.0 if t == 0 else b[t - 1]

        # Unknowns of stage t: x = (m_t, U_{1..t-1,t}, U_tt, chi_{1..t,t}), where U is the upper
        # Cholesky factor of delta Q (earlier columns frozen); the learned b_t is solved exactly
        # inside the sweep. Coordinates in U make every trial point a valid covariance
        # (delta Q = U^T U is positive definite whenever U_tt != 0; the sign of U_tt is
        # immaterial since xi_t is symmetric), while the residual map(x) - x is measured in
        # natural coordinates (m, Q, chi), where the square-loss map is affine in Q_{.,t} once
        # chi_{.,t} is fixed. The plain iteration x <- map(x) can diverge (a period-2 oscillation
        # of m_t at stage 2 of the table's square row), hence Newton. (Natural coordinates for
        # the unknowns too made Newton steps leave the positive-definite cone when the stages
        # become nearly collinear; log U_tt with a Q residual is flat as U_tt -> 0 and stalled.)
        # The earlier columns are kept from their own solves rather than re-factorised from Q:
        # nearly collinear stages make delta Q numerically semi-definite.
        U_prev = U_all[:t, :t].copy()

        def residual(x, t=t, learn=learn, U_prev=U_prev):
            if x[-1] <= 0.0 or abs(x[t + 1]) < 1e-150:  # need chi_tt > 0 and U_tt != 0
                return None
            U = np.zeros((t + 1, t + 1))
            U[:t, :t] = U_prev
            U[:, t] = x[1 : t + 2]
            Qcol = (U.T @ U[:, t]) / delta  # column t of Q = U^T U / delta
            m[t] = x[0]
            Q[: t + 1, t] = Q[t, : t + 1] = Qcol
            chi[: t + 1, t] = x[t + 2 :]
            m_new, Q_new, chi_new = sweep(t, U, learn)
            return np.concatenate([[m_new - x[0]], Q_new - Qcol, chi_new - x[t + 2 :]])

        # Start: the previous stage's m and Q_tt (stage 1: Q = min(1, chi^2), the size of
        # chi^2 (mh^2 + chih) with O(1) hats, which follows chi ~ 1/lam at large lam), no
        # overlaps, and chi_tt at its exact value.
        chi_start = _square_chi_tt(alpha, delta, lams[t])
        q_start = min(1.0, chi_start**2) if t == 0 else Q[t - 1, t - 1]
        # For the square loss Qh_tt = alpha delta / (2 + delta chi_tt) whatever the other
        # parameters (z_t depends on xi_t only through h_t), so chi_tt = 1 / (Qh_tt + lam_t)
        # is the positive root of a quadratic; starting there matters when chi_tt is large
        # (lam -> 0 with alpha <= 1).
        x0 = np.concatenate(
            [
                [0.0 if t == 0 else m[t - 1]],
                np.zeros(t),
                [math.sqrt(delta * q_start)],
                np.zeros(t),
                [chi_start],
            ]
        )

        def scales(x, t=t):
            # Natural sizes: |m_t| <= sqrt(Q_tt) (Cauchy-Schwarz, |v|^2 = N), |Q_kt| <=
            # sqrt(Q_kk Q_tt); U_{.,t} is measured by its norm sqrt(delta Q_tt) and chi_kt by
            # sqrt(chi_kk chi_tt). Floors only guard against division by zero.
            Qtt = max(x[1 : t + 2] @ x[1 : t + 2] / delta, 1e-300)
            chitt = max(x[-1], 1e-300)
            sQ = np.sqrt(np.append(np.diag(Q)[:t] * Qtt, Qtt * Qtt))
            schi = np.sqrt(np.append(np.diag(chi)[:t] * chitt, chitt * chitt))
            x_size = np.concatenate([[math.sqrt(Qtt)], np.full(t + 1, math.sqrt(delta * Qtt)), schi])
            r_size = np.concatenate([[math.sqrt(Qtt)], sQ, schi])
            return x_size, r_size

        x = _damped_newton(residual, x0, scales, tol, what=f"square SE stage {t + 1}")
        residual(x)  # leave the state (order parameters, bias, hats) at the solution
        U_all[: t + 1, t] = x[1 : t + 2]

    eps = generalization_error(m, b, np.diag(Q), delta, rho)
    return {"eps": eps, "m": m, "b": b, "Q": Q, "chi": chi, "mh": mh, "Qh": Qh, "chih": chih}


# ----------------------------------------------------------------------------------------------
# 3. Stage 1, square loss, learned bias: explicit closed form
# ----------------------------------------------------------------------------------------------


def _square_chi_tt(alpha, delta, lam):
    """Positive root of lam delta chi^2 + (alpha delta + 2 lam - delta) chi - 2 = 0.

    Written in whichever of the two algebraically equal forms has no cancellation for the
    sign of the linear coefficient.
    """
    q2, q1 = lam * delta, alpha * delta + 2.0 * lam - delta
    root = math.sqrt(q1 * q1 + 8.0 * q2)
    return 4.0 / (q1 + root) if q1 >= 0.0 else (root - q1) / (2.0 * q2)


def square_stage1_closed_form(alpha, delta, rho, theta, lam, theta_plus=None, theta_minus=None):
    """0-SD with square loss and a learned bias in closed form (docs/square_loss_closed_form.md).

    Written for symmetric noise ``theta``; the same formulas hold for class-conditional flips
    (``theta_plus``, ``theta_minus``), which only change E[y_pm], A and D below.

    With c = delta chi and kappa = c / (2 + c), the proximal step is z = kappa (y_pm - h),
    y_pm = 2 y - 1 in {-1, +1}. Then
      chi : lam delta chi^2 + (alpha delta + 2 lam - delta) chi - 2 = 0 (positive root),
      Qh  = alpha kappa / chi,  b = E[y_pm] - E[s] m,  m = gamma A / (1 + gamma V),
      with gamma = chi Qh / delta, A = Cov(s, y_pm), V = Var(s),
      Q   = (m^2 + alpha kappa^2 D / delta) / (1 - alpha kappa^2),  D = Var(y_pm - s m).
    Returns a dict of floats: eps, m, Q, chi, b, mh, Qh, chih.
    """
    p, s, y_obs = label_classes(rho, theta, theta_plus, theta_minus)
    ypm = 2.0 * y_obs - 1.0
    Es, Ey = p @ s, p @ ypm
    V = 1.0 - Es**2  # Var(s), s = +-1
    A = p @ (s * ypm) - Es * Ey  # Cov(s, y_pm)
    Vy = 1.0 - Ey**2  # Var(y_pm)

    chi = _square_chi_tt(alpha, delta, lam)
    c = delta * chi
    kappa = c / (2.0 + c)
    Qh = alpha * kappa / chi
    gamma = chi * Qh / delta
    m = gamma * A / (1.0 + gamma * V)
    b = Ey - Es * m
    D = Vy - 2.0 * m * A + m * m * V  # E[(y_pm - s m - b)^2] at the learned bias
    Q = (m * m + alpha * kappa**2 * D / delta) / (1.0 - alpha * kappa**2)
    mh = m / chi  # m = mh / (Qh + lam) = mh chi
    chih = alpha / (delta * chi**2) * kappa**2 * (D + delta * Q)  # E[z^2] = kappa^2 (D + delta Q)
    m, Q, b, mh, chih = float(m), float(Q), float(b), float(mh), float(chih)
    eps = float(generalization_error(m, b, Q, delta, rho))
    return {"eps": eps, "m": m, "Q": Q, "chi": chi, "b": b, "mh": mh, "Qh": Qh, "chih": chih}
