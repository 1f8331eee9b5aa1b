// The saddle-point equations of stage t (theory.md sections 4 and 6), with the stages before it frozen: the
// order parameters from the conjugates (the ridge side, ridge.hpp), and the conjugates from the moments of
// the effective process ("Conjugates of stage t"). Stage t's unknowns are packed as
// x = (mh_t, Qh_{1..t,t}, chih_{1..t,t}[, b_t if learned]). Qh and chih below are those of the covariance
// convention (they multiply Sigma; theory.md's isotropic ones are delta times them); x holds them times the
// mean eigenvalue, theory.md's units, so that the iteration's path is the isotropic engine's.
#pragma once

#include <Eigen/Dense>
#include <optional>
#include <vector>

#include "sdgmm/effective.hpp"
#include "sdgmm/problem.hpp"
#include "sdgmm/ridge.hpp"

namespace sdgmm {

class Saddle {
 public:
  // `reference_bias_update`: the reference's plain iteration b <- b + E[z] instead of a Newton step.
  Saddle(const Problem& problem, const std::vector<Stage>& stages, bool reference_bias_update);

  bool learns_bias(int t) const;
  // The starting point of stage t's fixed point.
  Eigen::VectorXd initial_x(int t) const;
  // Writes stage t's order parameters from x and returns its cavity field; nullopt where x gives no valid
  // state (chi_tt <= 0, or a field covariance that is not positive definite).
  std::optional<StageField> set_stage(int t, const Eigen::VectorXd& x);
  // The conjugates (and bias) that the moments of stage t's effective process give. `field_basis`: the
  // moments hold E[dz/dg] (Stein's lemma, no division by U) instead of E[z xi].
  Eigen::VectorXd next_x(int t, const StageMoments& moments, const Eigen::VectorXd& x, bool field_basis) const;
  // The natural size of each unknown of stage t (FixedPointUnits). Stage t's soft targets deviate from 1/2 by
  // kappa_t (target_scale), and mh_t, chih_kt and a limit stage's bias scale with kappa_t (kappa_k kappa_t): after
  // a nearly-limit stage kappa is 1e-8, and an absolute tolerance left chih_tt 30% off. Qh does not scale.
  Eigen::VectorXd units(int t, const Eigen::VectorXd& x) const;
  double eps(int t) const;
  // 1 / sin of the angle between stage t and the span of the stages before it.
  double conditioning(int t) const;

  Eigen::MatrixXd Qh, chih, U;  // U: upper Cholesky factor of the field covariance, frozen column by column
  Eigen::VectorXd mh, b;
  Ridge ridge;  // m, Q, q, V

 private:
  double lam(int k) const;
  double target_scale(int t) const;
  double bias_of(int t, const Eigen::VectorXd& x) const;

  const Problem& p_;
  const std::vector<Stage>& st_;
  std::vector<double> lams_;
  double scale_;  // tr Sigma / N: the conjugates' unit in x
  bool reference_bias_;
};

}  // namespace sdgmm
