// Losses as small value types sharing one interface (the LIBLINEAR idea: the solvers never know
// which loss they minimise; with_loss below is the one place a runtime Loss becomes a type). Target y
// lies in [0, 1] for the logistic loss, any real for square.
//   value(y, u), grad(y, u) = d/du, curvature(y, u) = d2/du2, change(y, u, du) = value(y, u + du) -
//       value(y, u) computed without cancellation (line searches near the optimum need it)
//   prox(h, y, c, guess): the proximal step z of the effective process, z = -c * grad(y, h + z),
//       with dz/dh; the training logit is u = h + z
//   soft_target(u, beta): the next stage's soft target built from the logit u
//   kLogitTrust: how far a step can move a logit while the quadratic model still describes the loss
//   kQuadratic: the loss is quadratic in u, so one exact Newton step solves a fit
#pragma once

#include <algorithm>
#include <cmath>

#include "sdgmm/problem.hpp"

namespace sdgmm {

// Numerically stable sigmoid.
inline double sigmoid(double u) {
  if (u >= 0.0) return 1.0 / (1.0 + std::exp(-u));
  const double e = std::exp(u);
  return e / (1.0 + e);
}

// log(1 + e^u), without overflow.
inline double softplus(double u) { return std::max(u, 0.0) + std::log1p(std::exp(-std::abs(u))); }

// softplus(u + du) - softplus(u) = log1p(sigmoid(u) expm1(du)), accurate however small the change. That
// form fails where sigmoid(u) rounds to 1 and the argument of log1p to -1 (it gives -inf), or where
// expm1 overflows (inf or NaN); the change is then at least log 2 in size and the plain difference of
// the two values is accurate.
inline double softplus_change(double u, double du) {
  const double x = sigmoid(u) * std::expm1(du);
  if (x > -0.5 && x < 1e300) return std::log1p(x);
  return softplus(u + du) - softplus(u);
}

// sigmoid(u) and sigmoid(-u) from one exponential, both accurate when the other is near 1.
struct SigmoidPair {
  double pos, neg;
};
inline SigmoidPair sigmoid_pair(double u) {
  const double e = std::exp(-std::abs(u)), big = 1.0 / (1.0 + e), small = e * big;
  return u >= 0.0 ? SigmoidPair{big, small} : SigmoidPair{small, big};
}

// The proximal step is returned as z = u - h itself, never formed as a difference: with strong
// regularisation |z| << |h| and the difference would lose digits that alpha / chi then amplifies.
struct Prox {
  double z;     // u - h
  double dzdh;  // -k / (1 + k) with k = c * curvature, in (-1, 0]
  double dzdy;  // c / (1 + k): both losses have d loss' / dy = -1
};

struct LogisticLoss {
  // Newton's quadratic model of the loss holds over a few units of logit (beyond them the loss is linear):
  // a line search may have to shorten a step until no logit moves further than this.
  static constexpr double kLogitTrust = 20.0;
  static constexpr bool kQuadratic = false;
  template <class T>
  static T value(T y, T u) {  // templated so that tests can evaluate it in long double
    return u > 0 ? u + std::log1p(std::exp(-u)) - y * u : std::log1p(std::exp(u)) - y * u;
  }
  // value(y, u + du) - value(y, u) = y softplus_change(-u, -du) + (1 - y) softplus_change(u, du), each term
  // without cancellation, and finite for every finite u and du (a line search must never see -inf or NaN).
  static double change(double y, double u, double du) {
    return (y != 0.0 ? y * softplus_change(-u, -du) : 0.0) + (y != 1.0 ? (1.0 - y) * softplus_change(u, du) : 0.0);
  }
  // sigmoid(u) - y written without cancellation for saturated u and y in {0, 1}.
  static double grad(double y, double u) {
    const SigmoidPair sp = sigmoid_pair(u);
    return (1.0 - y) * sp.pos - y * sp.neg;
  }
  static double curvature(double, double u) {
    const SigmoidPair sp = sigmoid_pair(u);
    return sp.pos * sp.neg;
  }
  static double soft_target(double u, double beta) { return sigmoid(beta * u); }
  static double soft_target_slope(double u, double beta) {
    const SigmoidPair sp = sigmoid_pair(beta * u);
    return beta * sp.pos * sp.neg;
  }

  // Safeguarded Newton on F(z) = z + c (sigmoid(h + z) - y), F' >= 1. The root lies in
  // (-c (1 - y), c y) because sigmoid - y lies in (-y, 1 - y). A step that leaves the bracket, or that is not
  // at most half the step before last, is replaced by bisection (as in Numerical Recipes' rtsafe): F has an
  // inflection at u = 0, across which plain Newton can cycle inside the bracket. `guess` is a previous z (NaN: none).
  static Prox prox(double h, double y, double c, double guess) {
    double lo = -c * (1.0 - y), hi = c * y;
    double z = (guess > lo && guess < hi) ? guess : 0.0;
    if (!(z > lo && z < hi)) z = 0.5 * (lo + hi);
    double last = hi - lo, before_last = last;  // the last two steps taken
    for (int it = 0; it < 200; ++it) {
      const SigmoidPair sp = sigmoid_pair(h + z);
      const double f = z + c * ((1.0 - y) * sp.pos - y * sp.neg);
      if (f > 0.0)
        hi = z;
      else
        lo = z;
      const double step = f / (1.0 + c * sp.pos * sp.neg);
      double next = z - step;
      const bool newton = next > lo && next < hi && 2.0 * std::abs(step) <= std::abs(before_last);
      if (!newton) next = 0.5 * (lo + hi);
      before_last = last;
      last = next - z;
      z = next;
      // Newton's next error is at most (|F''| / 2F') step^2 <= 0.05 c step^2: stop once that is
      // below rounding of z, or when the bracket has closed to a few ulps.
      if ((newton && 0.05 * c * step * step <= 1e-17 * std::abs(z)) ||
          hi - lo <= 4e-16 * std::max(std::abs(lo), std::abs(hi)))
        break;
    }
    const SigmoidPair sp = sigmoid_pair(h + z);
    const double k = c * sp.pos * sp.neg;
    return {z, -k / (1.0 + k), c / (1.0 + k)};
  }
};

struct SquareLoss {
  static constexpr double kLogitTrust = INFINITY;  // quadratic: the Newton step is exact
  static constexpr bool kQuadratic = true;
  // ((u + 1) / 2 - y)^2: a least-squares fit of (u + 1) / 2 to the target.
  template <class T>
  static T value(T y, T u) {
    const T r = (u + 1) / 2 - y;
    return r * r;
  }
  static double change(double y, double u, double du) { return du * (grad(y, u) + 0.25 * du); }
  static double grad(double y, double u) { return 0.5 * (u + 1.0) - y; }
  static double curvature(double, double) { return 0.5; }
  static double soft_target(double u, double beta) { return 0.5 * (beta * u + 1.0); }
  static double soft_target_slope(double, double beta) { return 0.5 * beta; }
  static Prox prox(double h, double y, double c, double /*guess*/) {
    const double d = 1.0 + 0.5 * c;
    return {c * (y - 0.5 - 0.5 * h) / d, -0.5 * c / d, c / d};
  }
};

// The lam -> inf limit of either loss (a stage with lam = inf; see Stage::is_limit). With w = w~ / lam
// the stage minimises lam loss(y, u~ / lam) + |w~|^2 / 2 over the rescaled logit u~, which tends to
// the linear loss loss'(y, 0) u~ = (1/2 - y) u~ for both losses, with ridge 1. Its prox is explicit:
// z = -c (1/2 - y). The stage is then the Hebbian classifier w~ = sum (y - 1/2) x / sqrt(N).
struct LinearLimitLoss {
  static double grad(double y, double) { return 0.5 - y; }
  static Prox prox(double, double y, double c, double) { return {c * (y - 0.5), 0.0, c}; }
};

// The field h at which the training logit crosses zero: prox(h*) = 0 <=> h* = c * grad(y, 0).
// Since u is increasing in h, the hard target 1{u > 0} equals 1{h > h*}.
template <class L>
double zero_crossing_field(double y, double c) {
  return c * L::grad(y, 0.0);
}

// Next-stage target from a training logit u, and its slope (0 for hard targets, whose jump is
// handled by the integration rules instead).
template <class L>
double next_target(double u, const Stage& next) {
  if (next.targets == Targets::hard) return u > 0.0 ? 1.0 : 0.0;
  return L::soft_target(u, *next.beta);
}
template <class L>
double next_target_slope(double u, const Stage& next) {
  return next.targets == Targets::hard ? 0.0 : L::soft_target_slope(u, *next.beta);
}

// The target the next stage trains on: its teacher's pseudo-label mixed with the noisy label (exact at xi = 1
// and xi = 0). Both losses are affine in the target, so the mixture enters the channel as this target alone.
inline double mixed_target(double pseudo, double noisy, const Stage& next) {
  return next.xi * pseudo + (1.0 - next.xi) * noisy;
}

// Calls f(L{}) with the loss type of `loss`: the one place a runtime Loss becomes a template argument.
template <class F>
decltype(auto) with_loss(Loss loss, F&& f) {
  if (loss == Loss::logistic) return f(LogisticLoss{});
  return f(SquareLoss{});
}

}  // namespace sdgmm
