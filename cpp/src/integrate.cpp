#include "sdgmm/integrate.hpp"

#include <bit>
#include <boost/math/special_functions/erf.hpp>
#include <boost/random/sobol.hpp>
#include <cmath>
#include <map>
#include <mutex>
#include <numbers>
#include <random>
#include <stdexcept>

namespace sdgmm {
namespace {

// Golub-Welsch: the nodes are the eigenvalues of the symmetric Jacobi matrix of the orthogonal
// polynomials, the weights mu0 times the squared first components of its eigenvectors.
Rule1D golub_welsch(int n, double (*offdiag)(int), double mu0) {
  Eigen::MatrixXd J = Eigen::MatrixXd::Zero(n, n);
  for (int k = 1; k < n; ++k) J(k, k - 1) = J(k - 1, k) = offdiag(k);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(J);
  Rule1D rule;
  for (int i = 0; i < n; ++i) {
    rule.x.push_back(eig.eigenvalues()(i));
    rule.w.push_back(mu0 * eig.eigenvectors()(0, i) * eig.eigenvectors()(0, i));
  }
  return rule;
}

const Rule1D& cached(std::map<int, Rule1D>& cache, int n, double (*offdiag)(int), double mu0) {
  static std::mutex mutex;
  if (n < 1 || n > 400)
    throw std::invalid_argument("quadrature nodes must lie in [1, 400] (got " + std::to_string(n) + ")");
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(n);
  if (it == cache.end()) it = cache.emplace(n, golub_welsch(n, offdiag, mu0)).first;
  return it->second;
}

// Probabilists' Hermite polynomials: three-term recurrence with off-diagonal sqrt(k).
double hermite_offdiag(int k) { return std::sqrt(static_cast<double>(k)); }
// Legendre polynomials: off-diagonal k / sqrt(4k^2 - 1).
double legendre_offdiag(int k) { return k / std::sqrt(4.0 * k * k - 1.0); }

}  // namespace

const Rule1D& gauss_hermite(int n) {
  static std::map<int, Rule1D> cache;
  return cached(cache, n, hermite_offdiag, 1.0);
}

const Rule1D& gauss_legendre(int n) {
  static std::map<int, Rule1D> cache;
  return cached(cache, n, legendre_offdiag, 2.0);
}

double normal_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }
double normal_quantile(double p) { return -std::numbers::sqrt2 * boost::math::erfc_inv(2.0 * p); }
double normal_upper_quantile(double q) { return std::numbers::sqrt2 * boost::math::erfc_inv(2.0 * q); }

Eigen::MatrixXd scrambled_sobol(int n, int d, std::uint64_t seed) {
  if (n < 1 || d < 1) throw std::invalid_argument("scrambled_sobol needs n >= 1 and d >= 1");
  boost::random::sobol engine(static_cast<std::size_t>(d));
  std::mt19937_64 rng(seed);
  // Per coordinate: a random lower-triangular binary matrix with unit diagonal (rows as bit
  // masks, bit 63 = most significant digit) and a random digital shift.
  std::vector<std::vector<std::uint64_t>> rows(d, std::vector<std::uint64_t>(64));
  std::vector<std::uint64_t> shift(d);
  for (int j = 0; j < d; ++j) {
    for (int i = 0; i < 64; ++i) {
      const std::uint64_t below = (i == 63) ? ~0ULL : ~((~0ULL) >> (i + 1));  // digits 0..i
      const std::uint64_t diag = 1ULL << (63 - i);
      rows[j][i] = (rng() & below) | diag;
    }
    shift[j] = rng();
  }
  Eigen::MatrixXd points(n, d);
  for (int p = 0; p < n; ++p) {
    for (int j = 0; j < d; ++j) {
      const std::uint64_t x = engine();
      std::uint64_t y = 0;
      for (int i = 0; i < 64; ++i) y |= static_cast<std::uint64_t>(std::popcount(rows[j][i] & x) & 1) << (63 - i);
      y ^= shift[j];
      points(p, j) = (static_cast<double>(y >> 11) + 0.5) * 0x1.0p-53;  // in (0, 1)
    }
  }
  return points;
}

}  // namespace sdgmm
