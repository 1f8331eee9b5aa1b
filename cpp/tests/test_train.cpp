#include <doctest/doctest.h>

#include <cmath>

#include "sdgmm/data.hpp"
#include "sdgmm/loss.hpp"
#include "sdgmm/train.hpp"

using namespace sdgmm;

namespace {
const Problem kProblem{.alpha = 2.0, .delta = 0.5, .rho = 0.4, .theta = 0.2};
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

TEST_CASE(
    "targets outside [0, 1]: a fixed bias has a minimiser, a learned logistic bias with their mean outside none") {
  const Dataset d = draw_dataset(kProblem, 80, 3, 0);
  const Eigen::VectorXd y = 1.5 * d.y_noisy.array() - 0.25;  // xi = 1.5 against a constant 1/2: values -0.25, 1.25
  LinearModel fixed{Eigen::VectorXd(), 0.1};
  Eigen::VectorXd u;
  const TrainReport rep = fit_linear(d.X, y, Eigen::VectorXd(), Loss::logistic, 0.7, false, fixed, u, {.tol = 1e-10});
  CHECK(rep.converged);
  Eigen::VectorXd r(y.size());
  for (Eigen::Index i = 0; i < y.size(); ++i) r[i] = LogisticLoss::grad(y[i], u[i]);
  CHECK((d.X.transpose() * r / std::sqrt(80.0) + 0.7 * fixed.w).norm() <= 1.01e-10 * rep.grad_norm0);
  LinearModel learned;
  const Eigen::VectorXd above = y.array() + 1.0;  // mean above 1: along B the objective falls without bound
  const TrainReport refused = fit_linear(d.X, above, Eigen::VectorXd(), Loss::logistic, 0.7, true, learned, u);
  CHECK_FALSE(refused.converged);
  CHECK(refused.failure.find("outside [0, 1]") != std::string::npos);
  CHECK(fit_linear(d.X, above, Eigen::VectorXd(), Loss::square, 0.7, true, learned, u, {.tol = 1e-10}).converged);
}
