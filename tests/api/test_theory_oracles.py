"""The engine against independent implementations of the same equations (tests/oracles.py)."""

import numpy as np
import oracles
import pytest
import sdgmm

STAGE1 = [  # alpha, delta, rho, theta, lam, (theta_plus, theta_minus)
    (1.5, 0.5, 0.4, 0.2, 1.5, (None, None)),
    (0.3, 1.0, 0.5, 0.1, 0.05, (None, None)),
    (8.0, 0.25, 0.2, 0.3, 3.0, (None, None)),
    (2.0, 0.5, 0.35, 0.2, 0.7, (0.1, 0.3)),
]


@pytest.mark.parametrize("alpha, delta, rho, theta, lam, flips", STAGE1)
@pytest.mark.parametrize("bias", ["learn", 0.15])
def test_zero_sd_logistic_against_adaptive_quadrature(alpha, delta, rho, theta, lam, flips, bias):
    tp, tm = flips
    ref = oracles.stage1_logistic_adaptive(alpha, delta, rho, theta, lam, bias=bias, theta_plus=tp, theta_minus=tm)
    p = sdgmm.Problem(alpha=alpha, delta=delta, rho=rho, theta=theta, theta_plus=tp, theta_minus=tm)
    policy = "learn" if bias == "learn" else "fixed"
    r = sdgmm.theory(p, [sdgmm.Stage(lam, bias=policy, bias_value=0.0 if bias == "learn" else bias)])
    got = {"eps": r.eps[0], "m": r.m[0], "b": r.b[0], "Q": r.Q[0, 0], "chi": r.chi[0, 0]}
    for key, value in got.items():
        assert value == pytest.approx(ref[key], rel=1e-9, abs=1e-11), key


SQUARE = [  # alpha, rho, theta, lams, betas, bias policy of stages >= 2
    (3.0, 0.4, 0.2, [1.5, 0.5, 2.0], [0.8, 1.2], "learn"),
    (0.7, 0.5, 0.3, [0.1, 1.0, 0.3, 2.0], [2.0, 0.5, 1.5], "learn"),
    (2.0, 0.3, 0.25, [0.5, 0.5, 0.5], [3.0, 3.0], "fix_first"),
    (20.0, 0.45, 0.1, [0.01, 0.2], [5.0], "learn"),
]


@pytest.mark.parametrize("alpha, rho, theta, lams, betas, policy", SQUARE)
def test_square_soft_against_exact_gaussian_moments(alpha, rho, theta, lams, betas, policy):
    ref = oracles.square_soft_exact(alpha, 0.5, rho, theta, lams, betas,
                                    bias="learn" if policy == "learn" else "stage1")
    p = sdgmm.Problem(alpha=alpha, delta=0.5, rho=rho, theta=theta)
    r = sdgmm.theory(p, sdgmm.make_stages(lams, betas, bias=policy), "square", method="tensor")
    np.testing.assert_allclose(r.eps, ref["eps"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.b, ref["b"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r.Q, ref["Q"], rtol=1e-8, atol=1e-12)
    iu = np.triu_indices(len(lams))
    np.testing.assert_allclose(r.chi[iu], ref["chi"][iu], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("alpha, lam", [(0.5, 0.01), (1.0, 1.0), (4.0, 10.0)])
def test_square_zero_sd_closed_form(alpha, lam):
    ref = oracles.square_stage1_closed_form(alpha, 0.5, 0.4, 0.2, lam)
    r = sdgmm.theory(sdgmm.Problem(alpha=alpha, delta=0.5, rho=0.4, theta=0.2), [sdgmm.Stage(lam)], "square")
    assert r.eps[0] == pytest.approx(ref["eps"], abs=1e-9)
    assert r.chi[0, 0] == pytest.approx(ref["chi"], rel=1e-12)
