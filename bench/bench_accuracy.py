"""What the default accuracy target (theory(accuracy=1e-6)) costs on the paper's grid, against the rule as
given (accuracy=0, the pre-target default), measured in the same run.

Run: .venv/bin/python bench/bench_accuracy.py
Grid: the main curve's 20 alphas (0.1..100), delta 0.5, rho 0.5, theta 0.3, logistic loss; 0-SD (lam 0.1),
soft T = 3 (lam 1, 0.5, 0.5; beta 2) and hard T = 3 (lam 1, 0.5, 0.5). Printed per case: the summed time of both,
their ratio, how many points met 1e-6, and the largest change of eps that the refinement made.
"""

import time
import warnings

import numpy as np
import sdgmm

ALPHAS = np.geomspace(0.1, 100, 20)
CASES = {
    "0-SD lam 0.1": sdgmm.make_stages([0.1]),
    "soft T=3": sdgmm.make_stages([1.0, 0.5, 0.5], [2.0, 2.0]),
    "hard T=3": sdgmm.make_stages([1.0, 0.5, 0.5], hard=True),
}


def solve(problem, stages, accuracy):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            r = sdgmm.theory(problem, stages, accuracy=accuracy)
        except sdgmm.ConvergenceError:
            r = None
    return time.perf_counter() - start, r


def main():
    print(f"{'case':14s} {'plain s':>8s} {'1e-6 s':>8s} {'ratio':>6s} {'met 1e-6':>9s} {'max |change|':>13s}")
    for name, stages in CASES.items():
        plain_s = target_s = 0.0
        met, change, n = 0, 0.0, 0
        for alpha in ALPHAS:
            problem = sdgmm.Problem(alpha=float(alpha), delta=0.5, rho=0.5, theta=0.3)
            t0, plain = solve(problem, stages, 0.0)
            t1, target = solve(problem, stages, 1e-6)
            plain_s, target_s = plain_s + t0, target_s + t1
            if plain is not None and target is not None:
                n += 1
                met += target.accuracy_reached
                change = max(change, float(np.max(np.abs(plain.eps - target.eps))))
        print(f"{name:14s} {plain_s:8.3f} {target_s:8.3f} {target_s / plain_s:5.2f}x {met:>4d} of {n:<2d} {change:13.1e}")


if __name__ == "__main__":
    main()
