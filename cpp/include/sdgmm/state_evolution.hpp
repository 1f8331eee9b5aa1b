// Replica-symmetric state evolution of T-stage self-distillation (theory.md section 4), solved
// stage by stage: stage t's saddle point is a fixed point in its conjugates (and its bias),
// with the stages before it frozen.
#pragma once

#include <Eigen/Dense>
#include <string>
#include <vector>

#include "sdgmm/effective.hpp"
#include "sdgmm/fixed_point.hpp"
#include "sdgmm/problem.hpp"

namespace sdgmm {

struct TheoryOptions {
  Method method = Method::automatic;  // see resolve_method
  IntegrationOptions integration;     // its `method` is set from `method`
  FixedPointOptions fixed_point;      // ignored by mc, which uses the reference's
  bool estimate_error = true;         // tensor: |eps(n) - eps(n-1)|; qmc: replicate s.e.; mc: none
  int threads = 0;                    // for qmc replicates; 0 = hardware concurrency
};

// Per-stage vectors have length T; matrices are T x T. Q is symmetric; chi, Qh and chih are
// filled on and above the diagonal (entry (k, t) with k <= t, as in theory.md).
struct TheoryResult {
  std::string method;
  Eigen::VectorXd eps, eps_error, m, b, mh;
  // 1 / sin of the angle between stage t and the span of the stages before it, sqrt(q_tt) / U_tt:
  // integration errors in the conjugates are amplified by about this factor.
  Eigen::VectorXd conditioning;
  // Q = w_k . w_t / N; q = w_k^T Sigma w_t / N, the covariance of the fields (delta Q when isotropic).
  // chi, Qh, chih in theory.md's isotropic units, the spectrum's mean eigenvalue in the place of delta.
  Eigen::MatrixXd Q, q, chi, Qh, chih;
  std::vector<int> iterations;
  std::vector<double> residual;
  std::vector<bool> converged;  // a stage whose fixed point failed, and all after it, are NaN
  std::vector<bool> collapsed;  // exact single-class limit: b = -inf (+inf), m = Q = 0
};

// Throws std::invalid_argument naming the first bad setting.
void validate(const TheoryOptions& options);

TheoryResult solve_state_evolution(const Problem& problem, const std::vector<Stage>& stages, Loss loss,
                                   const TheoryOptions& options = {});

// The integration method `automatic` resolves to: tensor up to T = 6 stages (5 with hard labels),
// qmc beyond.
Method resolve_method(Method method, int T, bool hard);

}  // namespace sdgmm
