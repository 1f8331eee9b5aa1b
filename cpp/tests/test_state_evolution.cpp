#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/state_evolution.hpp"

using namespace sdgmm;

namespace {
std::vector<Stage> soft_table_stages() { return {{.lam = 1.5}, {.lam = 0.5, .beta = 0.8}, {.lam = 2.0, .beta = 1.2}}; }
}  // namespace

// theory.md section 4, rows 1-4: quadrature values exact to about 1e-8, computed with the specification's one-term
// response chi_kt. The engine sums it over every earlier coupling (docs/theory.md), which leaves stages 1-2 as they
// are and moves stage 3 (checked against simulation in tests/api/test_theory_table.py).
TEST_CASE("soft-label rows of the checked table to 1e-6, biases to 1e-5, at the stages the correction leaves") {
  struct Row {
    Loss loss;
    double alpha;
    double eps[3];
    double b[3];
  };
  const Row rows[] = {
      {Loss::logistic, 1.5, {0.221427219, 0.344412584, 0.400000000}, {-0.207493, -0.178171, -0.227998}},
      {Loss::logistic, 3.0, {0.159057194, 0.191767915, 0.394456512}, {-0.187866, -0.163614, -0.218909}},
      {Loss::logistic, 5.0, {0.133760175, 0.134469700, 0.270828811}, {-0.171618, -0.149727, -0.206246}},
      {Loss::square, 3.0, {0.158835736, 0.142724613, 0.209015998}, {-0.075263, -0.066981, -0.096382}},
  };
  for (const Row& row : rows) {
    const Problem p{.alpha = row.alpha, .delta = 0.5, .rho = 0.4, .theta = 0.2};
    const TheoryResult r = solve_state_evolution(p, soft_table_stages(), row.loss);
    CAPTURE(row.alpha);
    for (int t = 0; t < 3; ++t) {
      CHECK(r.converged[t]);
      CHECK(r.eps_error[t] < 1e-8);
      if (t == 2) continue;
      CHECK(std::abs(r.eps[t] - row.eps[t]) < 1e-6);
      CHECK(std::abs(r.b[t] - row.b[t]) < 1e-5);
    }
  }
}

TEST_CASE("pure label noise (theta = 1/2) gives chance error; balanced classes give b = 0 unforced") {
  const Problem noise{.alpha = 2, .delta = 0.5, .rho = 0.5, .theta = 0.5};
  const TheoryResult r = solve_state_evolution(noise, soft_table_stages(), Loss::logistic);
  for (int t = 0; t < 3; ++t) CHECK(std::abs(r.eps[t] - 0.5) < 1e-12);
  const Problem balanced{.alpha = 2, .delta = 0.5, .rho = 0.5, .theta = 0.3};
  const TheoryResult s = solve_state_evolution(balanced, soft_table_stages(), Loss::logistic);
  for (int t = 0; t < 3; ++t) CHECK(std::abs(s.b[t]) < 1e-12);
}

TEST_CASE("hard labels: learned bias collapses to the majority class, a fixed bias does not") {
  const Problem p{.alpha = 2, .delta = 0.5, .rho = 0.3, .theta = 0.2};
  std::vector<Stage> learn(4, Stage{.lam = 0.5, .targets = Targets::hard});
  learn[0].targets = Targets::soft;
  std::vector<Stage> fixed = learn;
  for (int t = 1; t < 4; ++t) fixed[t].bias = BiasPolicy::fix_first;
  TheoryOptions opt{.method = Method::tensor, .estimate_error = false};
  opt.integration.gh_nodes = opt.integration.split_nodes = 12;
  const TheoryResult a = solve_state_evolution(p, learn, Loss::logistic, opt);
  const TheoryResult b = solve_state_evolution(p, fixed, Loss::logistic, opt);
  const double ref_learn[] = {0.177, 0.240, 0.298, 0.300}, ref_fixed[] = {0.177, 0.127, 0.120, 0.118};
  for (int t = 0; t < 4; ++t) {
    CHECK(std::abs(a.eps[t] - ref_learn[t]) < 5e-3);
    CHECK(std::abs(b.eps[t] - ref_fixed[t]) < 5e-3);
  }
  CHECK(b.eps[3] < a.eps[3] - 0.1);
}

TEST_CASE("lam = inf: 0-SD is the mean-difference classifier, and the limit of large finite lam") {
  // w = sum (y - 1/2) x / sqrt(N): m = alpha (1 - 2 theta) / 2, Q = m^2 + alpha delta / 4.
  const Problem p{.alpha = 1, .delta = 0.5, .rho = 0.5, .theta = 0.3};
  const double m = 0.2, Q = m * m + 0.125;
  const TheoryResult r = solve_state_evolution(p, {{.lam = INFINITY}}, Loss::square);
  CHECK(std::abs(r.eps[0] - 0.5 * std::erfc(m / std::sqrt(0.5 * Q) / std::sqrt(2.0))) < 1e-12);
  const auto hard = [](double lam) { return std::vector<Stage>{{.lam = lam}, {.lam = lam, .targets = Targets::hard}}; };
  const TheoryResult limit = solve_state_evolution(p, hard(INFINITY), Loss::logistic);
  const TheoryResult big = solve_state_evolution(p, hard(1e4), Loss::logistic);
  CHECK(std::abs(limit.eps[1] - big.eps[1]) < 1e-5);
}

TEST_CASE("accuracy: the rule is refined until eps_error meets it, and the result is that close") {
  const Problem p{.alpha = 8.0, .delta = 1.0, .rho = 0.2, .theta = 0.05};
  const std::vector<Stage> stages{{.lam = 0.01}};
  TheoryOptions exact;
  exact.integration.gh_nodes = 64;
  const double reference = solve_state_evolution(p, stages, Loss::logistic, exact).eps[0];
  const TheoryResult plain = solve_state_evolution(p, stages, Loss::logistic);  // accuracy 0: 16 nodes
  CHECK(plain.gh_nodes == 16);
  CHECK(std::abs(plain.eps[0] - reference) > 5e-7);
  TheoryOptions target;
  target.accuracy = 1e-6;
  const TheoryResult r = solve_state_evolution(p, stages, Loss::logistic, target);
  CHECK(r.accuracy_reached);
  CHECK(r.gh_nodes > 16);
  CHECK(r.eps_error[0] <= 1e-6);
  CHECK(std::abs(r.eps[0] - reference) <= 1e-6);
  CHECK(max_gh_nodes(1) == 96);
  CHECK(max_gh_nodes(3) == 32);
  CHECK(max_gh_nodes(4) == 13);
}

// xi = 1 (the default) is pure SD: the checked-table rows above run through the mixed target.
TEST_CASE("mixing weight xi = 0 retrains on the noisy labels") {
  const Problem p{.alpha = 2, .delta = 0.5, .rho = 0.4, .theta = 0.2};
  for (const Targets targets : {Targets::soft, Targets::hard}) {
    std::vector<Stage> pure = {{.lam = 1.5}, {.lam = 0.5, .targets = targets}, {.lam = 2.0, .targets = targets}};
    if (targets == Targets::soft) pure[1].beta = pure[2].beta = 1.2;
    std::vector<Stage> again = pure;
    again[1].xi = 0.0;  // stage 2 trains on the noisy labels with lam 0.5: the 0-SD error at lam 0.5
    const TheoryResult c = solve_state_evolution(p, again, Loss::logistic);
    const TheoryResult once = solve_state_evolution(p, {{.lam = 0.5}}, Loss::logistic);
    CHECK(c.converged[1]);
    CHECK(std::abs(c.eps[1] - once.eps[0]) < 1e-9);
    CHECK(std::abs(c.b[1] - once.b[0]) < 1e-8);
  }
}
