"""sdgmm: exact theory and practice of multi-stage self-distillation on a noisy Gaussian mixture.

This module only re-exports the public API; each name lives in the module that builds it."""

import importlib

from sdgmm._model import Problem, Spectrum, Stage, make_stages
from sdgmm._simulate import SimulationResult, compare, simulate
from sdgmm._theory import TheoryResult, theory
from sdgmm._version import __version__
from sdgmm.errors import ConvergenceError
from sdgmm.optimal import OptimizeResult, curve, optimize, plot_curve

# The scikit-learn tools are imported on first use (scikit-learn alone takes about a second to import).
_LAZY = {"SelfDistillationClassifier": "sdgmm.estimator", "probe": "sdgmm.realdata", "ProbeResult": "sdgmm.realdata",
         "fit_mixture": "sdgmm.realdata", "MixtureFit": "sdgmm.realdata"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdgmm' has no attribute {name!r}")


__all__ = ["ConvergenceError", "MixtureFit", "OptimizeResult", "ProbeResult", "Problem", "SelfDistillationClassifier",
           "SimulationResult", "Spectrum", "Stage", "TheoryResult", "__version__", "compare", "curve", "fit_mixture",
           "make_stages", "optimize", "plot_curve", "probe", "simulate", "theory"]
