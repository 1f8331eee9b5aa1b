#include "sdgmm/effective.hpp"

#include <cmath>
#include <limits>
#include <random>

#include "sdgmm/integrate.hpp"
#include "sdgmm/loss.hpp"

namespace sdgmm {
namespace {

// Beyond |xi| = 9 the Gaussian mass is below 1e-18: the Gauss-Legendre pieces stop there.
constexpr double kTail = 9.0;
constexpr double kFree = std::numeric_limits<double>::quiet_NaN();  // target computed, not forced

struct Child {
  double xi;
  double weight;  // factor multiplying the parent's weight
  double target;  // forced next target (split rules) or kFree
};

// Copies parent p into `out` with one more coordinate; z_new (if any) is appended as a row.
void append(ParticleSet& out, const ParticleSet& in, std::size_t p, const Child& c, double target) {
  out.weight.push_back(in.weight[p] * c.weight);
  out.s.push_back(in.s[p]);
  out.target.push_back(target);
  if (!in.point.empty()) out.point.push_back(in.point[p]);
  for (int k = 0; k < in.dims; ++k) out.xi[k].push_back(in.xi[k][p]);
  out.xi[in.dims].push_back(c.xi);
  for (std::size_t k = 0; k < in.z.size(); ++k) out.z[k].push_back(in.z[k][p]);
}

ParticleSet empty_like(const ParticleSet& in, std::size_t extra_z_rows) {
  ParticleSet out;
  out.dims = in.dims + 1;
  out.xi.resize(out.dims);
  out.z.resize(in.z.size() + extra_z_rows);
  return out;
}

// Tensor rule at a jump at xi = a between the lower side (target 0) and the upper (target 1).
// The side holding most of the mass is integrated as a smooth function over the whole line by
// Gauss-Hermite with its own target; the short side's piece is then moved from the bulk target
// to its own by Gauss-Legendre on [a, tail] (or [-tail, a]) with opposite-signed weights.
void split_children(double a, const IntegrationOptions& opt, std::vector<Child>& out) {
  const Rule1D& gh = gauss_hermite(opt.gh_nodes);
  const bool bulk_upper = a <= 0.0;
  const double bulk = bulk_upper ? 1.0 : 0.0;
  for (std::size_t j = 0; j < gh.x.size(); ++j) out.push_back({gh.x[j], gh.w[j], bulk});
  const double lo = bulk_upper ? -kTail : a, hi = bulk_upper ? a : kTail;
  if (hi <= lo) return;
  const Rule1D& gl = gauss_legendre(opt.split_nodes);
  const double half = 0.5 * (hi - lo), mid = 0.5 * (hi + lo);
  for (std::size_t i = 0; i < gl.x.size(); ++i) {
    const double x = mid + half * gl.x[i];
    const double w = half * gl.w[i] * normal_pdf(x);
    out.push_back({x, -w, bulk});
    out.push_back({x, w, 1.0 - bulk});
  }
}

// QMC rule at a jump: one child on each side, drawn by inverting the truncated normal CDF with
// the particle's own uniform, weighted by the side's probability (positive weights).
void split_sample(double a, double u, std::vector<Child>& out) {
  const double p_lower = normal_cdf(a), p_upper = normal_cdf(-a);
  if (p_lower > 0.0) out.push_back({normal_quantile(u * p_lower), p_lower, 0.0});
  if (p_upper > 0.0) out.push_back({normal_upper_quantile((1.0 - u) * p_upper), p_upper, 1.0});
}

// Children of particle p along the new coordinate; `jump` is NaN when the next target is smooth.
void children(const ParticleSet& in, std::size_t p, double jump, bool inner, const IntegrationOptions& opt,
              const Eigen::MatrixXd& samples, std::vector<Child>& out) {
  out.clear();
  const int k = in.dims;
  switch (opt.method) {
    case Method::mc:
      out.push_back({samples(in.point[p], k), 1.0, kFree});
      return;
    case Method::qmc:
      if (!inner) {
        const double u = samples(in.point[p], k);
        if (std::isnan(jump)) out.push_back({normal_quantile(u), 1.0, kFree});
        else split_sample(jump, u, out);
        return;
      }
      [[fallthrough]];  // qmc integrates each stage's own coordinate by Gauss-Hermite
    case Method::tensor:
      if (std::isnan(jump)) {
        const Rule1D& gh = gauss_hermite(opt.gh_nodes);
        for (std::size_t j = 0; j < gh.x.size(); ++j) out.push_back({gh.x[j], gh.w[j], kFree});
      } else {
        split_children(jump, opt, out);
      }
      return;
  }
}

double prune_level(const IntegrationOptions& opt) { return opt.method == Method::tensor ? opt.prune : 0.0; }

template <class L>
ParticleSet freeze(const ParticleSet& in, const StageField& f, const Stage& next, const IntegrationOptions& opt,
                   const Eigen::MatrixXd& samples) {
  ParticleSet out = empty_like(in, 1);
  const double U_tt = f.U.back();
  const bool hard = next.targets == Targets::hard && opt.method != Method::mc;
  std::vector<Child> kids;
  for (std::size_t p = 0; p < in.size(); ++p) {
    const double A = f.offset(in, p);
    const double y = in.target[p];
    const double jump = hard ? (zero_crossing_field<L>(y, f.c) - A) / U_tt : kFree;
    children(in, p, jump, false, opt, samples, kids);
    for (const Child& c : kids) {
      if (std::abs(in.weight[p] * c.weight) < prune_level(opt)) continue;
      const double h = A + U_tt * c.xi;
      const double u = L::prox(h, y, f.c, h).u;
      append(out, in, p, c, std::isnan(c.target) ? next_target<L>(u, next) : c.target);
      out.z.back().push_back(u - h);
    }
  }
  return out;
}

template <class L>
StageMoments moments(const ParticleSet& w, const StageField& f, std::vector<double>& guess) {
  const int t = w.dims;  // the stage's own coordinate is xi_t (index t - 1)
  const std::size_t nz = w.z.size();
  StageMoments mo;
  mo.z_xi.assign(t, 0.0);
  mo.z_z.assign(nz, 0.0);
  if (guess.size() != w.size()) guess.assign(w.size(), std::numeric_limits<double>::quiet_NaN());
  const double U_tt = f.U.back();
  for (std::size_t p = 0; p < w.size(); ++p) {
    const double h = f.offset(w, p) + U_tt * w.xi[t - 1][p];
    const Prox pr = L::prox(h, w.target[p], f.c, std::isnan(guess[p]) ? h : guess[p]);
    guess[p] = pr.u;
    const double wt = w.weight[p];
    const double z = pr.u - h, wz = wt * z;
    for (int k = 0; k < t; ++k) mo.z_xi[k] += wz * w.xi[k][p];
    for (std::size_t k = 0; k < nz; ++k) mo.z_z[k] += wz * w.z[k][p];
    mo.zz += wz * z;
    mo.s_z += wz * w.s[p];
    mo.z += wz;
    mo.dzdh += wt * (pr.dudh - 1.0);
  }
  return mo;
}

}  // namespace

double StageField::offset(const ParticleSet& set, std::size_t p) const {
  double A = set.s[p] * m + b;
  for (std::size_t k = 0; k + 1 < U.size(); ++k) A += U[k] * set.xi[k][p];
  for (std::size_t k = 0; k < r.size(); ++k) A += r[k] * set.z[k][p];
  return A;
}

ParticleSet initial_particles(const Problem& problem, const IntegrationOptions& opt, const Eigen::MatrixXd& samples) {
  const auto classes = label_classes(problem);
  ParticleSet set;
  auto add = [&](const LabelClass& c, double weight, std::int32_t row) {
    set.weight.push_back(weight);
    set.s.push_back(c.s);
    set.target.push_back(c.y_noisy);
    if (row >= 0) set.point.push_back(row);
  };
  if (opt.method == Method::tensor || samples.rows() == 0) {
    for (const LabelClass& c : classes) add(c, c.prob, opt.method == Method::tensor ? -1 : 0);
  } else if (opt.method == Method::qmc) {
    const double share = 1.0 / static_cast<double>(samples.rows());
    for (std::int32_t i = 0; i < samples.rows(); ++i)
      for (const LabelClass& c : classes) add(c, c.prob * share, i);
  } else {  // mc: one class per sample, drawn with the class probabilities
    std::mt19937_64 rng(opt.seed ^ 0x9e3779b97f4a7c15ULL);
    std::discrete_distribution<int> pick({classes[0].prob, classes[1].prob, classes[2].prob, classes[3].prob});
    const double share = 1.0 / static_cast<double>(samples.rows());
    for (std::int32_t i = 0; i < samples.rows(); ++i) add(classes[pick(rng)], share, i);
  }
  return set;
}

ParticleSet with_inner_coordinate(const ParticleSet& outer, const IntegrationOptions& opt,
                                  const Eigen::MatrixXd& samples) {
  ParticleSet out = empty_like(outer, 0);
  std::vector<Child> kids;
  for (std::size_t p = 0; p < outer.size(); ++p) {
    children(outer, p, kFree, true, opt, samples, kids);
    for (const Child& c : kids) {
      if (std::abs(outer.weight[p] * c.weight) < prune_level(opt)) continue;
      append(out, outer, p, c, outer.target[p]);
    }
  }
  return out;
}

ParticleSet freeze_stage(const ParticleSet& outer, const StageField& field, Loss loss, const Stage& next,
                         const IntegrationOptions& opt, const Eigen::MatrixXd& samples) {
  return loss == Loss::logistic ? freeze<LogisticLoss>(outer, field, next, opt, samples)
                                : freeze<SquareLoss>(outer, field, next, opt, samples);
}

StageMoments stage_moments(const ParticleSet& work, const StageField& field, Loss loss, std::vector<double>& guess) {
  return loss == Loss::logistic ? moments<LogisticLoss>(work, field, guess) : moments<SquareLoss>(work, field, guess);
}

}  // namespace sdgmm
