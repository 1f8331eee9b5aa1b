// The noisy Gaussian mixture and the description of a multi-stage self-distillation run
// (theory.md sections 1-2). Plain value types; validate() throws std::invalid_argument whose
// message starts with the offending parameter's name.
#pragma once

#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace sdgmm {

// A covariance Sigma = U diag(sigma) U^T shared by both classes and the class-mean vector in its eigenbasis,
// mu~ = U^T mu (theory.md section 6): the data model x = s mu / sqrt(N) + Sigma^{1/2} zeta in dimension
// N = eigenvalues.size(). The isotropic model is sigma_i = delta, mu~_i = 1.
struct Spectrum {
  std::vector<double> eigenvalues;  // sigma_i >= 0
  std::vector<double> mean;         // mu~_i
};

// Data model: x = s v / sqrt(N) + sqrt(delta) zeta, P(s = +1) = rho, labels flipped with
// probability theta (or theta_plus / theta_minus for true class +1 / -1); with a spectrum, x = s mu /
// sqrt(N) + Sigma^{1/2} zeta instead, and delta is not used. The defaults are the paper's main setting,
// and the defaults of the Python API and the CLI.
struct Problem {
  double alpha = 2.0;                 // M / N
  double delta = 0.5;                 // noise variance per coordinate (isotropic model)
  double rho = 0.5;                   // P(s = +1)
  double theta = 0.3;                 // symmetric label-flip rate
  std::optional<double> theta_plus;   // flip rate of true class +1 (default theta)
  std::optional<double> theta_minus;  // flip rate of true class -1 (default theta)
  std::optional<Spectrum> spectrum;   // the general-covariance model instead of delta

  double flip_plus() const { return theta_plus.value_or(theta); }
  double flip_minus() const { return theta_minus.value_or(theta); }
};

enum class Loss { logistic, square };
// How the state evolution integrates over the Gaussian fields: `automatic` picks tensor or qmc by the
// number of stages (resolve_method in state_evolution.hpp); mc is the reference's plain Monte Carlo.
enum class Method { automatic, tensor, qmc, mc };
enum class Targets { soft, hard };                  // how stage t >= 2 builds its targets
enum class BiasPolicy { learn, fix_first, fixed };  // fix_first: B_t = B_1

// One training stage. Stage 1 trains on the noisy labels, so `targets`, `beta` and `xi` only mean
// something for stages t >= 2, where `beta` is the temperature applied to stage t-1's logits and the
// stage trains on xi * (stage t-1's pseudo-label) + (1 - xi) * (the noisy label): xi = 1 is pure SD,
// xi = 0 retrains on the noisy labels, and any real xi is allowed (targets outside [0, 1] included).
// lam = +inf is the exact limit of infinite regularisation (the Hebbian, mean-difference classifier):
// the stage's m, b, Q and chi are then reported rescaled (lam m, lam b, lam^2 Q, lam chi), and a
// soft next stage applies beta to the rescaled logit lam u.
struct Stage {
  double lam = 1.0;
  Targets targets = Targets::soft;
  std::optional<double> beta;  // required for soft stages t >= 2
  BiasPolicy bias = BiasPolicy::learn;
  double bias_value = 0.0;  // used when bias == fixed
  double xi = 1.0;          // weight of the teacher's pseudo-label in the target (stages t >= 2)

  bool is_limit() const { return lam == INFINITY; }
};

// The four label classes (true s, flipped?) of the effective process, with their probabilities.
struct LabelClass {
  double s;        // true class, +1 or -1
  double y_noisy;  // observed label in {0, 1}
  double prob;
};
std::array<LabelClass, 4> label_classes(const Problem& problem);

void validate(const Problem& problem);
void validate_spectrum(const Spectrum& spectrum);
void validate(const std::vector<Stage>& stages);

// The names of the enums, one mapping each way (Python and the CLI use the same words).
Loss parse_loss(const std::string& name);
BiasPolicy parse_bias(const std::string& name);
Method parse_method(const std::string& name);  // "auto", "tensor", "qmc", "mc"
std::string to_string(Method method);
// Shortest round-trip text of a number, as used in error messages.
std::string shown(double value);
std::string to_string(BiasPolicy bias);

}  // namespace sdgmm
