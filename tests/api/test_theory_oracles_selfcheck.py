"""Self-checks of the pure-Python oracles (tests/oracles.py) against theory.md's table.

The table's theory values are exact to about 1e-8 (Gauss-Hermite quadrature, fixed point to
1e-12); its biases are printed with 6 decimals, hence the 1e-6 tolerance on b.
"""

import numpy as np
import pytest
from oracles import (
    H,
    label_classes,
    square_soft_exact,
    square_stage1_closed_form,
    stage1_logistic_adaptive,
)

# Table rows 1-4 share these parameters (theory.md section 4).
RHO, DELTA, THETA = 0.4, 0.5, 0.2
LAMS, BETAS = [1.5, 0.5, 2.0], [0.8, 1.2]


@pytest.mark.parametrize(
    ("alpha", "eps1", "b1"),
    [(1.5, 0.221427219, -0.207493), (3.0, 0.159057194, -0.187866), (5.0, 0.133760175, -0.171618)],
)
def test_logistic_stage1_matches_table(alpha, eps1, b1):
    r = stage1_logistic_adaptive(alpha, DELTA, RHO, THETA, LAMS[0])
    assert abs(r["eps"] - eps1) <= 1e-8
    assert abs(r["b"] - b1) <= 1e-6


def test_logistic_fixed_bias_at_learned_value_is_the_same_fixed_point():
    learned = stage1_logistic_adaptive(3.0, DELTA, RHO, THETA, LAMS[0])
    fixed = stage1_logistic_adaptive(3.0, DELTA, RHO, THETA, LAMS[0], bias=learned["b"])
    for key in ("eps", "m", "Q", "chi", "mh", "Qh", "chih"):
        assert fixed[key] == pytest.approx(learned[key], rel=1e-11, abs=1e-12)


def test_square_soft_matches_table_row4():
    r = square_soft_exact(3.0, DELTA, RHO, THETA, LAMS, BETAS)
    # Stages 1-2 to the table; its stage 3 used theory.md's one-term response, which the oracle corrects (4.8e-4).
    np.testing.assert_allclose(r["eps"][:2], [0.158835736, 0.142724613], rtol=0, atol=1e-8)
    np.testing.assert_allclose(r["b"][:2], [-0.075263, -0.066981], rtol=0, atol=1e-6)
    assert abs(r["eps"][2] - 0.2094928) <= 1e-7
    assert r["Q"].shape == r["chi"].shape == r["Qh"].shape == r["chih"].shape == (3, 3)
    assert r["eps"].shape == r["m"].shape == r["b"].shape == r["mh"].shape == (3,)


def test_square_chi_diagonal_solves_the_quadratic():
    # For the square loss Qh_tt = alpha delta / (2 + delta chi_tt) at every stage, so chi_tt is
    # the positive root of lam_t delta chi^2 + (alpha delta + 2 lam_t - delta) chi - 2 = 0.
    alpha = 3.0
    r = square_soft_exact(alpha, DELTA, RHO, THETA, LAMS, BETAS)
    for t, lam in enumerate(LAMS):
        chi = r["chi"][t, t]
        assert lam * DELTA * chi**2 + (alpha * DELTA + 2 * lam - DELTA) * chi - 2 == pytest.approx(
            0, abs=1e-13
        )


def test_square_balanced_classes_have_zero_bias():
    r = square_soft_exact(2.0, 0.4, 0.5, 0.3, [1.0, 0.5, 0.5], [1.0, 2.0])
    np.testing.assert_allclose(r["b"], 0.0, atol=1e-13)


@pytest.mark.parametrize(
    ("alpha", "delta", "rho", "theta", "lam", "flips"),
    [
        (3.0, 0.5, 0.4, 0.2, 1.5, {}),
        (0.7, 0.3, 0.5, 0.1, 0.05, {}),
        (10.0, 1.0, 0.2, 0.3, 2.0, {}),
        (1.0, 0.5, 0.4, 0.2, 1e-3, {}),
        (2.0, 0.5, 0.3, 0.2, 0.5, {"theta_plus": 0.1, "theta_minus": 0.35}),
        (1.0, 0.5, 0.5, 0.3, 1e9, {"theta_plus": 0.1, "theta_minus": 0.35}),
    ],
)
def test_square_closed_form_matches_exact_moments(alpha, delta, rho, theta, lam, flips):
    closed = square_stage1_closed_form(alpha, delta, rho, theta, lam, **flips)
    exact = square_soft_exact(alpha, delta, rho, theta, [lam], [], **flips)
    for key, value in closed.items():  # relative: at lam = 1e9 the order parameters are ~1e-9
        assert abs(value - np.ravel(exact[key])[0]) <= 1e-12 * max(abs(value), 1e-300), key


def test_label_classes_are_a_distribution():
    p, s, y = label_classes(0.3, 0.2, theta_plus=0.1)
    assert p.sum() == pytest.approx(1.0, abs=1e-15)
    assert p @ (s > 0) == pytest.approx(0.3, abs=1e-15)  # P(s = +1) = rho
    assert p @ ((s > 0) & (y == 0)) == pytest.approx(0.3 * 0.1, abs=1e-15)  # flips of class +1


def test_infinite_lambda_limit_is_the_mean_difference_classifier():
    # theory.md: balanced 0-SD at delta 0.5, theta 0.3, alpha 1 tends to eps = 0.2432 as lam -> inf,
    # for both losses. At lam = inf the classifier is the mean difference, whose error is
    # H(A / sqrt(delta (A^2 + delta / alpha))) with A = 1 - 2 theta (docs/square_loss_closed_form.md).
    alpha, delta, theta, A = 1.0, 0.5, 0.3, 0.4
    limit = float(H(A / np.sqrt(delta * (A**2 + delta / alpha))))
    assert abs(limit - 0.2432) < 1e-4  # 0.243117; theory.md quotes it as 0.2432
    assert abs(square_stage1_closed_form(alpha, delta, 0.5, theta, 1e9)["eps"] - limit) <= 1e-9
    assert abs(stage1_logistic_adaptive(alpha, delta, 0.5, theta, 1e9)["eps"] - limit) <= 1e-9
