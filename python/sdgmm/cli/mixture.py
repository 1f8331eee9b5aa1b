"""'sdgmm fit-mixture FEATURES --classes A,B --out spectrum.npz': the Gaussian mixture of docs/theory.md section 6
fitted to labelled features, written as the spectrum file that --spectrum reads."""

from __future__ import annotations

import sys

from sdgmm.cli._common import EXIT_OK, Formatter, UsageError, writable_path

DESCRIPTION = """\
Fit the mixture x = s mu / sqrt(N) + Sigma^{1/2} zeta to the training pool of a feature file (its two classes,
standardised as 'sdgmm probe' standardises its subsets, unless --raw): the spectrum of the pooled within-class
covariance and the class-mean vector in its eigenbasis, written to --out as an .npz with arrays 'eigenvalues'
and 'mean' (what --spectrum of theory / simulate / optimize / curve reads), plus 'rho' (the pool's share of
class B) and the fit's diagnostics. Printed: N, rho, and how well one shared covariance fits: the class
covariances' relative Frobenius distance ||S_B - S_A|| / ||S|| (0 when they agree) and the ratio of their
variances along the mean difference (1 when they agree). Feature formats: as for 'sdgmm probe'."""


def add(subparsers) -> None:
    p = subparsers.add_parser("fit-mixture", formatter_class=Formatter, description=DESCRIPTION,
                              help="fit the general-covariance mixture to labelled features (a spectrum file)",
                              epilog="example:\n  sdgmm fit-mixture feats.npz --classes 3,5 --out spectrum.npz\n"
                                     "  sdgmm curve --spectrum spectrum.npz --alphas 0.1:10:8\n\n"
                                     "exit status: 0 success, 2 invalid input (nothing is written)")
    p.add_argument("features", metavar="FEATURES", help="feature file (.npz, .npy, .csv, .parquet)")
    p.add_argument("--classes", default=None, metavar="A,B",
                   help="the two classes; B is class +1 (default: the two in the data)")
    p.add_argument("--label-column", default="label", metavar="NAME",
                   help="label column of a .csv/.parquet (or column index of a .npy) (default: %(default)s)")
    p.add_argument("--raw", action="store_true", help="fit the features as they are, not standardised")
    p.add_argument("--out", required=True, metavar="PATH", help="the spectrum file to write (.npz)")
    p.set_defaults(run=run)


def run(args) -> int:
    from sdgmm.realdata import fit_mixture  # scikit-learn: imported when the subcommand runs
    from sdgmm.realdata._data import Split, read_features, standardiser, two_classes

    out = writable_path(args.out, "--out")
    if not out.endswith(".npz"):
        raise UsageError(f"argument --out: the spectrum file must be an .npz file (got {out!r})")
    content = read_features(args.features, args.label_column)
    if isinstance(content, dict):  # the training pool of an .npz: X_train / y_train, or X / y
        keys = ("X_train", "y_train") if "X_train" in content else ("X", "y")
        if not set(keys) <= content.keys():
            raise ValueError(f"features: {args.features!r} must hold arrays X and y, or X_train and y_train "
                             f"(found {sorted(content)})")
        content = (content[keys[0]], content[keys[1]])
    classes = None if args.classes is None else tuple(args.classes.split(","))
    split, classes = two_classes(Split(*content, *content), classes)
    X = split.X_train
    if not args.raw:
        mean, scale = standardiser(X)
        X = (X - mean) / scale
    fit = fit_mixture(X, split.y_train)
    fit.save(out)
    ev = fit.spectrum.eigenvalues
    print(f"# mixture of {classes[0]} vs {classes[1]}: N={fit.N} points={sum(fit.n)} rho={fit.rho:.4f}\n"
          f"# eigenvalues in [{ev.min():.4g}, {ev.max():.4g}] ({len(set(ev.tolist()))} distinct), mean eigenvalue "
          f"{ev.mean():.4g}, |mu|^2 / N = {(fit.spectrum.mean ** 2).mean():.4g} (sampling noise removed: "
          f"{fit.mean_noise:.1%})\n"
          f"# shared covariance: ||S_B - S_A|| / ||S|| = {fit.covariance_mismatch:.3f}, variance along the mean "
          f"difference B / A = {fit.variance_ratio:.3f}")
    print(f"sdgmm fit-mixture: wrote {out}", file=sys.stderr)
    return EXIT_OK
