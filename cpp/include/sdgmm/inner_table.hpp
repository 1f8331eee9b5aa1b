// Stage t's inner sums over its own coordinate, tabulated in the particle's offset.
//
// Inside an outer particle the cavity field is h = A + U_tt x, so with the particle's target y fixed the inner
// sums E_x[z], E_x[z x], E_x[z^2], E_x[dz/dh] and E_x[h + z] over the stage's own Gauss-Hermite rule are smooth
// functions of the offset A alone (Gaussian averages of the prox). Hard targets take a few values (0 and 1, or
// their mixtures with the noisy label), so the sums can be computed once per iteration on a uniform grid in A
// and read by 6-point Lagrange interpolation: the grid's prox evaluations replace the particles', which
// number hundreds of thousands at hard T = 6 under the qmc rule.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <span>
#include <vector>

#include "sdgmm/loss.hpp"

namespace sdgmm {

// Sums over the inner nodes x with weights w: z, z x, z^2, dz/dh, dz/dy (the Stein form's) and u = h + z.
struct InnerSums {
  double z = 0.0, z_x = 0.0, zz = 0.0, dzdh = 0.0, dzdy = 0.0, u = 0.0;
};

// The inner sums at offset A by the rule itself, the reference the table interpolates. `guess` holds a prox warm
// start per node and is updated.
template <class L>
InnerSums inner_sums(double A, double y, double U_tt, double c, std::span<const double> x, std::span<const double> w,
                     std::span<double> guess) {
  InnerSums s;
  for (std::size_t j = 0; j < x.size(); ++j) {
    const double h = A + U_tt * x[j];
    const Prox pr = L::prox(h, y, c, guess[j]);
    guess[j] = pr.z;
    s.z += w[j] * pr.z, s.z_x += w[j] * pr.z * x[j], s.zz += w[j] * pr.z * pr.z;
    s.dzdh += w[j] * pr.dzdh, s.dzdy += w[j] * pr.dzdy, s.u += w[j] * (h + pr.z);
  }
  return s;
}

template <class L>
class InnerTable {
 public:
  // Grid spacing in A. The sums vary on the prox's scale of one logit unit or more, so the quintic interpolant's
  // error, of order h^6 / 6! times a sixth derivative of order one, stays below 1e-12 relative to the scale of z
  // (measured against the rule itself at c = 0.5, 40 and 2000: 5.7e-13; cpp/tests/test_inner_table.cpp).
  static constexpr double kStep = 1.0 / 32.0;
  static constexpr int kPad = 2;  // nodes below the first cell (and 3 above the last) for the 6-point stencil

  // Nodes the table needs for offsets in [lo, hi]: its cost in prox evaluations is this times the rule's size.
  static int nodes(double lo, double hi) { return static_cast<int>(std::ceil((hi - lo) / kStep)) + 2 * kPad + 2; }

  InnerTable(double lo, double hi, double y, double U_tt, double c, std::span<const double> x,
             std::span<const double> w)
      : lo_(lo) {
    const int n = nodes(lo, hi);
    values_.resize(static_cast<std::size_t>(n));
    std::vector<double> guess(x.size(), std::nan(""));  // warm starts from the neighbouring node
    for (int i = 0; i < n; ++i) values_[i] = inner_sums<L>(lo + (i - kPad) * kStep, y, U_tt, c, x, w, guess);
  }

  InnerSums at(double A) const {
    const double pos = (A - lo_) / kStep;
    const int cell = std::clamp(static_cast<int>(std::floor(pos)), 0, static_cast<int>(values_.size()) - 2 * kPad - 2);
    const double x = pos - cell + kPad;  // position within the stencil's nodes 0..5, between nodes 2 and 3
    // Lagrange weights on nodes 0..5: prod_{m != k} (x - m), from prefix and suffix products, times the constant
    // 1 / prod_{m != k} (k - m) (a product: six divisions per read cost more than the rest of it).
    static constexpr std::array<double, 6> kInverseDenominator{-1.0 / 120.0, 1.0 / 24.0,  -1.0 / 12.0,
                                                               1.0 / 12.0,   -1.0 / 24.0, 1.0 / 120.0};
    std::array<double, 6> before, after, w;
    before[0] = after[5] = 1.0;
    for (int k = 1; k < 6; ++k) before[k] = before[k - 1] * (x - (k - 1));
    for (int k = 4; k >= 0; --k) after[k] = after[k + 1] * (x - (k + 1));
    for (int k = 0; k < 6; ++k) w[k] = before[k] * after[k] * kInverseDenominator[k];
    InnerSums s;
    for (int k = 0; k < 6; ++k) {
      const InnerSums& v = values_[static_cast<std::size_t>(cell + k)];
      s.z += w[k] * v.z, s.z_x += w[k] * v.z_x, s.zz += w[k] * v.zz;
      s.dzdh += w[k] * v.dzdh, s.dzdy += w[k] * v.dzdy, s.u += w[k] * v.u;
    }
    return s;
  }

 private:
  double lo_;
  std::vector<InnerSums> values_;
};

}  // namespace sdgmm
