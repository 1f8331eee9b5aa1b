#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "sdgmm/data.hpp"
#include "sdgmm/error.hpp"
#include "sdgmm/loss.hpp"
#include "sdgmm/simulate.hpp"
#include "sdgmm/train.hpp"

using namespace sdgmm;

namespace {
const Problem kProblem{.alpha = 2.0, .delta = 0.5, .rho = 0.4, .theta = 0.2};
}

TEST_CASE("a trial's data depend only on (seed, trial)") {
  const Dataset a = draw_dataset(kProblem, 50, 7, 3), b = draw_dataset(kProblem, 50, 7, 3);
  const Dataset c = draw_dataset(kProblem, 50, 7, 4);
  CHECK(a.X.rows() == 100);
  CHECK(a.X == b.X);
  CHECK(a.y_noisy == b.y_noisy);
  CHECK((a.X - c.X).norm() > 1.0);
}

TEST_CASE("logistic fit satisfies the KKT conditions to the tolerance") {
  const Dataset d = draw_dataset(kProblem, 80, 1, 0);
  const Eigen::VectorXd y = d.y_noisy;
  LinearModel model;
  Eigen::VectorXd u;
  const TrainReport rep = fit_linear(d.X, y, Eigen::VectorXd(), Loss::logistic, 0.7, true, model, u, {.tol = 1e-9});
  CHECK(rep.converged);
  const double scale = 1.0 / std::sqrt(80.0);
  Eigen::VectorXd r(y.size());
  for (Eigen::Index i = 0; i < y.size(); ++i) r[i] = LogisticLoss::grad(y[i], u[i]);
  const Eigen::VectorXd gw = scale * d.X.transpose() * r + 0.7 * model.w;
  const double g = std::sqrt(gw.squaredNorm() + r.sum() * r.sum());
  CHECK(g <= 1.01e-9 * rep.grad_norm0);
  CHECK((u - (scale * d.X * model.w).array().matrix() - Eigen::VectorXd::Constant(y.size(), model.B)).norm() < 1e-10);
}

TEST_CASE("square fit equals the solution of its normal equations") {
  const Dataset d = draw_dataset(kProblem, 60, 2, 0);
  const Eigen::VectorXd y = 2.0 * d.y_noisy.array() - 0.4;  // any real targets
  LinearModel model;
  Eigen::VectorXd u;
  CHECK(fit_linear(d.X, y, Eigen::VectorXd(), Loss::square, 0.3, true, model, u, {.tol = 1e-13}).converged);
  Eigen::MatrixXd A(d.X.rows(), 61);
  A << d.X / std::sqrt(60.0), Eigen::VectorXd::Ones(d.X.rows());
  Eigen::MatrixXd H = 0.5 * A.transpose() * A;
  H.diagonal().head(60).array() += 0.3;
  const Eigen::VectorXd theta = H.ldlt().solve(A.transpose() * (y.array() - 0.5).matrix());
  CHECK((theta.head(60) - model.w).norm() < 1e-10 * theta.norm());
  CHECK(std::abs(theta[60] - model.B) < 1e-10);
}

TEST_CASE("bad simulation sizes are refused before anything is allocated") {
  auto message = [](const SimulationOptions& o) {
    try {
      validate(kProblem, o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message({.N = 0}).rfind("N", 0) == 0);
  CHECK(message({.N = 10, .trials = 0}).rfind("trials", 0) == 0);
  const std::string huge = message({.N = 1000000, .trials = 2});
  CHECK(huge.rfind("N", 0) == 0);
  CHECK(huge.find("bytes") != std::string::npos);
}

TEST_CASE("a vanishing weight vector gives the constant classifier's error, not NaN") {
  CHECK(generalisation_error(0.0, -0.2, 0.0, 0.3) == doctest::Approx(0.3));  // predicts -1
  CHECK(generalisation_error(0.0, 0.2, 0.0, 0.3) == doctest::Approx(0.7));   // predicts +1
  CHECK(generalisation_error(0.1, 0.0, 0.0, 0.3) == doctest::Approx(0.0));   // separates perfectly
}
