#include "sdgmm/state_evolution.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "sdgmm/error.hpp"
#include "sdgmm/integrate.hpp"

namespace sdgmm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The saddle-point state of all stages. Stage t's unknowns are packed as
// x = (mh_t, Qh_{1..t,t}, chih_{1..t,t}[, b_t if learned]); set_stage() derives the order
// parameters from them (theory.md "Order parameters of stage t") and next_x() the conjugates
// from the effective-process moments ("Conjugates of stage t").
class Saddle {
 public:
  Saddle(const Problem& p, const std::vector<Stage>& stages, bool reference_bias_update)
      : p_(p), st_(stages), T_(static_cast<int>(stages.size())), reference_bias_(reference_bias_update) {
    for (Eigen::MatrixXd* M : {&Qh, &chih, &R, &Q, &chi, &U}) M->setConstant(T_, T_, kNaN);
    for (Eigen::VectorXd* v : {&m, &mh, &b}) v->setConstant(T_, kNaN);
  }

  bool learns_bias(int t) const { return st_[t].bias == BiasPolicy::learn; }
  // A lam = inf stage is solved rescaled, with ridge 1 (see LinearLimitLoss).
  double ridge(int k) const { return st_[k].is_limit() ? 1.0 : st_[k].lam; }

  Eigen::VectorXd initial_x(int t) const {
    Eigen::VectorXd x = Eigen::VectorXd::Zero(2 * t + 3 + (learns_bias(t) ? 1 : 0));
    if (t == 0) {
      x[2] = ridge(0) * ridge(0);  // chih_11 = lam^2: a start at m = 0, Q = 1, chi = 1 / lam
    } else {                       // the previous stage's diagonal, uncorrelated with the earlier stages
      x[0] = mh[t - 1];
      x[1 + t] = Qh(t - 1, t - 1);
      x[2 + 2 * t] = chih(t - 1, t - 1);
    }
    if (learns_bias(t)) x[x.size() - 1] = t == 0 ? 0.0 : b[t - 1];
    return x;
  }

  // Writes stage t from x; nullopt if x gives no valid state (chi_tt <= 0 or Q not positive).
  std::optional<StageField> set_stage(int t, const Eigen::VectorXd& x) {
    mh[t] = x[0];
    for (int k = 0; k <= t; ++k) Qh(k, t) = x[1 + k], chih(k, t) = x[2 + t + k];
    b[t] = bias_of(t, x);
    auto g = [&](int k) { return Qh(k, k) + ridge(k); };
    const double gt = g(t);
    if (!(gt > 0.0)) return std::nullopt;
    chi(t, t) = 1.0 / gt;
    for (int k = 0; k < t; ++k) chi(k, t) = -(Qh(t - 1, t) / gt) * chi(k, t - 1);
    double acc = mh[t];
    for (int j = 0; j < t; ++j) acc -= Qh(j, t) * m[j];
    m[t] = acc / gt;
    for (int k = 0; k <= t; ++k) {
      double r = chih(k, t);
      for (int j = 0; j < k; ++j) r -= Qh(j, k) * R(t, j);
      R(t, k) = r / g(k);
    }
    for (int k = 0; k < t; ++k) {
      double r = chih(k, t);
      for (int j = 0; j < t; ++j) r -= Qh(j, t) * R(k, j);
      R(k, t) = r / gt;
    }
    for (int k = 0; k <= t; ++k) {
      double q = m[t] * mh[k] + R(k, t);
      for (int j = 0; j < k; ++j) q -= Qh(j, k) * Q(j, t);
      Q(k, t) = Q(t, k) = q / g(k);
    }
    // Column t of the upper Cholesky factor of delta Q; the leading block is frozen.
    StageField f;
    double rest = p_.delta * Q(t, t);
    for (int k = 0; k < t; ++k) {
      double u = p_.delta * Q(k, t);
      for (int j = 0; j < k; ++j) u -= U(j, k) * U(j, t);
      U(k, t) = u / U(k, k);
      rest -= U(k, t) * U(k, t);
      f.U.push_back(U(k, t));
      f.r.push_back(chi(k, t) / chi(k, k));
    }
    if (!(rest > 1e-14 * p_.delta * Q(t, t)) || !std::isfinite(rest)) return std::nullopt;
    U(t, t) = std::sqrt(rest);
    f.U.push_back(U(t, t));
    f.m = m[t];
    f.b = b[t];
    f.c = p_.delta * chi(t, t);
    f.limit = st_[t].is_limit();
    return f;
  }

  // `stein`: every stage up to t has soft targets, so z_t is smooth in the fields (hard targets
  // jump, and Stein's lemma would need boundary terms there).
  Eigen::VectorXd next_x(int t, const StageMoments& mo, const Eigen::VectorXd& x, bool stein) const {
    const double a = p_.alpha, d = p_.delta, ct = chi(t, t);
    Eigen::VectorXd y(x.size());
    y[0] = a / (d * ct) * mo.s_z;
    if (stein) {
      // Stein's lemma in the field basis g = U^T xi: U^{-1} E[z xi] = E[grad_g z], so
      // Qh_{l,t} = -(alpha / chi_tt) E[dz_t / dg_l] with no division by U, which is nearly
      // singular when stages are nearly collinear and would amplify integration errors.
      for (int l = 0; l <= t; ++l) y[1 + l] = -(a / ct) * mo.dz_dg[l];
    } else {
      // Qh_{1..t,t} = U^{-1} a with a_k = -(alpha / chi_tt) E[z_t xi_k]: back substitution.
      for (int k = t; k >= 0; --k) {
        double q = -(a / ct) * mo.z_xi[k];
        for (int j = k + 1; j <= t; ++j) q -= U(k, j) * y[1 + j];
        y[1 + k] = q / U(k, k);
      }
    }
    for (int k = 0; k < t; ++k) y[2 + t + k] = a / (d * ct * chi(k, k)) * mo.z_z[k];
    y[2 + 2 * t] = a / (d * ct * ct) * mo.zz;
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

  double eps(int t) const { return generalisation_error(m[t], b[t], Q(t, t), p_.delta, p_.rho); }

  Eigen::MatrixXd Qh, chih, R, Q, chi, U;
  Eigen::VectorXd m, mh, b;

 private:
  double bias_of(int t, const Eigen::VectorXd& x) const {
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

  const Problem& p_;
  const std::vector<Stage>& st_;
  int T_;
  bool reference_bias_;
};

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
  r.method = method == Method::tensor ? "tensor" : method == Method::qmc ? "qmc" : "mc";
  for (Eigen::VectorXd* v : {&r.eps, &r.eps_error, &r.m, &r.b, &r.mh, &r.conditioning}) v->setConstant(T, kNaN);
  for (Eigen::MatrixXd* M : {&r.Q, &r.chi, &r.Qh, &r.chih}) M->setConstant(T, T, kNaN);
  r.iterations.assign(T, 0);
  r.residual.assign(T, kNaN);
  r.converged.assign(T, false);
  r.collapsed.assign(T, false);
  return r;
}

// Probability that the stage about to be trained has target 1: sum of weights times targets.
double target_mass(const ParticleSet& set) {
  double mass = 0.0;
  for (std::size_t p = 0; p < set.size(); ++p) mass += set.weight[p] * set.target[p];
  return mass;
}

// A stage that predicts the constant class `sign` everywhere (b = +-inf, m = Q = 0): eps = rho or 1 - rho.
void record_constant(const Problem& p, int t, int sign, TheoryResult& res) {
  res.eps[t] = sign > 0 ? 1.0 - p.rho : p.rho;
  res.eps_error[t] = 0.0;
  res.m[t] = 0.0;
  res.Q(t, t) = 0.0;
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

// One full stage-by-stage solve with one integration rule.
TheoryResult solve_once(const Problem& p, const std::vector<Stage>& stages, Loss loss, const IntegrationOptions& integ,
                        const FixedPointOptions& fp) {
  const int T = static_cast<int>(stages.size());
  const Eigen::MatrixXd samples = sample_matrix(integ, T);
  Saddle sd(p, stages, integ.method == Method::mc);
  TheoryResult res = empty_result(T, integ.method);
  ParticleSet outer = initial_particles(p, integ, samples);
  for (int t = 0; t < T; ++t) {
    if (loss == Loss::logistic && stages[t].bias == BiasPolicy::learn) {
      if (record_collapse(p, t, target_mass(outer), res)) {
        // Its logits are all -inf (+inf): the next targets are that class again, hard or soft.
        // A soft next stage would train on targets of exactly 0 (1), which is the same collapse;
        // a fixed-bias continuation is not modelled and ends the solve as not converged.
        const bool continues = t + 1 < T && stages[t + 1].bias == BiasPolicy::learn;
        if (!continues) break;
        continue;
      }
    }
    if (stages[t].is_limit()) {
      // Stages after a constant classifier are not modelled: the solve ends, they stay NaN.
      const int sign = limit_prediction(p, stages, t, target_mass(outer), t > 0 ? sd.b[0] : 0.0);
      if (sign != 0) {
        record_constant(p, t, sign, res);
        break;
      }
    }
    std::vector<double> guess;
    // The reference mode keeps the reference's xi-basis form.
    const bool stein =
        integ.method != Method::mc && std::all_of(stages.begin() + 1, stages.begin() + t + 1,
                                                  [](const Stage& s) { return s.targets == Targets::soft; });
    const FixedPointMap G = [&](const Eigen::VectorXd& x) -> std::optional<Eigen::VectorXd> {
      const auto field = sd.set_stage(t, x);
      if (!field) return std::nullopt;
      return sd.next_x(t, stage_moments(outer, *field, loss, integ, samples, stein, guess), x, stein);
    };
    Eigen::VectorXd x = sd.initial_x(t);
    const FixedPointReport rep = solve_fixed_point(G, x, fp);
    const auto field = sd.set_stage(t, x);
    res.iterations[t] = rep.iterations;
    res.residual[t] = rep.residual;
    res.converged[t] = rep.converged && field && std::isfinite(sd.eps(t));
    if (!res.converged[t]) break;
    res.eps[t] = sd.eps(t);
    res.m[t] = sd.m[t];
    res.b[t] = sd.b[t];
    res.mh[t] = sd.mh[t];
    res.conditioning[t] = std::sqrt(p.delta * sd.Q(t, t)) / sd.U(t, t);
    for (int k = 0; k <= t; ++k) {
      res.Q(k, t) = res.Q(t, k) = sd.Q(k, t);
      res.chi(k, t) = sd.chi(k, t);
      res.Qh(k, t) = sd.Qh(k, t);
      res.chih(k, t) = sd.chih(k, t);
    }
    if (t + 1 < T) outer = freeze_stage(outer, *field, loss, stages[t + 1], integ, samples);
  }
  return res;
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
  mean(&TheoryResult::Q), mean(&TheoryResult::chi), mean(&TheoryResult::Qh), mean(&TheoryResult::chih);
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
  return out;
}

TheoryResult solve_qmc(const Problem& p, const std::vector<Stage>& stages, Loss loss, const TheoryOptions& opt) {
  const int R = std::max(2, opt.integration.qmc_replicates);
  std::vector<TheoryResult> reps(R);
  const std::uint64_t seed = opt.integration.seed;  // both halves: seeds differing in the upper 32 bits differ
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
  std::vector<std::uint64_t> seeds(R);
  seq.generate(seeds.begin(), seeds.end());
  const int threads =
      std::max(1, std::min(R, opt.threads > 0 ? opt.threads : static_cast<int>(std::thread::hardware_concurrency())));
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) {
    pool.emplace_back([&, w] {
      for (int r = w; r < R; r += threads) {
        IntegrationOptions integ = opt.integration;
        integ.seed = seeds[r];
        reps[r] = solve_once(p, stages, loss, integ, opt.fixed_point);
      }
    });
  }
  for (std::thread& th : pool) th.join();
  return average(reps);
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

Method resolve_method(MethodChoice choice, int T, bool hard) {
  switch (choice) {
    case MethodChoice::tensor:
      return Method::tensor;
    case MethodChoice::qmc:
      return Method::qmc;
    case MethodChoice::mc:
      return Method::mc;
    case MethodChoice::automatic:
      break;
  }
  return T <= (hard ? 5 : 6) ? Method::tensor : Method::qmc;
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
  need(i.split_nodes == 0 || (i.split_nodes >= 2 && i.split_nodes <= 400), "split_nodes",
       "must be 0 (as gh_nodes) or lie in [2, 400]", i.split_nodes);
  need(i.qmc_points >= 2, "qmc_points", "must be >= 2", i.qmc_points);
  need(i.qmc_replicates >= 2, "qmc_replicates", "must be >= 2 (their spread is the error estimate)", i.qmc_replicates);
  need(i.mc_samples >= 1, "mc_samples", "must be >= 1", i.mc_samples);
  need(o.fixed_point.tol > 0.0 && std::isfinite(o.fixed_point.tol), "tol", "must be a finite number > 0",
       o.fixed_point.tol);
  need(o.fixed_point.max_iter >= 1, "max_iter", "must be >= 1", o.fixed_point.max_iter);
  need(o.threads >= 0, "threads", "must be >= 0 (0 = all cores)", o.threads);
}

TheoryResult solve_state_evolution(const Problem& problem, const std::vector<Stage>& stages, Loss loss,
                                   const TheoryOptions& options) {
  validate(problem);
  validate(stages);
  validate(options);
  TheoryOptions opt = options;
  const int T = static_cast<int>(stages.size());
  opt.integration.method = resolve_method(opt.method, T, has_hard(stages));
  if (opt.integration.gh_nodes == 0) opt.integration.gh_nodes = default_nodes(T, has_hard(stages));
  if (opt.integration.split_nodes == 0) opt.integration.split_nodes = opt.integration.gh_nodes;
  switch (opt.integration.method) {
    case Method::mc: {
      // The reference's iteration: damping 0.9 on the old iterate, tolerance 1e-7.
      const FixedPointOptions reference{1e-7, 20000, 0, 0.9, 20000};
      return solve_once(problem, stages, loss, opt.integration, reference);
    }
    case Method::qmc:
      return solve_qmc(problem, stages, loss, opt);
    case Method::tensor: {
      TheoryResult fine = solve_once(problem, stages, loss, opt.integration, opt.fixed_point);
      if (opt.estimate_error) {
        IntegrationOptions coarse = opt.integration;
        // One node fewer: its error bounds the finer rule's (Gauss rules converge monotonically
        // here), at (1 - 1/n)^(T-1) of the cost.
        coarse.gh_nodes = std::max(2, coarse.gh_nodes - 1);
        coarse.split_nodes = std::max(2, coarse.split_nodes - 1);
        const TheoryResult c = solve_once(problem, stages, loss, coarse, opt.fixed_point);
        fine.eps_error = (fine.eps - c.eps).cwiseAbs();
      }
      return fine;
    }
  }
  return {};
}

}  // namespace sdgmm
