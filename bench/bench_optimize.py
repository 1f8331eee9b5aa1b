"""Speed of optimal learning curves (issue 4), with a ratio against an anchor measured in the same run.

Run: .venv/bin/python bench/bench_optimize.py [--restarts K]
Targets: an optimal curve of 20 alphas (0.1..100) x stage counts 1..6, logistic loss, delta 0.5,
rho 0.5, theta 0.3: <= 2 minutes with hard labels, <= 10 minutes with soft labels.
The anchor is one default-accuracy state evolution, hard labels, T = 3, lam = 1 (finite lam, so the
full fixed point runs): the curve's cost is also printed in units of it.
"""

import argparse
import statistics
import time

import numpy as np
import sdgmm

TARGETS = {"hard": 120.0, "soft": 600.0}


def anchor_seconds() -> float:
    p = sdgmm.Problem(alpha=1.0, delta=0.5, rho=0.5, theta=0.3)
    stages = sdgmm.make_stages([1.0] * 3, hard=True)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        sdgmm.theory(p, stages)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=0, help="random restarts per (alpha, T) (curve's default: 0)")
    args = parser.parse_args()
    anchor = anchor_seconds()
    print(f"anchor: hard T=3 theory() {anchor * 1e3:.1f} ms")
    alphas = np.geomspace(0.1, 100, 20)
    for labels in ("hard", "soft"):
        start = time.perf_counter()
        df = sdgmm.curve(alphas, stage_counts=range(1, 7), labels=labels, restarts=args.restarts)
        seconds = time.perf_counter() - start
        worst = np.nanmax(df["eps_error"])
        print(f"{labels:4s} curve 20 alphas x T=1..6, restarts={args.restarts}: {seconds:7.1f} s "
              f"= {seconds / anchor:8.0f} anchors; target {TARGETS[labels]:.0f} s -> ratio "
              f"{seconds / TARGETS[labels]:.2f}; rows {len(df)}, failed {int(df['eps'].isna().sum())}, "
              f"max eps_error {worst:.1e}")


if __name__ == "__main__":
    main()
