#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/loss.hpp"

using namespace sdgmm;

TEST_CASE("logistic prox solves u - h + c (sigmoid(u) - y) = 0, with du/dh, in extreme regimes") {
  for (double c : {1e-6, 0.3, 5.0, 1e4}) {
    for (double h : {-60.0, -3.0, 0.0, 0.7, 45.0}) {
      for (double y : {0.0, 0.2, 1.0}) {
        for (double guess : {double(NAN), h, 1e9}) {
          const Prox p = LogisticLoss::prox(h, y, c, guess);
          const double u = h + p.z;
          CAPTURE(c);
          CAPTURE(h);
          CAPTURE(y);
          // z is accurate relative to itself, even when |z| << |h|: its forward error is the
          // residual of z + c grad(y, h + z) = 0 over that equation's slope.
          const double slope = 1.0 + c * LogisticLoss::curvature(y, u);
          CHECK(std::abs(p.z + c * LogisticLoss::grad(y, u)) / slope <= 1e-14 * std::abs(p.z) + 1e-300);
          const double e = 1e-6 * (1 + std::abs(h));
          const double fd = (LogisticLoss::prox(h + e, y, c, p.z).z - LogisticLoss::prox(h - e, y, c, p.z).z) / (2 * e);
          CHECK(p.dzdh == doctest::Approx(fd).epsilon(1e-5).scale(1e-9));
        }
      }
    }
  }
}

TEST_CASE("logistic prox converges from every start: Newton cannot cycle across the loss's inflection") {
  // F(z) = z + c (sigmoid(h + z) - y) has an inflection at u = 0, where plain Newton can cycle inside its bracket:
  // at h = -2.7976, y = 1, c = 40 it alternated between z = 0.13 and 11 for all 200 iterations, from a cold start
  // and from z = 0.047, and returned either (the root is 4.79). A dense grid of fields and starts.
  int failures = 0;
  for (double c : {3.0, 40.0, 2000.0}) {
    for (double y : {0.0, 1.0, 0.35}) {
      for (int i = 0; i <= 4000; ++i) {
        const double h = -20.0 + 0.01 * i;
        for (double guess : {double(NAN), 0.0474, -0.0474, 0.3 * c, -0.3 * c}) {
          const Prox p = LogisticLoss::prox(h, y, c, guess);
          // The residual's own rounding, about 1e-16 c where sigmoid(u) - y cancels, bounds it where z ~ 0.
          const double slope = 1.0 + c * LogisticLoss::curvature(y, h + p.z);
          const double residual = std::abs(p.z + c * LogisticLoss::grad(y, h + p.z)) / slope;
          if (!(residual <= 1e-14 * std::abs(p.z) + 1e-15 * c / slope)) ++failures;
        }
      }
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("square prox is the closed form and the zero crossing is exact") {
  const Prox p = SquareLoss::prox(0.4, 0.9, 2.0, 0.0);
  CHECK(std::abs(p.z + 2.0 * SquareLoss::grad(0.9, 0.4 + p.z)) < 1e-15);
  CHECK(p.dzdh == doctest::Approx(-0.5));
  for (double y : {0.0, 0.3, 1.0}) {
    const double hl = zero_crossing_field<LogisticLoss>(y, 3.0), hs = zero_crossing_field<SquareLoss>(y, 3.0);
    CHECK(std::abs(hl + LogisticLoss::prox(hl, y, 3.0, 0.1).z) < 1e-13);
    CHECK(std::abs(hs + SquareLoss::prox(hs, y, 3.0, 0.1).z) < 1e-15);
  }
}

TEST_CASE("change(y, u, du) is value(y, u + du) - value(y, u) without its cancellation") {
  // Large steps: the difference of values in long double. Tiny steps, where any difference of
  // values cancels: the expansion grad du + curvature du^2 / 2 (exact for the square loss, O(du^3)
  // for the logistic).
  auto diff = [](auto loss, double y, double u, double du) {
    using L = decltype(loss);
    const long double Y = y, U = u;
    return static_cast<double>(L::value(Y, U + du) - L::value(Y, U));
  };
  for (double y : {0.0, 0.3, 1.0}) {
    for (double u : {-8.0, -0.5, 0.0, 2.0, 9.0}) {
      for (double du : {-1.0, 0.25}) {
        CHECK(LogisticLoss::change(y, u, du) == doctest::Approx(diff(LogisticLoss{}, y, u, du)).epsilon(1e-12));
        CHECK(SquareLoss::change(y, u, du) == doctest::Approx(diff(SquareLoss{}, y, u, du)).epsilon(1e-12));
      }
      const double du = 1e-9;
      const double logistic = LogisticLoss::grad(y, u) * du + 0.5 * LogisticLoss::curvature(y, u) * du * du;
      const double square = SquareLoss::grad(y, u) * du + 0.5 * SquareLoss::curvature(y, u) * du * du;
      CHECK(LogisticLoss::change(y, u, du) == doctest::Approx(logistic).epsilon(1e-9));
      CHECK(SquareLoss::change(y, u, du) == doctest::Approx(square).epsilon(1e-14));
    }
  }
}

TEST_CASE("change stays finite and accurate where sigmoid saturates and expm1 overflows") {
  // The old form log1p(sigmoid(u) expm1(du)) gave -inf (sigmoid(u) = 1, expm1(du) = -1) or NaN (0 * inf),
  // and a line search took such a step as a decrease: the solver's NaN weights on standardised pixels.
  auto diff = [](double y, double u, double du) {
    const long double Y = y, U = u;
    return static_cast<double>(LogisticLoss::value(Y, U + du) - LogisticLoss::value(Y, U));
  };
  for (double y : {0.0, 0.4, 1.0}) {
    for (double u : {-800.0, -40.0, 0.0, 40.0, 800.0}) {
      for (double du : {-900.0, -50.0, 50.0, 900.0}) {
        const double c = LogisticLoss::change(y, u, du);
        CAPTURE(y);
        CAPTURE(u);
        CAPTURE(du);
        REQUIRE(std::isfinite(c));
        CHECK(c == doctest::Approx(diff(y, u, du)).epsilon(1e-12));
      }
    }
  }
}
