#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "sdgmm/simulate.hpp"

using namespace sdgmm;

namespace {
const Problem kProblem{.alpha = 2.0, .delta = 0.5, .rho = 0.4, .theta = 0.2};
}

TEST_CASE("bad simulation sizes are refused before anything is allocated") {
  auto message = [](const SimulationOptions& o) {
    try {
      validate(kProblem, o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(message({.N = 0}).rfind("N", 0) == 0);
  CHECK(message({.N = 10, .trials = 0}).rfind("trials", 0) == 0);
  const std::string huge = message({.N = 1000000, .trials = 2});
  CHECK(huge.rfind("N", 0) == 0);
  CHECK(huge.find("bytes") != std::string::npos);
}

TEST_CASE("a trial measures m and q from its weights in the spectrum's geometry") {
  // q = w^T Sigma w / N: with the mean in one coordinate and no noise in it, m and q come from different weights.
  const Problem p{.alpha = 20.0, .rho = 0.5, .theta = 0.0, .spectrum = Spectrum{{0.0, 1.0}, {1.0, 0.0}}};
  const Dataset d = draw_dataset(p, 2, 3, 0);
  const TrialOutcome out = run_trial(d, {Stage{.lam = 0.5}}, Loss::square, p, {});
  const StageOutcome& so = out.stages[0];
  CHECK(so.q <= so.Q * 2.0);  // q weighs coordinate 2 only, Q both
  CHECK(so.eps >= 0.0);
  CHECK(so.eps <= 0.5);
}
