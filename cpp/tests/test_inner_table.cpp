#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "sdgmm/inner_table.hpp"
#include "sdgmm/integrate.hpp"

using namespace sdgmm;

TEST_CASE("the tabulated inner sums agree with the rule itself to rounding") {
  // Offsets between the table's nodes, for a gentle prox (c = 0.5), a strong one (c = 40) and the nearly hard
  // one of weak regularisation (c = 2000, a narrow own coordinate), for hard, mixed and soft-like targets.
  const Rule1D& rule = gauss_hermite(10);
  std::mt19937_64 rng(3);
  double worst = 0.0;
  for (const auto [U_tt, c] : {std::pair{0.3, 0.5}, {1.2, 40.0}, {0.05, 2000.0}}) {
    for (const double y : {0.0, 1.0, 0.35}) {
      const double lo = -12.0, hi = 9.0;
      const InnerTable<LogisticLoss> table(lo, hi, y, U_tt, c, rule.x, rule.w);
      std::uniform_real_distribution<double> offset(lo, hi);
      std::vector<double> guess(rule.x.size(), std::nan(""));
      for (int i = 0; i < 400; ++i) {
        const double A = offset(rng);
        const InnerSums got = table.at(A), want = inner_sums<LogisticLoss>(A, y, U_tt, c, rule.x, rule.w, guess);
        // Relative to the scale of z, which is c at most.
        const double scale = std::max(1.0, c);
        for (const auto [g, w] : {std::pair{got.z, want.z}, {got.z_x, want.z_x}, {got.u, want.u}})
          worst = std::max(worst, std::abs(g - w) / scale);
        worst = std::max(worst, std::abs(got.zz - want.zz) / (scale * scale));
        worst = std::max({worst, std::abs(got.dzdh - want.dzdh), std::abs(got.dzdy - want.dzdy) / scale});
      }
    }
  }
  MESSAGE("largest relative difference: " << worst);
  CHECK(worst < 1e-11);
}

TEST_CASE("the table reads its end cells: offsets at both ends of its range") {
  const Rule1D& rule = gauss_hermite(6);
  const InnerTable<LogisticLoss> table(-1.0, 2.0, 1.0, 0.5, 3.0, rule.x, rule.w);
  std::vector<double> guess(rule.x.size(), std::nan(""));
  for (const double A : {-1.0, 2.0}) {
    const InnerSums got = table.at(A), want = inner_sums<LogisticLoss>(A, 1.0, 0.5, 3.0, rule.x, rule.w, guess);
    CHECK(std::abs(got.z - want.z) < 1e-12);
    CHECK(std::abs(got.dzdh - want.dzdh) < 1e-12);
  }
}
