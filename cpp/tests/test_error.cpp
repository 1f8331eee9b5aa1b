#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/error.hpp"

using namespace sdgmm;

TEST_CASE("a vanishing weight vector gives the constant classifier's error, not NaN") {
  CHECK(generalisation_error(0.0, -0.2, 0.0, 0.3) == doctest::Approx(0.3));  // predicts -1
  CHECK(generalisation_error(0.0, 0.2, 0.0, 0.3) == doctest::Approx(0.7));   // predicts +1
  CHECK(generalisation_error(0.1, 0.0, 0.0, 0.3) == doctest::Approx(0.0));   // separates perfectly
}

TEST_CASE("the error is the two classes' Gaussian tails at the field's standard deviation") {
  const double m = 0.6, b = -0.1, q = 0.25, rho = 0.3;
  const double H1 = 0.5 * std::erfc((m + b) / std::sqrt(q) / std::sqrt(2.0));
  const double H0 = 0.5 * std::erfc((m - b) / std::sqrt(q) / std::sqrt(2.0));
  CHECK(generalisation_error(m, b, q, rho) == doctest::Approx(rho * H1 + (1 - rho) * H0).epsilon(1e-15));
}
