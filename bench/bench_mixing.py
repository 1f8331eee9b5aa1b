"""Cost of searching the mixing weights xi: the optimal curve with xi against the pure-SD curve, in one run.

Run: .venv/bin/python bench/bench_mixing.py [--labels hard|soft]
Target (issue 14): the curve with xi (20 alphas, T <= 3, hard labels) at most 3x the pure-SD curve.
"""

import argparse
import time

import numpy as np
import sdgmm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", choices=("hard", "soft"), default="hard")
    args = parser.parse_args()
    alphas = np.logspace(-1, 2, 20)
    seconds, curves = {}, {}
    for mix in (False, True):
        start = time.perf_counter()
        curves[mix] = sdgmm.curve(alphas, stage_counts=(1, 2, 3), labels=args.labels, mix=mix)
        seconds[mix] = time.perf_counter() - start
    pure, mixed = (c[c["n_stages"] == 3].set_index("alpha")["eps"] for c in (curves[False], curves[True]))
    print(f"curve, 20 alphas, T <= 3, {args.labels} labels: pure {seconds[False]:.1f} s (anchor), "
          f"mixed {seconds[True]:.1f} s, ratio {seconds[True] / seconds[False]:.2f} (target <= 3)")
    print(f"2-SD: mixed - pure between {np.nanmin(mixed - pure):+.4f} and {np.nanmax(mixed - pure):+.4f}")


if __name__ == "__main__":
    main()
