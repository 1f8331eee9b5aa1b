"""Many stages against finite-size simulation written here in numpy, independent of the engine.

The response chi_kt of stage t to a force on stage k carries it through every earlier coupling,
chi_kt = -sum_{j=k..t-1} Qh_jt chi_kj / g_t. theory.md's recursion keeps only j = t - 1; the two agree up to
T = 2 and part ways from T = 3 on. With the one-term recursion the theory drifted below simulation stage
after stage (hard labels at lam = inf, alpha 0.658, theta 0.4: eps_8 0.2785 against 0.3021(23) simulated at
N = 16000; eps_3 - eps_6 0.033 against 0.017), which made T* of early stopping sit at its cap."""

import numpy as np
import sdgmm
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtr

DELTA = 0.5


def _data(rng, alpha, theta, N):
    """Balanced classes, x = s v / sqrt(N) + sqrt(delta) zeta with v = (1, ..., 1), labels flipped w.p. theta."""
    M = round(alpha * N)
    s = rng.choice([-1.0, 1.0], M)
    X = s[:, None] / np.sqrt(N) + np.sqrt(DELTA) * rng.standard_normal((M, N))
    y = (s > 0).astype(float)
    flip = rng.random(M) < theta
    y[flip] = 1.0 - y[flip]
    return X, y


def _eps(w, N):
    """theory.md section 3 with b = 0: H(m / sqrt(delta Q)), m = v.w / N, Q = |w|^2 / N."""
    return ndtr(-w.sum() / (np.sqrt(DELTA * N) * np.linalg.norm(w)))


def _simulate(training, alpha, theta, N, trials, T, seed):
    """eps_1..eps_T of every trial (trials x T). training(X) gives the stage map (labels or the previous stage's
    training logits, t) -> (w, this stage's training logits)."""
    rng = np.random.default_rng(seed)
    eps = np.empty((trials, T))
    for i in range(trials):
        X, y = _data(rng, alpha, theta, N)
        stage, u = training(X), None
        for t in range(T):
            w, u = stage(y if t == 0 else u, t)
            eps[i, t] = _eps(w, N)
    return eps


def test_hard_limit_stages_follow_simulation():
    """lam = inf with hard targets: each stage is the mean-difference classifier w = sum (y - 1/2) x of the previous
    stage's signs 1{x . w > 0} on the same training inputs."""
    alpha, theta, T = 0.658, 0.4, 6

    def hebbian(X):
        def stage(labels_or_logits, t):
            y = labels_or_logits if t == 0 else (labels_or_logits > 0).astype(float)
            w = X.T @ (y - 0.5)
            return w, X @ w

        return stage

    eps = _simulate(hebbian, alpha, theta, N=800, trials=150, T=T, seed=0)
    gain = eps[:, 2] - eps[:, T - 1]  # the stages after the third, where the two recursions part; offsets cancel
    p = sdgmm.Problem(alpha=alpha, delta=DELTA, rho=0.5, theta=theta)
    r = sdgmm.theory(p, sdgmm.make_stages([np.inf] * T, hard=True))
    theory_gain = r.eps[2] - r.eps[T - 1]
    se = gain.std(ddof=1) / np.sqrt(len(gain))
    print("theory", r.eps, "gain", theory_gain, "simulated gain", gain.mean(), "+-", se)
    assert abs(theory_gain - gain.mean()) <= 3 * se + 1e-3  # one-term recursion: 0.0330 against ~0.017
    np.testing.assert_allclose(r.eps[:3], eps[:, :3].mean(0), atol=3 * eps[:, :3].std(0).max() / np.sqrt(len(eps)) + 3e-3)


def test_soft_square_stages_follow_simulation():
    """Square loss with soft targets y_t+1 = (beta u_t + 1) / 2: every stage is one ridge solve,
    (X^T X / (2N) + lam) w = X^T (y - 1/2) / sqrt(N), u = X w / sqrt(N) (the bias kept at 0, balanced classes)."""
    alpha, theta, lam, beta, T, N = 1.0, 0.3, 0.1, 3.0, 5, 800

    def ridge(X):
        factor = cho_factor(X.T @ X / (2 * N) + lam * np.eye(N))  # the same matrix at every stage

        def stage(labels_or_logits, t):
            target = labels_or_logits - 0.5 if t == 0 else 0.5 * beta * labels_or_logits
            w = cho_solve(factor, X.T @ target / np.sqrt(N))
            return w, X @ w / np.sqrt(N)

        return stage

    eps = _simulate(ridge, alpha, theta, N=N, trials=48, T=T, seed=1)
    gain = eps[:, 1] - eps[:, T - 1]
    p = sdgmm.Problem(alpha=alpha, delta=DELTA, rho=0.5, theta=theta)
    r = sdgmm.theory(p, sdgmm.make_stages([lam] * T, [beta] * (T - 1), bias="fixed"), "square")
    theory_gain = r.eps[1] - r.eps[T - 1]
    se = gain.std(ddof=1) / np.sqrt(len(gain))
    print("theory", r.eps, "gain", theory_gain, "simulated gain", gain.mean(), "+-", se)
    assert abs(theory_gain - gain.mean()) <= 3 * se + 1e-3  # one-term recursion: 0.0543 against ~0.060
