#include "sdgmm/data.hpp"

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace sdgmm {

int training_size(const Problem& problem, int N) { return static_cast<int>(std::lround(problem.alpha * N)); }

std::size_t dataset_bytes(int N, int M) {
  return sizeof(double) * (static_cast<std::size_t>(M) * static_cast<std::size_t>(N) + 3 * static_cast<std::size_t>(M));
}

Geometry geometry(const Problem& problem, int N) {
  if (!problem.spectrum) return {Eigen::VectorXd::Ones(N), Eigen::VectorXd::Constant(N, std::sqrt(problem.delta))};
  const Spectrum& s = *problem.spectrum;
  if (static_cast<int>(s.eigenvalues.size()) != N)
    throw std::invalid_argument("N must be the spectrum's dimension " + std::to_string(s.eigenvalues.size()) +
                                " (got " + std::to_string(N) + ")");
  Geometry g{Eigen::Map<const Eigen::VectorXd>(s.mean.data(), N), Eigen::VectorXd(N)};
  for (int j = 0; j < N; ++j) g.sd[j] = std::sqrt(s.eigenvalues[j]);
  return g;
}

Dataset draw_dataset(const Problem& problem, int N, std::uint64_t seed, std::uint64_t trial) {
  const Geometry geo = geometry(problem, N);
  const int M = training_size(problem, N);
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(trial), static_cast<std::uint32_t>(trial >> 32)};
  std::mt19937_64 rng(seq);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal;
  Dataset d;
  d.X.resize(M, N);
  d.s.resize(M);
  d.y_true.resize(M);
  d.y_noisy.resize(M);
  const double mean_scale = 1.0 / std::sqrt(static_cast<double>(N));
  for (int i = 0; i < M; ++i) {
    const bool plus = uniform(rng) < problem.rho;
    const bool flip = uniform(rng) < (plus ? problem.flip_plus() : problem.flip_minus());
    d.s[i] = plus ? 1.0 : -1.0;
    d.y_true[i] = plus ? 1.0 : 0.0;
    d.y_noisy[i] = plus != flip ? 1.0 : 0.0;
    const double shift = d.s[i] * mean_scale;
    for (int j = 0; j < N; ++j) d.X(i, j) = shift * geo.mean[j] + geo.sd[j] * normal(rng);
  }
  return d;
}

}  // namespace sdgmm
