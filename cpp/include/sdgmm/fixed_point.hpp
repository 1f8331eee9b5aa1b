// Fixed-point iteration x = G(x) with Anderson acceleration (Walker & Ni 2011) and a damped
// fallback. G may refuse a point outside its domain (returns nullopt), e.g. a non-positive-
// definite overlap matrix; the solver then backs off towards the last accepted iterate.
#pragma once

#include <Eigen/Dense>
#include <functional>
#include <optional>

namespace sdgmm {

struct FixedPointOptions {
  double tol = 1e-13;  // on max_i |G_i(x) - x_i| / max(unit_i, |x_i|) (see FixedPointUnits)
  int max_iter = 1000;
  int anderson_depth = 6;  // 0: plain damped iteration
  double damping = 0.0;    // weight of the old iterate in damped steps: x <- d x + (1 - d) G(x)
  int stall_iter = 60;     // stop after this many iterations without halving the residual
  // A stalled iteration still counts as converged when its residual is within 100 times the
  // map's measured rounding noise and below this cap.
  double floor_cap = 1e-8;
};

struct FixedPointReport {
  int iterations = 0;
  double residual = 0.0;
  double floor = 0.0;  // measured rounding noise of the map, when the tolerance was not reached
  bool converged = false;
};

using FixedPointMap = std::function<std::optional<Eigen::VectorXd>(const Eigen::VectorXd&)>;
// The natural size of each component at x, below which its residual counts absolutely: the residual is
// relative for components larger than their unit. Called right after G(x). Empty: every unit is 1.
using FixedPointUnits = std::function<Eigen::VectorXd(const Eigen::VectorXd&)>;

// Iterates from x (updated in place to the last accepted iterate).
FixedPointReport solve_fixed_point(const FixedPointMap& G, Eigen::VectorXd& x, const FixedPointOptions& opt,
                                   const FixedPointUnits& units = {});

}  // namespace sdgmm
