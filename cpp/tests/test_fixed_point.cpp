#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/fixed_point.hpp"

using namespace sdgmm;

TEST_CASE("Anderson acceleration solves a slow linear contraction; damping alone does not") {
  Eigen::MatrixXd A(3, 3);
  A << 0.99, 0.0, 0.0, 0.1, 0.5, 0.0, 0.0, 0.2, -0.9;
  const Eigen::Vector3d c(1.0, -2.0, 0.5);
  const Eigen::Vector3d exact = (Eigen::Matrix3d::Identity() - A).lu().solve(c);
  const FixedPointMap G = [&](const Eigen::VectorXd& x) -> std::optional<Eigen::VectorXd> { return A * x + c; };
  Eigen::VectorXd x = Eigen::Vector3d::Zero();
  const FixedPointReport rep = solve_fixed_point(G, x, {.tol = 1e-12, .max_iter = 100});
  CHECK(rep.converged);
  CHECK(rep.iterations < 20);
  CHECK((x - exact).norm() < 1e-10);
  Eigen::VectorXd y = Eigen::Vector3d::Zero();
  CHECK_FALSE(solve_fixed_point(G, y, {.tol = 1e-12, .max_iter = 100, .anderson_depth = 0}).converged);
}

TEST_CASE("a map that refuses points outside its domain is backed off, not crashed") {
  // G(x) = sqrt(x) + 0.5 on x > 0 has the fixed point ((1 + sqrt(3)) / 2)^2.
  const FixedPointMap G = [](const Eigen::VectorXd& x) -> std::optional<Eigen::VectorXd> {
    if (x[0] <= 0.0) return std::nullopt;
    return Eigen::VectorXd::Constant(1, std::sqrt(x[0]) + 0.5);
  };
  Eigen::VectorXd x = Eigen::VectorXd::Constant(1, 1e-3);
  CHECK(solve_fixed_point(G, x, {}).converged);
  CHECK(x[0] == doctest::Approx(std::pow((1 + std::sqrt(3.0)) / 2, 2)).epsilon(1e-10));
}

TEST_CASE("with units, components far below 1 converge relative to themselves") {
  // G jumps to the fixed point (1, 3e-17) from anywhere. From (1, 4e-17) the absolute measure sees a residual of
  // 1e-17 and stops at once, 33% off in the second component; with the unit 1e-16 there the residual is 0.1,
  // and one iteration reaches the fixed point.
  const FixedPointMap G = [](const Eigen::VectorXd&) -> std::optional<Eigen::VectorXd> {
    return Eigen::Vector2d(1.0, 3e-17);
  };
  Eigen::VectorXd plain = Eigen::Vector2d(1.0, 4e-17), scaled = plain;
  const FixedPointReport a = solve_fixed_point(G, plain, {.tol = 1e-13});
  CHECK(a.converged);
  CHECK(a.iterations == 0);
  CHECK(plain[1] == 4e-17);
  const FixedPointUnits units = [](const Eigen::VectorXd&) { return Eigen::Vector2d(1.0, 1e-16); };
  const FixedPointReport b = solve_fixed_point(G, scaled, {.tol = 1e-13}, units);
  CHECK(b.converged);
  CHECK(b.iterations == 1);
  CHECK(scaled[1] == 3e-17);
}
