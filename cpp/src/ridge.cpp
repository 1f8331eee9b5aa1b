#include "sdgmm/ridge.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

namespace sdgmm {

SpectralGroups spectral_groups(const Problem& p) {
  SpectralGroups out;
  if (!p.spectrum) {
    out.sigma = {p.delta}, out.share = {1.0}, out.mean2 = {1.0};
    out.mean_sigma = p.delta;
    return out;
  }
  const std::vector<double>& sigma = p.spectrum->eigenvalues;
  const std::vector<double>& mean = p.spectrum->mean;
  const double N = static_cast<double>(sigma.size());
  std::vector<std::size_t> order(sigma.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sigma[a] < sigma[b]; });
  for (std::size_t i : order) {
    if (out.sigma.empty() || sigma[i] != out.sigma.back()) {
      out.sigma.push_back(sigma[i]);
      out.share.push_back(0.0);
      out.mean2.push_back(0.0);
    }
    out.share.back() += 1.0 / N;
    out.mean2.back() += mean[i] * mean[i] / N;
    out.mean_sigma += sigma[i] / N;
  }
  return out;
}

Ridge::Ridge(SpectralGroups groups, int T) : groups_(std::move(groups)), T_(T) {
  const std::size_t G = groups_.sigma.size(), cells = G * static_cast<std::size_t>(T) * T;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  a_.assign(G * T, kNaN);
  chi_.assign(cells, kNaN), R_.assign(cells, kNaN), Nz_.assign(cells, kNaN);
  m.setConstant(T, kNaN);
  for (Eigen::MatrixXd* M : {&Q, &q, &V}) M->setConstant(T, T, kNaN);
}

bool Ridge::set_stage(int t, double mh, const Eigen::MatrixXd& Qh, const Eigen::MatrixXd& chih,
                      const std::vector<double>& ridge) {
  std::vector<double> g(t + 1);
  m[t] = 0.0;
  for (int k = 0; k <= t; ++k) Q(k, t) = q(k, t) = V(k, t) = 0.0;
  for (std::size_t grp = 0; grp < groups_.sigma.size(); ++grp) {
    const double s = groups_.sigma[grp], share = groups_.share[grp], mean2 = groups_.mean2[grp];
    for (int k = 0; k <= t; ++k) g[k] = ridge[k] + s * Qh(k, k);
    if (!(g[t] > 0.0)) return false;
    // The response of w_t to a force on stage k < t, through every coupling of w_t to an earlier w_j (theory.md
    // keeps only j = t - 1, which drifts from simulation from T = 3 on: tests/api/test_theory_many_stages.py).
    block(chi_, grp, t, t) = 1.0 / g[t];
    for (int k = 0; k < t; ++k) {
      double c = 0.0;
      for (int j = k; j < t; ++j) c -= s * Qh(j, t) * block(chi_, grp, k, j);
      block(chi_, grp, k, t) = c / g[t];
    }
    double& a = a_[grp * T_ + t];
    a = mh;
    for (int j = 0; j < t; ++j) a -= s * Qh(j, t) * a_[grp * T_ + j];
    a /= g[t];
    for (int k = 0; k <= t; ++k) {  // R(t, k) = E[zeta_t w_k]
      double r = s * chih(k, t);
      for (int j = 0; j < k; ++j) r -= s * Qh(j, k) * block(R_, grp, t, j);
      block(R_, grp, t, k) = r / g[k];
    }
    for (int k = 0; k < t; ++k) {  // R(k, t) = E[zeta_k w_t]
      double r = s * chih(k, t);
      for (int j = 0; j < t; ++j) r -= s * Qh(j, t) * block(R_, grp, k, j);
      block(R_, grp, k, t) = r / g[t];
    }
    for (int k = 0; k <= t; ++k) {  // E[w_k w_t] = mu~^2 a_k a_t + Nz(k, t)
      double n = block(R_, grp, k, t);
      for (int j = 0; j < k; ++j) n -= s * Qh(j, k) * block(Nz_, grp, j, t);
      block(Nz_, grp, k, t) = block(Nz_, grp, t, k) = n / g[k];
      const double second = mean2 * a_[grp * T_ + k] * a + share * block(Nz_, grp, k, t);
      Q(k, t) += second;
      q(k, t) += s * second;
      V(k, t) += share * s * block(chi_, grp, k, t);
    }
    m[t] += mean2 * a;
  }
  for (int k = 0; k < t; ++k) Q(t, k) = Q(k, t), q(t, k) = q(k, t);
  return true;
}

}  // namespace sdgmm
