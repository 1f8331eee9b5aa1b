"""Records the engine's isotropic problem on a matrix of cases: the oracle of tests/api/test_theory_spectrum.py's
reduction test. First recorded at commit dc8ce93, before the general-covariance ridge side replaced the isotropic
engine; recorded again at fe48fb5, whose response chi_kt sums over every earlier coupling (docs/theory.md, section
4), which moves every T >= 3 case. Run from the repository root:
    .venv/bin/python tests/data/record_isotropic_engine.py tests/data/isotropic_engine.json"""

import json
import math
import sys

import numpy as np
import sdgmm

INF = math.inf
PROBLEMS = {
    "table": {"alpha": 1.5, "delta": 0.5, "rho": 0.4, "theta": 0.2},
    "balanced": {"alpha": 3.0, "delta": 1.0, "rho": 0.5, "theta": 0.3},
    "conditional": {"alpha": 0.7, "delta": 0.5, "rho": 0.35, "theta": 0.2, "theta_plus": 0.1, "theta_minus": 0.3},
}
SCHEDULES = {
    "soft": {"lam": [1.5, 0.5, 2.0, 1.0], "beta": [0.8, 1.2, 2.0], "hard": False},
    "hard": {"lam": [0.5, 0.5, 0.5, 0.5], "beta": None, "hard": True},
    "hard_fix_first": {"lam": [0.7, 0.3, 1.0, 2.0], "beta": None, "hard": True, "bias": "fix_first"},
    "soft_fix_first": {"lam": [0.7, 0.3, 1.0, 2.0], "beta": [1.5, 0.7, 3.0], "hard": False, "bias": "fix_first"},
    "limit_hard": {"lam": [INF] * 4, "beta": None, "hard": True},
    "limit_soft": {"lam": [INF, INF, 2.0, INF], "beta": [3.0, 1.0, 0.5], "hard": False},
}


def record():
    cases = []
    for pname, problem in PROBLEMS.items():
        for sname, schedule in SCHEDULES.items():
            if sname.startswith("limit") and pname != "balanced":
                continue  # under imbalance the limit is the constant classifier
            for loss in ("logistic", "square"):
                for T in (1, 2, 3, 4):
                    lam = schedule["lam"][:T]
                    beta = None if schedule["beta"] is None or T == 1 else schedule["beta"][: T - 1]
                    bias = schedule.get("bias", "learn")
                    stages = sdgmm.make_stages(lam, beta, hard=schedule["hard"], bias=bias)
                    r = sdgmm.theory(sdgmm.Problem(**problem), stages, loss, method="tensor", estimate_error=False,
                                     on_nonconvergence="warn")
                    cases.append({"problem": problem, "lam": lam, "beta": beta, "hard": schedule["hard"],
                                  "bias": bias, "loss": loss, "name": f"{pname}-{sname}-{loss}-T{T}",
                                  "converged": r.converged.tolist(), "eps": r.eps.tolist(), "m": r.m.tolist(),
                                  "b": r.b.tolist(), "Q": r.Q.tolist(),
                                  "chi": np.triu(np.nan_to_num(r.chi, nan=0.0)).tolist()})
    return cases


if __name__ == "__main__":
    with open(sys.argv[1], "w") as fh:
        json.dump({"engine": "sdgmm isotropic problem at commit fe48fb5 (tensor rule, default nodes, no error "
                             "estimate)", "cases": record()}, fh, indent=1, allow_nan=True)
