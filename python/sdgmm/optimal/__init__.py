"""Optimally tuned self-distillation: per-stage lam_t and beta_t, the stage count T* by early stopping, learning
curves against alpha, and their plot."""

from sdgmm._params import LABELS
from sdgmm.optimal._curve import bayes_limit, curve, next_start, noiseless_reference
from sdgmm.optimal._optimize import DEFAULT_BOUNDS, SEARCH_BIASES, OptimizeResult, StageCountOptimum, optimize
from sdgmm.optimal._plot import plot_curve

__all__ = ["DEFAULT_BOUNDS", "LABELS", "SEARCH_BIASES", "OptimizeResult", "StageCountOptimum", "bayes_limit", "curve",
           "next_start", "noiseless_reference", "optimize", "plot_curve"]
