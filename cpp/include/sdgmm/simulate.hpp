// Finite-size multi-stage self-distillation: draw the data, train stage after stage on the same
// inputs, and measure each stage's exact population error from (m, Q, B) (theory.md section 3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sdgmm/problem.hpp"
#include "sdgmm/train.hpp"

namespace sdgmm {

struct SimulationOptions {
  int N = 1000;
  int trials = 8;
  std::uint64_t seed = 0;
  int threads = 0;  // 0 = all cores; trials run in parallel, one fit per thread
  TrainOptions train;
};

struct StageOutcome {
  double eps = 0, m = 0, Q = 0, q = 0, b = 0;  // q = w^T Sigma w / N, the test field's variance
  double train_error = 0;      // fraction of training points whose prediction 1{u > 0} differs from the stage's target
  double targets_vs_true = 0;  // fraction of the stage's targets (read as 1{y >= 1/2}) that differ from the true labels
  double targets_vs_noisy = 0;  // ... from the observed noisy labels
  TrainReport fit;
};

struct TrialOutcome {
  std::vector<StageOutcome> stages;
};

// Throws std::invalid_argument for bad sizes, or when the concurrent datasets would not fit in
// memory (before allocating anything).
void validate(const Problem& problem, const SimulationOptions& options);

// Bytes the run needs at once: concurrent trials x (X plus per-sample vectors).
std::size_t simulation_bytes(const Problem& problem, const SimulationOptions& options);

std::vector<TrialOutcome> simulate(const Problem& problem, const std::vector<Stage>& stages, Loss loss,
                                   const SimulationOptions& options);

// One trial (used by simulate and by tests that need the data of a trial).
TrialOutcome run_trial(const Dataset& data, const std::vector<Stage>& stages, Loss loss, const Problem& problem,
                       const TrainOptions& train);

}  // namespace sdgmm
