// Fixed-point iteration x = G(x) with Anderson acceleration (Walker & Ni 2011) and a damped
// fallback. G may refuse a point outside its domain (returns nullopt), e.g. a non-positive-
// definite overlap matrix; the solver then backs off towards the last accepted iterate.
#pragma once

#include <functional>
#include <optional>

#include <Eigen/Dense>

namespace sdgmm {

struct FixedPointOptions {
  double tol = 1e-11;     // on max_i |G_i(x) - x_i| / max(1, |x_i|)
  int max_iter = 1000;
  int anderson_depth = 6;  // 0: plain damped iteration
  double damping = 0.0;    // weight of the old iterate in damped steps: x <- d x + (1 - d) G(x)
  int stall_iter = 100;    // give up after this many iterations without halving the residual
};

struct FixedPointReport {
  int iterations = 0;
  double residual = 0.0;
  bool converged = false;
};

using FixedPointMap = std::function<std::optional<Eigen::VectorXd>(const Eigen::VectorXd&)>;

// Iterates from x (updated in place to the last accepted iterate).
FixedPointReport solve_fixed_point(const FixedPointMap& G, Eigen::VectorXd& x, const FixedPointOptions& opt);

}  // namespace sdgmm
