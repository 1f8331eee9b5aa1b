"""The lam -> inf limit (Stage lam = inf): against its closed form, against large finite lam, and
against simulation at a large lam."""

import math

import numpy as np
import pytest
import sdgmm
from scipy.special import erfc

INF = math.inf
P = sdgmm.Problem(alpha=2.0, delta=0.5, rho=0.5, theta=0.3)


def _H(x):
    return 0.5 * erfc(x / math.sqrt(2.0))


@pytest.mark.parametrize("loss", ["logistic", "square"])
@pytest.mark.parametrize("alpha, delta, theta", [(1.0, 0.5, 0.3), (0.3, 1.2, 0.1), (20.0, 0.25, 0.45)])
def test_zero_sd_limit_is_the_mean_difference_classifier(loss, alpha, delta, theta):
    """w = sum (y - 1/2) x / sqrt(N): m = alpha (1 - 2 theta) / 2, Q = m^2 + alpha delta / 4, b = 0."""
    m = alpha * (1 - 2 * theta) / 2
    Q = m * m + alpha * delta / 4
    r = sdgmm.theory(sdgmm.Problem(alpha=alpha, delta=delta, rho=0.5, theta=theta), sdgmm.make_stages(INF), loss)
    assert r.eps[0] == pytest.approx(_H(m / math.sqrt(delta * Q)), abs=1e-12)
    assert r.m[0] == pytest.approx(m, rel=1e-10) and r.Q[0, 0] == pytest.approx(Q, rel=1e-10)
    assert abs(r.b[0]) < 1e-12


@pytest.mark.parametrize("loss", ["logistic", "square"])
@pytest.mark.parametrize("hard", [True, False])
def test_finite_lam_converges_to_the_limit_like_one_over_lam(loss, hard):
    """Soft stages after a limit stage read beta on the rescaled logit lam u: beta_finite = beta lam."""
    betas = [1.5, 0.7]

    def eps(lam):
        scale = 1.0 if lam == INF else lam
        stages = sdgmm.make_stages([lam] * 3, None if hard else [b * scale for b in betas], hard=hard)
        return sdgmm.theory(P, stages, loss).eps

    limit = eps(INF)
    gaps = [np.abs(eps(lam) - limit).max() for lam in (1e2, 1e3, 1e4)]
    print(f"\n{loss} hard={hard} limit {limit} gaps at lam 1e2, 1e3, 1e4: {gaps}")
    assert gaps[2] < 2e-5
    assert 8 < gaps[0] / gaps[1] < 12 and 8 < gaps[1] / gaps[2] < 12  # O(1/lam), no offset


def test_hard_label_limit_does_not_depend_on_the_loss():
    """At lam = inf both losses reduce to the linear loss (1/2 - y) u, and hard targets are scale-free."""
    stages = sdgmm.make_stages([INF] * 4, hard=True)
    a, b = (sdgmm.theory(P, stages, loss).eps for loss in ("logistic", "square"))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


def test_mixed_finite_and_limit_stages_match_large_lam():
    def stages(big):
        return sdgmm.make_stages([0.7, big, 2.0], [1.3, 0.9 * (1 if big == INF else big)])

    limit = sdgmm.theory(P, stages(INF)).eps
    assert np.abs(sdgmm.theory(P, stages(1e4)).eps - limit).max() < 3e-5


def test_imbalanced_limit_is_the_constant_classifier():
    """With rho != 1/2 a learned bias stays O(1) while w = O(1/lam): every point gets the majority
    side of the targets' mean, eps = rho, the stage is reported collapsed, later stages NaN."""
    p = sdgmm.Problem(alpha=2.0, delta=0.5, rho=0.3, theta=0.2)
    with pytest.warns(RuntimeWarning, match="stage 2 of 2.*stage 1 predicts a single class"):  # not modelled
        r = sdgmm.theory(p, sdgmm.make_stages([INF, 1.0], [2.0]), on_nonconvergence="warn")
    assert r.eps[0] == pytest.approx(0.3, abs=0) and r.collapsed[0] and r.b[0] == -INF
    assert np.isnan(r.eps[1])
    fixed = sdgmm.theory(p, sdgmm.make_stages([1.0, INF], [2.0], bias="fix_first"), on_nonconvergence="warn")
    assert fixed.eps[1] == pytest.approx(0.3, abs=0)  # B_1 < 0 kept: all predicted -1


def test_limit_matches_simulation_at_large_lam():
    """The simulation keeps B = 0: a finite sample's label mean is 1/2 + O(M^-1/2), and a learned
    bias logit(mean) = O(M^-1/2) would swamp logits of order 1/lam (N -> inf comes first in theory,
    where b = 0 exactly by symmetry)."""
    th = sdgmm.theory(P, sdgmm.make_stages([INF] * 3, hard=True)).eps
    stages = sdgmm.make_stages([1e6] * 3, hard=True, bias="fixed", bias_value=0.0)
    sim = sdgmm.simulate(P, stages, N=2000, trials=8, seed=3)
    print(f"\ntheory {th}\nsim    {sim.eps}\nse     {sim.eps_se}")
    assert np.all(np.abs(sim.eps - th) <= 3 * sim.eps_se + 3e-3)


def test_soft_stage_after_a_nearly_limit_stage_converges_to_the_limit():
    # Square loss, lam_1 from 1e3 to 1e7 then lam_2 = inf, beta = 0.0277: stage 2's targets deviate from 1/2 by
    # ~1e-8 and its conjugates span 14 decades. Each converges relative to its own size now; an absolute 1e-13
    # left chih_22 30% off, and eps_2 read 0.1742, 0.1909, 0.2118 at lam_1 = 7.9e5, 1e6, 1e7 (the optimiser
    # took 0.1742 for an optimum). It approaches the limit 0.18135636 like 1 / lam_1.
    problem = sdgmm.Problem(alpha=1.0, delta=0.5, rho=0.5, theta=0.3)
    limit = sdgmm.theory(problem, sdgmm.make_stages([math.inf, math.inf], [0.0277]), "square").eps[-1]
    gaps = []
    for lam1 in (1e3, 1e4, 1e5, 7.9e5, 1e6, 1e7):
        eps = sdgmm.theory(problem, sdgmm.make_stages([lam1, math.inf], [0.0277]), "square").eps[-1]
        gaps.append(abs(eps - limit))
        assert gaps[-1] <= 3e-2 / lam1 + 1e-9, lam1
    assert limit == pytest.approx(0.18135636, abs=1e-8)


def test_small_target_deviations_are_solved_or_reported_never_garbage():
    # Square loss at the interpolation peak (alpha 1, lam_3 = 1e-4) after two lam = 1e3 stages: stage 3's targets
    # deviate from 1/2 by ~1e-7. The engine once reported 'converged' values jumping between 0.18 and 0.49 as
    # lam_3 moved by 0.4%; each stage-3 solve is now either converged relative to its own size, and then all agree,
    # or reported as not converged.
    problem = sdgmm.Problem(alpha=1.0, delta=0.5, rho=0.5, theta=0.3)
    values = []
    for factor in np.linspace(0.98, 1.02, 11):
        stages = sdgmm.make_stages([1e3, 1e3, 1e-4 * factor], [100.0, 10**-1.99074])
        r = sdgmm.theory(problem, stages, "square", estimate_error=False, on_nonconvergence="warn")
        if r.converged.all():
            values.append(r.eps[-1])
    assert values and np.ptp(values) < 1e-3, values
