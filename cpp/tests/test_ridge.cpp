#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/ridge.hpp"

using namespace sdgmm;

TEST_CASE("equal eigenvalues form one group carrying their share and their share of |mu|^2") {
  const Problem p{.spectrum = Spectrum{{0.5, 2.0, 0.5, 0.0}, {1.0, 3.0, 1.0, 2.0}}};
  const SpectralGroups g = spectral_groups(p);
  REQUIRE(g.sigma == std::vector<double>{0.0, 0.5, 2.0});
  CHECK(g.share == std::vector<double>{0.25, 0.5, 0.25});
  CHECK(g.mean2 == std::vector<double>{1.0, 0.5, 2.25});
  CHECK(g.mean_sigma == doctest::Approx(0.75));
  const SpectralGroups iso = spectral_groups(Problem{.delta = 0.7});
  CHECK(iso.sigma == std::vector<double>{0.7});
  CHECK(iso.mean2 == std::vector<double>{1.0});
}

TEST_CASE("one stage: the order parameters are Loureiro et al.'s sums over the spectrum") {
  // V = (1/N) sum sigma / (lam + Vh sigma), m = (1/N) sum mh mu~^2 / (lam + Vh sigma),
  // q = (1/N) sum sigma (qh sigma + mh^2 mu~^2) / (lam + Vh sigma)^2, with Vh = Qh, qh = chih.
  const std::vector<double> sigma{0.1, 0.5, 0.5, 3.0}, mean{2.0, 0.0, 1.0, 0.5};
  const Problem p{.spectrum = Spectrum{sigma, mean}};
  Ridge ridge(spectral_groups(p), 1);
  const double lam = 0.8, mh = 0.6, Vh = 1.3, qh = 0.4;
  Eigen::MatrixXd Qh(1, 1), chih(1, 1);
  Qh << Vh;
  chih << qh;
  REQUIRE(ridge.set_stage(0, mh, Qh, chih, {lam}));
  double V = 0.0, m = 0.0, q = 0.0, Q = 0.0;
  for (std::size_t i = 0; i < sigma.size(); ++i) {
    const double g = lam + Vh * sigma[i], mu2 = mean[i] * mean[i];
    V += sigma[i] / g / 4, m += mh * mu2 / g / 4;
    q += sigma[i] * (qh * sigma[i] + mh * mh * mu2) / (g * g) / 4;
    Q += (qh * sigma[i] + mh * mh * mu2) / (g * g) / 4;
  }
  CHECK(ridge.V(0, 0) == doctest::Approx(V).epsilon(1e-15));
  CHECK(ridge.m[0] == doctest::Approx(m).epsilon(1e-15));
  CHECK(ridge.q(0, 0) == doctest::Approx(q).epsilon(1e-15));
  CHECK(ridge.Q(0, 0) == doctest::Approx(Q).epsilon(1e-15));
}
