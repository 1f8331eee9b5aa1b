// Multi-stage self-distillation theory from C++, without Python: theory.md's first table row.
#include <cstdio>

#include "sdgmm/state_evolution.hpp"

int main() {
  using namespace sdgmm;
  const Problem problem{.alpha = 1.5, .delta = 0.5, .rho = 0.4, .theta = 0.2};
  const std::vector<Stage> stages{{.lam = 1.5}, {.lam = 0.5, .beta = 0.8}, {.lam = 2.0, .beta = 1.2}};
  const TheoryResult r = solve_state_evolution(problem, stages, Loss::logistic);
  std::printf("method %s\nstage        eps    +-error          m          b  iterations  converged\n",
              r.method.c_str());
  for (int t = 0; t < r.eps.size(); ++t)
    std::printf("%5d %10.7f %10.1e %10.6f %10.6f %11d %10s\n", t + 1, r.eps[t], r.eps_error[t], r.m[t], r.b[t],
                r.iterations[t], r.converged[t] ? "yes" : "no");
  return r.converged.back() ? 0 : 1;
}
