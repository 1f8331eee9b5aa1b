#include "sdgmm/fixed_point.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace sdgmm {
namespace {

double scaled_residual(const Eigen::VectorXd& x, const Eigen::VectorXd& f, const Eigen::VectorXd& unit) {
  double r = 0.0;
  for (Eigen::Index i = 0; i < x.size(); ++i)
    r = std::max(r, std::abs(f[i]) / std::max({unit[i], std::abs(x[i]), 1e-300}));
  return std::isfinite(r) ? r : INFINITY;
}

// Rounding noise of G at x: how far G moves when x moves by a few ulps of its size (or of its unit, for a
// component near 0, such as a bias of 0 whose rounding noise moves every other unknown). Nearly collinear
// stages make the conjugates cancel catastrophically (Qh_{t-1,t} ~ -Qh_tt), and then no iteration can get
// the residual below this floor.
double noise_floor(const FixedPointMap& G, const Eigen::VectorXd& x, const Eigen::VectorXd& gx,
                   const Eigen::VectorXd& unit) {
  Eigen::VectorXd xp = x;
  for (Eigen::Index i = 0; i < x.size(); ++i) xp[i] += ((i % 2) ? 4e-16 : -4e-16) * std::max(std::abs(x[i]), unit[i]);
  const auto gp = G(xp);
  return gp ? scaled_residual(x, *gp - gx, unit) : INFINITY;
}

}  // namespace

FixedPointReport solve_fixed_point(const FixedPointMap& G, Eigen::VectorXd& x, const FixedPointOptions& opt,
                                   const FixedPointUnits& units) {
  // Two measures of the residual: `steer` (every unit 1) steers the iteration (history restarts, stall
  // detection), `rep.residual` (units at most 1) decides convergence, so that components far below 1
  // converge relative to their own size without changing the path of the iteration.
  const Eigen::VectorXd ones = Eigen::VectorXd::Ones(x.size());
  auto unit_at = [&](const Eigen::VectorXd& at) { return units ? units(at).cwiseMin(1.0).eval() : ones; };
  FixedPointReport rep;
  auto gx = G(x);
  if (!gx) return rep;  // the start itself is outside the domain: not converged, 0 iterations
  Eigen::VectorXd f = *gx - x, unit = unit_at(x);
  rep.residual = scaled_residual(x, f, unit);
  double steer = scaled_residual(x, f, ones);
  std::vector<Eigen::VectorXd> dX, dF;  // Anderson history of iterate and residual differences
  double best = steer;
  int since_best = 0;
  // Once `steer` is within tol, a few more iterations may refine the small unknowns; beyond that, Anderson
  // steps at the level of rounding noise only wander. The iterate with the lowest residual is returned.
  constexpr int kRefine = 8;
  int refining = 0;
  Eigen::VectorXd x_best = x, f_best = f, unit_best = unit;
  double res_best = rep.residual;

  while (rep.residual > opt.tol && rep.iterations < opt.max_iter) {
    ++rep.iterations;
    Eigen::VectorXd step = (1.0 - opt.damping) * f;
    if (opt.anderson_depth > 0 && !dX.empty()) {
      const auto m = static_cast<Eigen::Index>(dF.size());
      Eigen::MatrixXd F(x.size(), m), X(x.size(), m);
      for (Eigen::Index j = 0; j < m; ++j) F.col(j) = dF[j], X.col(j) = dX[j];
      const Eigen::VectorXd gamma = F.colPivHouseholderQr().solve(f);
      if (gamma.allFinite()) step = f - (X + F) * gamma;
    }
    Eigen::VectorXd x_new = x + step;
    auto g_new = G(x_new);
    // Outside the domain: forget the history and shorten the plain step until it is accepted.
    for (double shrink = 0.5; !g_new && shrink > 1e-9; shrink *= 0.5) {
      dX.clear(), dF.clear();
      x_new = x + shrink * f;
      g_new = G(x_new);
    }
    if (!g_new) break;
    const Eigen::VectorXd f_new = *g_new - x_new, unit_new = unit_at(x_new);
    const double steer_new = scaled_residual(x_new, f_new, ones);
    if (!std::isfinite(steer_new)) break;
    // A jump in the residual means the extrapolation misled: restart the history from here.
    if (steer_new > 10.0 * steer) dX.clear(), dF.clear();
    dX.push_back(x_new - x);
    dF.push_back(f_new - f);
    if (static_cast<int>(dX.size()) > opt.anderson_depth) dX.erase(dX.begin()), dF.erase(dF.begin());
    x = x_new;
    f = f_new;
    unit = unit_new;
    steer = steer_new;
    rep.residual = scaled_residual(x, f, unit);
    if (rep.residual < res_best) x_best = x, f_best = f, unit_best = unit, res_best = rep.residual;
    // Stalled at a rounding floor (e.g. nearly collinear stages): stop and report, do not spin.
    if (steer < 0.5 * best)
      best = steer, since_best = 0;
    else if (++since_best >= opt.stall_iter)
      break;
    if (steer <= opt.tol && ++refining > kRefine) break;
  }
  x = x_best, f = f_best, unit = unit_best, rep.residual = res_best;
  rep.converged = rep.residual <= opt.tol;
  if (!rep.converged && std::isfinite(rep.residual)) {
    // Converged as far as rounding allows: the residual sits within the map's own noise.
    rep.floor = noise_floor(G, x, x + f, unit);
    rep.converged = rep.residual <= 100.0 * rep.floor && rep.residual <= opt.floor_cap;
  }
  return rep;
}

}  // namespace sdgmm
