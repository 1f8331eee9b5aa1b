#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/integrate.hpp"

using namespace sdgmm;

TEST_CASE("Gauss-Hermite integrates Gaussian moments exactly and smooth functions spectrally") {
  const Rule1D& r = gauss_hermite(8);
  double m0 = 0, m2 = 0, m4 = 0, m6 = 0;
  for (std::size_t i = 0; i < r.x.size(); ++i) {
    const double x2 = r.x[i] * r.x[i];
    m0 += r.w[i], m2 += r.w[i] * x2, m4 += r.w[i] * x2 * x2, m6 += r.w[i] * x2 * x2 * x2;
  }
  CHECK(m0 == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(m2 == doctest::Approx(1.0).epsilon(1e-13));
  CHECK(m4 == doctest::Approx(3.0).epsilon(1e-13));
  CHECK(m6 == doctest::Approx(15.0).epsilon(1e-13));
  const Rule1D& r20 = gauss_hermite(20);
  double c = 0;
  for (std::size_t i = 0; i < r20.x.size(); ++i) c += r20.w[i] * std::cos(r20.x[i]);
  CHECK(std::abs(c - std::exp(-0.5)) < 1e-13);  // E[cos g] = e^{-1/2}
}

TEST_CASE("Gauss-Legendre is exact for polynomials of degree 2n - 1") {
  const Rule1D& r = gauss_legendre(5);
  double s = 0;
  for (std::size_t i = 0; i < r.x.size(); ++i) s += r.w[i] * std::pow(r.x[i], 8);
  CHECK(s == doctest::Approx(2.0 / 9.0).epsilon(1e-14));
}

TEST_CASE("normal quantiles invert the CDF deep in both tails") {
  for (double p : {1e-300, 1e-12, 0.3, 0.5, 0.9}) {
    CHECK(normal_cdf(normal_quantile(p)) == doctest::Approx(p).epsilon(1e-12));
    CHECK(normal_cdf(-normal_upper_quantile(p)) == doctest::Approx(p).epsilon(1e-12));
  }
}

TEST_CASE("scrambled Sobol points are in (0,1), differ by seed and beat Monte Carlo on smooth integrands") {
  const int n = 1024, d = 3;
  const Eigen::MatrixXd a = scrambled_sobol(n, d, 1), b = scrambled_sobol(n, d, 2);
  CHECK(a.minCoeff() > 0.0);
  CHECK(a.maxCoeff() < 1.0);
  CHECK((a - b).norm() > 1.0);
  // E[prod_j 3 u_j^2] = 1; plain MC with 1024 points has a standard error of 0.069.
  for (const Eigen::MatrixXd* pts : {&a, &b}) {
    double mean = 0;
    for (int i = 0; i < n; ++i) mean += 27.0 * std::pow(pts->row(i).prod(), 2) / n;
    CHECK(std::abs(mean - 1.0) < 7e-3);
  }
}
