#include "sdgmm/effective.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <type_traits>

#include "sdgmm/inner_table.hpp"
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
  double target;  // forced pseudo-label (split rules) or kFree
};

// Copies parent p (its coordinates, frozen z and dz) into `out` with the child's new coordinate;
// freeze() then adds the rows of the stage being frozen.
void append(ParticleSet& out, const ParticleSet& in, std::size_t p, const Child& c, double target) {
  out.weight.push_back(in.weight[p] * c.weight);
  out.s.push_back(in.s[p]);
  out.noisy.push_back(in.noisy[p]);
  out.target.push_back(target);
  if (!in.point.empty()) out.point.push_back(in.point[p]);
  for (int k = 0; k < in.dims; ++k) out.xi[k].push_back(in.xi[k][p]);
  out.xi[in.dims].push_back(c.xi);
  for (std::size_t k = 0; k < in.z.size(); ++k) out.z[k].push_back(in.z[k][p]);
  if (out.smooth)
    for (std::size_t k = 0; k < in.dz.size(); ++k) out.dz[k].push_back(in.dz[k][p]);
}

// A set with one more coordinate and one more frozen stage (its z, and while the targets stay
// smooth its dz and the new dy rows, are filled by freeze), with room for `capacity` particles.
ParticleSet empty_like(const ParticleSet& in, bool smooth, std::size_t capacity) {
  ParticleSet out;
  out.dims = in.dims + 1;
  out.smooth = smooth;
  out.mirrored = in.mirrored;
  out.xi.resize(out.dims);
  out.z.resize(in.z.size() + 1);
  if (smooth) {
    out.dz.resize(in.dz.size() + out.dims);
    out.dy.resize(out.dims);
  }
  for (auto* rows : {&out.xi, &out.z, &out.dz, &out.dy})
    for (auto& row : *rows) row.reserve(capacity);
  for (auto* row : {&out.weight, &out.s, &out.noisy, &out.target}) row->reserve(capacity);
  if (!in.point.empty()) out.point.reserve(capacity);
  return out;
}

// H_l = sum_{j<t} r_j dz_j/dg_l (l < t): the gradient of the cavity field h_t beyond its own g_t.
void field_gradient(const ParticleSet& in, const StageField& f, std::size_t p, std::vector<double>& H) {
  const int t = in.dims;
  H.assign(t, 0.0);
  for (int j = 0; j < t; ++j)
    for (int l = 0; l <= j; ++l) H[l] += f.r[j] * in.dz[ParticleSet::dz_row(j, l)][p];
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
// A side less likely than `prune` is dropped: that biases the expectation by at most `prune`
// per particle, and keeps the 2^(hard stages) growth to the particles near a jump.
void split_sample(double a, double u, double prune, std::vector<Child>& out) {
  const double p_lower = normal_cdf(a), p_upper = normal_cdf(-a);
  if (p_lower > prune) out.push_back({normal_quantile(u * p_lower), p_lower, 0.0});
  if (p_upper > prune) out.push_back({normal_upper_quantile((1.0 - u) * p_upper), p_upper, 1.0});
}

// Children of particle p along the new coordinate; `jump` is NaN when the next target is smooth.
void children(const ParticleSet& in, std::size_t p, double jump, const IntegrationOptions& opt,
              const Eigen::MatrixXd& samples, std::vector<Child>& out) {
  out.clear();
  const int k = in.dims;
  switch (opt.method) {
    case Method::mc:
      out.push_back({samples(in.point[p], k), 1.0, kFree});
      return;
    case Method::qmc: {
      // The qmc sample holds moment-matched normals; a split draws on each side from the
      // truncated normal with the point's own uniform Phi(z).
      const double z = samples(in.point[p], k);
      if (std::isnan(jump))
        out.push_back({z, 1.0, kFree});
      else
        split_sample(jump, normal_cdf(z), opt.qmc_prune, out);
      return;
    }
    case Method::automatic:  // never: the rule is resolved before any particle exists
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

// P is the stage's proximal loss (L itself, or LinearLimitLoss at lam = inf); L builds the soft
// targets of the next stage.
template <class P, class L>
ParticleSet freeze(const ParticleSet& in, const StageField& f, const Stage& next, const IntegrationOptions& opt,
                   const Eigen::MatrixXd& samples) {
  const int t = in.dims;
  std::vector<double> H;
  const double U_tt = f.U.back();
  const bool hard = next.targets == Targets::hard && opt.method != Method::mc;
  // The Stein form (the field basis) is used only by stages whose targets are all smooth, and never by mc.
  const bool smooth = in.smooth && next.targets == Targets::soft && opt.method != Method::mc;
  ParticleSet out = empty_like(in, smooth, in.size() * (opt.method == Method::tensor ? opt.gh_nodes : 2));
  std::vector<Child> kids;
  const std::vector<double> offsets = f.offsets(in);
  for (std::size_t p = 0; p < in.size(); ++p) {
    const double A = offsets[p];
    const double y = in.target[p];
    const double jump = hard ? (zero_crossing_field<P>(y, f.c) - A) / U_tt : kFree;
    children(in, p, jump, opt, samples, kids);
    if (smooth) field_gradient(in, f, p, H);
    for (const Child& c : kids) {
      // The weight of each particle the child stands for (a mirrored particle carries its image's too): the full
      // rule's threshold, so that a mirrored set drops the particles the full set drops.
      if (opt.method == Method::tensor && std::abs(in.weight[p] * c.weight) * (in.mirrored ? 0.5 : 1.0) < opt.prune)
        continue;
      const double h = A + U_tt * c.xi;
      const Prox pr = P::prox(h, y, f.c, kFree);
      const double u = h + pr.z;
      const double pseudo = std::isnan(c.target) ? next_target<L>(u, next) : c.target;
      append(out, in, p, c, mixed_target(pseudo, in.noisy[p], next));
      out.z.back().push_back(pr.z);
      if (!smooth) continue;
      // dz_t/dg_l = z'_h dh_t/dg_l + z'_y dy_t/dg_l, and du_t = dh_t + dz_t; dh_t/dg_t = 1.
      const double slope = next.xi * next_target_slope<L>(u, next);
      for (int l = 0; l <= t; ++l) {
        const double dh = l < t ? H[l] : 1.0, dyl = l < t ? in.dy[l][p] : 0.0;
        const double dz = pr.dzdh * dh + pr.dzdy * dyl;
        out.dz[ParticleSet::dz_row(t, l)].push_back(dz);
        out.dy[l].push_back(slope * (dh + dz));  // du_t/dg_l = dh_t/dg_l + dz_t/dg_l
      }
    }
  }
  return out;
}

void add(StageMoments& to, const StageMoments& from) {
  auto add_all = [](std::vector<double>& a, const std::vector<double>& b) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
  };
  add_all(to.z_xi, from.z_xi), add_all(to.dz_dg, from.dz_dg), add_all(to.z_z, from.z_z);
  to.zz += from.zz, to.s_z += from.s_z, to.z += from.z, to.dzdh += from.dzdh, to.u += from.u;
}

// Tables of stage t's inner sums for the few target values hard targets take, one per value whose particles
// outnumber the table's nodes; none for soft targets (a value per particle), a limit stage (one node) or the
// square loss (an explicit prox).
template <class L>
class TargetTables {
 public:
  TargetTables() = default;
  TargetTables(const ParticleSet& outer, const std::vector<double>& A, const StageField& f, const Rule1D& rule) {
    if constexpr (std::is_same_v<L, LogisticLoss>) {
      constexpr std::size_t kMaxValues = 4;  // 0 and 1, mixed with the noisy label by xi
      struct Range {
        double y, lo, hi;
        std::size_t count;
      };
      std::vector<Range> ranges;
      for (std::size_t p = 0; p < outer.size(); ++p) {
        const double y = outer.target[p];
        auto it = std::find_if(ranges.begin(), ranges.end(), [&](const Range& r) { return r.y == y; });
        if (it == ranges.end()) {
          if (ranges.size() == kMaxValues) return;
          ranges.push_back({y, A[p], A[p], 0});
          it = ranges.end() - 1;
        }
        it->lo = std::min(it->lo, A[p]), it->hi = std::max(it->hi, A[p]), ++it->count;
      }
      for (const Range& r : ranges)
        if (r.count > static_cast<std::size_t>(InnerTable<L>::nodes(r.lo, r.hi)))
          tables_.emplace_back(r.y, InnerTable<L>(r.lo, r.hi, r.y, f.U.back(), f.c, rule.x, rule.w));
    }
  }
  // The table of target y, or null.
  const InnerTable<L>* find(double y) const {
    for (const auto& [value, table] : tables_)
      if (value == y) return &table;
    return nullptr;
  }

 private:
  std::vector<std::pair<double, InnerTable<L>>> tables_;
};

// sum_p a[p] b[p] over n entries, with four partial sums so that the products pipeline.
double dot(const double* a, const double* b, std::size_t n) {
  double s[4] = {0.0, 0.0, 0.0, 0.0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) s[k] += a[i + k] * b[i + k];
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <class L>
StageMoments moments(const ParticleSet& outer, const StageField& f, const IntegrationOptions& opt,
                     const Eigen::MatrixXd& samples, bool field_basis, std::vector<double>& guess) {
  const int k_own = outer.dims;  // index of xi_t
  const std::size_t nz = outer.z.size();
  const bool sampled = opt.method == Method::mc;
  // A limit stage's z does not depend on its own coordinate, so one node at xi_t = 0 with weight 1 integrates it
  // exactly (E[xi_t] = 0): the same sums at 1/n of the cost.
  constexpr bool kConstant = std::is_same_v<L, LinearLimitLoss>;
  static const Rule1D kOneNode{{0.0}, {1.0}};
  const Rule1D& gh = kConstant ? kOneNode : gauss_hermite(opt.method == Method::qmc ? opt.qmc_gh_nodes : opt.gh_nodes);
  const std::size_t n_inner = sampled ? 1 : gh.x.size();
  if (guess.size() != outer.size() * n_inner)
    guess.assign(outer.size() * n_inner, std::numeric_limits<double>::quiet_NaN());
  const double U_tt = f.U.back();
  const std::vector<double> A = f.offsets(outer);
  TargetTables<L> tables;  // mc integrates each particle's own sample, not a rule
  if (!sampled) tables = TargetTables<L>(outer, A, f, gh);
  auto empty = [&] {
    StageMoments mo;
    (field_basis ? mo.dz_dg : mo.z_xi).assign(k_own + 1, 0.0);
    mo.z_z.assign(nz, 0.0);
    return mo;
  };
  // The particles [begin, end) summed into mo: first each particle's inner sums over xi_t (E_t[z], E_t[z xi_t],
  // E_t[z^2], E_t[dz/dh], E_t[dz/dy], E_t[u]) times its weight, then the moments as dot products over the chunk.
  auto accumulate = [&](std::size_t begin, std::size_t end, StageMoments& mo) {
    const std::size_t n = end - begin;
    const auto buffer = std::make_unique_for_overwrite<double[]>(6 * n);  // every entry is written below
    double *wz = buffer.get(), *wzx = wz + n, *wzz = wzx + n, *wdzdh = wzz + n, *wdzdy = wdzdh + n, *wu = wdzdy + n;
    static constexpr double kOne = 1.0;
    const InnerTable<L>* table = nullptr;
    double table_y = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t p = begin + i;
      const double y = outer.target[p];
      if (!(y == table_y)) table = tables.find(y), table_y = y;
      const std::span<double> g(guess.data() + p * n_inner, n_inner);
      const InnerSums S = table ? table->at(A[p])
                          : sampled
                              ? inner_sums<L>(A[p], y, U_tt, f.c, {&samples(outer.point[p], k_own), 1}, {&kOne, 1}, g)
                              : inner_sums<L>(A[p], y, U_tt, f.c, gh.x, gh.w, g);
      const double wt = outer.weight[p];
      wz[i] = wt * S.z, wzx[i] = wt * S.z_x, wzz[i] = wt * S.zz;
      wdzdh[i] = wt * S.dzdh, wdzdy[i] = wt * S.dzdy, wu[i] = wt * S.u;
    }
    auto sum = [n](const double* v) { return std::accumulate(v, v + n, 0.0); };
    auto with = [&](const double* a, const std::vector<double>& row) { return dot(a, row.data() + begin, n); };
    if (field_basis) {
      // E[dz_t/dg_l] = E[dz/dh H_l + dz/dy dy_l], H_l = sum_{j<t} r_j dz_j/dg_l (field_gradient).
      for (int j = 0; j < k_own; ++j)
        for (int l = 0; l <= j; ++l) mo.dz_dg[l] += f.r[j] * with(wdzdh, outer.dz[ParticleSet::dz_row(j, l)]);
      for (int l = 0; l < k_own; ++l) mo.dz_dg[l] += with(wdzdy, outer.dy[l]);
      mo.dz_dg[k_own] += sum(wdzdh);
    } else {
      for (int k = 0; k < k_own; ++k) mo.z_xi[k] += with(wz, outer.xi[k]);
      mo.z_xi[k_own] += sum(wzx);
    }
    for (std::size_t k = 0; k < nz; ++k) mo.z_z[k] += with(wz, outer.z[k]);
    mo.zz += sum(wzz);
    mo.s_z += with(wz, outer.s);
    mo.z += sum(wz);
    mo.dzdh += sum(wdzdh);
    mo.u += sum(wu);
  };
  // Fixed chunks of particles, summed in order: the result does not depend on the number of threads.
  constexpr std::size_t kChunk = 8192;
  const std::size_t chunks = (outer.size() + kChunk - 1) / kChunk;
  std::vector<StageMoments> parts(chunks, empty());
#pragma omp parallel for num_threads(opt.threads) schedule(dynamic, 1) if (chunks > 1)
  for (std::size_t c = 0; c < chunks; ++c) accumulate(c * kChunk, std::min(outer.size(), (c + 1) * kChunk), parts[c]);
  StageMoments mo = empty();
  for (const StageMoments& part : parts) add(mo, part);
  if (outer.mirrored) mo.z = mo.u = 0.0;  // the odd moments: each particle's mirror image cancels them
  return mo;
}

}  // namespace

std::vector<double> StageField::offsets(const ParticleSet& set) const {
  // Row by row: each pass streams one coordinate of every particle.
  std::vector<double> A(set.s);
  for (double& a : A) a = a * m + b;
  auto add_row = [&](double coefficient, const std::vector<double>& row) {
    for (std::size_t p = 0; p < A.size(); ++p) A[p] += coefficient * row[p];
  };
  for (std::size_t k = 0; k + 1 < U.size(); ++k) add_row(U[k], set.xi[k]);
  for (std::size_t k = 0; k < r.size(); ++k) add_row(r[k], set.z[k]);
  return A;
}

ParticleSet initial_particles(const Problem& problem, const IntegrationOptions& opt, const Eigen::MatrixXd& samples,
                              bool mirrored) {
  const auto classes = label_classes(problem);
  ParticleSet set;
  set.mirrored = mirrored;
  auto add = [&](const LabelClass& c, double weight, std::int32_t row) {
    if (mirrored && c.s < 0.0) return;
    set.weight.push_back(mirrored ? 2.0 * weight : weight);
    set.s.push_back(c.s);
    set.noisy.push_back(c.y_noisy);
    set.target.push_back(c.y_noisy);
    if (row >= 0) set.point.push_back(row);
  };
  if (opt.method == Method::tensor || samples.rows() == 0) {  // no sample rows to attach
    for (const LabelClass& c : classes) add(c, c.prob, -1);
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

ParticleSet freeze_stage(const ParticleSet& outer, const StageField& field, Loss loss, const Stage& next,
                         const IntegrationOptions& opt, const Eigen::MatrixXd& samples) {
  return with_loss(loss, [&]<class L>(L) {
    return field.limit ? freeze<LinearLimitLoss, L>(outer, field, next, opt, samples)
                       : freeze<L, L>(outer, field, next, opt, samples);
  });
}

StageMoments stage_moments(const ParticleSet& outer, const StageField& field, Loss loss, const IntegrationOptions& opt,
                           const Eigen::MatrixXd& samples, bool field_basis, std::vector<double>& guess) {
  if (field.limit) return moments<LinearLimitLoss>(outer, field, opt, samples, field_basis, guess);
  return with_loss(loss, [&]<class L>(L) { return moments<L>(outer, field, opt, samples, field_basis, guess); });
}

}  // namespace sdgmm
