// The ridge side of the saddle point (theory.md sections 4 and 6): the order parameters of stage t from its
// conjugates, summed over the covariance spectrum. Each eigendirection i carries theory.md's isotropic
// recursion with every conjugate that multiplies the data covariance scaled by sigma_i,
//   g_{k,i} = lam_k + sigma_i Qh_kk,  w_{t,i} = (mh_t mu~_i + sqrt(sigma_i) zeta_{t,i}
//                                               - sigma_i sum_{j<t} Qh_jt w_{j,i}) / g_{t,i},
// with E[zeta_k zeta_t] = chih_kt. The conjugates here are those of the covariance convention; theory.md's
// isotropic ones are delta times them. Directions of equal sigma form one group, and the mean enters
// through sum mu~_i^2 alone, so a solve costs O(groups T^2) per iteration. The isotropic model is one
// group: sigma = delta, share 1, mean2 1.
#pragma once

#include <Eigen/Dense>
#include <vector>

#include "sdgmm/problem.hpp"

namespace sdgmm {

struct SpectralGroups {
  std::vector<double> sigma;  // distinct eigenvalues
  std::vector<double> share;  // fraction of the N directions with that eigenvalue
  std::vector<double> mean2;  // (1/N) sum of mu~_i^2 over those directions
  double mean_sigma = 0.0;    // tr Sigma / N
};

SpectralGroups spectral_groups(const Problem& problem);

class Ridge {
 public:
  Ridge(SpectralGroups groups, int T);

  // Stage t's order parameters from its conjugates: mh_t, Qh(0..t, t) and chih(0..t, t) (the columns of the
  // upper-triangular matrices; earlier columns frozen) and the ridges lam_0..lam_t (1 for a limit stage).
  // False where they give no valid state (a direction with g <= 0).
  bool set_stage(int t, double mh, const Eigen::MatrixXd& Qh, const Eigen::MatrixXd& chih,
                 const std::vector<double>& ridge);

  const SpectralGroups& groups() const { return groups_; }
  Eigen::VectorXd m;  // m_t = mu~ . w_t / N
  Eigen::MatrixXd Q;  // Q_kt = w_k . w_t / N
  Eigen::MatrixXd q;  // q_kt = w_k^T Sigma w_t / N, the covariance of the stages' fields
  Eigen::MatrixXd V;  // V_kt = (1/N) sum_i sigma_i chi_{kt,i}: response of stage t's field to stage k's force
                      // (delta chi for the isotropic model; upper triangle)

 private:
  // Per group: a (mean weight per unit mu~), chi, R(a, b) = E[zeta_a w_b], Nz (noise part of w_k w_t), row-major
  // T x T blocks.
  double& block(std::vector<double>& M, std::size_t g, int r, int c) { return M[(g * T_ + r) * T_ + c]; }
  SpectralGroups groups_;
  int T_;
  std::vector<double> a_, chi_, R_, Nz_;
};

}  // namespace sdgmm
