// The effective process of a chain of lam = inf stages with hard targets, integrated without particles.
//
// At lam = inf every proximal output is z_k = c_k (y_k - 1/2), constant between the jumps of the targets, and every
// cavity field is Gaussian: g_k = n_k . xi with n_k column k of U. A target path y_1..y_t is therefore constant on
// a polytope of xi-space whose faces are the hyperplanes g_k = threshold(path). Where stages are nearly collinear
// (both ends of the alpha range) all these faces are nearly perpendicular to one direction e, and a product rule in
// the Cholesky coordinates sees steps in every one of them. Here xi = e x + E eta: along x the path is a sequence of
// intervals found exactly, so x is integrated in closed form (normal CDF and density at the interval ends), and eta
// by the QMC points. The integrand is continuous in eta with kinks where two interval ends cross; QMC takes them in
// its stride (hard T = 3: 1024 points, replicate spread 1e-9), a Gauss-Hermite rule does not (1e-5 at 96 nodes), so
// the chain is the qmc rule's and the tensor rule keeps its particles: two independent rules.
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
  // and the qmc rule.
  static bool applies(const std::vector<Stage>& stages, Method method);

  // Stage t = frozen().size() is next: the probability that its target is 1, and its moments (the same sums as
  // stage_moments, xi basis) with its own field `f`. Both read the pieces of stage t's process, built once per stage.
  double target_mass() const;
  StageMoments moments(const StageField& f) const;
  void freeze(const StageField& f);
  const std::vector<StageField>& frozen() const { return frozen_; }

 private:
  struct Frame;  // the rotation that puts e first, and the faces in it
  Frame frame() const;
  void build();  // pieces_ of stage frozen_.size()

  const Problem& problem_;
  const std::vector<Stage>& stages_;
  const Eigen::MatrixXd& samples_;
  std::vector<StageField> frozen_;
  // One entry per piece: an outer point, a label class and an interval of x on which the targets are constant.
  struct Pieces {
    std::vector<double> s;     // true class
    std::vector<double> P;     // weight (class probability times the point's) times P(lo < x < hi)
    std::vector<double> M;     // the same weight times E[x; lo < x < hi]
    std::vector<int> row;      // the outer point's row of the samples
    std::vector<double> path;  // targets y_0..y_t, t + 1 per piece
    Eigen::MatrixXd R;         // xi = R (x, eta)
  } pieces_;
};

}  // namespace sdgmm
