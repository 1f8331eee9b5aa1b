"""What a worker runs for one point: the job, reduced to a flat dict of numbers for the store."""

from __future__ import annotations

import functools
import hashlib
import math
import os
import socket
import time
import warnings

import sdgmm._core as _core
from sdgmm._model import Problem, Spectrum, make_stages
from sdgmm._simulate import simulate
from sdgmm._theory import theory
from sdgmm._version import __version__
from sdgmm.errors import ConvergenceError
from sdgmm.optimal import next_start, optimize

# Test hook: when set, every task run appends its point id to this file (counts recomputation).
TASK_LOG_ENV = "SDGMM_SWEEP_TASK_LOG"


@functools.cache
def engine_version() -> str:
    """sdgmm's version plus a hash of the compiled engine and of the package modules a job runs: this module
    (the job adapters) and every sdgmm module it imports, transitively. A rebuilt engine, a changed
    optimiser or a changed adapter never reuses old rows, while front-end edits (CLI, plots) keep them."""
    digest = hashlib.sha256()
    for path in [_core.__file__, *_job_modules(os.path.dirname(os.path.dirname(__file__)))]:
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return f"{__version__}+{digest.hexdigest()[:16]}"


def _job_modules(package: str, root: str = "sweep.task") -> list:
    """Files of the module `root` (dotted, within the sdgmm package at `package`) and of every sdgmm module it
    imports, transitively, read from their source (so the answer does not depend on what this process has
    imported). A package counts with its __init__.py; the compiled _core is hashed as its own file."""
    import ast

    def path_of(name):
        base = os.path.join(package, *name.split("."))
        return next((p for p in (base + ".py", os.path.join(base, "__init__.py")) if os.path.isfile(p)), None)

    todo, seen = [root], {}
    while todo:
        name = todo.pop()
        path = path_of(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        is_package = path.endswith("__init__.py")
        with open(path) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's own package upwards
                    parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] == "sdgmm":
                    base = node.module.partition(".")[2]
                else:
                    continue
                # `from sdgmm.x import y`: y may be a module of package x, or a name defined in x.
                todo += [base] if base else []
                todo += [f"{base}.{a.name}" if base else a.name for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [a.name.partition(".")[2] for a in node.names if a.name.startswith("sdgmm.")]
    return sorted(seen.values())


def run_point(point: dict, pid: str, previous: dict | None = None) -> dict:
    """Solve one point. `previous` is the output for the neighbouring smaller alpha of the same chain,
    whose optimum warm-starts the search. A state evolution that does not converge is a result (with
    its reason in `failure`), not an error: re-running would fail the same way."""
    log = os.environ.get(TASK_LOG_ENV)
    if log:
        with open(log, "a") as fh:
            fh.write(pid + "\n")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _JOBS[point["kind"]](point, (previous or {}).get("result"))
            result["failure"] = ""
        except ConvergenceError as e:
            result = {"failure": str(e)}
    result["warnings"] = "; ".join(sorted({str(w.message) for w in caught}))
    return {"result": result, "seconds": time.perf_counter() - start, "engine": engine_version(),
            "worker": f"{socket.gethostname()}:{os.getpid()}"}


def _problem(point):
    spectrum = _spectrum(point["spectrum"]) if point.get("spectrum") else None
    return Problem(point["alpha"], point["delta"], rho=point["rho"], theta=point["theta"], spectrum=spectrum)


@functools.lru_cache(maxsize=4)
def _spectrum(path: str) -> Spectrum:
    """A worker reads a spectrum file once per sweep, not once per point."""
    return Spectrum.load(path)


def _stages(point):
    return make_stages(point["lam"], point["beta"], hard=point["labels"] == "hard", bias=point["bias"])


def _per_stage(eps) -> dict:
    """eps_1..eps_T, the best stage and the relative gain of the best stage over stage 1 (0-SD)."""
    eps = [float(e) for e in eps]
    finite = [e for e in eps if math.isfinite(e)]
    best = min(finite) if finite else math.nan
    out = {f"eps_{t + 1}": e for t, e in enumerate(eps)}
    out.update(eps_final=eps[-1], eps_best=best, best_stage=eps.index(best) + 1 if finite else 0,
               gain=(eps[0] - best) / eps[0] if finite and eps[0] > 0 else math.nan)
    return out


def _theory(point, _previous):
    r = theory(_problem(point), _stages(point), point["loss"], threads=1)
    return {**_per_stage(r.eps), "eps_error": float(max(r.eps_error)), "b_final": float(r.b[-1]),
            "m_final": float(r.m[-1])}


def _simulate(point, _previous):
    sim = simulate(_problem(point), _stages(point), point["loss"], N=point["N"], trials=point["trials"],
                   seed=point["seed"], threads=1)
    return {**_per_stage(sim.eps), **{f"eps_se_{t + 1}": float(s) for t, s in enumerate(sim.eps_se)}}


def _optimize(point, previous):
    """Optimal SD with T* by early stopping (or every T up to `stages`); gain is that of the best
    stage count's optimum over the optimal 0-SD (T = 1)."""
    import numpy as np


    T = point["stages"]
    counts = {"max_stages": T} if point["early_stopping"] else {"n_stages": T}
    res = optimize(_problem(point), **counts, loss=point["loss"], labels=point["labels"], bias=point["bias"],
                   bounds={"lam": point["lam_bounds"], "beta": point["beta_bounds"]}, restarts=point["restarts"],
                   gain_tol=point["gain_tol"], seed=point["seed"], start=next_start((previous or {}).get("lam_1_of_T1")),
                   search_options={"threads": 1}, final_options={"threads": 1})
    best = res.best
    eps0 = res.optima[0].eps_final
    out = {f"eps_T{o.n_stages}": o.eps_final for o in res.optima}
    out.update(eps_0sd=eps0, eps_best=best.eps_final, best_n_stages=best.n_stages,
               gain=(eps0 - best.eps_final) / eps0 if eps0 > 0 else math.nan,
               eps_error=float(best.eps_error[-1]), at_bound=";".join(best.at_bound),
               lam_best=",".join(f"{v:.6g}" for v in best.lam),
               beta_best=",".join(f"{v:.6g}" for v in best.beta) if point["labels"] == "soft" else "",
               bias_best=float(best.bias_value),  # the tuned bias B with bias = "tune", else NaN
               lam_1_of_T1=float(np.asarray(res.optima[0].lam)[0]),
               evaluations=sum(o.evaluations for o in res.optima), stopped=res.failure or "")
    return out


_JOBS = {"theory": _theory, "simulate": _simulate, "optimize": _optimize}
