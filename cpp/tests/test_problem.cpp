#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "sdgmm/problem.hpp"

using namespace sdgmm;

namespace {
// The message of the std::invalid_argument thrown by f, or "" if none.
template <class F>
std::string message_of(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("invalid problems are rejected with the parameter's name first") {
  const Problem ok{.alpha = 2, .delta = 0.5, .rho = 0.4, .theta = 0.2};
  CHECK(message_of([&] { validate(ok); }).empty());
  struct Case {
    Problem p;
    const char* name;
  };
  const Case cases[] = {
      {{.alpha = 0.0, .delta = 0.5}, "alpha"},
      {{.alpha = -1, .delta = 0.5}, "alpha"},
      {{.alpha = NAN, .delta = 0.5}, "alpha"},
      {{.alpha = 1, .delta = 0.0}, "delta"},
      {{.alpha = 1, .delta = INFINITY}, "delta"},
      {{.alpha = 1, .delta = 1, .rho = 0.0}, "rho"},
      {{.alpha = 1, .delta = 1, .rho = 1.0}, "rho"},
      {{.alpha = 1, .delta = 1, .theta = 1.0}, "theta"},
      {{.alpha = 1, .delta = 1, .theta = -0.1}, "theta"},
      {{.alpha = 1, .delta = 1, .theta_plus = 1.2}, "theta_plus"},
      {{.alpha = 1, .delta = 1, .theta_minus = NAN}, "theta_minus"},
  };
  for (const Case& c : cases) {
    const std::string msg = message_of([&] { validate(c.p); });
    CAPTURE(msg);
    CHECK(msg.rfind(c.name, 0) == 0);
  }
}

TEST_CASE("invalid stage lists are rejected naming the stage") {
  CHECK(message_of([] { validate(std::vector<Stage>{}); }).rfind("stages", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1}, {.lam = -1, .beta = 1}}); }).rfind("lam of stage 2", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1}, {.lam = 1, .beta = -0.5}}); }).rfind("beta of stage 2", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1}, {.lam = 1}}); }).rfind("beta of stage 2", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1, .beta = 2}}); }).rfind("beta of stage 1", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1, .bias = BiasPolicy::fix_first}}); }).rfind("bias of stage 1", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1}, {.lam = 1, .targets = Targets::hard}}); }).empty());
  CHECK(message_of([] { validate({{.lam = 1, .xi = 0.5}}); }).rfind("xi of stage 1", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1}, {.lam = 1, .beta = 1, .xi = NAN}}); }).rfind("xi of stage 2", 0) == 0);
  CHECK(message_of([] { validate({{.lam = 1}, {.lam = 1, .targets = Targets::hard, .xi = -2.5}}); }).empty());
}

TEST_CASE("label classes carry the mixture and flip probabilities") {
  const Problem p{.alpha = 1, .delta = 1, .rho = 0.3, .theta = 0.1, .theta_plus = 0.25};
  double total = 0, flipped_plus = 0;
  for (const LabelClass& c : label_classes(p)) {
    total += c.prob;
    if (c.s > 0 && c.y_noisy == 0.0) flipped_plus += c.prob;
  }
  CHECK(total == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(flipped_plus == doctest::Approx(0.3 * 0.25).epsilon(1e-15));
}

TEST_CASE("string parsers name the option") {
  CHECK(parse_loss("square") == Loss::square);
  CHECK(message_of([] { parse_loss("hinge"); }).rfind("loss", 0) == 0);
  CHECK(message_of([] { parse_bias("free"); }).rfind("bias", 0) == 0);
}
