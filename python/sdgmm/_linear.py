"""The training solver by keyword: L2-regularised logistic or square loss on real targets,
``min sum_i c_i loss(y_i, u_i) + (lam / 2) |w|^2`` with ``u = X w / sqrt(N) + b`` (the C++ Newton-CG of
cpp/include/sdgmm/train.hpp). Its weights are always finite; a fit that stops short of ``tol`` says why in
``report.failure``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import sdgmm._core as _core


@dataclass(frozen=True)
class LinearFit:
    w: np.ndarray
    b: float
    logits: np.ndarray  # u on the rows of X
    report: object  # _core.TrainReport: converged, failure, newton_iterations, passes, grad_norm, ...


def fit_linear(X, targets, *, lam: float, loss: str = "logistic", learn_bias: bool = True, sample_weight=None,
               w0=None, b0: float = 0.0, tol: float = 1e-8, max_newton: int = 100, threads: int = 1) -> LinearFit:
    """Fit one stage. ``X`` is a C-ordered float64 array (passed without a copy); ``w0``/``b0`` warm-start the
    fit (``b0`` is the bias itself when ``learn_bias`` is False); ``threads`` only changes the speed."""
    model = _core.LinearModel()
    model.w = np.zeros(X.shape[1]) if w0 is None else np.asarray(w0, dtype=float)
    model.B = float(b0)
    options = _core.TrainOptions()
    options.tol, options.max_newton, options.threads = tol, max_newton, threads
    weight = np.empty(0) if sample_weight is None else sample_weight
    logits, report = _core.fit_linear(X, targets, weight, loss, lam, learn_bias, model, options)
    return LinearFit(model.w, model.B, logits, report)
