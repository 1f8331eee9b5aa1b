"""sdgmm: exact theory and practice of multi-stage self-distillation on a noisy Gaussian mixture."""

from sdgmm._core import Problem, Stage
from sdgmm.errors import ConvergenceError
from sdgmm.optimize import OptimizeResult, curve, optimize
from sdgmm.simulate import SimulationResult, compare, simulate
from sdgmm.theory import TheoryResult, make_stages, theory

__version__ = "0.1.0"
__all__ = [
    "ConvergenceError",
    "OptimizeResult",
    "Problem",
    "SimulationResult",
    "Stage",
    "TheoryResult",
    "__version__",
    "compare",
    "curve",
    "make_stages",
    "optimize",
    "simulate",
    "theory",
]
