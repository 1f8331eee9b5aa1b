"""SelfDistillationClassifier against scikit-learn's own solvers (independent oracles) and its API checks."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from sdgmm.estimator import SelfDistillationClassifier
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _oracle_lr(X, y, lam, sample_weight=None):
    """LogisticRegression with C = 1 / lam, solved to machine precision."""
    lr = LogisticRegression(C=1.0 / lam, solver="newton-cholesky", tol=1e-14, max_iter=1000)
    return lr.fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("params", [
    {}, {"n_stages": 1}, {"labels": "soft", "n_stages": 3, "beta": 2.0}, {"loss": "square"},
    {"bias": "fix_first", "n_stages": 3}, {"early_stopping": True, "n_stages": 3, "random_state": 0},
])
def test_check_estimator(params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # collapse warnings on the checks' tiny data sets
        check_estimator(SelfDistillationClassifier(**params))


@pytest.mark.parametrize("lam", [0.1, 1.0, 30.0])
def test_one_stage_is_logistic_regression(cancer, lam):
    X, y = cancer
    weight = np.random.default_rng(0).uniform(0.2, 2.0, len(y))
    for w in (None, weight):
        ours = SelfDistillationClassifier(n_stages=1, lam=lam, tol=1e-12).fit(X, y, sample_weight=w)
        ref = _oracle_lr(X, y, lam, w)
        assert np.max(np.abs(ours.coef_ - ref.coef_)) < 1e-6
        assert abs(ours.intercept_[0] - ref.intercept_[0]) < 1e-6
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)


def test_hard_stages_are_logistic_regressions_on_predictions(cancer):
    X, y = cancer
    lam = [3.0, 0.5, 10.0]
    ours = SelfDistillationClassifier(n_stages=3, lam=lam, tol=1e-12).fit(X, y)
    targets = y
    for t in range(3):
        ref = _oracle_lr(X, targets, lam[t])
        assert np.max(np.abs(ours.stage_coefs_[t] - ref.coef_[0])) < 1e-6
        assert ours.n_flipped_[t] == np.sum(targets != y)
        targets = ref.predict(X)


def test_soft_stage_is_weighted_logistic_regression(cancer):
    # Soft target p: the loss -p log s - (1 - p) log(1 - s) is a row with label 1 and weight p plus a
    # row with label 0 and weight 1 - p.
    X, y = cancer
    ours = SelfDistillationClassifier(n_stages=2, lam=[2.0, 1.0], labels="soft", beta=0.7, tol=1e-12).fit(X, y)
    p = expit(0.7 * _oracle_lr(X, y, 2.0).decision_function(X))
    ref = _oracle_lr(np.vstack([X, X]), np.r_[np.ones(len(y)), np.zeros(len(y))], 1.0, np.r_[p, 1 - p])
    assert np.max(np.abs(ours.coef_ - ref.coef_)) < 1e-6
    assert abs(ours.intercept_[0] - ref.intercept_[0]) < 1e-6


def test_square_loss_is_ridge(cancer):
    # ((u + 1) / 2 - y)^2 = (u - (2y - 1))^2 / 4, so 4 x our objective is Ridge with alpha = 2 lam.
    X, y = cancer
    ours = SelfDistillationClassifier(n_stages=1, lam=5.0, loss="square", tol=1e-12).fit(X, y)
    ref = Ridge(alpha=10.0, solver="cholesky").fit(X, 2.0 * y - 1.0)
    assert np.max(np.abs(ours.coef_[0] - ref.coef_)) < 1e-8
    assert abs(ours.intercept_[0] - ref.intercept_) < 1e-8


def test_fixed_bias_stage_against_scipy(cancer):
    X, y = cancer
    ours = SelfDistillationClassifier(n_stages=2, lam=[1.0, 4.0], bias="fix_first", tol=1e-12).fit(X, y)
    first = _oracle_lr(X, y, 1.0)
    t, b = first.predict(X).astype(float), first.intercept_[0]

    def objective(w):
        u = X @ w + b
        return np.sum(np.logaddexp(0, u) - t * u) + 2.0 * w @ w, X.T @ (expit(u) - t) + 4.0 * w

    def hessian(w):
        s = expit(X @ w + b)
        return (X.T * (s * (1 - s))) @ X + 4.0 * np.eye(X.shape[1])

    ref = minimize(objective, np.zeros(X.shape[1]), jac=True, hess=hessian, method="trust-exact",
                   options={"gtol": 1e-12})
    assert ours.intercept_[0] == b or abs(ours.intercept_[0] - b) < 1e-9
    assert np.max(np.abs(ours.coef_[0] - ref.x)) < 1e-8


def test_early_stopping_picks_the_best_validation_stage(cancer):
    X, y = cancer
    y_noisy = y.copy()
    flip = np.random.default_rng(1).choice(len(y), 120, replace=False)
    y_noisy[flip] = 1 - y_noisy[flip]
    params = {"lam": [30.0, 10.0, 10.0, 10.0], "n_stages": 4}
    est = SelfDistillationClassifier(early_stopping=True, validation_fraction=0.3, random_state=5, **params)
    est.fit(X, y_noisy)
    fit, val = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y_noisy, random_state=5)
    errors = []
    for T in range(1, 5):
        single = SelfDistillationClassifier(**{**params, "n_stages": T, "lam": params["lam"][:T]})
        errors.append(1 - single.fit(X[fit], y_noisy[fit]).score(X[val], y_noisy[val]))
    np.testing.assert_allclose(est.validation_errors_, errors, atol=1e-12)
    best = int(np.argmin(errors)) + 1
    assert est.n_stages_ == best
    refit = SelfDistillationClassifier(n_stages=best, lam=params["lam"][:best]).fit(X, y_noisy)
    np.testing.assert_array_equal(est.coef_, refit.coef_)


def test_pipeline_and_grid_search(cancer):
    X, y = load_breast_cancer(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()), ("sd", SelfDistillationClassifier())])
    grid = {"sd__lam": [0.1, 1.0, 10.0], "sd__n_stages": [1, 2]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert search.best_score_ > 0.95
    best = Pipeline([("scale", StandardScaler()),
                     ("sd", SelfDistillationClassifier(lam=search.best_params_["sd__lam"],
                                                       n_stages=search.best_params_["sd__n_stages"]))]).fit(X, y)
    np.testing.assert_array_equal(search.best_estimator_.predict_proba(X), best.predict_proba(X))


def test_multiclass_is_refused_and_one_vs_rest_works():
    X, y = load_digits(n_class=3, return_X_y=True)
    with pytest.raises(ValueError, match="Only binary"):
        SelfDistillationClassifier().fit(X, y)
    assert OneVsRestClassifier(SelfDistillationClassifier(lam=10.0)).fit(X, y).score(X, y) > 0.95


def test_collapse_of_hard_labels_keeps_the_earlier_stages():
    X = np.r_[np.zeros((19, 1)), np.ones((1, 1))]
    y = np.r_[np.zeros(19), np.ones(1)]
    with pytest.warns(RuntimeWarning, match="stage 2: every pseudo-label is the same class"):
        est = SelfDistillationClassifier(n_stages=3, lam=100.0).fit(X, y)
    assert est.n_stages_ == 1
    fixed = SelfDistillationClassifier(n_stages=3, lam=100.0, bias="fix_first").fit(X, y)
    assert fixed.n_stages_ == 3


@pytest.mark.parametrize("params, name", [
    ({"lam": -1.0}, "lam"), ({"lam": [1.0, 2.0, 3.0]}, "lam"), ({"beta": [1.0, 2.0], "labels": "soft"}, "beta"),
    ({"labels": "dark"}, "labels"), ({"bias": "fixed"}, "bias"), ({"loss": "hinge"}, "loss"),
    ({"n_stages": 0}, "n_stages"), ({"tol": 0.0}, "tol"), ({"max_iter": 0}, "max_iter"),
    ({"early_stopping": True, "validation_fraction": 1.0}, "validation_fraction"),
])
def test_bad_parameters_name_themselves(cancer, params, name):
    X, y = cancer
    with pytest.raises(ValueError, match=f"^{name}"):
        SelfDistillationClassifier(**params).fit(X, y)


def test_exported_from_the_package():
    import sdgmm
    from sdgmm.realdata import fit_mixture, probe

    assert sdgmm.SelfDistillationClassifier is SelfDistillationClassifier
    assert sdgmm.probe is probe and sdgmm.fit_mixture is fit_mixture


def test_the_limit_lam_inf_is_the_mean_difference_classifier(cancer):
    # lam = inf: w ~ sum_i (y_i - 1/2) x_i, the bias centring the training logits; a finite lam far beyond the
    # data's scale gives the same direction and the same predictions.
    X, y = cancer
    limit = SelfDistillationClassifier(n_stages=1, lam=np.inf).fit(X, y)
    direction = X.T @ (y - 0.5)
    np.testing.assert_allclose(limit.coef_[0] / np.linalg.norm(limit.coef_), direction / np.linalg.norm(direction),
                               rtol=1e-12)
    assert abs(np.mean(limit.decision_function(X))) < 1e-10
    large = SelfDistillationClassifier(n_stages=1, lam=1e9, tol=1e-12).fit(X, y)
    cosine = large.coef_[0] @ limit.coef_[0] / np.linalg.norm(large.coef_) / np.linalg.norm(limit.coef_)
    assert cosine > 1 - 1e-6
    # A limit second stage on hard pseudo-labels is the mean difference of those labels.
    two = SelfDistillationClassifier(n_stages=2, lam=[1.0, np.inf]).fit(X, y)
    pseudo = (two.stage_coefs_[0] @ X.T + two.stage_intercepts_[0] > 0).astype(float)
    np.testing.assert_allclose(two.coef_[0] / np.linalg.norm(two.coef_), X.T @ (pseudo - 0.5)
                               / np.linalg.norm(X.T @ (pseudo - 0.5)), rtol=1e-10)
