#include "sdgmm/train.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "sdgmm/loss.hpp"

namespace sdgmm {
namespace {

using Eigen::VectorXd;

// Sums fn(i, acc) over the rows into a vector of size n. The rows are cut into a fixed number
// of contiguous chunks whatever the thread count, and the chunk sums are added in order, so every
// thread count gives the same bits.
template <class RowFn>
VectorXd sum_rows(Eigen::Index M, int threads, Eigen::Index n, RowFn fn) {
  constexpr Eigen::Index kChunks = 16;
  const Eigen::Index chunks = std::min(kChunks, std::max<Eigen::Index>(M, 1));
  std::vector<VectorXd> acc(static_cast<std::size_t>(chunks), VectorXd::Zero(n));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (Eigen::Index k = 0; k < chunks; ++k) {
    for (Eigen::Index i = k * M / chunks; i < (k + 1) * M / chunks; ++i) fn(i, acc[static_cast<std::size_t>(k)]);
  }
  for (std::size_t k = 1; k < acc.size(); ++k) acc[0] += acc[k];
  return acc[0];
}

template <class L>
class Objective {
 public:
  Objective(const RowMatrixRef& X, const VectorXd& y, const VectorXd& c, double lam, bool learn_bias, int threads)
      : X_(X),
        y_(y),
        c_(c),
        lam_(lam),
        bias_(learn_bias),
        threads_(threads),
        scale_(1.0 / std::sqrt(static_cast<double>(X.cols()))) {}

  Eigen::Index n() const { return X_.cols() + (bias_ ? 1 : 0); }
  Eigen::Index N() const { return X_.cols(); }
  int passes = 0;

  // u = scale X w + B.
  VectorXd logits(const VectorXd& w, double B) {
    ++passes;
    VectorXd u(X_.rows());
#pragma omp parallel for num_threads(threads_) if (threads_ > 1) schedule(static)
    for (Eigen::Index i = 0; i < X_.rows(); ++i) u[i] = scale_ * X_.row(i).dot(w) + B;
    return u;
  }

  // At logits u: gradient (w part, then B) into g, curvatures c_i loss'' into D, and the Hessian
  // diagonal into diag. One pass.
  void gradient(const VectorXd& w, const VectorXd& u, VectorXd& g, VectorXd& D, VectorXd& diag) {
    ++passes;
    const Eigen::Index N = this->N();
    D.resize(X_.rows());
    double gB = 0.0, hB = 0.0;
    for (Eigen::Index i = 0; i < X_.rows(); ++i) {
      D[i] = c(i) * L::curvature(y_[i], u[i]);
      gB += c(i) * L::grad(y_[i], u[i]);
      hB += D[i];
    }
    const VectorXd acc = sum_rows(X_.rows(), threads_, 2 * N, [&](Eigen::Index i, VectorXd& a) {
      const double r = c(i) * L::grad(y_[i], u[i]);
      a.head(N) += (scale_ * r) * X_.row(i).transpose();
      a.tail(N) += (scale_ * scale_ * D[i]) * X_.row(i).transpose().cwiseAbs2();
    });
    g.resize(n());
    g.head(N) = acc.head(N) + lam_ * w;
    diag.resize(n());
    diag.head(N) = acc.tail(N).array() + lam_;
    if (bias_) g[N] = gB, diag[N] = hB;
  }

  // H v with H = scale^2 X^T D X (+ bias row and column) + lam I on w. One pass.
  VectorXd hess_vec(const VectorXd& D, const VectorXd& v) {
    ++passes;
    const Eigen::Index N = this->N();
    const double vB = bias_ ? v[N] : 0.0;
    VectorXd out = sum_rows(X_.rows(), threads_, n(), [&](Eigen::Index i, VectorXd& a) {
      const double q = D[i] * (scale_ * X_.row(i).dot(v.head(N)) + vB);
      a.head(N) += (scale_ * q) * X_.row(i).transpose();
      if (bias_) a[N] += q;
    });
    out.head(N) += lam_ * v.head(N);
    return out;
  }

  // X d (as a change of logits). One pass.
  VectorXd direction_logits(const VectorXd& d) { return logits(d.head(N()), bias_ ? d[N()] : 0.0); }

  // f(w + t d) - f(w) from the logits u and Xd: O(M + N), no pass over X. Summed as differences
  // of each term, so it stays accurate when the change is far below the rounding of f itself.
  double change_along(const VectorXd& w, const VectorXd& d, const VectorXd& u, const VectorXd& Xd, double t) const {
    double df = 0.0;
    for (Eigen::Index i = 0; i < u.size(); ++i) df += c(i) * L::change(y_[i], u[i], t * Xd[i]);
    const auto dw = d.head(N());
    return df + lam_ * t * (w.dot(dw) + 0.5 * t * dw.squaredNorm());
  }

 private:
  double c(Eigen::Index i) const { return c_.size() ? c_[i] : 1.0; }
  const RowMatrixRef& X_;
  const VectorXd& y_;
  const VectorXd& c_;
  double lam_;
  bool bias_;
  int threads_;
  double scale_;
};

// Targets outside [0, 1] (teacher and noisy labels mixed with xi > 1 or < 0) keep the ridge objective bounded
// below in w, but a learned bias of the logistic loss runs off to +-inf when their mean leaves [0, 1]: along B
// the objective then falls without bound. Empty when the fit has a minimiser (or the single-class limit).
template <class L>
std::string unbounded_bias(const VectorXd& y, const VectorXd& weight, bool learn_bias) {
  if (!learn_bias || !std::is_same_v<L, LogisticLoss>) return {};
  const double mean = weight.size() ? weight.dot(y) / weight.sum() : y.mean();
  if (mean >= 0.0 && mean <= 1.0) return {};
  return "the targets' mean " + shown(mean) +
         " lies outside [0, 1]: a logistic fit that learns its bias has no "
         "minimiser (the bias diverges); use the square loss, a fixed bias or xi closer to [0, 1]";
}

template <class L>
TrainReport newton_cg(const RowMatrixRef& X, const VectorXd& y, const VectorXd& weight, double lam, bool learn_bias,
                      LinearModel& model, VectorXd& u, const TrainOptions& opt) {
  Objective<L> obj(X, y, weight, lam, learn_bias, opt.threads);
  const Eigen::Index N = X.cols(), n = obj.n();
  TrainReport rep;
  VectorXd g, D, diag;
  // The reference gradient at w = 0, B = 0, as LIBLINEAR: the criterion does not depend on the
  // warm start.
  obj.gradient(VectorXd::Zero(N), VectorXd::Zero(X.rows()), g, D, diag);
  rep.grad_norm0 = g.norm();
  u = obj.logits(model.w, model.B);
  if (const std::string why = unbounded_bias<L>(y, weight, learn_bias); !why.empty()) {
    rep.failure = why;
    return rep;
  }
  for (;;) {
    obj.gradient(model.w, u, g, D, diag);
    rep.grad_norm = g.norm();
    if (rep.grad_norm <= opt.tol * rep.grad_norm0) {
      rep.converged = true;
      break;
    }
    if (rep.newton_iterations >= opt.max_newton) {
      rep.failure = "no convergence within " + std::to_string(opt.max_newton) + " Newton iterations";
      break;
    }
    ++rep.newton_iterations;
    // Inexact Newton (Eisenstat-Walker forcing): loose early, tight near the solution; a
    // quadratic loss is solved to the final tolerance in one step.
    const double eta = L::kQuadratic ? 0.1 * opt.tol * rep.grad_norm0 / rep.grad_norm
                                     : std::min(0.5, std::sqrt(rep.grad_norm / rep.grad_norm0));
    VectorXd d = VectorXd::Zero(n), r = -g;
    VectorXd z = r.cwiseQuotient(diag), p = z;
    double rz = r.dot(z);
    for (int j = 0; j < opt.max_cg && r.norm() > eta * rep.grad_norm; ++j) {
      ++rep.cg_iterations;
      const VectorXd Hp = obj.hess_vec(D, p);
      const double pHp = p.dot(Hp);
      if (!(pHp > 0.0) || !std::isfinite(pHp)) break;  // curvature lost to rounding: keep d so far
      const double a = rz / pHp;
      d += a * p;
      r -= a * Hp;
      z = r.cwiseQuotient(diag);
      const double rz_new = r.dot(z);
      p = z + (rz_new / rz) * p;
      rz = rz_new;
    }
    if (d.isZero()) d = z;  // no CG step was taken: the preconditioned steepest descent
    // Backtracking (Armijo) line search on the change of the objective along d. A change that is not
    // a finite number fails the test, so a step that overflows is never taken.
    const VectorXd Xd = obj.direction_logits(d);
    const double slope = g.dot(d);
    if (!(slope < 0.0) || !std::isfinite(slope) || !Xd.allFinite()) {
      rep.failure = "the Newton direction is not a finite descent direction";
      break;
    }
    // Halving goes on to 1e-10 of the step that moves no logit by more than the loss's trust radius: from
    // saturated logits (a poor warm start, far-off inputs) the Newton direction can be astronomically long.
    const double shortest = 1e-10 * std::min(1.0, L::kLogitTrust / Xd.lpNorm<Eigen::Infinity>());
    double t = 1.0;
    while (!(obj.change_along(model.w, d, u, Xd, t) <= 1e-4 * t * slope) && t >= shortest) t *= 0.5;
    if (t < shortest) {
      rep.failure = "the line search found no decrease of the objective (its rounding floor)";
      break;
    }
    model.w += t * d.head(N);
    if (learn_bias) model.B += t * d[N];
    u += t * Xd;
  }
  rep.passes = obj.passes;
  return rep;
}

}  // namespace

TrainReport fit_linear(const RowMatrixRef& X, const Eigen::VectorXd& y, const Eigen::VectorXd& weight, Loss loss,
                       double lam, bool learn_bias, LinearModel& model, Eigen::VectorXd& logits,
                       const TrainOptions& options) {
  if (X.rows() != y.size()) throw std::invalid_argument("y must have one target per row of X");
  if (weight.size() != 0 && weight.size() != y.size())
    throw std::invalid_argument("sample_weight must have one weight per row of X");
  if (!(lam > 0.0) || !std::isfinite(lam)) throw std::invalid_argument("lam must be a finite number > 0");
  if (!(options.tol > 0.0) || !std::isfinite(options.tol))
    throw std::invalid_argument("tol must be a finite number > 0 (got " + shown(options.tol) + ")");
  if (model.w.size() != X.cols()) model.w = Eigen::VectorXd::Zero(X.cols());
  return with_loss(loss,
                   [&]<class L>(L) { return newton_cg<L>(X, y, weight, lam, learn_bias, model, logits, options); });
}

}  // namespace sdgmm
