"""The optimiser finds real optima: no worse than the reference's sweep, its warm starts or restarts."""


import numpy as np
import pytest
import sdgmm
from scipy.optimize import minimize

MAIN = sdgmm.Problem(alpha=1.0, delta=0.5, rho=0.5, theta=0.3)


@pytest.fixture(scope="module")
def square_soft():
    return sdgmm.optimize(MAIN, n_stages=3, loss="square", labels="soft", restarts=1)


def test_no_worse_than_the_reference_square_loss_sweep(square_soft):
    """The reference (beta_t = 1/sqrt(Q_tt), lam tuned) reads 0-SD 0.24, 1-SD 0.19, 5-SD 0.165 at
    alpha = 1; our search space contains theirs."""
    eps = [o.eps_final for o in square_soft.optima]
    print("optimal eps T = 1..3:", eps, square_soft.to_dataframe()[["n_stages", "at_bound"]].values.tolist())
    assert eps[0] <= 0.24 + 5e-3
    assert eps[1] <= 0.19 + 5e-3
    assert eps[2] <= 0.165 + 5e-3  # already at two SD steps
    assert eps[0] == pytest.approx(0.2431, abs=2e-4)  # the lam -> inf (mean-difference) value


def test_each_optimum_is_no_worse_than_its_warm_start(square_soft):
    prev = None
    for opt in square_soft.optima:
        if prev is not None:
            lam = np.r_[prev.lam, prev.lam[-1]]
            beta = np.r_[prev.beta, prev.beta[-1] if len(prev.beta) else 2.0]
            start = sdgmm.theory(MAIN, sdgmm.make_stages(lam, beta), "square").eps[-1]
            assert opt.eps_final <= start + 1e-12
        prev = opt


def test_random_restarts_find_nothing_lower(square_soft):
    best = square_soft.optima[-1]
    rng = np.random.default_rng(3)

    def f(x):  # a point whose state evolution does not converge counts as worse than chance, as in optimize
        stages = sdgmm.make_stages(10.0 ** x[:3], 10.0 ** x[3:])
        try:
            return sdgmm.theory(MAIN, stages, "square", estimate_error=False).eps[-1]
        except sdgmm.ConvergenceError:
            return 1.0

    box = [(-4, 3)] * 3 + [(-2, 2)] * 2
    for _ in range(3):
        res = minimize(f, rng.uniform(*np.array(box).T), method="Nelder-Mead", bounds=box,
                       options={"maxfev": 400, "xatol": 1e-3, "fatol": 1e-10})
        assert res.fun >= best.eps_final - 1e-6


def test_early_stopping_stops_when_the_gain_falls_below_tolerance():
    # gains at alpha = 1: 0.062 (T = 1 -> 2), then 0.018 (2 -> 3), below gain_tol: stop at 3 of 4
    res = sdgmm.optimize(MAIN, max_stages=4, loss="square", labels="soft", restarts=0, gain_tol=0.03)
    eps = [o.eps_final for o in res.optima]
    assert len(res.optima) == 3
    assert eps[1] - eps[2] < 0.03 < eps[0] - eps[1]
    assert res.best_n_stages == 3


def _fake_optima(monkeypatch, eps, eps_error):
    """optimize() with each stage count's search replaced by a given optimum (eps, eps_error)."""
    import sdgmm.optimal._optimize as module

    def fake(settings, T, starts, rng):
        return module.StageCountOptimum(T, np.ones(T), np.full(T - 1, np.inf), np.full(T, eps[T - 1]),
                                        np.full(T, eps_error[T - 1]), (), 1, 0.0, True)

    monkeypatch.setattr(module, "_accurate_optimum", fake)


def test_early_stopping_ignores_a_gain_within_the_integration_error(monkeypatch):
    """T = 3 gains 2e-5 over T = 2, more than gain_tol but not more than their errors (1e-5 + 1.5e-5): noise,
    not a stage worth adding. Before, T* was 3 and the search went on to T = 4."""
    _fake_optima(monkeypatch, [0.30, 0.29, 0.28998, 0.2899], [0.0, 1e-5, 1.5e-5, 1e-5])
    res = sdgmm.optimize(MAIN, max_stages=4, gain_tol=1e-6)
    assert [o.n_stages for o in res.optima] == [1, 2, 3]
    assert res.best_n_stages == 2


def test_best_is_the_fewest_stages_within_integration_error_of_the_lowest(monkeypatch):
    # T = 4 is lowest; T = 3 is 3e-6 above it with errors 2e-6 + 2e-6 (unresolved), T = 2 is 1e-4 above (resolved)
    _fake_optima(monkeypatch, [0.30, 0.2901, 0.290003, 0.29], [0.0, 1e-9, 2e-6, 2e-6])
    res = sdgmm.optimize(MAIN, n_stages=4)
    assert res.best_n_stages == 3
    assert res.best.eps_final == 0.290003


def test_an_unsolvable_stage_count_is_reported_not_hidden():
    """Hard labels at alpha = 1000 with lam <= 1e-3: the second stage's state evolution does not
    converge anywhere in the box (limits=False: the box ends at its upper bound). The one-stage
    optimum stands, T = 2 is reported as failed, and curve() says why."""
    bounds = {"lam": (1e-4, 1e-3)}
    problem = sdgmm.Problem(alpha=1000.0, delta=0.5, rho=0.4, theta=0.2)
    with pytest.warns(RuntimeWarning, match="optimize stopped at T = 2"):
        res = sdgmm.optimize(problem, n_stages=2, bounds=bounds, restarts=0, limits=False)
    assert [o.n_stages for o in res.optima] == [1] and "T = 2" in res.failure
    with pytest.warns(RuntimeWarning):
        df = sdgmm.curve([1000.0], rho=0.4, theta=0.2, stage_counts=[1, 2], bounds=bounds, restarts=0,
                         limits=False)
    assert np.isfinite(df["eps"].iloc[0]) and np.isnan(df["eps"].iloc[1])
    assert "T = 2" in df["failure"].iloc[1]


def test_an_optimum_beyond_the_accuracy_warning_is_no_optimum(monkeypatch, capsys):
    """scripts/main once printed a 5-SD 'optimum' of 0.4502 at alpha 0.1, worse than that alpha's 0-SD, with
    eps_error 3.2e-2. An optimum whose error estimate exceeds the accuracy warning is reported as a failure:
    NaN in the curve, with the reason."""
    import dataclasses

    from sdgmm.cli import main
    from sdgmm.optimal import _optimize as optimize_module
    real = optimize_module.final_evaluation

    def inaccurate_at_two_stages(problem, stages, loss, options):
        r = real(problem, stages, loss, options)
        return dataclasses.replace(r, eps_error=np.full(len(stages), 3.2e-2)) if len(stages) == 2 else r

    monkeypatch.setattr(optimize_module, "final_evaluation", inaccurate_at_two_stages)
    with pytest.warns(RuntimeWarning, match="optimize stopped at T = 2"):
        res = sdgmm.optimize(MAIN, n_stages=2, restarts=0)
    assert [o.n_stages for o in res.optima] == [1] and "3.2e-02 exceeds the accuracy warning" in res.failure
    assert main(["curve", "--alphas", "1", "--stage-counts", "1,2"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "1-SD" in line)
    assert row.split()[2:4] == ["nan", "see"] and "exceeds the accuracy warning" in out


@pytest.fixture(scope="module")
def hard_six():
    return sdgmm.optimize(MAIN, n_stages=6, labels="hard", restarts=0)


def test_hard_optima_sit_at_the_limit_and_beat_their_warm_starts(hard_six):
    """Balanced hard-label optima are lam = inf for every stage (checked by one-sided differences);
    each T-stage optimum is no worse than the (T-1)-stage optimum plus one stage, for T = 2..6."""
    assert hard_six.optima[0].eps_final == pytest.approx(0.243117, abs=1e-6)  # mean-difference closed form
    prev = None
    for opt in hard_six.optima:
        assert np.isinf(opt.lam).all() and f"lam_{opt.n_stages}=inf" in opt.at_bound
        if prev is not None:
            start = sdgmm.theory(MAIN, sdgmm.make_stages(np.r_[prev.lam, prev.lam[-1]], hard=True)).eps[-1]
            assert opt.eps_final <= start + 1e-12
        prev = opt
    eps = [o.eps_final for o in hard_six.optima]
    assert all(a > b for a, b in zip(eps, eps[1:]))  # every extra stage helps at alpha = 1


def test_random_finite_points_do_not_beat_the_hard_limit(hard_six):
    best = hard_six.optima[2].eps_final  # T = 3
    rng = np.random.default_rng(7)

    def f(x):
        stages = sdgmm.make_stages(10.0 ** x, hard=True)
        try:
            return sdgmm.theory(MAIN, stages, estimate_error=False).eps[-1]
        except sdgmm.ConvergenceError:
            return 1.0

    box = [(-4, 3)] * 3
    for _ in range(2):
        res = minimize(f, rng.uniform(*np.array(box).T), method="Nelder-Mead", bounds=box,
                       options={"maxfev": 150, "xatol": 1e-2, "fatol": 1e-9})
        assert res.fun >= best - 1e-6


def test_tuned_bias_is_no_worse_than_the_kept_learned_bias():
    """bias='tune' searches the kept bias B itself; fix_first keeps the learned b_1, one point of that
    family. Under imbalance the tuned value is far better for 0-SD (the learned bias fits the noisy
    label prior)."""
    p = sdgmm.Problem(alpha=2.0, delta=0.5, rho=0.3, theta=0.2)
    kept = sdgmm.optimize(p, n_stages=2, labels="hard", bias="fix_first", restarts=0)
    tuned = sdgmm.optimize(p, n_stages=2, labels="hard", bias="tune", restarts=0)
    for a, b in zip(tuned.optima, kept.optima):
        assert a.eps_final <= b.eps_final + 1e-6
        assert np.isfinite(a.bias_value) and -3 <= a.bias_value <= 3
    assert tuned.optima[0].eps_final < kept.optima[0].eps_final - 0.02
    assert "bias_value" in tuned.to_dataframe().columns


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_simulation_at_the_optimum_agrees_with_the_theory(alpha):
    """F5's check: the optimal hard-label 3-stage SD (all lam = inf) simulated at lam = 1e6 with the bias
    kept at 0 (a learned bias on a finite sample would swamp logits of order 1/lam)."""
    p = sdgmm.Problem(alpha=alpha, delta=0.5, rho=0.5, theta=0.3)
    opt = sdgmm.optimize(p, n_stages=3, labels="hard", restarts=0).optima[-1]
    assert np.isinf(opt.lam).all()
    sim = sdgmm.simulate(p, sdgmm.make_stages([1e6] * 3, hard=True, bias="fixed", bias_value=0.0), N=1000,
                         trials=8, seed=int(alpha * 10))
    print(f"\nalpha {alpha}: theory {opt.eps}\n sim {sim.eps} se {sim.eps_se}")
    assert np.all(np.abs(sim.eps - opt.eps) <= 3 * sim.eps_se + 3e-3)


def test_soft_distillation_is_no_worse_than_its_teacher_on_a_spectrum():
    """A soft stage with lam -> 0 reproduces its teacher, so optimal soft 1-SD is never above 0-SD. On an
    anisotropic spectrum the search from the lam = inf limit alone ended at 0.2136, above 0-SD's 0.1896; the
    finite-lam basin beyond it reaches 0.1717."""
    N = 200
    sigma = np.arange(1, N + 1) ** -0.5
    spectrum = sdgmm.Spectrum(sigma / sigma.mean(), np.full(N, 1.5))
    res = sdgmm.optimize(sdgmm.Problem(alpha=1.0, theta=0.2, spectrum=spectrum), n_stages=2, labels="soft",
                         restarts=0)
    zero_sd, one_sd = (o.eps_final for o in res.optima)
    print("0-SD, soft 1-SD:", zero_sd, one_sd, res.optima[1].lam, res.optima[1].beta)
    assert one_sd <= zero_sd + 1e-6
    assert one_sd < 0.18


def test_soft_temperature_is_optimal_under_the_final_rule():
    """Soft 1-SD at alpha 1.83 (both stages at lam = inf): the search's coarse rule is 4e-4 off at beta_2 = 8 and ranked
    8.4 first, 1.2e-4 above the optimum; the optimum must match a scan of beta_2 under the default rule."""
    problem = sdgmm.Problem(alpha=1.832981)
    best = sdgmm.optimize(problem, n_stages=2, labels="soft", restarts=0).optima[1]
    betas = np.linspace(5.0, 8.0, 31)
    scan = [sdgmm.theory(problem, sdgmm.make_stages([np.inf, np.inf], [b])).eps[-1] for b in betas]
    assert np.isinf(best.lam).all()
    assert best.eps_final <= min(scan) + 1e-7
    assert abs(best.beta[0] - betas[int(np.argmin(scan))]) < 0.2


def test_a_limit_point_the_search_rule_cannot_solve_is_still_found():
    """alpha 0.19, theta 0.2, hard T = 3: the search's 12-node rule does not converge at the all-limit point, which
    scored as failed, and the optimum (lam_1 = 1e-4) ended 5e-4 above it."""
    problem = sdgmm.Problem(alpha=0.187382, theta=0.2)
    best = sdgmm.optimize(problem, n_stages=3, restarts=1).optima[2]  # the phase diagram's search
    limit = sdgmm.theory(problem, sdgmm.make_stages([np.inf] * 3, hard=True)).eps[-1]
    assert best.eps_final <= limit + 1e-7


@pytest.mark.parametrize("alpha, T", [(0.3, 6), (1.27, 6), (23.357, 6), (11.288, 4)])
def test_the_limit_check_rule_keeps_the_default_rules_differences(alpha, T):
    """The limit check's rule (coarser pruning from hard T = 5 on, fixed points to 1e-10) decides by the eps
    difference between the limit and its last stage moved off it (the case that costs); it is the default rule's
    to 1e-9. At alpha 11 and 23 the default rule's moved stage takes 60-130 iterations, the check's 3."""
    from sdgmm.optimal._search import check_rule

    problem = sdgmm.Problem(alpha=alpha, delta=0.5, rho=0.5, theta=0.3)

    def difference(rule):
        limit = sdgmm.theory(problem, sdgmm.make_stages([np.inf] * T, hard=True), **rule).eps[-1]
        moved = sdgmm.make_stages([np.inf] * (T - 1) + [2e4], hard=True)
        return sdgmm.theory(problem, moved, **rule).eps[-1] - limit

    check = check_rule("hard", T)
    default = {k: v for k, v in check.items() if k not in ("prune", "tol")}
    fast, full = difference(check), difference(default)
    assert abs(full) > 1e-7  # a difference the check can see
    assert abs(fast - full) <= 1e-9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the cheap rule need not converge soft T = 7 here: no matter
@pytest.mark.parametrize("labels", ["soft", "hard"])
def test_the_search_rule_is_the_rule_the_engine_applies(labels):
    """search_accuracy asks for tensor nodes or cheap QMC points by T; the engine must apply exactly that rule.
    Before, hard T = 6 asked for 5 tensor nodes, which theory's automatic rule ignores from hard T = 6 on: every
    search point ran the default QMC (1024 points x 8 replicates), 10-25x the cost of the cheap rule."""
    from sdgmm.optimal._search import search_accuracy

    problem = sdgmm.Problem(alpha=1.0, delta=0.5, rho=0.5, theta=0.2)
    for T in range(1, 9):
        rule = search_accuracy(T, labels)
        r = sdgmm.theory(problem, sdgmm.make_stages([1.0] * T, None if labels == "hard" else [1.0] * (T - 1),
                                                    hard=labels == "hard"), **rule, on_nonconvergence="warn")
        if "gh_nodes" in rule:
            assert (r.method, r.gh_nodes) == ("tensor", rule["gh_nodes"]), T
        else:
            assert (r.method, r.qmc_points) == ("qmc", rule["qmc_points"]), T
