#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/saddle.hpp"

using namespace sdgmm;

TEST_CASE("stage 1's order parameters from its conjugates are theory.md's isotropic formulas") {
  // chi_11 = 1 / g, m_1 = mh / g, Q_11 = (mh^2 + chih) / g^2 with g = Qh + lam (theory.md's units, which x holds).
  const Problem p{.alpha = 1.5, .delta = 0.5, .rho = 0.4, .theta = 0.2};
  const std::vector<Stage> stages{{.lam = 0.7}};
  Saddle sd(p, stages, false);
  const double mh = 0.3, Qh = 1.1, chih = 0.45, b = -0.2, g = Qh + 0.7;
  const auto field = sd.set_stage(0, (Eigen::VectorXd(4) << mh, Qh, chih, b).finished());
  REQUIRE(field);
  CHECK(sd.ridge.m[0] == doctest::Approx(mh / g).epsilon(1e-15));
  CHECK(sd.ridge.Q(0, 0) == doctest::Approx((mh * mh + chih) / (g * g)).epsilon(1e-15));
  CHECK(sd.ridge.V(0, 0) == doctest::Approx(p.delta / g).epsilon(1e-15));  // V = delta chi
  CHECK(field->c == doctest::Approx(p.delta / g).epsilon(1e-15));
  CHECK(field->U[0] == doctest::Approx(std::sqrt(p.delta * (mh * mh + chih) / (g * g))).epsilon(1e-15));
  CHECK(field->b == b);
  CHECK(sd.eps(0) == doctest::Approx(0.4 * 0.5 * std::erfc((mh / g + b) / field->U[0] / std::sqrt(2.0)) +
                                     0.6 * 0.5 * std::erfc((mh / g - b) / field->U[0] / std::sqrt(2.0)))
                         .epsilon(1e-14));
}
