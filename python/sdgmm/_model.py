"""The model's value types as the Python API shows them: Spectrum, Problem and Stage (the C++ types,
constructed with checked arguments and readable errors), and make_stages, the per-stage lists of the paper."""

from __future__ import annotations

import math

import numpy as np

import sdgmm._core as _core
from sdgmm._params import BIASES, PAPER_SETTING, choice, optional_real, real

_S = PAPER_SETTING
SPECTRUM_ARRAYS = ("eigenvalues", "mean")  # the arrays of a spectrum .npz file


class Spectrum(_core.Spectrum):
    """A covariance Sigma shared by both classes, given by its eigenvalues sigma_i >= 0, and the class-mean
    vector in its eigenbasis, ``mean`` = mu~ = U^T mu (docs/theory.md section 6): the data model
    ``x = s mu / sqrt(N) + Sigma^{1/2} zeta`` in dimension N = len(eigenvalues). The isotropic model is
    ``Spectrum.isotropic(N, delta)``: every sigma_i = delta, every mu~_i = 1. Exact zeros are allowed; equal
    eigenvalues are grouped by the engine, so a spectrum with few distinct values costs little."""

    def __init__(self, eigenvalues, mean):
        arrays = {}
        for name, values in (("eigenvalues", eigenvalues), ("mean", mean)):
            try:
                arrays[name] = np.asarray(values, dtype=float)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be an array of numbers (got {type(values).__name__})") from None
            if arrays[name].ndim != 1:
                raise ValueError(f"{name} must be one-dimensional (got shape {arrays[name].shape})")
        super().__init__(arrays["eigenvalues"], arrays["mean"])

    @classmethod
    def isotropic(cls, N: int, delta: float = _S["delta"]) -> Spectrum:
        return cls(np.full(N, real("delta", delta)), np.ones(N))

    @classmethod
    def load(cls, path) -> Spectrum:
        """From an .npz file with arrays ``eigenvalues`` and ``mean`` (as :meth:`save` and ``sdgmm fit-mixture``
        write it)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in SPECTRUM_ARRAYS if k not in data.files]
                if missing:
                    raise ValueError(f"spectrum: {str(path)!r} has no array {missing[0]!r} (it holds "
                                     f"{sorted(data.files)}; a spectrum file holds 'eigenvalues' and 'mean')")
                return cls(data["eigenvalues"], data["mean"])
        except (OSError, EOFError, ValueError) as e:
            if isinstance(e, ValueError) and str(e).startswith("spectrum:"):
                raise
            raise ValueError(f"spectrum: cannot read {str(path)!r} as an .npz file ({e})") from None

    def save(self, path) -> None:
        np.savez(path, eigenvalues=self.eigenvalues, mean=self.mean)

    @property
    def N(self) -> int:
        return len(self.eigenvalues)

    def __repr__(self) -> str:
        ev = self.eigenvalues
        return (f"Spectrum(N={self.N}, eigenvalues in [{ev.min():.3g}, {ev.max():.3g}], mean eigenvalue "
                f"{ev.mean():.3g}, |mean|^2 / N = {np.mean(self.mean ** 2):.3g})")

    def __eq__(self, other) -> bool:
        return (isinstance(other, _core.Spectrum) and np.array_equal(self.eigenvalues, other.eigenvalues)
                and np.array_equal(self.mean, other.mean))

    __hash__ = None

    def __reduce__(self):
        return Spectrum, (self.eigenvalues, self.mean)


class Problem(_core.Problem):
    """The noisy Gaussian mixture of docs/theory.md section 1: sample ratio ``alpha = M / N``, noise variance
    ``delta``, class prior ``rho = P(s = +1)``, label-flip rate ``theta`` (or class-conditional
    ``theta_plus`` / ``theta_minus`` for true class +1 / -1). ``spectrum`` (a :class:`Spectrum`) replaces
    ``delta`` by a general covariance and class mean (section 6); ``delta`` is then NaN. The defaults are the
    paper's main setting, the same as the CLI's. Bad values raise ValueError, values of the wrong kind
    TypeError, naming the parameter."""

    def __init__(self, alpha=_S["alpha"], delta=None, rho=_S["rho"], theta=_S["theta"], theta_plus=None,
                 theta_minus=None, spectrum=None):
        if spectrum is not None:
            if not isinstance(spectrum, _core.Spectrum):
                raise TypeError(f"spectrum must be an sdgmm.Spectrum (got {type(spectrum).__name__})")
            if delta is not None:
                raise ValueError("delta: give delta (the isotropic model) or spectrum, not both")
        delta = _S["delta"] if delta is None and spectrum is None else math.nan if spectrum is not None else delta
        super().__init__(real("alpha", alpha), real("delta", delta), real("rho", rho), real("theta", theta),
                         optional_real("theta_plus", theta_plus), optional_real("theta_minus", theta_minus), spectrum)

    def _fields(self) -> dict:
        fields = {name: getattr(self, name) for name in ("alpha", "delta", "rho", "theta")}
        fields.update({k: getattr(self, k) for k in ("theta_plus", "theta_minus") if getattr(self, k) is not None})
        if self.spectrum is not None:
            del fields["delta"]
        return fields

    def __repr__(self) -> str:
        text = ", ".join(f"{k}={v:g}" for k, v in self._fields().items())
        return f"Problem({text}{f', spectrum=<N={len(self.spectrum.eigenvalues)}>' if self.spectrum else ''})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, _core.Problem) and self._fields() == Problem._fields(other)
                and (self.spectrum is None) == (other.spectrum is None)
                and (self.spectrum is None or Spectrum.__eq__(self.spectrum, other.spectrum)))

    __hash__ = None

    def __reduce__(self):  # picklable: Problems travel to Dask workers
        spectrum = None if self.spectrum is None else Spectrum(self.spectrum.eigenvalues, self.spectrum.mean)
        delta = None if spectrum is not None else self.delta
        return Problem, (self.alpha, delta, self.rho, self.theta, self.theta_plus, self.theta_minus, spectrum)


def problem_dict(problem) -> dict:
    """A problem's settings as plain numbers for JSON and tables; a spectrum appears as its dimension and its
    mean eigenvalue (the arrays themselves are the user's file)."""
    out = {k: getattr(problem, k) for k in ("alpha", "delta", "rho", "theta", "theta_plus", "theta_minus")}
    if problem.spectrum is not None:
        ev = np.asarray(problem.spectrum.eigenvalues)
        out.update(delta=None, spectrum={"N": len(ev), "mean_eigenvalue": float(ev.mean()),
                                         "mean_norm2": float(np.mean(np.asarray(problem.spectrum.mean) ** 2))})
    return out


class Stage(_core.Stage):
    """One training stage: ridge penalty ``lam`` (inf: the exact limit lam -> inf), the temperature ``beta``
    of its soft targets (stages t >= 2), ``hard`` pseudo-labels, the bias policy (``bias``, with
    ``bias_value`` for 'fixed') and ``xi``, the weight of the teacher in the target
    ``xi * pseudo-label + (1 - xi) * noisy label`` (stages t >= 2; 1 is pure SD, any real number is allowed).
    Usually built by :func:`make_stages`."""

    def __init__(self, lam, beta=None, hard=False, bias="learn", bias_value=0.0, xi=1.0):
        if not isinstance(hard, (bool, np.bool_)):
            raise TypeError(f"hard must be True or False (got {hard!r})")
        super().__init__(real("lam", lam), optional_real("beta", beta), bool(hard), choice("bias", bias, BIASES),
                         real("bias_value", bias_value), _finite("xi", xi))

    def __repr__(self) -> str:
        label = "hard" if self.hard else f"beta={self.beta:g}" if self.beta is not None else "beta=None"
        value = f", bias_value={self.bias_value:g}" if self.bias == "fixed" else ""
        mix = f", xi={self.xi:g}" if self.xi != 1.0 else ""
        return f"Stage(lam={self.lam:g}, {label}, bias={self.bias!r}{value}{mix})"

    def __reduce__(self):
        return Stage, (self.lam, self.beta, self.hard, self.bias, self.bias_value, self.xi)


def make_stages(lam, beta=None, hard=False, bias="learn", bias_value=0.0, xi=None) -> list:
    """Stages from per-stage lists, as the paper writes them.

    ``lam`` holds one value per stage (a scalar means one stage). ``beta`` holds the temperatures
    of stages 2..T (T - 1 values; a scalar is repeated) and is ignored when ``hard``. ``bias`` is
    the policy of stages 2..T ('learn', 'fix_first' or 'fixed'); stage 1 learns its bias unless
    the policy is 'fixed', in which case every stage uses ``bias_value``. ``xi`` holds the mixing weights of
    stages 2..T (T - 1 values; a scalar is repeated; default 1, pure SD): stage t trains on
    ``xi_t * pseudo-label + (1 - xi_t) * noisy label``.
    """
    lams = [real("lam", v) for v in np.atleast_1d(lam).tolist()]
    if not lams:
        raise ValueError("lam must hold at least one value (one per stage)")
    choice("bias", bias, BIASES)
    T = len(lams)
    if hard or T == 1:
        if beta is not None and not hard and np.size(beta) > 0:
            raise ValueError("beta must not be given for a single stage: stage 1 trains on the noisy labels")
        betas = [None] * (T - 1)
    else:
        if beta is None:
            raise ValueError(f"beta is required for soft labels: {T - 1} value(s), one for each of stages 2..{T}")
        betas = _per_later_stage("beta", beta, T)
    if xi is not None and T == 1 and np.size(xi) > 0:
        raise ValueError("xi must not be given for a single stage: stage 1 trains on the noisy labels")
    xis = [1.0] * (T - 1) if xi is None else _per_later_stage("xi", xi, T)
    first_bias = "fixed" if bias == "fixed" else "learn"
    stages = [Stage(lams[0], bias=first_bias, bias_value=bias_value)]
    for lam_t, beta_t, xi_t in zip(lams[1:], betas, xis):
        stages.append(Stage(lam_t, beta=beta_t, hard=hard, bias=bias, bias_value=bias_value, xi=xi_t))
    return stages


def _finite(name, value) -> float:
    value = real(name, value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    return value


def _per_later_stage(name, values, T) -> list:
    """One value for each of stages 2..T from a scalar (repeated) or a list of T - 1."""
    out = [real(name, v) for v in np.atleast_1d(values).tolist()]
    if len(out) == 1:
        out = out * (T - 1)
    if len(out) != T - 1:
        raise ValueError(f"{name} must hold {T - 1} value(s), one for each of stages 2..{T} (got {len(out)})")
    return out


def checked(problem, stages) -> list:
    """The stages as a list (a single Stage is one stage), after checking that the arguments are a Problem and
    Stages: the engine's calls take nothing else."""
    if not isinstance(problem, _core.Problem):
        raise TypeError(f"problem must be an sdgmm.Problem (got {type(problem).__name__})")
    stages = [stages] if isinstance(stages, _core.Stage) else list(stages)
    if not all(isinstance(s, _core.Stage) for s in stages):
        raise TypeError("stages must be a list of sdgmm.Stage, e.g. from sdgmm.make_stages")
    return stages
