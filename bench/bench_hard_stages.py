"""Cost of many hard-label stages against the soft T = 3 anchor, measured in the same run.

Run: .venv/bin/python bench/bench_hard_stages.py [--curve]
Targets (issue 13, part 3), both at accuracy <= 1e-5: hard T = 6 at finite lam <= 40x the soft T = 3 call, and
hard T = 10 at lam = inf <= 25x it. --curve also times `curve`'s default job (20 alphas, T <= 6, hard), whose
target is half of its time before the work.
"""

import argparse

import numpy as np
import sdgmm
from bench_theory import timed  # the script directory is on sys.path

ACCURACY = 1e-5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curve", action="store_true", help="also time curve's default job (about 10 s)")
    args = parser.parse_args()
    anchor_problem = sdgmm.Problem(alpha=1.5, delta=0.5, rho=0.4, theta=0.2)
    balanced = sdgmm.Problem(alpha=2.0, delta=0.5, rho=0.5, theta=0.3)
    anchor, _ = timed(lambda: sdgmm.theory(anchor_problem, sdgmm.make_stages([1.5, 0.5, 2.0], [0.8, 1.2])), 20)
    print(f"anchor: soft T = 3, {anchor * 1e3:.1f} ms per call")
    cases = [
        ("hard T = 6, lam 1 then 0.5", sdgmm.make_stages([1.0] + [0.5] * 5, hard=True, bias="fix_first"), 40),
        ("hard T = 10, lam = inf", sdgmm.make_stages([np.inf] * 10, hard=True), 25),
    ]
    print(f"{'case':28s} {'seconds':>8s} {'ratio':>7s} {'target':>7s} {'method':>7s} {'eps_error':>10s}  met 1e-5")
    for name, stages, target in cases:
        seconds, r = timed(lambda stages=stages: sdgmm.theory(balanced, stages, accuracy=ACCURACY), 1)
        print(f"{name:28s} {seconds:8.2f} {seconds / anchor:6.0f}x {target:6d}x {r.method:>7s} "
              f"{np.nanmax(r.eps_error):10.1e}  {r.accuracy_reached}")
    if args.curve:
        seconds, _ = timed(lambda: sdgmm.curve(np.geomspace(0.1, 100, 20), stage_counts=(1, 2, 6), labels="hard"), 1)
        print(f"curve's default job: {seconds:.1f} s ({seconds / anchor:.0f}x the anchor)")


if __name__ == "__main__":
    main()
