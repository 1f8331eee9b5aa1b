#include "sdgmm/problem.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace sdgmm {

std::string shown(double value) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;  // shortest round trip: -1e-09
  return std::string(buf, end);
}

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what, double value) {
  throw std::invalid_argument(name + " " + what + " (got " + shown(value) + ")");
}

void require_finite(const std::string& name, double value) {
  if (!std::isfinite(value)) fail(name, "must be a finite number", value);
}

void require_flip_rate(const std::string& name, double value) {
  require_finite(name, value);
  if (value < 0.0 || value >= 1.0) fail(name, "must lie in [0, 1)", value);
}

}  // namespace

std::array<LabelClass, 4> label_classes(const Problem& p) {
  const double tp = p.flip_plus();
  const double tm = p.flip_minus();
  return {{{-1.0, 0.0, (1.0 - p.rho) * (1.0 - tm)},
           {+1.0, 1.0, p.rho * (1.0 - tp)},
           {-1.0, 1.0, (1.0 - p.rho) * tm},
           {+1.0, 0.0, p.rho * tp}}};
}

void validate_spectrum(const Spectrum& s) {
  const std::size_t N = s.eigenvalues.size();
  if (N == 0) throw std::invalid_argument("eigenvalues must hold at least one value (got none)");
  if (s.mean.size() != N)
    throw std::invalid_argument("mean must hold one value per eigenvalue (got " + std::to_string(s.mean.size()) +
                                " values for " + std::to_string(N) + " eigenvalues)");
  bool variance = false, signal = false;
  for (std::size_t i = 0; i < N; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    require_finite("eigenvalues" + at, s.eigenvalues[i]);
    if (s.eigenvalues[i] < 0.0) fail("eigenvalues" + at, "must be >= 0", s.eigenvalues[i]);
    require_finite("mean" + at, s.mean[i]);
    variance = variance || s.eigenvalues[i] > 0.0;
    signal = signal || s.mean[i] != 0.0;
  }
  if (!variance) throw std::invalid_argument("eigenvalues must hold a value > 0 (got only zeros: no noise)");
  if (!signal) throw std::invalid_argument("mean must hold a value other than 0 (got only zeros: no class signal)");
}

void validate(const Problem& p) {
  require_finite("alpha", p.alpha);
  if (p.alpha <= 0.0) fail("alpha", "must be > 0", p.alpha);
  if (p.spectrum) {
    validate_spectrum(*p.spectrum);
  } else {
    require_finite("delta", p.delta);
    if (p.delta <= 0.0) fail("delta", "must be > 0", p.delta);
  }
  require_finite("rho", p.rho);
  if (p.rho <= 0.0 || p.rho >= 1.0) fail("rho", "must lie in (0, 1)", p.rho);
  require_flip_rate("theta", p.theta);
  if (p.theta_plus) require_flip_rate("theta_plus", *p.theta_plus);
  if (p.theta_minus) require_flip_rate("theta_minus", *p.theta_minus);
}

void validate(const std::vector<Stage>& stages) {
  if (stages.empty()) throw std::invalid_argument("stages must hold at least one stage (got an empty list)");
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const Stage& st = stages[i];
    const std::string at = " of stage " + std::to_string(i + 1);
    if (std::isnan(st.lam) || st.lam <= 0.0) fail("lam" + at, "must be > 0 (inf for the lam -> inf limit)", st.lam);
    require_finite("xi" + at, st.xi);
    if (i == 0) {
      if (st.xi != 1.0) fail("xi of stage 1", "must be 1: stage 1 trains on the noisy labels", st.xi);
      if (st.beta) throw std::invalid_argument("beta of stage 1 must not be given: stage 1 trains on the noisy labels");
      if (st.targets == Targets::hard)
        throw std::invalid_argument("hard targets cannot apply to stage 1: stage 1 trains on the noisy labels");
      if (st.bias == BiasPolicy::fix_first)
        throw std::invalid_argument(
            "bias of stage 1 cannot be 'fix_first' (it is the stage whose bias is kept); use 'learn' or 'fixed'");
    } else if (st.targets == Targets::soft) {
      if (!st.beta) throw std::invalid_argument("beta" + at + " is required for soft targets");
      require_finite("beta" + at, *st.beta);
      if (*st.beta <= 0.0) fail("beta" + at, "must be > 0 (use hard targets for beta -> inf)", *st.beta);
    } else if (st.beta) {
      throw std::invalid_argument("beta" + at + " must not be given for hard targets");
    }
    if (st.bias == BiasPolicy::fixed) require_finite("bias_value" + at, st.bias_value);
  }
}

Loss parse_loss(const std::string& name) {
  if (name == "logistic") return Loss::logistic;
  if (name == "square") return Loss::square;
  throw std::invalid_argument("loss must be 'logistic' or 'square' (got '" + name + "')");
}

BiasPolicy parse_bias(const std::string& name) {
  if (name == "learn") return BiasPolicy::learn;
  if (name == "fix_first") return BiasPolicy::fix_first;
  if (name == "fixed") return BiasPolicy::fixed;
  throw std::invalid_argument("bias must be 'learn', 'fix_first' or 'fixed' (got '" + name + "')");
}

Method parse_method(const std::string& name) {
  if (name == "auto") return Method::automatic;
  if (name == "tensor") return Method::tensor;
  if (name == "qmc") return Method::qmc;
  if (name == "mc") return Method::mc;
  throw std::invalid_argument("method must be 'auto', 'tensor', 'qmc' or 'mc' (got '" + name + "')");
}

std::string to_string(Method method) {
  switch (method) {
    case Method::automatic:
      return "auto";
    case Method::tensor:
      return "tensor";
    case Method::qmc:
      return "qmc";
    case Method::mc:
      return "mc";
  }
  return "?";
}

std::string to_string(BiasPolicy b) {
  switch (b) {
    case BiasPolicy::learn:
      return "learn";
    case BiasPolicy::fix_first:
      return "fix_first";
    case BiasPolicy::fixed:
      return "fixed";
  }
  return "?";
}

}  // namespace sdgmm
