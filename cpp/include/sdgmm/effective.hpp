// The effective single-sample process of theory.md section 4, discretised as weighted particles.
//
// A ParticleSet holds points (xi_1..xi_k) of the Gaussian coordinates of the stages solved so
// far, each with its label class, its weight, the frozen proximal outputs z_1..z_k and the target
// the next stage trains on. Once stage t has converged the set grows by xi_t and freezes z_t.
//
// How a coordinate is added (a CoordinateRule) is the whole difference between integration
// methods: tensor Gauss-Hermite, randomised QMC or plain Monte Carlo. At a hard-label stage the
// next target 1{u_t > 0} = 1{xi_t > a} jumps at a point a known per particle, and the rules split
// there so that accuracy does not collapse.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "sdgmm/problem.hpp"

namespace sdgmm {

struct ParticleSet {
  int dims = 0;                         // Gaussian coordinates fixed so far
  std::vector<double> weight;           // may be negative (complement rule), sum = 1
  std::vector<double> s;                // true class
  std::vector<double> noisy;            // noisy label y (stage 1's target), mixed into later targets by xi
  std::vector<double> target;           // label of the next stage to train
  std::vector<std::int32_t> point;      // row of the sample matrix (qmc, mc)
  std::vector<std::vector<double>> xi;  // dims rows of size()
  std::vector<std::vector<double>> z;   // frozen proximal outputs, one row per frozen stage
  // Gradients in the field basis g = U^T xi (the cavity fields), for the Stein form of the
  // conjugates: dz_j/dg_l of frozen stage j (row dz_row(j, l), l <= j), and the gradient of
  // the target of the next stage, d y / dg_l (row l; xi times the pseudo-label's). Exact for soft targets; hard targets
  // jump, and their stages use the xi-basis form instead.
  // Carried only while every target so far is smooth (`smooth`): no later stage needs them after a jump.
  std::vector<std::vector<double>> dz;
  std::vector<std::vector<double>> dy;
  bool smooth = true;
  // Only the s = +1 classes, each standing for its mirror image too (initial_particles): the sums over the set give
  // every even moment, and the odd ones (E[z], E[u], the target mass's deviation from 1/2) are 0 by symmetry.
  bool mirrored = false;

  std::size_t size() const { return weight.size(); }
  static constexpr std::size_t dz_row(int j, int l) { return static_cast<std::size_t>(j * (j + 1) / 2 + l); }
};

struct IntegrationOptions {
  Method method = Method::tensor;  // a resolved rule: tensor, qmc or mc
  int gh_nodes = 0;                // Gauss-Hermite nodes per coordinate (tensor); 0: by T (16 up to T = 3)
  int qmc_gh_nodes = 10;           // Gauss-Hermite nodes on each stage's own coordinate (qmc)
  int split_nodes = 0;             // Gauss-Legendre nodes on each piece cut by a hard-label jump; 0: gh_nodes
  int qmc_points = 1024;           // Sobol points per replicate (a power of 2 keeps the net balanced)
  int qmc_replicates = 8;          // independent scrambles; their spread is the error estimate
  int mc_samples = 10000;          // plain Monte Carlo (reference mode)
  std::uint64_t seed = 1;
  // Tensor: drop particles with |weight| below this; the total weight dropped bounds the bias (<= 1e-8).
  double prune = 1e-13;
  // Qmc: drop a split side less likely than this. A stage drops at most this much weight in all, which bounds its
  // bias; measured, the bias is ~1e-2 of it (hard T = 6: 1e-9 at 1e-7, against QMC's error of ~1e-5), while the
  // particles kept fall by half (every side beyond 5.2 sigma of its jump goes).
  double qmc_prune = 1e-7;
  int threads = 1;  // for the tensor rule's stage moments (qmc runs its replicates in parallel instead)
};

// Each stage's affine cavity field: h_t = A + U_tt xi_t with
// A = s m + b + sum_{k<t} (U_kt xi_k + r_k z_k), r_k = chi_kt / chi_kk, and the prox scale c.
struct StageField {
  double m = 0.0, b = 0.0;
  std::vector<double> U;  // U_{1..t, t}
  std::vector<double> r;  // k < t
  double c = 1.0;         // delta chi_tt
  bool limit = false;     // lam = inf: the rescaled stage with LinearLimitLoss (see loss.hpp)
  std::vector<double> offsets(const ParticleSet& set) const;  // A of every particle
};

// The four label classes at dimension 0: the starting set of every method. For qmc and mc the
// classes are attached to the rows of `samples` (all four per row for qmc, one drawn per row
// with class probabilities for mc, as the reference does).
// `mirrored` (a symmetric problem under the tensor rule): only the two classes with s = +1, at twice their
// probability. Each stands for its mirror image too, (s, y, xi) -> (-s, 1 - y, -xi), which has z -> -z: the same
// even moments (E[z xi], E[z^2], E[s z], ...), while the odd ones, E[z] and E[u], vanish (stage_moments sets them
// to 0). The rule's nodes are symmetric, so the mirror images are the full rule's own particles: the same sums at
// half the cost. (Under qmc the s = -1 classes at a point are the mirror images at the opposite point, an
// antithetic pair: dropping them halves the points as well as the cost.)
ParticleSet initial_particles(const Problem& problem, const IntegrationOptions& opt, const Eigen::MatrixXd& samples,
                              bool mirrored = false);

// The outer set of the next stage, with stage t (field, loss) frozen: every particle gains xi_t,
// split where the next stage's hard target jumps, and z_t plus the next target are stored.
ParticleSet freeze_stage(const ParticleSet& outer, const StageField& field, Loss loss, const Stage& next,
                         const IntegrationOptions& opt, const Eigen::MatrixXd& samples);

// E[z_t xi_k] or E[dz_t/dg_l] (k, l <= t; the basis the conjugates Qh are computed in),
// E[z_t z_k] (k < t), E[z_t^2], E[s z_t], E[z_t], E[dz_t/dh], E[u_t] (u = h + z, the training logit).
struct StageMoments {
  std::vector<double> z_xi;   // filled in the xi basis
  std::vector<double> dz_dg;  // filled in the field basis
  std::vector<double> z_z;
  double zz = 0.0, s_z = 0.0, z = 0.0, dzdh = 0.0, u = 0.0;
};

// Moments of stage t = outer.dims + 1. Its own coordinate xi_t is integrated inside each outer
// particle (Gauss-Hermite for tensor and qmc, the row's own sample for mc); stage t's integrand is
// smooth in xi_t, so no split is needed. Where a hard target's particles outnumber a grid's nodes, the
// inner sums are read from a table in the particle's offset instead (inner_table.hpp). `field_basis` picks
// E[dz/dg] over E[z xi] for the conjugates; `guess` keeps per-node prox warm starts between calls.
StageMoments stage_moments(const ParticleSet& outer, const StageField& field, Loss loss, const IntegrationOptions& opt,
                           const Eigen::MatrixXd& samples, bool field_basis, std::vector<double>& guess);

}  // namespace sdgmm
