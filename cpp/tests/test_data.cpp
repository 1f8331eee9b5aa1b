#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "sdgmm/data.hpp"

using namespace sdgmm;

TEST_CASE("a trial's data depend only on (seed, trial)") {
  const Problem p{.alpha = 2.0, .delta = 0.5, .rho = 0.4, .theta = 0.2};
  const Dataset a = draw_dataset(p, 50, 7, 3), b = draw_dataset(p, 50, 7, 3);
  const Dataset c = draw_dataset(p, 50, 7, 4);
  CHECK(a.X.rows() == 100);
  CHECK(a.X == b.X);
  CHECK(a.y_noisy == b.y_noisy);
  CHECK((a.X - c.X).norm() > 1.0);
}

TEST_CASE("a spectrum's draws have its class means and variances per coordinate") {
  // 4000 points: coordinate j has mean s mu~_j / sqrt(N) and variance sigma_j (to sampling error).
  const Spectrum s{{0.0, 0.25, 4.0}, {3.0, 0.0, 1.0}};
  const Problem p{.alpha = 4000.0 / 3.0, .rho = 0.5, .theta = 0.0, .spectrum = s};
  const Dataset d = draw_dataset(p, 3, 1, 0);
  REQUIRE(d.X.rows() == 4000);
  for (int j = 0; j < 3; ++j) {
    const double signed_mean = (d.X.col(j).array() * d.s.array()).mean();
    const Eigen::ArrayXd resid = d.X.col(j).array() - d.s.array() * s.mean[j] / std::sqrt(3.0);
    const double se = std::sqrt(s.eigenvalues[j] / 4000.0);  // of the mean; the variance's is ~sqrt(2/4000)
    CHECK(std::abs(signed_mean - s.mean[j] / std::sqrt(3.0)) <= 4 * se + 1e-12);
    CHECK(std::abs(resid.square().mean() - s.eigenvalues[j]) <= 4 * std::sqrt(2.0 / 4000.0) * s.eigenvalues[j] + 1e-12);
  }
  CHECK_THROWS_AS(draw_dataset(p, 4, 1, 0), std::invalid_argument);  // N must be the spectrum's dimension
}
