"""Independent reference ("oracle") implementations of the state evolution of docs/theory.md.

These are deliberately written from the text of the specification (sections 1-4) in plain
numpy/scipy, sharing no code with the C++ engine, so that pytest can check the engine against them.

* ``stage1_logistic_adaptive``: 0-SD (T = 1), logistic loss. Every expectation is a 1-D Gaussian
  integral per label class, done with adaptive ``scipy.integrate.quad``; the proximal step is a
  ``brentq`` root. The fixed point is found with ``scipy.optimize.root``.
* ``square_soft_exact``: T-stage SD, square loss, soft labels. Per label class every field is affine
  in the Gaussian vector xi, so every expectation is an exact Gaussian moment (no quadrature).
* ``square_stage1_closed_form``: T = 1, square loss, learned bias, fully explicit formulas.

Derivations: docs/square_loss_closed_form.md. Nothing here imports pytest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import integrate, optimize
from scipy.linalg import cholesky, solve_triangular
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

    The root lies in [-c (1 - y), c y]: there the left-hand side is c (sigmoid - 1) <= 0 and
    c sigmoid >= 0. Solving for z rather than u = h + z keeps the absolute accuracy ~1e-15 on z
    even when |h| is large.
    """
    return optimize.brentq(
        lambda z: z + c * (expit(h + z) - y),
        -c * (1.0 - y),
        c * y,
        xtol=1e-15,
        rtol=_BRENT_RTOL,
        maxiter=500,
    )


def _logistic_class_moments(s, y, m, b, sd, c):
    """(E[z], E[z xi], E[z^2]) for one label class, xi ~ N(0, 1), h = s m + b + sd xi.

    Each moment is one adaptive ``quad`` over the real line. The three integrands share the
    proximal solution z(xi); QUADPACK evaluates them mostly at the same nodes, so z is cached.
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

    # epsabs 1e-14 / epsrel 1e-13: the moments are O(1e-2..1), so this is ~1e-13 relative,
    # well beyond the 1e-8 that the table values carry. The integrands are smooth and
    # Gaussian-tailed, so the infinite-interval transformation of QUADPACK (qagi) is accurate.
    kw = dict(epsabs=1e-14, epsrel=1e-13, limit=400)
    out = []
    for f in (
        lambda x: phi(x) * z_of(x),
        lambda x: phi(x) * z_of(x) * x,
        lambda x: phi(x) * z_of(x) ** 2,
    ):
        val, _err = integrate.quad(f, -np.inf, np.inf, **kw)
        out.append(val)
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
    learn = _is_learn(bias)

    def unpack(x):
        # Q and chi are positive: iterate on their logarithms so that no trial step leaves
        # the domain of sqrt(delta Q) and of the prox.
        m, logQ, logchi = x[:3]
        b = x[3] if learn else float(bias)
        return m, math.exp(logQ), math.exp(logchi), b

    def residual(x):
        m, Q, chi, b = unpack(x)
        Ez, Esz, Ezx, Ez2 = _logistic_moments(m, b, Q, chi, delta, classes)
        mh, Qh, chih = _stage1_hats(alpha, delta, Q, chi, Esz, Ezx, Ez2)
        g = Qh + lam
        r = [mh / g - m, math.log((mh**2 + chih) / g**2) - x[1], -math.log(g) - x[2]]
        if learn:
            r.append(Ez)
        return np.array(r)

    # Starting point: a few damped plain iterations from the reference's style of start would
    # be slow here, so start from the square-loss closed form (same structure, similar values)
    # and let Powell's hybrid method (MINPACK hybrd) converge from there.
    x0 = _logistic_start(alpha, delta, rho, theta, lam, bias, theta_plus, theta_minus, learn)
    sol = optimize.root(residual, x0, method="hybr", options={"xtol": tol, "maxfev": 400})
    res = np.max(np.abs(residual(sol.x)))
    # The residual is limited by the quadrature accuracy (~1e-13); allow a small margin.
    if not np.all(np.isfinite(sol.x)) or res > max(1e3 * tol, 1e-11):
        raise ConvergenceError(f"logistic stage 1 did not converge: {sol.message} (residual {res:.2e})")

    m, Q, chi, b = unpack(sol.x)
    Ez, Esz, Ezx, Ez2 = _logistic_moments(m, b, Q, chi, delta, classes)
    mh, Qh, chih = _stage1_hats(alpha, delta, Q, chi, Esz, Ezx, Ez2)
    # Report the order parameters produced by the hats (one last half-step of the map).
    g = Qh + lam
    m, Q, chi = mh / g, (mh**2 + chih) / g**2, 1.0 / g
    eps = float(generalization_error(m, b, Q, delta, rho))
    return dict(eps=eps, m=m, Q=Q, chi=chi, b=b, mh=mh, Qh=Qh, chih=chih)


def _logistic_start(alpha, delta, rho, theta, lam, bias, theta_plus, theta_minus, learn):
    """Initial guess (m, log Q, log chi[, b]) for the logistic root solve.

    The logistic loss near u = 0 behaves like a square loss with curvature 1/4 instead of 1/2
    in the logit, so the square-loss solution rescaled is a good start: take the square-loss
    fixed point at lam / 2 (the logistic Hessian is half the square one) and double m and b.
    A few plain fixed-point sweeps are not needed; hybr converges from this start.
    """
    sq = square_soft_exact(
        alpha, delta, rho, theta, [lam / 2.0], [], bias="learn" if learn else float(bias) / 2.0,
        theta_plus=theta_plus, theta_minus=theta_minus, tol=1e-10,
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
    """Square-loss proximal step: u = (h + c (y - 1/2)) / (1 + c/2), z = u - h (affine in h, y)."""
    u = (h + c * y_minus_half) / (1.0 + 0.5 * c)
    return u, u - h


def _normalize_bias(bias, T):
    """Per-stage bias policy: list of "learn", "stage1" (b_t = b_1) or a float."""
    if isinstance(bias, str) or np.isscalar(bias):
        if isinstance(bias, str) and bias == "stage1":
            return ["learn"] + ["stage1"] * (T - 1)
        return [bias] * T
    policy = list(bias)
    if len(policy) != T:
        raise ValueError(f"bias sequence has length {len(policy)}, expected T = {T}")
    return policy


def _is_learn(policy):
    if isinstance(policy, str):
        if policy not in ("learn", "stage1"):
            raise ValueError(f"unknown bias policy {policy!r}")
        return policy == "learn"
    return False


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
    stage's fixed point is solved to a relative step of ``tol`` and its residual is checked to
    be <= 10 tol.

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

    def fields(t, U):
        """Affine (h_r, u_r, z_r), r = 0..t, per class, given the current parameters."""
        hs, us, zs = [], [], []
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
            hs.append(h)
            us.append(u)
            zs.append(z)
        return hs, us, zs

    def mean(A):
        return p @ A[:, 0]

    def mom(A, B):
        return p @ (A[:, 0] * B[:, 0] + np.sum(A[:, 1:] * B[:, 1:], axis=1))

    def sweep(t, U, learn):
        """One pass of the stage-t equations at the current order parameters.

        Solves the learned bias exactly (written into b[t]), writes the stage-t conjugates and
        R entries, and returns the order parameters (m_t, Q_{1..t,t}, chi_{1..t,t}) they imply.
        """
        hs, us, zs = fields(t, U)
        if learn:
            # E[z_t] is affine in b_t with slope dz_t/dh_t = -(c/2)/(1 + c/2): solve E[z_t] = 0
            # exactly for b_t with everything else held, then rebuild the fields.
            c = delta * chi[t, t]
            b[t] += mean(zs[t]) * (2.0 + c) / c
            hs, us, zs = fields(t, U)
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
            chi_new[k] = -(Qh[t - 1, t] / g[t]) * chi[k, t - 1]
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

        # Unknowns of stage t: x = (m_t, U_{1..t-1,t}, log U_tt, chi_{1..t,t}), with U the
        # upper Cholesky factor of delta Q, so delta Q stays positive definite at every trial
        # point. (The learned b_t is solved exactly inside the sweep.) The plain iteration
        # x <- map(x) can diverge (a period-2 oscillation of m_t at stage 2 of the table's square
        # row), so the fixed point is found by Powell's hybrid method (MINPACK hybrd).
        # The residual is written in the unknowns' own coordinates: the new Q column is mapped
        # to the new U column (linear), and the diagonal enters as log(U'_tt^2) - 2 x_tt, the log
        # of the new over the old conditional variance. For the square loss
        # U'_tt^2 = C + a exp(2 x_tt) with 0 <= a < 1, so this residual has slope in [-2, -2(1-a)]
        # and Newton-type steps behave. (Q'_tt - Q_tt goes flat as x_tt -> -inf and trapped the
        # solver near the interpolation peak, alpha ~ 1 with small lam; the ratio
        # U'_tt^2 / U_tt^2 - 1 is convex and made the first Newton step overshoot by 10x.)
        U_prev = cholesky(delta * Q[:t, :t], lower=False) if t > 0 else np.zeros((0, 0))

        def set_state(x, t=t, U_prev=U_prev):
            m[t] = x[0]
            col = np.append(x[1 : t + 1], math.exp(x[t + 1]))
            U = np.zeros((t + 1, t + 1))
            U[:t, :t] = U_prev
            U[:, t] = col
            Qcol = (U.T @ col) / delta  # column t of Q = U^T U / delta
            Q[: t + 1, t] = Q[t, : t + 1] = Qcol
            chi[: t + 1, t] = x[t + 2 :]
            return U, Qcol

        def residual(x, t=t, learn=learn, U_prev=U_prev, natural=False):
            U, Qcol = set_state(x)
            m_new, Q_new, chi_new = sweep(t, U, learn)
            if natural:  # plain map(x) - x, for the final check
                return np.concatenate([[m_new - x[0]], Q_new - Qcol, chi_new - x[t + 2 :]])
            col_new = solve_triangular(U_prev, delta * Q_new[:t], trans="T", lower=False)
            var_new = delta * Q_new[t] - col_new @ col_new
            # A non-positive new conditional variance (possible only far from the fixed point)
            # is mapped to a large finite residual so that the trust region shrinks.
            r_tt = math.log(max(var_new, 1e-300)) - 2.0 * x[t + 1]
            return np.concatenate([[m_new - x[0]], col_new - U[:t, t], [r_tt], chi_new - x[t + 2 :]])

        # Start: the previous stage's m and Q_tt, no overlaps, and chi_tt at its exact value.
        # For the square loss Qh_tt = alpha delta / (2 + delta chi_tt) whatever the other
        # parameters (z_t depends on xi_t only through h_t), so chi_tt = 1 / (Qh_tt + lam_t)
        # is the positive root of a quadratic; starting there matters when chi_tt is large
        # (lam -> 0 with alpha <= 1), where a start at chi = O(1) can stall the solver.
        q0 = 1.0 if t == 0 else Q[t - 1, t - 1]
        x0 = np.concatenate(
            [
                [0.0 if t == 0 else m[t - 1]],
                np.zeros(t),
                [0.5 * math.log(delta * q0)],
                np.zeros(t),
                [_square_chi_tt(alpha, delta, lams[t])],
            ]
        )
        sol = optimize.root(residual, x0, method="hybr", options={"xtol": tol, "maxfev": 200 * (t + 2)})
        # Final check in natural coordinates, relative to O(1); this call also leaves the state
        # (order parameters, bias, hats) at the solution.
        r_nat = residual(sol.x, natural=True)
        x_nat = np.concatenate([[m[t]], Q[: t + 1, t], chi[: t + 1, t]])
        res = np.max(np.abs(r_nat) / np.maximum(1.0, np.abs(x_nat)))
        if not np.all(np.isfinite(sol.x)) or res > 10.0 * tol:
            raise ConvergenceError(f"square SE stage {t + 1}: {sol.message} (residual {res:.2e})")

    eps = generalization_error(m, b, np.diag(Q), delta, rho)
    return dict(eps=eps, m=m, b=b, Q=Q, chi=chi, mh=mh, Qh=Qh, chih=chih)


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
    eps = float(generalization_error(m, b, Q, delta, rho))
    return dict(eps=eps, m=m, Q=Q, chi=chi, b=b, mh=mh, Qh=Qh, chih=chih)
