#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <utility>

#include "sdgmm/error.hpp"
#include "sdgmm/integrate.hpp"
#include "sdgmm/limit_chain.hpp"

using namespace sdgmm;

namespace {
const Problem kProblem{.alpha = 1.5, .delta = 0.5, .rho = 0.35, .theta = 0.2, .theta_plus = 0.1};

// Two frozen limit stages whose fields are nearly collinear (U_11 << U_01), the regime the chain is for.
StageField stage(double m, double b, std::vector<double> U, std::vector<double> r, double c) {
  StageField f;
  f.m = m, f.b = b, f.U = std::move(U), f.r = std::move(r), f.c = c, f.limit = true;
  return f;
}
const StageField kFirst = stage(0.4, -0.1, {0.7}, {}, 0.3);
const StageField kSecond = stage(0.45, 0.05, {0.69, 0.08}, {0.6}, 0.25);
const StageField kThird = stage(0.5, 0.02, {0.66, 0.07, 0.05}, {0.2, 0.5}, 0.2);

// The oracle: stage 2's target y_2 given the class and xi_0 is integrated over xi_1 in closed form, and xi_0 by a
// composite Simpson rule in the Cholesky coordinates themselves (no rotation, no intervals).
// Returns E[y_2], E[y_2 xi_0], E[y_2 xi_1], E[y_2 y_1].
std::array<double, 4> oracle(const Stage& second, const Stage& third) {
  std::array<double, 4> out{};
  const int n = 20000;  // per side of stage 1's jump, where y_1 steps
  const double L = 12.0;
  for (const LabelClass& c : label_classes(kProblem)) {
    const double jump = -(c.s * kFirst.m + kFirst.b + kFirst.c * (c.y_noisy - 0.5)) / kFirst.U[0];
    for (const auto [lo, hi] : {std::pair{-L, jump}, std::pair{jump, L}}) {
      const double h = (hi - lo) / n;
      for (int i = 0; i <= n; ++i) {
        const double x = lo + i * h;
        const double w = c.prob * h / 3.0 * (i == 0 || i == n ? 1 : i % 2 ? 4 : 2) * normal_pdf(x);
        const double z0 = kFirst.c * (c.y_noisy - 0.5);
        const double y1 = second.xi * ((hi == L) ? 1.0 : 0.0) + (1.0 - second.xi) * c.y_noisy;
        const double z1 = kSecond.c * (y1 - 0.5);
        // u_1 = A + U_11 xi_1 > 0 with A its part known here.
        const double A = c.s * kSecond.m + kSecond.b + kSecond.U[0] * x + kSecond.r[0] * z0 + z1;
        const double p_up = gaussian_tail(-A / kSecond.U[1]);          // P(xi_1 > -A / U_11)
        const double tail_mean = normal_pdf(-A / kSecond.U[1]);        // E[xi_1; xi_1 > -A / U_11]
        const double y2_up = third.xi + (1.0 - third.xi) * c.y_noisy;  // y_2 where the pseudo-label is 1
        const double y2_down = (1.0 - third.xi) * c.y_noisy;
        const double y2 = p_up * y2_up + (1.0 - p_up) * y2_down;
        out[0] += w * y2;
        out[1] += w * y2 * x;
        out[2] += w * tail_mean * (y2_up - y2_down);
        out[3] += w * y2 * y1;
      }
    }
  }
  return out;
}
}  // namespace

TEST_CASE("one frozen limit stage: the next target's mass is a normal tail per class, exactly") {
  const std::vector<Stage> stages{{.lam = INFINITY}, {.lam = INFINITY, .targets = Targets::hard}};
  LimitChain chain(kProblem, stages, Eigen::MatrixXd());  // no outer coordinate: no points needed
  chain.freeze(kFirst);
  double exact = 0.0;
  for (const LabelClass& c : label_classes(kProblem))
    exact += c.prob * gaussian_tail((-kFirst.c * (c.y_noisy - 0.5) - c.s * kFirst.m - kFirst.b) / kFirst.U[0]);
  CHECK(chain.target_mass() == doctest::Approx(exact).epsilon(1e-14));
}

TEST_CASE("two nearly collinear limit stages: the chain's moments match a one-dimensional oracle") {
  // Pure (xi = 1) and mixed (xi = 1.5) targets. Stage 2's z = c (y_2 - 1/2), so E[z], E[z xi] and E[z z_1] follow
  // from the oracle's E[y_2], E[y_2 xi] and E[y_2 y_1]. The rotation puts e along the common normal; with two
  // frozen stages one outer coordinate is left, which 2^16 Sobol points integrate to a few 1e-7 here (spread over
  // seeds).
  const Eigen::MatrixXd points = scrambled_sobol(1 << 16, 1, 5).unaryExpr([](double u) { return normal_quantile(u); });
  for (const double xi : {1.0, 1.5}) {
    const std::vector<Stage> stages{{.lam = INFINITY},
                                    {.lam = INFINITY, .targets = Targets::hard, .xi = xi},
                                    {.lam = INFINITY, .targets = Targets::hard, .xi = xi}};
    LimitChain chain(kProblem, stages, points);
    chain.freeze(kFirst);
    chain.freeze(kSecond);
    const auto want = oracle(stages[1], stages[2]);
    const StageMoments mo = chain.moments(kThird);
    const double c = kThird.c;
    CAPTURE(xi);
    CHECK(std::abs(chain.target_mass() - (want[0])) < 1e-6);
    CHECK(std::abs(mo.z - (c * (want[0] - 0.5))) < 1e-6);
    CHECK(std::abs(mo.z_xi[0] - (c * want[1])) < 1e-6);
    CHECK(std::abs(mo.z_xi[1] - (c * want[2])) < 1e-6);
    CHECK(mo.z_xi[2] == 0.0);
    double Ey1 = 0.0;  // E[y_1] for E[z_2 z_1] = c c_1 (E[y_2 y_1] - E[y_2] / 2 - E[y_1] / 2 + 1/4)
    {
      LimitChain first(kProblem, stages, points);
      first.freeze(kFirst);
      Ey1 = first.target_mass();
    }
    const double c1 = kSecond.c;
    CHECK(std::abs(mo.z_z[1] - (c * c1 * (want[3] - want[0] / 2 - Ey1 / 2 + 0.25))) < 1e-6);
  }
}
