// Training solver: L2-regularised linear classifier on real targets,
//   min_{w, B}  sum_i c_i loss(y_i, u_i) + (lam / 2) |w|^2,   u_i = x_i . w / sqrt(N) + B,
// with B learned (unpenalised) or held fixed. Line-search Newton-CG (the LIBLINEAR design): the
// objective supplies gradient, Hessian-vector products and a diagonal preconditioner; every
// product is one fused pass over the rows of X, and the line search reuses X d, so trying a step
// costs O(M), not a pass.
#pragma once

#include <Eigen/Dense>
#include <string>

#include "sdgmm/data.hpp"
#include "sdgmm/problem.hpp"

namespace sdgmm {

struct TrainOptions {
  double tol = 1e-8;     // stop when |grad| <= tol |grad at w = 0, B = 0|
  int max_newton = 100;  // Newton iterations
  int max_cg = 1000;     // conjugate-gradient iterations per Newton step
  int threads = 1;       // OpenMP threads for the passes over X
};

struct TrainReport {
  int newton_iterations = 0;
  int cg_iterations = 0;
  int passes = 0;  // full passes over X
  double grad_norm = 0.0, grad_norm0 = 0.0;
  bool converged = false;
  std::string failure;  // why the fit stopped short of tol (empty when converged)
};

struct LinearModel {
  Eigen::VectorXd w;  // size N; its input value is the warm start
  double B = 0.0;     // warm start if learned, the fixed value otherwise
};

// Fits `model` in place; `weight` of size 0 means all weights 1. On return `logits` holds u. The
// weights returned are always finite: a fit that cannot proceed stops at its last iterate and says why.
TrainReport fit_linear(const RowMatrixRef& X, const Eigen::VectorXd& y, const Eigen::VectorXd& weight, Loss loss,
                       double lam, bool learn_bias, LinearModel& model, Eigen::VectorXd& logits,
                       const TrainOptions& options = {});

}  // namespace sdgmm
