// The effective process of a chain of lam = inf stages with hard targets, integrated without particles.
//
// At lam = inf every proximal output is z_k = c_k (y_k - 1/2), constant between the jumps of the targets, and every
// cavity field is Gaussian: g_k = n_k . xi with n_k column k of U. A target path y_1..y_t is therefore constant on
// a polytope of xi-space whose faces are the hyperplanes g_k = threshold(path). Where stages are nearly collinear
// (both ends of the alpha range) all these faces are nearly perpendicular to one direction e, and a product rule in
// the Cholesky coordinates sees steps in every one of them. Here xi = e x + E eta: along x the path is a sequence of
// intervals found exactly, so x is integrated in closed form (normal CDF and density at the interval ends), and eta
// by the QMC points. The integrand is continuous in eta with kinks where two interval ends cross; QMC takes them in
// its stride (hard T = 3, 4096 points: within 2.7e-7 of the converged particle rule), a Gauss-Hermite rule does not
// (1e-5 off at 96 nodes), so the chain is the qmc rule's and the tensor rule keeps its particles: two independent
// rules.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "sdgmm/effective.hpp"
#include "sdgmm/problem.hpp"

namespace sdgmm {

class LimitChain {
 public:
  // `samples` are the qmc rule's normal scores (rows are points).
  LimitChain(const Problem& problem, const std::vector<Stage>& stages, const Eigen::MatrixXd& samples);

  // True where this integration applies to stages 0..T-1: every stage at lam = inf, hard targets from stage 1 on,
  // the qmc rule, and at most kMaxStages stages (an interval's pseudo-labels are the bits of one word).
  static bool applies(const std::vector<Stage>& stages, Method method);
  static constexpr std::size_t kMaxStages = 64;

  // Stage t = frozen().size() is next: the probability that its target is 1, and its moments (the same sums as
  // stage_moments, xi basis) with its own field `f`. Both read sums over stage t's process, built once per stage.
  double target_mass() const;
  StageMoments moments(const StageField& f) const;
  void freeze(const StageField& f);
  const std::vector<StageField>& frozen() const { return frozen_; }

 private:
  struct Frame;  // the rotation that puts e first, and the faces in it
  Frame frame() const;
  void build();  // sums_ of stage frozen_.size()

  const Problem& problem_;
  const std::vector<Stage>& stages_;
  const Eigen::MatrixXd& samples_;
  std::vector<StageField> frozen_;
  // Stage t's process, summed over pieces (an outer point, a label class and an interval of x on which the targets
  // are constant, with P = weight * P(interval) and M = weight * E[x; interval]); d = y_t - 1/2, d_j = y_j - 1/2.
  struct Sums {
    double P = 0.0, Ps = 0.0, Pd = 0.0, Psd = 0.0, Pdd = 0.0;  // sums of P, P s, P d, P s d, P d^2
    double Md = 0.0;                                           // sum of M d
    std::vector<double> Pdj, Pddj;                             // sums of P d_j, P d d_j (j < t)
    Eigen::VectorXd Pd_eta;                                    // sum of P d eta
    Eigen::MatrixXd R;                                         // xi = R (x, eta)
  } sums_;
};

}  // namespace sdgmm
