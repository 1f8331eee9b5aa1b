// Losses as small value types sharing one interface (the LIBLINEAR idea: the solvers never know
// which loss they minimise). Target y lies in [0, 1] for the logistic loss, any real for square.
//   value(y, u), grad(y, u) = d/du, curvature(y, u) = d2/du2
//   prox(h, y, c, guess): the training logit u solving u - h + c * grad(y, u) = 0, i.e. the
//       proximal step of the effective process (z = u - h), with du/dh
//   soft_target(u, beta): the next stage's soft target built from the logit u
#pragma once

#include <cmath>

#include "sdgmm/problem.hpp"

namespace sdgmm {

// Numerically stable sigmoid and log(1 + e^u).
inline double sigmoid(double u) {
  if (u >= 0.0) return 1.0 / (1.0 + std::exp(-u));
  const double e = std::exp(u);
  return e / (1.0 + e);
}
inline double log1p_exp(double u) { return u > 0.0 ? u + std::log1p(std::exp(-u)) : std::log1p(std::exp(u)); }

struct Prox {
  double u;     // training logit h + z
  double dudh;  // in (0, 1]
};

struct LogisticLoss {
  static double value(double y, double u) { return log1p_exp(u) - y * u; }
  static double grad(double y, double u) { return sigmoid(u) - y; }
  static double curvature(double, double u) {
    const double s = sigmoid(u);
    return s * (1.0 - s);
  }
  static double soft_target(double u, double beta) { return sigmoid(beta * u); }

  // Safeguarded Newton on F(u) = u - h + c (sigmoid(u) - y), F' >= 1. The root lies in
  // (h - c (1 - y), h + c y) because sigmoid(u) - y lies in (-y, 1 - y); steps leaving the
  // bracket are replaced by bisection, so it cannot diverge.
  static Prox prox(double h, double y, double c, double guess) {
    double lo = h - c * (1.0 - y), hi = h + c * y;
    double u = (guess > lo && guess < hi) ? guess : 0.5 * (lo + hi);
    double s = sigmoid(u);
    for (int it = 0; it < 200; ++it) {
      const double f = u - h + c * (s - y);
      if (f > 0.0) hi = u; else lo = u;
      const double step = f / (1.0 + c * s * (1.0 - s));
      double next = u - step;
      const bool newton = next > lo && next < hi;
      if (!newton) next = 0.5 * (lo + hi);
      u = next;
      s = sigmoid(u);
      // Newton converges quadratically (|F''| / F' <= c / 10 / (1 + c / 4) < 1), so once a
      // Newton step is below 1e-8 the new error is below 1e-16: stop without another step.
      if ((newton && std::abs(step) <= 1e-8 * (1.0 + std::abs(u))) || hi - lo <= 1e-15 * (1.0 + std::abs(u))) break;
    }
    const double k = c * s * (1.0 - s);
    return {u, 1.0 / (1.0 + k)};
  }
};

struct SquareLoss {
  // ((u + 1) / 2 - y)^2: a least-squares fit of (u + 1) / 2 to the target.
  static double value(double y, double u) {
    const double r = 0.5 * (u + 1.0) - y;
    return r * r;
  }
  static double grad(double y, double u) { return 0.5 * (u + 1.0) - y; }
  static double curvature(double, double) { return 0.5; }
  static double soft_target(double u, double beta) { return 0.5 * (beta * u + 1.0); }
  static Prox prox(double h, double y, double c, double /*guess*/) {
    const double d = 1.0 + 0.5 * c;
    return {(h + c * (y - 0.5)) / d, 1.0 / d};
  }
};

// The field h at which the training logit crosses zero: prox(h*) = 0 <=> h* = c * grad(y, 0).
// Since u is increasing in h, the hard target 1{u > 0} equals 1{h > h*}.
template <class L>
double zero_crossing_field(double y, double c) {
  return c * L::grad(y, 0.0);
}

// Next-stage target from a training logit u.
template <class L>
double next_target(double u, const Stage& next) {
  if (next.targets == Targets::hard) return u > 0.0 ? 1.0 : 0.0;
  return L::soft_target(u, *next.beta);
}

}  // namespace sdgmm
