"""sdgmm: exact theory and practice of multi-stage self-distillation on a noisy Gaussian mixture."""

from sdgmm._model import Problem, Spectrum, Stage, make_stages
from sdgmm.errors import ConvergenceError
from sdgmm.optimize import OptimizeResult, curve, optimize
from sdgmm.simulate import SimulationResult, compare, simulate
from sdgmm.theory import TheoryResult, theory

# Real-data tools, imported on first use (they need scikit-learn): the estimator, the probe, fit_gmm.
_LAZY = {"SelfDistillationClassifier": "sdgmm.estimator", "probe": "sdgmm.probe_runner",
         "ProbeResult": "sdgmm.probe_runner", "fit_gmm": "sdgmm.gmm_fit", "GMMFit": "sdgmm.gmm_fit"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdgmm' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = [
    "ConvergenceError",
    "GMMFit",
    "OptimizeResult",
    "ProbeResult",
    "Problem",
    "SelfDistillationClassifier",
    "SimulationResult",
    "Spectrum",
    "Stage",
    "TheoryResult",
    "__version__",
    "compare",
    "curve",
    "fit_gmm",
    "make_stages",
    "optimize",
    "probe",
    "simulate",
    "theory",
]
