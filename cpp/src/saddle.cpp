#include "sdgmm/saddle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sdgmm/error.hpp"

namespace sdgmm {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

Saddle::Saddle(const Problem& p, const std::vector<Stage>& stages, bool reference_bias_update)
    : ridge(spectral_groups(p), static_cast<int>(stages.size())),
      p_(p),
      st_(stages),
      scale_(ridge.groups().mean_sigma),
      reference_bias_(reference_bias_update) {
  const auto T = static_cast<Eigen::Index>(stages.size());
  for (Eigen::MatrixXd* M : {&Qh, &chih, &U}) M->setConstant(T, T, kNaN);
  for (Eigen::VectorXd* v : {&mh, &b}) v->setConstant(T, kNaN);
  for (Eigen::Index k = 0; k < T; ++k) lams_.push_back(lam(static_cast<int>(k)));
}

bool Saddle::learns_bias(int t) const { return st_[t].bias == BiasPolicy::learn; }

// A lam = inf stage is solved rescaled, with ridge 1 (see LinearLimitLoss).
double Saddle::lam(int k) const { return st_[k].is_limit() ? 1.0 : st_[k].lam; }

Eigen::VectorXd Saddle::initial_x(int t) const {
  Eigen::VectorXd x = Eigen::VectorXd::Zero(2 * t + 3 + (learns_bias(t) ? 1 : 0));
  if (t == 0) {
    x[2] = lam(0) * lam(0);  // chih = lam^2 (iterated units): a start at m = 0, Q = 1, chi = 1 / lam
  } else {                   // the previous stage's diagonal, uncorrelated with the earlier stages
    x[0] = mh[t - 1];
    x[1 + t] = scale_ * Qh(t - 1, t - 1);
    x[2 + 2 * t] = scale_ * chih(t - 1, t - 1);
  }
  if (learns_bias(t)) x[x.size() - 1] = t == 0 ? 0.0 : b[t - 1];
  return x;
}

std::optional<StageField> Saddle::set_stage(int t, const Eigen::VectorXd& x) {
  mh[t] = x[0];
  for (int k = 0; k <= t; ++k) Qh(k, t) = x[1 + k] / scale_, chih(k, t) = x[2 + t + k] / scale_;
  b[t] = bias_of(t, x);
  if (!ridge.set_stage(t, mh[t], Qh, chih, lams_)) return std::nullopt;
  const Eigen::MatrixXd& q = ridge.q;
  const Eigen::MatrixXd& V = ridge.V;
  if (!(V(t, t) > 0.0)) return std::nullopt;
  // Column t of the upper Cholesky factor of the field covariance q; the leading block is frozen.
  StageField f;
  double rest = q(t, t);
  for (int k = 0; k < t; ++k) {
    double u = q(k, t);
    for (int j = 0; j < k; ++j) u -= U(j, k) * U(j, t);
    U(k, t) = u / U(k, k);
    rest -= U(k, t) * U(k, t);
    f.U.push_back(U(k, t));
    f.r.push_back(V(k, t) / V(k, k));
  }
  if (!(rest > 1e-14 * q(t, t)) || !std::isfinite(rest)) return std::nullopt;
  U(t, t) = std::sqrt(rest);
  f.U.push_back(U(t, t));
  f.m = ridge.m[t];
  f.b = b[t];
  f.c = V(t, t);
  f.limit = st_[t].is_limit();
  return f;
}

Eigen::VectorXd Saddle::next_x(int t, const StageMoments& mo, const Eigen::VectorXd& x, bool field_basis) const {
  const double a = p_.alpha, Vt = ridge.V(t, t);
  Eigen::VectorXd y(x.size());
  y[0] = a / Vt * mo.s_z;
  if (field_basis) {
    // Stein's lemma in the field basis g = U^T xi: U^{-1} E[z xi] = E[grad_g z], so
    // Qh_{l,t} = -(alpha / V_tt) E[dz_t / dg_l] with no division by U, which is nearly
    // singular when stages are nearly collinear and would amplify integration errors.
    for (int l = 0; l <= t; ++l) y[1 + l] = -(a / Vt) * mo.dz_dg[l] * scale_;
  } else {
    // Qh_{1..t,t} = U^{-1} a with a_k = -(alpha / V_tt) E[z_t xi_k]: back substitution.
    for (int k = t; k >= 0; --k) {
      double q = -(a / Vt) * mo.z_xi[k] * scale_;
      for (int j = k + 1; j <= t; ++j) q -= U(k, j) * y[1 + j];
      y[1 + k] = q / U(k, k);
    }
  }
  for (int k = 0; k < t; ++k) y[2 + t + k] = a / (Vt * ridge.V(k, k)) * mo.z_z[k] * scale_;
  y[2 + 2 * t] = a / (Vt * Vt) * mo.zz * scale_;
  if (learns_bias(t) && st_[t].is_limit()) {
    // The limit's bias condition, the next order of E[loss'(y, u)] = 0 given E[y] = 1/2: the mean
    // training logit E[u] = E[h + z] vanishes. z does not depend on h, so this step is exact.
    y[x.size() - 1] = x[x.size() - 1] - mo.u;
  } else if (learns_bias(t)) {
    // E[z_t] = 0 at the learned bias; E[z_t] is decreasing in b with slope E[dz/dh] in (-1, 0).
    // The Newton step is capped at one logit: near a single-class collapse the slope vanishes
    // and an uncapped step would leave for infinity. The cap does not move the fixed point.
    const double bt = x[x.size() - 1];
    const double newton = std::clamp(-mo.z / mo.dzdh, -1.0, 1.0);
    y[x.size() - 1] = bt + (reference_bias_ ? mo.z : newton);
  }
  return y;
}

double Saddle::target_scale(int t) const {
  // Soft targets built from logits of size L deviate from 1/2 by about beta L; below 1e-6 that size is what
  // the stage's conjugates scale with. Hard targets, stage 1's labels and targets that mix them in deviate by 1/2.
  constexpr double kTiny = 1e-6;
  if (t == 0 || st_[t].targets == Targets::hard || st_[t].xi != 1.0) return 1.0;
  const double logit = std::sqrt(std::max(ridge.q(t - 1, t - 1), 0.0) + ridge.m[t - 1] * ridge.m[t - 1] +
                                 (std::isfinite(b[t - 1]) ? b[t - 1] * b[t - 1] : 0.0));
  const double kappa = *st_[t].beta * logit;
  return kappa < kTiny ? kappa : 1.0;
}

Eigen::VectorXd Saddle::units(int t, const Eigen::VectorXd& x) const {
  const double kt = target_scale(t);
  Eigen::VectorXd u = Eigen::VectorXd::Ones(x.size());
  u[0] = kt;
  for (int k = 0; k <= t; ++k) u[2 + t + k] = kt * target_scale(k) * scale_;
  // A limit stage's bias update is exact, so it converges relative to the stage's own size; at finite lam the
  // update divides E[z] by E[dz/dh] ~ 1/lam, which leaves ~1e-16 of absolute noise: there it counts absolutely.
  if (learns_bias(t) && st_[t].is_limit()) u[x.size() - 1] = kt;
  return u;
}

double Saddle::eps(int t) const { return generalisation_error(ridge.m[t], b[t], ridge.q(t, t), p_.rho); }

double Saddle::conditioning(int t) const { return std::sqrt(ridge.q(t, t)) / U(t, t); }

double Saddle::bias_of(int t, const Eigen::VectorXd& x) const {
  switch (st_[t].bias) {
    case BiasPolicy::learn:
      return x[x.size() - 1];
    case BiasPolicy::fix_first:
      // B_t = B_1. Where one of the two stages is a limit stage, B_1 = 0 (limit_prediction);
      // where both are, B_1's rescaled value carries over (both limits taken at the same rate).
      return st_[t].is_limit() == st_[0].is_limit() ? b[0] : 0.0;
    case BiasPolicy::fixed:
      return st_[t].bias_value;  // zero at a limit stage (see limit_prediction)
  }
  return kNaN;
}

}  // namespace sdgmm
