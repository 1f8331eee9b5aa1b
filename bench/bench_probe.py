"""Wall time of one full probe cell: M = 2000 training points, one theta, 5 trials, every method tuned.

    .venv/bin/python bench/bench_probe.py [FEATURES.npz] [--theta 0.2] [--trials 5]

FEATURES defaults to the CIFAR cat/dog EfficientNet-Lite0 features made by
``sdgmm features --images ../shared/data/cifar10_cat_dog.npz --out /work/cache/cifar_catdog_effnet.npz``.
"""

import argparse
import os
import time

import sdgmm
from sdgmm.probe_data import load_split


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("features", nargs="?", default="/work/cache/cifar_catdog_effnet.npz")
    parser.add_argument("--M", type=int, default=2000)
    parser.add_argument("--theta", type=float, default=0.2)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    if not os.path.isfile(args.features):
        raise SystemExit(f"no feature file {args.features!r}; make it with 'sdgmm features' (see --help)")
    split = load_split(args.features)
    start = time.perf_counter()
    res = sdgmm.probe(split.X_train, split.y_train, split.X_test, split.y_test, M=[args.M], theta=[args.theta],
                      trials=args.trials)
    seconds = time.perf_counter() - start
    fits = res.trials.groupby("trial")["tuning_fits"].first()
    tuning = res.trials.groupby("trial")["tuning_seconds"].first()
    print(f"probe cell M={args.M} theta={args.theta:g} trials={args.trials} N={res.N}: {seconds:.1f} s wall "
          f"(tuning {tuning.sum():.1f} s, {fits.mean():.0f} fits per trial, load average {os.getloadavg()[0]:.1f})")
    print(res.summary()[["method", "test_error", "test_error_se", "n_stages", "lam", "beta"]].to_string(index=False))


if __name__ == "__main__":
    main()
