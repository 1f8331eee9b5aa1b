// Finite-size draws of the noisy Gaussian mixture of theory.md section 1.
#pragma once

#include <Eigen/Dense>
#include <cstddef>
#include <cstdint>

#include "sdgmm/problem.hpp"

namespace sdgmm {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixRef = Eigen::Ref<const RowMatrix>;  // a view: NumPy C-order arrays pass without a copy

// The mixture in the coordinates the simulator draws in (Sigma's eigenbasis; the ridge problem is rotation
// invariant): coordinate j has class mean s mean_j / sqrt(N) and noise standard deviation sd_j. Isotropic:
// mean_j = 1, sd_j = sqrt(delta); with a spectrum: mean_j = mu~_j, sd_j = sqrt(sigma_j).
struct Geometry {
  Eigen::VectorXd mean, sd;
};
// Throws std::invalid_argument when a spectrum's dimension is not N.
Geometry geometry(const Problem& problem, int N);

// x_mu = s_mu mean / sqrt(N) + sd * zeta_mu (per coordinate); labels flipped with the problem's
// (class-conditional) rates. Rows are samples.
struct Dataset {
  RowMatrix X;              // M x N
  Eigen::VectorXd s;        // true class, +1 / -1
  Eigen::VectorXd y_true;   // 1{s = +1}
  Eigen::VectorXd y_noisy;  // observed labels in {0, 1}
};

// M = round(alpha N).
int training_size(const Problem& problem, int N);

// Trial `trial` of a run seeded by `seed`: its own generator is seeded from (seed, trial), so a
// trial's data do not depend on which thread draws it or in which order.
Dataset draw_dataset(const Problem& problem, int N, std::uint64_t seed, std::uint64_t trial);

// Bytes held by one dataset of size M x N.
std::size_t dataset_bytes(int N, int M);

}  // namespace sdgmm
