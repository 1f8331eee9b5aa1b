"""A sweep spec: grid axes, a job kind and its fixed parameters, read from TOML or built from CLI flags.

Every point of the grid is validated (its Problem and stages are built) when the spec is made, so bad
input fails before any cluster is started or any store is created.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from sdgmm._model import Problem, Spectrum
from sdgmm._params import BIASES, LABELS, LOSSES, PAPER_SETTING, integer
from sdgmm.optimal import SEARCH_BIASES

KINDS = ("theory", "optimize", "simulate")
AXES = ("alpha", "delta", "rho", "theta", "stages", "loss", "labels", "bias")
NUMERIC_AXES = ("alpha", "delta", "rho", "theta")
# One-value axes unless the spec sets them: the paper's main setting.
DEFAULT_AXES = {**{k: [PAPER_SETTING[k]] for k in ("delta", "rho", "theta")}, "loss": ["logistic"], "labels": ["hard"],
                "bias": ["learn"]}
JOB_KEYS = {
    "theory": {"lam": None, "beta": 2.0},
    "simulate": {"lam": None, "beta": 2.0, "N": 1000, "trials": 8, "seed": 0},
    "optimize": {"restarts": 1, "gain_tol": 1e-6, "seed": 0, "early_stopping": True, "lam_bounds": [1e-4, 1e3],
                 "beta_bounds": [1e-2, 1e2]},
}
SETTINGS = {"kind": None, "store": None, "chain": 4, "scheduler": None, "workers": 0, "spectrum": None}


@dataclass(frozen=True)
class SweepSpec:
    kind: str
    axes: dict  # name -> list of values, in AXES order
    job: dict  # the job kind's fixed parameters, defaults filled in
    store: str  # path of the SQLite result store
    chain: int = 4  # neighbouring alphas per warm-start chain
    scheduler: str | None = None
    workers: int = 0  # local cluster worker processes; 0 = one per core
    points: list = field(default_factory=list, compare=False)  # the expanded, validated grid
    spectrum: dict = field(default_factory=dict)  # {"spectrum": path, "spectrum_sha256": ...} or {}

    def to_dict(self) -> dict:
        return {"kind": self.kind, "axes": self.axes, "job": self.job, "chain": self.chain, **self.spectrum}

    def varying_axes(self) -> list:
        return [name for name in AXES if len(self.axes[name]) > 1]


def point_id(point: dict) -> str:
    """Hash of a point's full spec (kind, every axis value, every job parameter)."""
    return hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:32]


def load(path: str, overrides: dict | None = None) -> SweepSpec:
    """Read a TOML spec; `overrides` (from CLI flags) replace its entries. Relative store paths are
    taken from the spec file's directory."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib

    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"spec: no such file {path!r}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"spec {path!r}: not valid TOML: {e}") from None
    base = os.path.dirname(os.path.abspath(path))
    if isinstance(raw.get("store"), str) and not os.path.isabs(raw["store"]):
        raw["store"] = os.path.normpath(os.path.join(base, raw["store"]))
    return from_dict(_merge(raw, overrides or {}))


def _merge(raw: dict, overrides: dict) -> dict:
    merged = {**raw, "axes": dict(raw.get("axes", {})), "job": dict(raw.get("job", {}))}
    for section in ("axes", "job"):
        merged[section].update(overrides.get(section, {}))
    merged.update({k: v for k, v in overrides.items() if k not in ("axes", "job")})
    return merged


def from_dict(raw: dict) -> SweepSpec:
    """A spec from the TOML layout: top-level settings, an [axes] table and a [job] table."""
    unknown = set(raw) - set(SETTINGS) - {"axes", "job"}
    if unknown:
        raise ValueError(f"spec has unknown setting(s) {sorted(unknown)}; settings are {sorted(SETTINGS)} "
                         "plus the tables [axes] and [job]")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (got {kind!r})")
    store = raw.get("store")
    if not isinstance(store, str) or not store:
        raise ValueError(f"store must be the path of the result store (got {store!r})")
    chain = raw.get("chain", SETTINGS["chain"])
    integer("chain", chain, 1)
    workers = raw.get("workers", SETTINGS["workers"])
    integer("workers", workers, 0)
    scheduler = raw.get("scheduler")
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ValueError(f"scheduler must be an address such as tcp://127.0.0.1:8786 (got {scheduler!r})")
    job = _job(kind, raw.get("job", {}))
    spectrum = _spectrum(raw.get("spectrum"), raw.get("axes", {}))
    axes = _axes(kind, raw.get("axes", {}), job)
    if spectrum:
        axes["delta"] = [None]
    points = [_point(kind, dict(zip(AXES, values)), job, spectrum) for values in itertools.product(*axes.values())]
    return SweepSpec(kind, axes, job, store, chain, scheduler, workers, points, spectrum)


def _spectrum(path, raw_axes) -> dict:
    """A spectrum file for every point ({} when none): its absolute path and the hash of its content, which is
    part of every point's id, so that a changed file is a new sweep. The delta axis goes with it."""
    if path is None:
        return {}
    if not isinstance(path, str):
        raise ValueError(f"spectrum must be the path of an .npz spectrum file (got {path!r})")  # noqa: TRY004 (input)
    if "delta" in raw_axes:
        raise ValueError("axis delta: a sweep with a spectrum has no delta axis (the spectrum is the covariance)")
    Spectrum.load(path)  # readable and valid, before any work
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()[:16]
    return {"spectrum": os.path.abspath(path), "spectrum_sha256": digest}


def _job(kind: str, raw: dict) -> dict:
    allowed = JOB_KEYS[kind]
    unknown = set(raw) - set(allowed)
    if unknown:
        raise ValueError(f"job has unknown parameter(s) {sorted(unknown)} for kind {kind!r}; "
                         f"its parameters are {sorted(allowed)}")
    job = {**allowed, **raw}
    if kind in ("theory", "simulate"):
        if job["lam"] is None:
            raise ValueError(f"job.lam is required for kind {kind!r}: one ridge penalty for every stage, or a list")
        job["lam"] = _positive_list("job.lam", job["lam"])
        job["beta"] = _positive_list("job.beta", job["beta"])
    if kind == "simulate":
        for name, low in (("N", 1), ("trials", 1), ("seed", 0)):
            integer(f"job.{name}", job[name], low)
    if kind == "optimize":
        integer("job.restarts", job["restarts"], 0)
        integer("job.seed", job["seed"], 0)
        if isinstance(job["gain_tol"], bool) or not isinstance(job["gain_tol"], (int, float)) or not (
                0 <= job["gain_tol"] < math.inf):
            raise ValueError(f"job.gain_tol must be a finite number >= 0 (got {job['gain_tol']!r})")
        job["gain_tol"] = float(job["gain_tol"])
        if not isinstance(job["early_stopping"], bool):
            raise ValueError(f"job.early_stopping must be true or false (got {job['early_stopping']!r})")
        for name in ("lam_bounds", "beta_bounds"):
            pair = _positive_list(f"job.{name}", job[name])
            if len(pair) != 2 or not pair[0] < pair[1]:
                raise ValueError(f"job.{name} must be [lower, upper] with 0 < lower < upper (got {job[name]!r})")
            job[name] = pair
    return job


def _positive_list(name: str, value) -> list:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf
                         for v in values):
        raise ValueError(f"{name} must be a positive number or a non-empty list of them (got {value!r})")
    return [float(v) for v in values]


def axis_values(name: str, value) -> list:
    """An axis from TOML: a scalar, a list, or {log = [a, b, k]} / {lin = [a, b, k]} (k points, ends included)."""
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("log", "lin"):
            raise ValueError(f"axis {name}: a table must be {{log = [a, b, k]}} or {{lin = [a, b, k]}} (got {value!r})")
        scale, args = next(iter(value.items()))
        if (not isinstance(args, list) or len(args) != 3 or isinstance(args[2], bool) or not isinstance(args[2], int)
                or any(isinstance(a, bool) or not isinstance(a, (int, float)) for a in args[:2])):
            raise ValueError(f"axis {name}: {scale} = [a, b, k] needs two numbers and a count (got {args!r})")
        a, b, k = args
        if k < 1:
            raise ValueError(f"axis {name} is empty: {scale} = {args!r} has k < 1")
        if scale == "log" and not (0 < a and 0 < b):
            raise ValueError(f"axis {name}: log spacing needs positive ends (got {args!r})")
        grid = np.geomspace(a, b, k) if scale == "log" else np.linspace(a, b, k)
        return [float(v) for v in grid]
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"axis {name} is empty: give at least one value")
    return values


def _axes(kind: str, raw: dict, job: dict) -> dict:
    unknown = set(raw) - set(AXES)
    if unknown:
        raise ValueError(f"unknown axis {min(unknown)!r}; axes are {list(AXES)}")
    if "alpha" not in raw:
        raise ValueError("axis alpha is required (the sample ratio M / N)")
    default_stages = [len(job["lam"])] if kind in ("theory", "simulate") else [3]
    axes = {}
    for name in AXES:
        values = axis_values(name, raw[name]) if name in raw else DEFAULT_AXES.get(name, default_stages)
        if name in NUMERIC_AXES:
            if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
                raise ValueError(f"axis {name} must hold numbers (got {values!r})")
            values = [float(v) for v in values]
        elif name == "stages":
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"axis stages must hold integers >= 1 (got {values!r})")
        elif any(not isinstance(v, str) for v in values):
            raise ValueError(f"axis {name} must hold names (got {values!r})")
        if len(set(values)) != len(values):
            raise ValueError(f"axis {name} repeats a value (got {values!r})")
        axes[name] = values
    return axes


def _point(kind: str, axes: dict, job: dict, spectrum: dict) -> dict:
    """The full spec of one point, validated by building what the job will build."""

    where = ", ".join(f"{k} = {axes[k]!r}" for k in AXES)
    try:
        Problem(axes["alpha"], axes["delta"], rho=axes["rho"], theta=axes["theta"],
                spectrum=Spectrum.load(spectrum["spectrum"]) if spectrum else None)
    except ValueError as e:
        raise ValueError(f"invalid point ({where}): {e}") from None
    for name, allowed in (("loss", LOSSES), ("labels", LABELS),
                          ("bias", SEARCH_BIASES if kind == "optimize" else BIASES[:2])):
        if axes[name] not in allowed:
            raise ValueError(f"axis {name}: {axes[name]!r} is not one of {allowed}")
    point = {"kind": kind, **axes, **spectrum}
    T = axes["stages"]
    if kind == "optimize":
        return {**point, **job}
    # One value serves every stage; a list serves its first T (or T - 1) entries to a T-stage point.
    lam, beta = job["lam"], job["beta"]
    for name, values, need in (("lam", lam, T), ("beta", beta, T - 1)):
        if 1 < len(values) < need:
            raise ValueError(f"job.{name} holds {len(values)} values, but stages = {T} needs one value or at "
                             f"least {need}")
    lam = lam * T if len(lam) == 1 else lam[:T]
    beta = None if axes["labels"] == "hard" or T == 1 else (beta * (T - 1) if len(beta) == 1 else beta[:T - 1])
    extra = {k: v for k, v in job.items() if k not in ("lam", "beta")}
    return {**point, "lam": lam, "beta": beta, **extra}


def chains(points: list, length: int) -> list:
    """The points cut into runs of up to `length` neighbouring alphas that share every other value,
    in increasing alpha: each run is solved in order, every point warm-started from the one before."""
    groups: dict = {}
    for p in points:
        groups.setdefault(json.dumps({k: v for k, v in p.items() if k != "alpha"}, sort_keys=True), []).append(p)
    out = []
    for group in groups.values():
        group.sort(key=lambda p: p["alpha"])
        out += [group[i:i + length] for i in range(0, len(group), length)]
    return out
