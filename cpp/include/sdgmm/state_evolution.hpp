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
  // Target of the largest eps_error: the rule (tensor nodes, qmc points) is refined until it is met or the
  // rule's cap is hit (see refine). 0: the rule as given. Needs estimate_error.
  double accuracy = 0.0;
  int threads = 0;  // qmc replicates, or the tensor rule's moments, in parallel; 0 = hardware concurrency
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
  int gh_nodes = 0;             // tensor: nodes per coordinate of the rule used (0 otherwise)
  int qmc_points = 0;           // qmc: points per replicate of the rule used (0 otherwise)
  int qmc_gh_nodes = 0;         // qmc: Gauss-Hermite nodes on each stage's own coordinate (0 otherwise)
  // qmc: the part of eps_error that the inner Gauss-Hermite rule contributes, which every replicate shares and their
  // spread cannot show: the change with one inner node fewer on the same points (empty otherwise).
  Eigen::VectorXd inner_error;
  bool accuracy_reached = true;  // max eps_error <= the options' accuracy (true when none was asked for)
  // Each converged stage's fixed point in the saddle's unknowns (saddle.hpp; empty for a stage not solved by
  // one): where a finer rule's iteration starts.
  std::vector<Eigen::VectorXd> solution;
};

// Throws std::invalid_argument naming the first bad setting.
void validate(const TheoryOptions& options);

TheoryResult solve_state_evolution(const Problem& problem, const std::vector<Stage>& stages, Loss loss,
                                   const TheoryOptions& options = {});

// The finest rule refinement goes to for T stages: tensor nodes per coordinate with about 32768 particles
// per class (at most 96), and 4096 qmc points per replicate (4x the default: QMC costs grow with its points). The
// particle rule is refined only where the target is within that reach; a lam = inf chain (limit_chain.hpp), whose
// points are cheap, starts there whenever it has a target (hard T = 8: 0.3 s, eps_error <= 7e-6 on F1's grid) and
// goes on to 4x more where that reaches a missed target (theta 0.45: 3.5e-5 at 4096 points, 1e-5 asked).
int max_gh_nodes(int T);
constexpr int kMaxQmcPoints = 4096;
constexpr int kMaxChainPoints = 4 * kMaxQmcPoints;
constexpr int kMaxQmcGhNodes = 96;  // the inner rule's cap, as the tensor rule's at T = 1

// The integration method `automatic` resolves to: tensor up to T = 6 stages (5 with hard labels),
// qmc beyond; and qmc for a chain of three or more lam = inf stages with hard targets (limit_chain.hpp), whose
// integrand has kinks where its interval ends cross, which a product rule resolves slowly.
Method resolve_method(Method method, const std::vector<Stage>& stages);

}  // namespace sdgmm
