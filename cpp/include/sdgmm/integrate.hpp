// Integration rules for Gaussian expectations: Gauss-Hermite and Gauss-Legendre rules (computed
// once per size and cached), the normal quantile, and randomised (scrambled) Sobol points.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

namespace sdgmm {

struct Rule1D {
  std::vector<double> x;
  std::vector<double> w;
};

// Nodes and weights for E[f(g)], g ~ N(0, 1); weights sum to 1. Thread-safe cache.
const Rule1D& gauss_hermite(int n);
// Nodes and weights on [-1, 1] for the Lebesgue measure. Thread-safe cache.
const Rule1D& gauss_legendre(int n);

double normal_pdf(double x);
double normal_cdf(double x);
// Phi^{-1}(p) and its upper-tail twin Phi^{-1}(1 - q), both accurate deep in the tails.
double normal_quantile(double p);
double normal_upper_quantile(double q);

// n points of a d-dimensional Sobol sequence (n rows), randomised by a random linear matrix
// scramble plus digital shift (Matousek 1998) drawn from `seed`; every point lies in (0, 1)^d
// and each replicate (seed) is an unbiased estimator.
Eigen::MatrixXd scrambled_sobol(int n, int d, std::uint64_t seed);

}  // namespace sdgmm
