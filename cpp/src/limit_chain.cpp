#include "sdgmm/limit_chain.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

#include "sdgmm/integrate.hpp"
#include "sdgmm/loss.hpp"

namespace sdgmm {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The smaller tail at b, Phi(-|b|): the masses of intervals ending at b keep their digits.
double tail(double b) { return normal_cdf(-std::abs(b)); }

// P(a < x < b) for x ~ N(0, 1) from the tails at a and b.
double normal_mass(double a, double tail_a, double b, double tail_b) {
  if (b <= 0.0) return tail_b - tail_a;
  if (a > 0.0) return tail_a - tail_b;
  return 1.0 - tail_a - tail_b;
}

}  // namespace

LimitChain::LimitChain(const Problem& problem, const std::vector<Stage>& stages, const Eigen::MatrixXd& samples)
    : problem_(problem), stages_(stages), samples_(samples) {
  build();
}

void LimitChain::freeze(const StageField& f) {
  frozen_.push_back(f);
  build();
}

// The frame xi = R (x, eta) of stage t's process, with the faces' normals in it: g_k = slope_k x + tilt_k . eta.
// e = R's first column is the mean of the unit normals n_k / |n_k|, each signed to agree with the first. Nearly
// collinear stages give e along their common normal, so that the interval ends move slowly with eta; orthogonal
// ones give the diagonal, on which every face is tilted by the same moderate angle.
struct LimitChain::Frame {
  Eigen::MatrixXd R;
  Eigen::VectorXd slope;
  Eigen::MatrixXd tilt;
};

LimitChain::Frame LimitChain::frame() const {
  const int t = static_cast<int>(frozen_.size());
  Frame fr;
  if (t == 0) return fr;
  Eigen::MatrixXd normals = Eigen::MatrixXd::Zero(t, t);  // row k: n_k, the first k + 1 entries of U's column k
  for (int k = 0; k < t; ++k)
    for (int j = 0; j <= k; ++j) normals(k, j) = frozen_[k].U[j];
  Eigen::VectorXd e = Eigen::VectorXd::Zero(t);
  const Eigen::VectorXd first = normals.row(0).normalized();
  for (int k = 0; k < t; ++k) {
    const Eigen::VectorXd unit = normals.row(k).normalized();
    e += unit.dot(first) < 0.0 ? -unit : unit;
  }
  if (!(e.norm() > 0.0)) e = first;
  // An orthonormal basis whose first column is e up to sign, which a symmetric rule does not see.
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(e);
  fr.R = qr.householderQ() * Eigen::MatrixXd::Identity(t, t);
  const Eigen::MatrixXd local = normals * fr.R;
  fr.slope = local.col(0);
  fr.tilt = local.rightCols(t - 1);
  return fr;
}

bool LimitChain::applies(const std::vector<Stage>& stages, Method method) {
  if (method != Method::qmc || stages.size() > kMaxStages) return false;
  for (std::size_t t = 0; t < stages.size(); ++t)
    if (!stages[t].is_limit() || (t > 0 && stages[t].targets != Targets::hard)) return false;
  return true;
}

// The sums of stage t's process. For each outer point eta (a QMC row, or none at t <= 1) and label class, the
// x-axis is cut stage by stage where a target jumps; each interval's probability P and first moment M enter the
// sums with its targets.
void LimitChain::build() {
  const int t = static_cast<int>(frozen_.size());
  const auto classes = label_classes(problem_);
  sums_ = Sums{};
  sums_.Pdj.assign(t, 0.0), sums_.Pddj.assign(t, 0.0);
  sums_.Pd_eta = Eigen::VectorXd::Zero(std::max(t - 1, 0));
  // rc[k][j] = r_j c_j of stage k's field: the weight of z_j / c_j = d_j in its threshold.
  std::vector<std::vector<double>> rc(t);
  for (int k = 0; k < t; ++k)
    for (int j = 0; j < k; ++j) rc[k].push_back(frozen_[k].r[j] * frozen_[j].c);
  // An interval's targets y_1..y_t are pseudo-labels mixed with the class's noisy label: bit j - 1 of `bits` holds
  // stage j's pseudo-label, and d[j][bit] = y_j - 1/2 (y_0, the noisy label itself, has no bit).
  std::vector<double> lo, hi, lo2, hi2;
  std::vector<std::uint64_t> bits, bits2;
  std::vector<std::array<double, 2>> d(t + 1);
  auto bit = [](std::uint64_t b, int j) { return j == 0 ? 0 : static_cast<int>((b >> (j - 1)) & 1U); };
  auto cut = [&](const Eigen::VectorXd& slope, const Eigen::VectorXd& shift, double weight, int row) {
    for (const LabelClass& c : classes) {
      d[0] = {c.y_noisy - 0.5, c.y_noisy - 0.5};
      for (int j = 1; j <= t; ++j)
        d[j] = {mixed_target(0.0, c.y_noisy, stages_[j]) - 0.5, mixed_target(1.0, c.y_noisy, stages_[j]) - 0.5};
      lo.assign(1, -kInf), hi.assign(1, kInf), bits.assign(1, 0);
      for (int k = 0; k < t; ++k) {  // stage k's training logit fixes the target of stage k + 1
        const StageField& f = frozen_[k];
        const double base = -(c.s * f.m + f.b + shift[k]);
        lo2.clear(), hi2.clear(), bits2.clear();
        for (std::size_t i = 0; i < lo.size(); ++i) {
          const std::uint64_t b = bits[i];
          // u_k = s m + b + g_k + sum_j r_j z_j + z_k > 0  <=>  slope_k x > theta.
          double theta = base - f.c * d[k][bit(b, k)];
          for (int j = 0; j < k; ++j) theta -= rc[k][j] * d[j][bit(b, j)];
          auto add = [&](double from, double to, bool pseudo) {
            if (!(to > from)) return;
            lo2.push_back(from), hi2.push_back(to), bits2.push_back(pseudo ? b | (std::uint64_t{1} << k) : b);
          };
          if (slope[k] == 0.0) {
            add(lo[i], hi[i], theta < 0.0);
            continue;
          }
          const double at = std::clamp(theta / slope[k], lo[i], hi[i]);
          const bool below = slope[k] < 0.0;  // the pseudo-label where x < at
          add(lo[i], at, below);
          add(at, hi[i], !below);
        }
        lo.swap(lo2), hi.swap(hi2), bits.swap(bits2);
      }
      // The intervals are contiguous (each cut splits one in two, in order), so each end's tail and density are
      // computed once.
      const double w = c.prob * weight;
      double tail_lo = 0.0, pdf_lo = 0.0;  // at -inf
      double point = 0.0;                  // this point's sum of P (y_t - 1/2)
      for (std::size_t i = 0; i < lo.size(); ++i) {
        const bool last = i + 1 == lo.size();
        const double tail_hi = last ? 0.0 : tail(hi[i]), pdf_hi = last ? 0.0 : normal_pdf(hi[i]);
        const double P = w * normal_mass(lo[i], tail_lo, hi[i], tail_hi), M = w * (pdf_lo - pdf_hi);
        tail_lo = tail_hi, pdf_lo = pdf_hi;
        const double dt = d[t][bit(bits[i], t)];  // z_t / c_t
        sums_.P += P, sums_.Ps += P * c.s, sums_.Pd += P * dt, sums_.Psd += P * c.s * dt, sums_.Pdd += P * dt * dt;
        sums_.Md += M * dt;
        for (int j = 0; j < t; ++j) {
          const double dj = d[j][bit(bits[i], j)];
          sums_.Pdj[j] += P * dj, sums_.Pddj[j] += P * dt * dj;
        }
        point += P * dt;
      }
      if (row >= 0)
        for (int k = 0; k + 1 < t; ++k) sums_.Pd_eta[k] += point * samples_(row, k);
    }
  };
  if (t == 0) {
    cut(Eigen::VectorXd(), Eigen::VectorXd(), 1.0, -1);
    return;
  }
  const Frame fr = frame();
  sums_.R = fr.R;
  // The outer coordinates by the QMC points (their first t - 1 normal scores); none left at t = 1.
  const int outer = t - 1;
  if (outer == 0) {
    cut(fr.slope, Eigen::VectorXd::Zero(t), 1.0, -1);
    return;
  }
  const double w = 1.0 / static_cast<double>(samples_.rows());
  Eigen::VectorXd eta(outer);
  for (Eigen::Index row = 0; row < samples_.rows(); ++row) {
    for (int i = 0; i < outer; ++i) eta[i] = samples_(row, i);
    cut(fr.slope, fr.tilt * eta, w, static_cast<int>(row));
  }
}

double LimitChain::target_mass() const { return sums_.Pd + 0.5 * sums_.P; }

// z_t = c (y_t - 1/2) and z_j = c_j (y_j - 1/2), so every moment is one of the sums times stage t's own constants.
StageMoments LimitChain::moments(const StageField& f) const {
  const int t = static_cast<int>(frozen_.size());
  StageMoments mo;
  mo.z = f.c * sums_.Pd;
  mo.zz = f.c * f.c * sums_.Pdd;
  mo.s_z = f.c * sums_.Psd;
  // E[u_t]: the constant part of the training logit, as the fields have mean 0.
  mo.u = f.m * sums_.Ps + f.b * sums_.P + mo.z;
  mo.z_z.assign(t, 0.0);
  for (int j = 0; j < t; ++j) {
    mo.z_z[j] = f.c * frozen_[j].c * sums_.Pddj[j];
    mo.u += f.r[j] * frozen_[j].c * sums_.Pdj[j];
  }
  // E[z_t xi] = R (E[z_t x], E[z_t eta]); z_t does not depend on xi_t.
  mo.z_xi.assign(t + 1, 0.0);
  if (t > 0) {
    Eigen::VectorXd local(t);
    local[0] = f.c * sums_.Md;
    local.tail(t - 1) = f.c * sums_.Pd_eta;
    const Eigen::VectorXd zxi = sums_.R * local;
    for (int k = 0; k < t; ++k) mo.z_xi[k] = zxi[k];
  }
  return mo;
}

}  // namespace sdgmm
