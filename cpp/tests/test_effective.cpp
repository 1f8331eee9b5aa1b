#include <doctest/doctest.h>

#include <cmath>
#include <utility>

#include "sdgmm/effective.hpp"
#include "sdgmm/error.hpp"

using namespace sdgmm;

namespace {
const Problem kProblem{.alpha = 1.5, .delta = 0.5, .rho = 0.35, .theta = 0.2, .theta_plus = 0.1};

double total_weight(const ParticleSet& set) {
  double w = 0.0;
  for (double v : set.weight) w += v;
  return w;
}
}  // namespace

TEST_CASE("the starting particles are the four label classes with their probabilities") {
  const ParticleSet set = initial_particles(kProblem, {.method = Method::tensor}, Eigen::MatrixXd());
  REQUIRE(set.size() == 4);
  CHECK(total_weight(set) == doctest::Approx(1.0).epsilon(1e-15));
  double plus = 0.0, flipped = 0.0;
  for (std::size_t p = 0; p < set.size(); ++p) {
    if (set.s[p] > 0) plus += set.weight[p];
    if ((set.s[p] > 0) != (set.target[p] > 0.5)) flipped += set.weight[p];
  }
  CHECK(plus == doctest::Approx(0.35));
  CHECK(flipped == doctest::Approx(0.35 * 0.1 + 0.65 * 0.2));
}

TEST_CASE("a hard next target splits the rule at its jump: the target mass converges spectrally to the tail") {
  // A limit stage's prox is z = c (y - 1/2), so u = s m + b + U xi + c (y - 1/2) and the next hard target
  // 1{u > 0} has probability H((-c (y - 1/2) - s m - b) / U) in each class. The integrand jumps, yet the split
  // rule converges like a smooth one (measured: 1.5e-3, 4.8e-6, 3.0e-12 at 4, 8, 16 nodes); an unsplit
  // Gauss-Hermite rule would converge like 1 / nodes.
  StageField f;
  f.m = 0.4, f.b = -0.1, f.U = {0.7}, f.c = 0.3, f.limit = true;
  const Stage next{.lam = 1.0, .targets = Targets::hard};
  for (const auto [nodes, tol] : {std::pair{4, 3e-3}, {8, 1e-5}, {16, 1e-11}}) {
    const IntegrationOptions opt{.method = Method::tensor, .gh_nodes = nodes, .split_nodes = nodes};
    const ParticleSet outer = initial_particles(kProblem, opt, Eigen::MatrixXd());
    const ParticleSet inner = freeze_stage(outer, f, Loss::logistic, next, opt, Eigen::MatrixXd());
    CHECK(inner.dims == 1);
    CHECK(total_weight(inner) == doctest::Approx(1.0).epsilon(1e-14));
    double mass = 0.0, exact = 0.0;
    for (std::size_t p = 0; p < inner.size(); ++p) mass += inner.weight[p] * inner.target[p];
    for (const LabelClass& c : label_classes(kProblem))
      exact += c.prob * gaussian_tail((-f.c * (c.y_noisy - 0.5) - c.s * f.m - f.b) / f.U[0]);
    CAPTURE(nodes);
    CHECK(std::abs(mass - exact) < tol);
  }
}

TEST_CASE("stage moments integrate the own coordinate: E[z] and E[s z] of a limit stage in closed form") {
  // At a limit stage z = c (y - 1/2) does not depend on the field: E[z] = c (E[y] - 1/2), E[s z] = c E[s (y - 1/2)],
  // and E[z xi_1] = 0.
  StageField f;
  f.m = 0.4, f.b = 0.0, f.U = {0.7}, f.c = 0.3, f.limit = true;
  const IntegrationOptions opt{.method = Method::tensor, .gh_nodes = 8};
  const ParticleSet outer = initial_particles(kProblem, opt, Eigen::MatrixXd());
  std::vector<double> guess;
  const StageMoments mo = stage_moments(outer, f, Loss::square, opt, Eigen::MatrixXd(), false, guess);
  double Ey = 0.0, Esy = 0.0;
  for (const LabelClass& c : label_classes(kProblem)) Ey += c.prob * c.y_noisy, Esy += c.prob * c.s * (c.y_noisy - 0.5);
  CHECK(mo.z == doctest::Approx(0.3 * (Ey - 0.5)).epsilon(1e-14));
  CHECK(mo.s_z == doctest::Approx(0.3 * Esy).epsilon(1e-14));
  CHECK(std::abs(mo.z_xi[0]) < 1e-15);
}

TEST_CASE("a mirrored set gives the full set's moments: even ones from half the particles, odd ones 0") {
  // rho = 1/2, symmetric noise, b = 0: class (s, y) at xi mirrors (-s, 1 - y) at -xi, and z(-h, 1 - y) = -z(h, y).
  // A hard stage is frozen first, so that the moments are taken over split particles with their own targets.
  const Problem symmetric{.alpha = 1.5, .delta = 0.5, .rho = 0.5, .theta = 0.2};
  StageField first;
  first.m = 0.4, first.b = 0.0, first.U = {0.7}, first.c = 0.3;
  StageField second;
  second.m = 0.3, second.b = 0.0, second.U = {0.2, 0.6}, second.r = {0.25}, second.c = 0.5;
  const Stage next{.lam = 1.0, .targets = Targets::hard};
  const IntegrationOptions opt{.method = Method::tensor, .gh_nodes = 8, .split_nodes = 8};
  std::size_t particles[2] = {0, 0};
  auto moments_of = [&](bool mirrored) {
    const ParticleSet outer = initial_particles(symmetric, opt, Eigen::MatrixXd(), mirrored);
    const ParticleSet inner = freeze_stage(outer, first, Loss::logistic, next, opt, Eigen::MatrixXd());
    CHECK(inner.mirrored == mirrored);
    particles[mirrored] = inner.size();
    std::vector<double> guess;
    return stage_moments(inner, second, Loss::logistic, opt, Eigen::MatrixXd(), false, guess);
  };
  const StageMoments full = moments_of(false), half = moments_of(true);
  CHECK(2 * particles[1] == particles[0]);
  CHECK(std::abs(full.z) < 1e-14);  // the full set's odd moments vanish by symmetry; the mirrored set sets them
  CHECK(std::abs(full.u) < 1e-14);
  CHECK(half.z == 0.0);
  CHECK(half.u == 0.0);
  for (std::size_t k = 0; k < full.z_xi.size(); ++k)
    CHECK(half.z_xi[k] == doctest::Approx(full.z_xi[k]).epsilon(1e-13));
  CHECK(half.z_z[0] == doctest::Approx(full.z_z[0]).epsilon(1e-13));
  CHECK(half.zz == doctest::Approx(full.zz).epsilon(1e-13));
  CHECK(half.s_z == doctest::Approx(full.s_z).epsilon(1e-13));
  CHECK(half.dzdh == doctest::Approx(full.dzdh).epsilon(1e-13));
}
