// Population 0-1 error of a linear classifier against the TRUE label (theory.md section 3).
#pragma once

#include <cmath>

namespace sdgmm {

// Gaussian tail H(x) = P(g > x), g ~ N(0, 1).
inline double gaussian_tail(double x) { return 0.5 * std::erfc(x / std::sqrt(2.0)); }

// eps = rho H((m + b) / sqrt(q)) + (1 - rho) H((m - b) / sqrt(q)), with q = w^T Sigma w / N the variance of
// the test field (delta Q for the isotropic model). At q = 0 (w = 0) the classifier is the constant sign(b):
// the limit H(+-inf) = 0 / 1, and a tie (m +- b = 0) counts as a coin flip.
inline double generalisation_error(double m, double b, double q, double rho) {
  const double sd = std::sqrt(q);
  if (sd == 0.0) {
    auto step = [](double x) { return x > 0.0 ? 0.0 : x < 0.0 ? 1.0 : 0.5; };
    return rho * step(m + b) + (1.0 - rho) * step(m - b);
  }
  return rho * gaussian_tail((m + b) / sd) + (1.0 - rho) * gaussian_tail((m - b) / sd);
}

}  // namespace sdgmm
