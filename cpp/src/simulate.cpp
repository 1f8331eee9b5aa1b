#include "sdgmm/simulate.hpp"

#include <omp.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "sdgmm/error.hpp"
#include "sdgmm/loss.hpp"

namespace sdgmm {
namespace {

int concurrency(const SimulationOptions& o) {
  const int cores = omp_get_num_procs();
  return std::max(1, std::min(o.trials, o.threads > 0 ? o.threads : cores));
}

// MemAvailable from /proc/meminfo (Linux), else the physical memory.
std::size_t available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  std::size_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGE_SIZE));
}

template <class L>
Eigen::VectorXd next_targets(const Eigen::VectorXd& u, const Eigen::VectorXd& noisy, const Stage& next) {
  return u.binaryExpr(noisy, [&](double v, double y) { return mixed_target(next_target<L>(v, next), y, next); });
}

double fraction_differing(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  return ((a.array() >= 0.5) != (b.array() >= 0.5)).cast<double>().mean();
}

}  // namespace

std::size_t simulation_bytes(const Problem& problem, const SimulationOptions& o) {
  const int M = training_size(problem, o.N);
  // X plus about ten vectors of length M or N per fit (targets, logits, curvatures, CG vectors).
  const std::size_t per_trial = dataset_bytes(o.N, M) + 10 * sizeof(double) * (static_cast<std::size_t>(M) + o.N);
  return static_cast<std::size_t>(concurrency(o)) * per_trial;
}

void validate(const Problem& problem, const SimulationOptions& o) {
  validate(problem);
  if (o.N < 1) throw std::invalid_argument("N must be >= 1 (got " + std::to_string(o.N) + ")");
  if (problem.spectrum && static_cast<std::size_t>(o.N) != problem.spectrum->eigenvalues.size())
    throw std::invalid_argument("N must be the spectrum's dimension " +
                                std::to_string(problem.spectrum->eigenvalues.size()) + " (got " + std::to_string(o.N) +
                                ")");
  if (o.trials < 1) throw std::invalid_argument("trials must be >= 1 (got " + std::to_string(o.trials) + ")");
  if (o.threads < 0) throw std::invalid_argument("threads must be >= 0 (got " + std::to_string(o.threads) + ")");
  if (!(o.train.tol > 0.0) || !std::isfinite(o.train.tol))
    throw std::invalid_argument("tol must be a finite number > 0 (got " + shown(o.train.tol) + ")");
  const double M = problem.alpha * o.N;
  if (M < 0.5) throw std::invalid_argument("alpha * N must give at least one training point (got " + shown(M) + ")");
  if (M >= 2147483647.0)
    throw std::invalid_argument("N: M = alpha * N = " + shown(M) + " training points exceeds 2^31 - 1");
  const double need_estimate = 8.0 * concurrency(o) * (M + 10.0) * o.N;  // before any size_t arithmetic
  const std::size_t have = available_bytes();
  if (need_estimate > static_cast<double>(have))
    throw std::invalid_argument("N: the simulation needs about " + shown(need_estimate) + " bytes (" +
                                std::to_string(concurrency(o)) + " concurrent trials of M = " + shown(std::round(M)) +
                                " x N = " + std::to_string(o.N) + " doubles) but only " + std::to_string(have) +
                                " bytes are available; lower N or threads");
  const std::size_t need = simulation_bytes(problem, o);
  if (need > have)
    throw std::invalid_argument(
        "N: the simulation needs " + std::to_string(need) + " bytes (" + std::to_string(concurrency(o)) +
        " concurrent trials of M = " + std::to_string(training_size(problem, o.N)) + " x N = " + std::to_string(o.N) +
        ") but only " + std::to_string(have) + " bytes are available; lower N or threads");
}

TrialOutcome run_trial(const Dataset& d, const std::vector<Stage>& stages, Loss loss, const Problem& problem,
                       const TrainOptions& train) {
  const Eigen::Index N = d.X.cols();
  const Geometry geo = geometry(problem, static_cast<int>(N));
  TrialOutcome out;
  LinearModel model{Eigen::VectorXd::Zero(N), 0.0};
  Eigen::VectorXd targets = d.y_noisy, u;
  double first_bias = 0.0;
  for (std::size_t t = 0; t < stages.size(); ++t) {
    const Stage& st = stages[t];
    if (t > 0) targets = with_loss(loss, [&]<class L>(L) { return next_targets<L>(u, d.y_noisy, st); });
    if (st.bias == BiasPolicy::fix_first) model.B = first_bias;
    if (st.bias == BiasPolicy::fixed) model.B = st.bias_value;
    StageOutcome so;
    so.fit = fit_linear(d.X, targets, Eigen::VectorXd(), loss, st.lam, st.bias == BiasPolicy::learn, model, u, train);
    if (t == 0) first_bias = model.B;
    so.m = geo.mean.dot(model.w) / static_cast<double>(N);  // mu~ . w / N
    so.Q = model.w.squaredNorm() / static_cast<double>(N);
    so.q = geo.sd.cwiseProduct(model.w).squaredNorm() / static_cast<double>(N);  // w^T Sigma w / N
    so.b = model.B;
    so.eps = generalisation_error(so.m, so.b, so.q, problem.rho);
    const Eigen::VectorXd predicted = (u.array() > 0.0).cast<double>();
    so.train_error = fraction_differing(predicted, targets);
    so.targets_vs_true = fraction_differing(targets, d.y_true);
    so.targets_vs_noisy = fraction_differing(targets, d.y_noisy);
    out.stages.push_back(so);
  }
  return out;
}

std::vector<TrialOutcome> simulate(const Problem& problem, const std::vector<Stage>& stages, Loss loss,
                                   const SimulationOptions& options) {
  validate(stages);
  validate(problem, options);
  const int workers = concurrency(options);
  TrainOptions train = options.train;
  // Parallel trials with one fit per thread; a lone trial gets all threads for its passes.
  const int cores = omp_get_num_procs();
  train.threads = workers > 1 ? 1 : (options.threads > 0 ? options.threads : cores);
  std::vector<TrialOutcome> trials(options.trials);
#pragma omp parallel for num_threads(workers) if (workers > 1) schedule(dynamic, 1)
  for (int k = 0; k < options.trials; ++k) {
    const Dataset d = draw_dataset(problem, options.N, options.seed, static_cast<std::uint64_t>(k));
    trials[k] = run_trial(d, stages, loss, problem, train);
  }
  return trials;
}

}  // namespace sdgmm
