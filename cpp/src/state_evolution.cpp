#include "sdgmm/state_evolution.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>

#include "sdgmm/error.hpp"
#include "sdgmm/integrate.hpp"
#include "sdgmm/limit_chain.hpp"
#include "sdgmm/saddle.hpp"

namespace sdgmm {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Normal scores Phi^{-1}(u) of the scrambled Sobol points, moment-matched: centred and whitened
// so that their empirical mean is 0 and covariance I exactly. Every integrand linear or quadratic
// in xi (all of the square loss's) is then integrated exactly; unmatched second moments gave
// order-one errors where the xi-basis conjugates Qh = U^{-1} a divide by a nearly singular U.
Eigen::MatrixXd moment_matched_normals(const IntegrationOptions& opt, int d) {
  Eigen::MatrixXd z =
      scrambled_sobol(opt.qmc_points, d, opt.seed).unaryExpr([](double u) { return normal_quantile(u); });
  z.rowwise() -= z.colwise().mean();
  const Eigen::MatrixXd cov = z.transpose() * z / static_cast<double>(z.rows());
  const Eigen::LLT<Eigen::MatrixXd> llt(cov);
  return llt.matrixU().transpose().solve(z.transpose()).transpose();  // z L^{-T}
}

Eigen::MatrixXd sample_matrix(const IntegrationOptions& opt, int T) {
  if (opt.method == Method::qmc) return T > 1 ? moment_matched_normals(opt, T - 1) : Eigen::MatrixXd();
  if (opt.method != Method::mc) return {};
  std::mt19937_64 rng(opt.seed);  // common random numbers: the same draws at every iteration
  std::normal_distribution<double> normal;
  Eigen::MatrixXd g(opt.mc_samples, T);
  for (Eigen::Index i = 0; i < g.rows(); ++i)
    for (int k = 0; k < T; ++k) g(i, k) = normal(rng);
  return g;
}

TheoryResult empty_result(int T, Method method) {
  TheoryResult r;
  r.method = to_string(method);
  for (Eigen::VectorXd* v : {&r.eps, &r.eps_error, &r.m, &r.b, &r.mh, &r.conditioning}) v->setConstant(T, kNaN);
  for (Eigen::MatrixXd* M : {&r.Q, &r.q, &r.chi, &r.Qh, &r.chih}) M->setConstant(T, T, kNaN);
  r.iterations.assign(T, 0);
  r.residual.assign(T, kNaN);
  r.converged.assign(T, false);
  r.collapsed.assign(T, false);
  r.solution.assign(T, Eigen::VectorXd());
  return r;
}

// Probability that the stage about to be trained has target 1: sum of weights times targets (1/2 when every target y
// has its mirror image 1 - y).
double target_mass(const ParticleSet& set) {
  if (set.mirrored) return 0.5;
  double mass = 0.0;
  for (std::size_t p = 0; p < set.size(); ++p) mass += set.weight[p] * set.target[p];
  return mass;
}

// A stage that predicts the constant class `sign` everywhere (b = +-inf, m = Q = 0): eps = rho or 1 - rho.
void record_constant(const Problem& p, int t, int sign, TheoryResult& res) {
  res.eps[t] = sign > 0 ? 1.0 - p.rho : p.rho;
  res.eps_error[t] = 0.0;
  res.m[t] = 0.0;
  res.Q(t, t) = res.q(t, t) = 0.0;
  res.b[t] = sign > 0 ? INFINITY : -INFINITY;
  res.collapsed[t] = res.converged[t] = true;
  res.residual[t] = 0.0;
}

// A logistic stage that learns its bias on targets of a single class has no minimiser: its bias
// runs to -inf (or +inf), w to 0, and it predicts that class everywhere. That limit is exact and
// reported as `collapsed`, with eps = rho (all predicted -1) or 1 - rho. Hard-label SD with a
// learned bias reaches it under class imbalance (theory.md section 4, rows 5-6).
bool record_collapse(const Problem& p, int t, double mass, TheoryResult& res) {
  constexpr double kSingleClass = 1e-13;
  if (mass > kSingleClass && mass < 1.0 - kSingleClass) return false;
  record_constant(p, t, mass <= kSingleClass ? -1 : 1, res);
  return true;
}

// Under rho = 1/2, symmetric noise and biases that keep the symmetry (learned, kept or fixed at 0),
// every stage's targets have mean exactly 1/2 and every bias is exactly 0.
bool symmetric_before(const Problem& p, const std::vector<Stage>& stages, int t) {
  if (p.rho != 0.5 || p.flip_plus() != p.flip_minus()) return false;
  return std::all_of(stages.begin(), stages.begin() + t,
                     [](const Stage& s) { return s.bias != BiasPolicy::fixed || s.bias_value == 0.0; });
}

// A lam = inf stage has logits B + O(1/lam), B its bias at order one. Unless B = 0 it predicts the
// constant class sign(B): returns +1 or -1 then, 0 when B = 0 and the rescaled stage is solved.
// B = 0 needs targets of mean 1/2 for a learned bias, a zero fixed value, or a zero (or limit)
// stage-1 bias for fix_first.
int limit_prediction(const Problem& p, const std::vector<Stage>& stages, int t, double mass, double b1) {
  constexpr double kBalanced = 1e-9;
  auto sign_of = [](double v) { return v > 0.0 ? 1 : v < 0.0 ? -1 : 0; };
  const bool symmetric = symmetric_before(p, stages, t);
  switch (stages[t].bias) {
    case BiasPolicy::fixed:
      return sign_of(stages[t].bias_value);
    case BiasPolicy::learn:
      return symmetric || std::abs(mass - 0.5) <= kBalanced ? 0 : sign_of(mass - 0.5);
    case BiasPolicy::fix_first:
      return symmetric || stages[0].is_limit() ? 0 : sign_of(b1);
  }
  return 0;
}

// Fixed points of a solve, by stage: where another solve's iterations start (none: each stage's default start).
using Starts = std::span<const Eigen::VectorXd>;

// One full stage-by-stage solve with one integration rule: each stage in turn is checked for the exact limits
// that need no fixed point (a collapse, a constant limit classifier), solved, recorded and frozen.
class StageByStage {
 public:
  StageByStage(const Problem& p, const std::vector<Stage>& stages, Loss loss, const IntegrationOptions& integ,
               const FixedPointOptions& fp, Starts starts)
      : p_(p),
        stages_(stages),
        loss_(loss),
        integ_(integ),
        fp_(fp),
        starts_(starts),
        samples_(sample_matrix(integ, static_cast<int>(stages.size()))),
        saddle_(p, stages, integ.method == Method::mc),
        res_(empty_result(static_cast<int>(stages.size()), integ.method)),
        chain_(LimitChain::applies(stages, integ.method) ? std::make_optional<LimitChain>(p, stages, samples_)
                                                         : std::nullopt),
        // A symmetric problem under the tensor rule integrates one class of each mirror pair (initial_particles).
        outer_(chain_ ? ParticleSet{}
                      : initial_particles(p, integ, samples_,
                                          integ.method == Method::tensor &&
                                              symmetric_before(p, stages, static_cast<int>(stages.size())))) {}

  TheoryResult run() {
    const int T = static_cast<int>(stages_.size());
    for (int t = 0; t < T; ++t) {
      if (collapses(t)) {
        // Its logits are all -inf (+inf): the next targets are that class again, hard or soft.
        // A soft next stage would train on targets of exactly 0 (1), which is the same collapse;
        // a fixed-bias continuation is not modelled and ends the solve as not converged.
        if (t + 1 < T && stages_[t + 1].bias == BiasPolicy::learn) continue;
        break;
      }
      if (constant_limit(t)) break;  // stages after a constant classifier are not modelled: NaN
      const auto field = solve(t);
      if (!field) break;
      record(t);
      if (chain_)
        chain_->freeze(*field);
      else if (t + 1 < T)
        outer_ = freeze_stage(outer_, *field, loss_, stages_[t + 1], integ_, samples_);
    }
    return res_;
  }

 private:
  // A logistic stage that learns its bias on targets of a single class: the exact collapse.
  bool collapses(int t) {
    return loss_ == Loss::logistic && stages_[t].bias == BiasPolicy::learn && record_collapse(p_, t, next_mass(), res_);
  }

  // A lam = inf stage whose bias is of order one predicts a constant class.
  bool constant_limit(int t) {
    if (!stages_[t].is_limit()) return false;
    const int sign = limit_prediction(p_, stages_, t, next_mass(), t > 0 ? saddle_.b[0] : 0.0);
    if (sign != 0) record_constant(p_, t, sign, res_);
    return sign != 0;
  }

  // Probability that the stage about to be trained has target 1.
  double next_mass() const { return chain_ ? chain_->target_mass() : target_mass(outer_); }

  // The conjugates in the field basis (Stein's lemma) where every target up to stage t is smooth; hard
  // targets jump and keep the xi basis, as does the reference mode.
  bool field_basis(int t) const {
    return integ_.method != Method::mc && !chain_ &&
           std::all_of(stages_.begin() + 1, stages_.begin() + t + 1,
                       [](const Stage& s) { return s.targets == Targets::soft; });
  }

  // Stage t's fixed point; its cavity field, or nullopt where it did not converge.
  std::optional<StageField> solve(int t) {
    std::vector<double> guess;  // per-node prox warm starts between iterations
    const bool stein = field_basis(t);
    const FixedPointMap G = [&](const Eigen::VectorXd& x) -> std::optional<Eigen::VectorXd> {
      const auto field = saddle_.set_stage(t, x);
      if (!field) return std::nullopt;
      const StageMoments mo =
          chain_ ? chain_->moments(*field) : stage_moments(outer_, *field, loss_, integ_, samples_, stein, guess);
      return saddle_.next_x(t, mo, x, stein);
    };
    const FixedPointUnits units = [&](const Eigen::VectorXd& at) { return saddle_.units(t, at); };
    Eigen::VectorXd x = saddle_.initial_x(t);
    // Another rule's fixed point (a coarser one, or the rule with one node fewer) is within its integration error
    // of this one: from there the iteration needs fewer steps (hard T = 6, qmc 1024 -> 4096: 10 -> 8 a stage; the
    // tensor rule's one-node-fewer twin often none). A start that fails falls back to the default one.
    const bool warm = static_cast<std::size_t>(t) < starts_.size() && starts_[t].size() == x.size();
    FixedPointReport rep;
    if (warm) {
      Eigen::VectorXd start = starts_[t];
      rep = solve_fixed_point(G, start, fp_, units);
      if (rep.converged) x = start;
    }
    if (!rep.converged) {
      guess.clear();
      rep = solve_fixed_point(G, x, fp_, units);
    }
    auto field = saddle_.set_stage(t, x);
    res_.iterations[t] = rep.iterations;
    res_.residual[t] = rep.residual;
    res_.converged[t] = rep.converged && field && std::isfinite(saddle_.eps(t));
    if (res_.converged[t]) res_.solution[t] = x;
    return res_.converged[t] ? field : std::nullopt;
  }

  // chi, Qh and chih are reported in theory.md's isotropic units: with the spectrum's mean eigenvalue in the
  // place of delta (chi = V / delta, Qh = delta Qh of the covariance convention).
  void record(int t) {
    const Saddle& sd = saddle_;
    const double s = sd.ridge.groups().mean_sigma;
    res_.eps[t] = sd.eps(t);
    res_.m[t] = sd.ridge.m[t];
    res_.b[t] = sd.b[t];
    res_.mh[t] = sd.mh[t];
    res_.conditioning[t] = sd.conditioning(t);
    for (int k = 0; k <= t; ++k) {
      res_.Q(k, t) = res_.Q(t, k) = sd.ridge.Q(k, t);
      res_.q(k, t) = res_.q(t, k) = sd.ridge.q(k, t);
      res_.chi(k, t) = sd.ridge.V(k, t) / s;
      res_.Qh(k, t) = s * sd.Qh(k, t);
      res_.chih(k, t) = s * sd.chih(k, t);
    }
  }

  const Problem& p_;
  const std::vector<Stage>& stages_;
  Loss loss_;
  const IntegrationOptions& integ_;
  const FixedPointOptions& fp_;
  Starts starts_;
  const Eigen::MatrixXd samples_;
  Saddle saddle_;
  TheoryResult res_;
  std::optional<LimitChain> chain_;  // a chain of lam = inf stages with hard targets, integrated without particles,
  ParticleSet outer_;                // or the effective process as particles
};

TheoryResult solve_once(const Problem& p, const std::vector<Stage>& stages, Loss loss, const IntegrationOptions& integ,
                        const FixedPointOptions& fp, Starts starts = {}) {
  return StageByStage(p, stages, loss, integ, fp, starts).run();
}

// Mean of the replicate solves; the per-stage eps error is the standard error of the mean.
TheoryResult average(const std::vector<TheoryResult>& reps) {
  TheoryResult out = reps.front();
  const double n = static_cast<double>(reps.size());
  auto mean = [&](auto member) {
    auto acc = reps.front().*member;
    for (std::size_t i = 1; i < reps.size(); ++i) acc += reps[i].*member;
    out.*member = acc / n;
  };
  mean(&TheoryResult::eps), mean(&TheoryResult::m), mean(&TheoryResult::b), mean(&TheoryResult::mh);
  mean(&TheoryResult::conditioning);
  mean(&TheoryResult::Q), mean(&TheoryResult::q), mean(&TheoryResult::chi), mean(&TheoryResult::Qh);
  mean(&TheoryResult::chih);
  for (Eigen::Index t = 0; t < out.eps.size(); ++t) {
    double ss = 0.0;
    for (const TheoryResult& r : reps) ss += (r.eps[t] - out.eps[t]) * (r.eps[t] - out.eps[t]);
    out.eps_error[t] = std::sqrt(ss / (n - 1.0) / n);
  }
  for (const TheoryResult& r : reps) {
    for (std::size_t t = 0; t < r.converged.size(); ++t) {
      out.converged[t] = out.converged[t] && r.converged[t];
      out.collapsed[t] = out.collapsed[t] && r.collapsed[t];
      out.iterations[t] = std::max(out.iterations[t], r.iterations[t]);
      out.residual[t] = std::max(out.residual[t], r.residual[t]);
    }
  }
  for (std::size_t t = 0; t < out.solution.size(); ++t) {
    const bool all = std::all_of(reps.begin(), reps.end(), [&](const TheoryResult& r) {
      return r.solution[t].size() > 0 && r.solution[t].size() == out.solution[t].size();
    });
    if (!all) {
      out.solution[t].resize(0);
      continue;
    }
    for (std::size_t i = 1; i < reps.size(); ++i) out.solution[t] += reps[i].solution[t];
    out.solution[t] /= n;
  }
  return out;
}

// The independent scrambles run in parallel; their spread is the error estimate. The inner Gauss-Hermite rule on
// each stage's own coordinate errs alike in every replicate (stage 1 has no other coordinate, so its spread is 0), so
// the same points at a quarter of the count are also solved with one inner node fewer, and the change, in which the
// points' own error cancels, is added to eps_error. Weak regularisation needs it: at alpha 10, lam 1e-4, T = 1 the
// 10-node inner rule is 1.5e-4 off while the replicates agree to 1e-17. A chain integrates its own coordinate
// exactly and needs no twin.
TheoryResult solve_qmc(const Problem& p, const std::vector<Stage>& stages, Loss loss, const TheoryOptions& opt,
                       Starts starts) {
  const int R = std::max(2, opt.integration.qmc_replicates);
  const bool twins = !LimitChain::applies(stages, Method::qmc);
  std::vector<TheoryResult> reps(R + (twins ? 2 : 0));
  const std::uint64_t seed = opt.integration.seed;  // both halves: seeds differing in the upper 32 bits differ
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  std::vector<std::uint64_t> seeds(R);
  seq.generate(seeds.begin(), seeds.end());
  // Jobs [first, last): the replicates, then the twins (the last replicate's scramble, `twin_points` points, the
  // second with one inner node fewer).
  auto run = [&](int first, int last, int twin_points) {
    const int threads = std::max(1, std::min(last - first, opt.threads > 0 ? opt.threads : omp_get_num_procs()));
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int r = first; r < last; ++r) {
      IntegrationOptions integ = opt.integration;
      integ.seed = seeds[std::min(r, R - 1)];
      if (r >= R) integ.qmc_points = twin_points;
      if (r == R + 1) integ.qmc_gh_nodes = std::max(2, integ.qmc_gh_nodes - 1);
      reps[r] = solve_once(p, stages, loss, integ, opt.fixed_point, starts);
    }
  };
  run(0, static_cast<int>(reps.size()), std::max(64, opt.integration.qmc_points / 4));
  TheoryResult out = average(std::vector<TheoryResult>(reps.begin(), reps.begin() + R));
  out.qmc_gh_nodes = opt.integration.qmc_gh_nodes;
  out.inner_error = Eigen::VectorXd::Zero(out.eps.size());
  if (!twins) return out;
  // Twins that fail a stage the replicates solved (NaN where out.eps is finite) are solved again with all the points.
  const auto twin_failed = [&] {
    const Eigen::ArrayXd change = reps[R].eps - reps[R + 1].eps;
    return (change.isNaN() && out.eps.array().isFinite()).any();
  };
  if (twin_failed()) run(R, R + 2, opt.integration.qmc_points);
  out.inner_error = (reps[R].eps - reps[R + 1].eps).cwiseAbs();
  out.eps_error += out.inner_error;
  return out;
}

}  // namespace

namespace {

// Default tensor nodes per coordinate for T stages. The product rule stays affordable up to T = 6
// (5 for hard labels, whose jumps multiply the nodes) when n shrinks with T, and it is far more
// accurate there than QMC. Measured against finer rules: <= 2e-5 for soft labels; ~4e-5 for hard
// labels, whose split rules converge more slowly than the one-node-fewer estimate suggests.
int default_nodes(int T, bool hard) {
  if (hard) return T <= 3 ? 16 : T == 4 ? 12 : 8;
  constexpr int kNodes[] = {16, 16, 16, 10, 8, 6};
  return kNodes[std::clamp(T, 1, 6) - 1];
}

bool has_hard(const std::vector<Stage>& stages) {
  return std::any_of(stages.begin(), stages.end(), [](const Stage& s) { return s.targets == Targets::hard; });
}

}  // namespace

Method resolve_method(Method method, const std::vector<Stage>& stages) {
  if (method != Method::automatic) return method;
  const int T = static_cast<int>(stages.size());
  if (T >= 3 && LimitChain::applies(stages, Method::qmc)) return Method::qmc;
  return T <= (has_hard(stages) ? 5 : 6) ? Method::tensor : Method::qmc;
}

void validate(const TheoryOptions& o) {
  auto need = [](bool ok, const std::string& name, const std::string& what, double got) {
    if (!ok) throw std::invalid_argument(name + " " + what + " (got " + shown(got) + ")");
  };
  const IntegrationOptions& i = o.integration;
  need(i.gh_nodes == 0 || (i.gh_nodes >= 2 && i.gh_nodes <= 400), "gh_nodes", "must be 0 (by T) or lie in [2, 400]",
       i.gh_nodes);
  need(i.qmc_gh_nodes >= 2 && i.qmc_gh_nodes <= 400, "qmc_gh_nodes", "must lie in [2, 400]", i.qmc_gh_nodes);
  need(i.prune >= 0.0 && i.prune < 1e-3, "prune", "must lie in [0, 1e-3)", i.prune);
  need(i.qmc_prune >= 0.0 && i.qmc_prune < 1e-3, "qmc_prune", "must lie in [0, 1e-3)", i.qmc_prune);
  need(i.split_nodes == 0 || (i.split_nodes >= 2 && i.split_nodes <= 400), "split_nodes",
       "must be 0 (as gh_nodes) or lie in [2, 400]", i.split_nodes);
  need(i.qmc_points >= 2, "qmc_points", "must be >= 2", i.qmc_points);
  need(i.qmc_replicates >= 2, "qmc_replicates", "must be >= 2 (their spread is the error estimate)", i.qmc_replicates);
  need(i.mc_samples >= 1, "mc_samples", "must be >= 1", i.mc_samples);
  need(o.fixed_point.tol > 0.0 && std::isfinite(o.fixed_point.tol), "tol", "must be a finite number > 0",
       o.fixed_point.tol);
  need(o.fixed_point.max_iter >= 1, "max_iter", "must be >= 1", o.fixed_point.max_iter);
  need(o.accuracy >= 0.0 && std::isfinite(o.accuracy), "accuracy", "must be a finite number >= 0 (0: no target)",
       o.accuracy);
  need(o.threads >= 0, "threads", "must be >= 0 (0 = all cores)", o.threads);
}

int max_gh_nodes(int T) {
  return std::min(96, static_cast<int>(std::floor(std::pow(32768.0, 1.0 / std::max(T, 1)) + 1e-9)));
}

namespace {

// One solve with the resolved rule, with its error estimate; `starts`: a coarser rule's fixed points.
TheoryResult solve_with(const Problem& problem, const std::vector<Stage>& stages, Loss loss, const TheoryOptions& opt,
                        Starts starts = {}) {
  switch (opt.integration.method) {
    case Method::mc: {
      // The reference's iteration: damping 0.9 on the old iterate, tolerance 1e-7.
      const FixedPointOptions reference{1e-7, 20000, 0, 0.9, 20000};
      return solve_once(problem, stages, loss, opt.integration, reference);
    }
    case Method::qmc: {
      TheoryResult r = solve_qmc(problem, stages, loss, opt, starts);
      r.qmc_points = opt.integration.qmc_points;
      return r;
    }
    case Method::automatic:  // resolved by the caller
    case Method::tensor: {
      TheoryResult fine = solve_once(problem, stages, loss, opt.integration, opt.fixed_point, starts);
      fine.gh_nodes = opt.integration.gh_nodes;
      if (opt.estimate_error) {
        IntegrationOptions coarse = opt.integration;
        // One node fewer: its error bounds the finer rule's (Gauss rules converge monotonically
        // here), at (1 - 1/n)^(T-1) of the cost.
        coarse.gh_nodes = std::max(2, coarse.gh_nodes - 1);
        coarse.split_nodes = std::max(2, coarse.split_nodes - 1);
        const TheoryResult c = solve_once(problem, stages, loss, coarse, opt.fixed_point, fine.solution);
        fine.eps_error = (fine.eps - c.eps).cwiseAbs();
      }
      return fine;
    }
  }
  return {};
}

// The largest of a per-stage error over the converged stages; a converged stage without an estimate (the coarser
// rule of the tensor estimate, or a qmc twin, did not converge) counts as infinitely uncertain.
double worst_converged(const TheoryResult& r, const Eigen::VectorXd& error) {
  double worst = 0.0;
  for (Eigen::Index t = 0; t < error.size(); ++t) {
    if (!r.converged[static_cast<std::size_t>(t)]) continue;
    worst = std::isnan(error[t]) ? kInf : std::max(worst, error[t]);
  }
  return worst;
}

double worst_error(const TheoryResult& r) { return worst_converged(r, r.eps_error); }

bool all_converged(const TheoryResult& r) {
  return std::all_of(r.converged.begin(), r.converged.end(), [](bool c) { return c; });
}

// Stages solved before the first that did not converge (a later stage needs every earlier one).
std::size_t converged_stages(const TheoryResult& r) {
  return static_cast<std::size_t>(std::find(r.converged.begin(), r.converged.end(), false) - r.converged.begin());
}

// The next finer rule, or false at the cap. Tensor: 1.5x the nodes. Qmc: 1.5x the inner nodes where the inner rule
// alone would miss the target; else the points that would meet it at QMC's best rate (error ~ 1/n), rounded up to a
// power of 2, or none if that is beyond the cap (each doubling costs as much as all the rules before it, and the
// replicate spread shrinks no faster than 1/n).
bool finer(IntegrationOptions& integ, const std::vector<Stage>& stages, const TheoryResult& r, double accuracy) {
  const double worst = worst_error(r);
  const int T = static_cast<int>(stages.size());
  if (integ.method == Method::tensor) {
    const int cap = max_gh_nodes(T);
    if (integ.gh_nodes >= cap) return false;
    const bool same_split = integ.split_nodes == integ.gh_nodes;
    integ.gh_nodes = std::min(cap, (3 * integ.gh_nodes + 1) / 2);
    if (same_split) integ.split_nodes = integ.gh_nodes;
    return true;
  }
  if (integ.method == Method::qmc) {
    const double inner = worst_converged(r, r.inner_error);
    if (inner > 0.5 * accuracy) {
      if (integ.qmc_gh_nodes >= kMaxQmcGhNodes) return false;
      integ.qmc_gh_nodes = std::min(kMaxQmcGhNodes, (3 * integ.qmc_gh_nodes + 1) / 2);
      return true;
    }
    const double needed = integ.qmc_points * (worst - inner) / accuracy;
    // A chain's points are cheap: it goes to kMaxQmcPoints even where the target lies beyond them, and on to its own
    // cap where that reaches the target.
    const bool chain = LimitChain::applies(stages, Method::qmc);
    const bool reachable = needed <= (chain ? kMaxChainPoints : kMaxQmcPoints);
    const int cap = chain && reachable ? kMaxChainPoints : kMaxQmcPoints;
    if (integ.qmc_points >= cap || (!chain && !reachable)) return false;
    int points = 2 * integ.qmc_points;
    while (points < needed && points < cap) points *= 2;
    integ.qmc_points = points;
    return true;
  }
  return false;  // mc: no error estimate to steer by
}

// The rule refined until the largest eps_error meets opt.accuracy, the rule is capped or a tensor rule stalls. A
// finer rule that fails to converge ends the refinement and the last converged result stands (reported as not
// accurate).
TheoryResult refined(const Problem& problem, const std::vector<Stage>& stages, Loss loss, TheoryOptions opt) {
  // A tensor rule in its convergent regime at least halves its error per 1.5x nodes; one that does not is outside
  // it (nearly collinear stages, an unresolved jump), and further nodes cost seconds without reaching the target.
  constexpr double kStall = 0.5;
  TheoryResult r = solve_with(problem, stages, loss, opt);
  while (all_converged(r) && worst_error(r) > opt.accuracy && finer(opt.integration, stages, r, opt.accuracy)) {
    TheoryResult next = solve_with(problem, stages, loss, opt, r.solution);
    if (!all_converged(next)) break;
    const bool stalled = opt.integration.method == Method::tensor && !(worst_error(next) <= kStall * worst_error(r));
    r = std::move(next);
    if (stalled) break;
  }
  r.accuracy_reached = worst_error(r) <= opt.accuracy;
  return r;
}

// Whether QMC at a quarter of its default points, two replicates and 30 iterations converges stage `failed`. The
// stage that motivated the retry (see solve_state_evolution) converged in 8; a probe that gives up early only
// forgoes a rescue.
bool qmc_probe_converges(const Problem& problem, const std::vector<Stage>& stages, Loss loss, TheoryOptions opt,
                         std::size_t failed) {
  opt.integration.method = Method::qmc;
  opt.integration.qmc_points = 256;
  opt.integration.qmc_replicates = 2;
  opt.fixed_point.max_iter = std::min(opt.fixed_point.max_iter, 30);
  return converged_stages(solve_with(problem, stages, loss, opt)) > failed;
}

}  // namespace

TheoryResult solve_state_evolution(const Problem& problem, const std::vector<Stage>& stages, Loss loss,
                                   const TheoryOptions& options) {
  validate(problem);
  validate(stages);
  validate(options);
  TheoryOptions opt = options;
  const int T = static_cast<int>(stages.size());
  opt.integration.method = resolve_method(opt.method, stages);
  if (opt.integration.gh_nodes == 0) opt.integration.gh_nodes = default_nodes(T, has_hard(stages));
  if (opt.integration.split_nodes == 0) opt.integration.split_nodes = opt.integration.gh_nodes;
  opt.integration.threads = opt.threads > 0 ? opt.threads : omp_get_num_procs();
  if (opt.integration.method == Method::mc) return solve_with(problem, stages, loss, opt);
  // Refinement needs a target and an error estimate to steer by; without them the rule is solved as given.
  const bool refine = opt.accuracy > 0.0 && opt.estimate_error;
  // A chain with a target starts at its cap: its points are cheap, and with 1024 the 8 replicates' spread can
  // understate the error several times (hard T = 3, alpha 0.43: 3.4e-6 off where it said 6e-7; 4096: 2.7e-7).
  if (refine && LimitChain::applies(stages, opt.integration.method))
    opt.integration.qmc_points = std::max(opt.integration.qmc_points, kMaxQmcPoints);
  const auto solve = [&](const TheoryOptions& o) {
    return refine ? refined(problem, stages, loss, o) : solve_with(problem, stages, loss, o);
  };
  TheoryResult r = solve(opt);
  // QMC's replicate error rarely goes below this (hard T = 3, 4096 points: 7e-6): a tensor rule that ends above
  // it is worth a QMC attempt.
  constexpr double kQmcFloor = 1e-5;
  const bool inaccurate = refine && all_converged(r) && worst_error(r) > std::max(opt.accuracy, kQmcFloor);
  // A stage that does not converge under the tensor rule is tried again with QMC: nearly collinear stages can
  // leave the rule's field covariance indefinite, at lam = inf (whose map is constant) and at finite lam alike
  // (alpha 0.1, theta 0.1, hard lam 22, 455, 2.8: stage 3 fails at 12 nodes, and 8-32 nodes scatter by 3e-4).
  // A finite-lam stage may also have no fixed point at all (hard, alpha 1e3, lam 1e-3: QMC fails too, after 2-4 s
  // where the tensor rule took 0.04 s, and a search meets hundreds of such points), so a cheap QMC probe must
  // converge it before the full QMC solve is paid for.
  const std::size_t failed = converged_stages(r);
  const bool failure = failed < stages.size();
  if (options.method == Method::automatic && opt.integration.method == Method::tensor && (failure || inaccurate)) {
    if (failure && !stages[failed].is_limit() && !qmc_probe_converges(problem, stages, loss, opt, failed)) return r;
    // Nearly collinear stages can defeat the tensor rule at every node count (alpha 1e3, lam 100, hard T = 3:
    // 0.088-0.129 for 12-40 nodes), where QMC's replicates still agree (0.10191 +- 7e-6); at small alpha its
    // integration error can leave a limit stage's field covariance indefinite, so that the stage does not converge
    // (alpha 0.19, hard T = 4 at lam = inf: stage 3 at 12 nodes), where QMC converges. Keep the better: more
    // converged stages first, then the smaller error.
    TheoryOptions qmc = opt;
    qmc.integration.method = Method::qmc;
    TheoryResult alt = solve(qmc);
    if (converged_stages(alt) > converged_stages(r) ||
        (all_converged(alt) && all_converged(r) && worst_error(alt) < worst_error(r))) {
      r = std::move(alt);
    }
  }
  return r;
}

}  // namespace sdgmm
