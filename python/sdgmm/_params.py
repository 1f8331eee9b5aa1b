"""One source of truth: the vocabularies, the paper's setting and the validators every module shares.

The paper's main setting is the C++ ``Problem``'s defaults (``cpp/include/sdgmm/problem.hpp``), read here
once. Validators raise ``TypeError`` for a value of the wrong kind (a string for a number) and ``ValueError`` for
one out of range (integers: any non-integer), each naming the parameter first.
"""

from __future__ import annotations

import math
import numbers

import sdgmm._core as _core

LOSSES = ("logistic", "square")
LABELS = ("hard", "soft")
BIASES = ("learn", "fix_first", "fixed")  # the engine's bias policies
METHODS = ("auto", "tensor", "qmc", "mc")  # integration rules of the state evolution
ON_NONCONVERGENCE = ("raise", "warn")
FIT_BIASES = ("learn", "fix_first")  # the estimator's and the probe's bias policies
NOISES = ("exact", "bernoulli")  # the probe's label-noise protocols
SAMPLINGS = ("balanced", "stratified")  # the probe's training subsets

_DEFAULT = _core.Problem()
PAPER_SETTING = {name: getattr(_DEFAULT, name) for name in ("alpha", "delta", "rho", "theta")}


def real(name: str, value) -> float:
    """A real number (int or float, not bool): NaN and inf pass here and are judged by the caller."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (got {value!r})")
    return float(value)


def optional_real(name: str, value) -> float | None:
    return None if value is None else real(name, value)


def integer(name: str, value, low: int, high: int = 2**31 - 1) -> int:
    """An integer in [low, high] (not a bool, not a float that happens to be whole): ValueError otherwise, since
    a count given as 2.5 or True is a wrong value of the count."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        span = f">= {low}" if high == 2**31 - 1 else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {span} (got {value!r})")
    return int(value)


def c_int(name: str, value) -> int:
    """An integer the engine takes as a C int; what its values mean, the engine checks."""
    return integer(name, value, -(2**31), 2**31 - 1)


def choice(name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices} (got {value!r})")
    return value


def positive(name: str, value) -> float:
    value = real(name, value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
    return value
