"""'sdgmm optimize' (tuned hyperparameters per stage count, T* by early stopping) and 'sdgmm curve' (the optimal
error against alpha: table, csv, plot)."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from sdgmm._output import write_outputs
from sdgmm._params import LOSSES
from sdgmm._progress import ProgressBar
from sdgmm.cli._common import (
    C_INT,
    EXIT_OK,
    Formatter,
    add_delta_and_spectrum,
    add_output_args,
    add_problem_args,
    api_default,
    call_reporting_warnings,
    emit,
    int_below,
    problem_from_args,
    writable_path,
)
from sdgmm.cli._tables import (
    curve_dict,
    curve_table,
    curve_title,
    optimize_dict,
    optimize_frame,
    optimize_table,
)
from sdgmm.optimal import DEFAULT_BOUNDS, LABELS, SEARCH_BIASES, curve, optimize, plot_curve

DEFAULT_MAX_STAGES = 6  # 'sdgmm optimize' without --n-stages / --max-stages


def _stage_count(text: str) -> int:
    """An argparse type: a stage count, an integer >= 1."""
    value = C_INT(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (got {value})")
    return value


def _stage_counts(text: str) -> list[int]:
    """An argparse type: comma-separated stage counts >= 1, e.g. '1,2,6'."""
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,6 (got {text!r})") from None
    if any(v < 1 or v >= 2**31 for v in values):
        raise argparse.ArgumentTypeError(f"stage counts must be integers >= 1 (got {text!r})")
    return sorted(set(values))


def _bounds(text: str, positive: bool = True) -> tuple[float, float]:
    """An argparse type: 'LO,HI' with 0 < LO < HI < inf (or, unless `positive`, -inf < LO < HI < inf)."""
    try:
        lo, hi = (float(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LO,HI such as 1e-4,1e3 (got {text!r})") from None
    if not ((0 if positive else -math.inf) < lo < hi < math.inf):
        raise argparse.ArgumentTypeError(f"expected {'0' if positive else '-inf'} < LO < HI < inf (got {text!r})")
    return lo, hi


def _linear_bounds(text: str) -> tuple[float, float]:
    return _bounds(text, positive=False)


MAX_GRID_POINTS = 10_000


def _alpha_grid(text: str) -> list[float]:
    """An argparse type: 'A:B:K' (K points log-spaced from A to B inclusive, 0 < A < B, K >= 1; K = 1
    gives A alone) or a comma list of positive numbers such as '0.5,1,2'. Sorted, without duplicates."""
    import numpy as np

    usage = "expected A:B:K (K log-spaced points from A to B) or a comma list such as 0.5,1,2"
    if ":" in text:
        parts = text.split(":")
        try:
            if len(parts) != 3:
                raise ValueError
            a, b, k = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise argparse.ArgumentTypeError(f"{usage} (got {text!r})") from None
        if not (0 < a < b < math.inf):
            raise argparse.ArgumentTypeError(f"A:B:K needs 0 < A < B < inf (got {text!r})")
        if not 1 <= k <= MAX_GRID_POINTS:
            raise argparse.ArgumentTypeError(f"A:B:K needs 1 <= K <= {MAX_GRID_POINTS} (got {text!r})")
        return [float(v) for v in np.geomspace(a, b, k)]
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{usage} (got {text!r})") from None
    if not all(0 < v < math.inf for v in values):
        raise argparse.ArgumentTypeError(f"alphas must be positive and finite (got {text!r})")
    return sorted(set(values))


def _add_search_args(parser: argparse.ArgumentParser, func) -> None:
    """The search flags shared by optimize and curve; defaults from `func`'s signature."""

    g = parser.add_argument_group("search (what is tuned, and how)")
    g.add_argument("--loss", choices=LOSSES, default=api_default(func, "loss"),
                   help="training loss of every stage: 'logistic' (binary cross-entropy) or 'square' "
                        "((u+1)/2 - y)^2, whose soft targets are (beta u + 1) / 2 (default: %(default)s)")
    g.add_argument("--labels", choices=LABELS, default=api_default(func, "labels"),
                   help="pseudo-labels of stages 2..T: 'hard' 1{u > 0} (only lam_t is tuned) or 'soft' with "
                        "temperature 1 / beta_t (lam_t and beta_t are tuned) (default: %(default)s)")
    g.add_argument("--bias", choices=SEARCH_BIASES, default=api_default(func, "bias"),
                   help="bias policy: 'learn' = every stage learns its bias; 'fix_first' = stages 2..T keep "
                        "stage 1's bias (the paper's bias fixing) (default: %(default)s)")
    lam, beta = DEFAULT_BOUNDS["lam"], DEFAULT_BOUNDS["beta"]
    g.add_argument("--lam-bounds", type=_bounds, default=lam, metavar="LO,HI",
                   help=f"search box of every lam_t, searched in log space; 0 < LO < HI; beyond HI the search "
                        f"continues in 1/lam to the exact limit lam = inf (default: {lam[0]:g},{lam[1]:g})")
    g.add_argument("--no-limits", dest="limits", action="store_false",
                   help="end the lam search at HI instead of continuing to lam = inf")
    g.add_argument("--beta-bounds", type=_bounds, default=beta, metavar="LO,HI",
                   help="search box of every beta_t (soft labels only), searched in log space; 0 < LO < HI "
                        f"(default: {beta[0]:g},{beta[1]:g})")
    xi = DEFAULT_BOUNDS["xi"]
    g.add_argument("--mix", action="store_true",
                   help="also tune the mixing weights xi_2..xi_T: stage t trains on xi_t * pseudo-label + "
                        "(1 - xi_t) * noisy label (docs/theory.md section 7)")
    g.add_argument("--xi-bounds", type=_linear_bounds, default=xi, metavar="LO,HI",
                   help=f"search box of every xi_t with --mix, on a linear scale (default: {xi[0]:g},{xi[1]:g})")
    g.add_argument("--restarts", type=C_INT, default=api_default(func, "restarts"), metavar="K",
                   help="random starting points per stage count, besides the warm start from the previous "
                        "stage count's optimum; >= 0 (default: %(default)s)")
    g.add_argument("--seed", type=int_below(2**64), default=api_default(func, "seed"), metavar="S",
                   help="seed of the random restarts, >= 0 (default: %(default)s)")


def _search_kwargs(args) -> dict:
    return {"loss": args.loss, "labels": args.labels, "bias": args.bias,
            "bounds": {"lam": args.lam_bounds, "beta": args.beta_bounds, "xi": args.xi_bounds},
            "restarts": args.restarts, "seed": args.seed, "limits": args.limits, "mix": args.mix}


OPTIMIZE_DESCRIPTION = """\
Tune self-distillation: for each stage count T = 1, 2, ... find the ridge penalties lam_1..lam_T (and,
with --labels soft, the temperatures beta_2..beta_T) that minimise the final stage's test error eps_T,
by derivative-free local searches (Powell, in log space inside the search box) started from the
(T-1)-stage optimum plus one stage and from --restarts random points. The search evaluates the state
evolution with a cheaper integration rule; every reported eps is re-evaluated at the default accuracy.
Model and notation: see 'sdgmm --help'. Reported per stage count T:
  eps          the optimal final-stage error eps_T; eps_error its integration error estimate
  lam, beta    the optimal lam_1..lam_T and beta_2..beta_T
  evaluations  state-evolution evaluations of the search; seconds its time
  converged    every local search ended on its tolerance (not on its evaluation budget)
  at_bound     hyperparameters that ended on an edge of the search box
  best         * marks T*, the fewest stages with the lowest optimal error, to within integration error
With --max-stages the loop stops early once one more stage gains less than --gain-tol, or no more than the
two optima's eps_error together; with --n-stages every count up to it is optimised. The csv output has columns lam_1.., beta_2.. (inf for hard labels)
and best; the json output also holds every stage's eps at each optimum."""

OPTIMIZE_EXIT_STATUS = """\
exit status:
  0  success
  2  invalid input (a bad parameter value; the message names the parameter)
  3  no converged state evolution was found for some stage count inside the search box"""


def add_optimize(subparsers) -> None:

    p = subparsers.add_parser(
        "optimize", formatter_class=Formatter,
        help="tune lam_t (and beta_t) per stage count to minimise the final error; report the best T*",
        description=OPTIMIZE_DESCRIPTION,
        epilog="examples:\n"
               "  sdgmm optimize --alpha 1 --delta 0.5 --rho 0.5 --theta 0.3 --max-stages 6 --loss square "
               "--labels soft\n"
               "  sdgmm optimize --alpha 0.5 --n-stages 3 --labels hard --lam-bounds 1e-3,1e2 --format csv\n\n"
               + OPTIMIZE_EXIT_STATUS,
    )
    add_problem_args(p)
    g = p.add_argument_group("stage counts")
    counts = g.add_mutually_exclusive_group()
    counts.add_argument("--max-stages", type=_stage_count, default=None, metavar="T",
                        help="optimise T = 1, 2, ... up to this count, stopping early once one more stage gains "
                             f"less than --gain-tol; >= 1 (default: {DEFAULT_MAX_STAGES} when --n-stages is "
                             "not given)")
    counts.add_argument("--n-stages", type=_stage_count, default=None, metavar="T",
                        help="optimise every stage count 1..T, without early stopping; >= 1")
    g.add_argument("--gain-tol", type=float, default=api_default(optimize, "gain_tol"), metavar="G",
                   help="early stopping: the smallest error decrease that justifies one more stage, >= 0 "
                        "(default: %(default)g)")
    _add_search_args(p, optimize)
    add_output_args(p, help="'table' aligned text, 'csv' one row per stage count, 'json' everything, with every "
                             "stage's eps at each optimum (inf and NaN as the tokens Infinity and NaN) (default: %(default)s)")
    p.set_defaults(run=run_optimize)


def run_optimize(args) -> int:

    problem = problem_from_args(args)
    if args.n_stages is None and args.max_stages is None:
        args.max_stages = DEFAULT_MAX_STAGES
    res = call_reporting_warnings(optimize, problem, args.n_stages, max_stages=args.max_stages,
                                   gain_tol=args.gain_tol, **_search_kwargs(args))
    stopped_early = args.max_stages is not None and len(res.optima) < args.max_stages
    emit(args, table=lambda: optimize_table(res, args, stopped_early), frame=lambda: optimize_frame(res),
          data=lambda: optimize_dict(res, args))
    return EXIT_OK


CURVE_DESCRIPTION = """\
Learning curves of optimally tuned self-distillation: for every alpha of the grid and every stage count T
of --stage-counts, the lowest final-stage error eps_T over lam_t (and beta_t for soft labels), found as
by 'sdgmm optimize --n-stages max(stage counts)'. Alphas are visited in increasing order, each search
warm-started from the previous alpha's optimum. Model and notation: see 'sdgmm --help'.
Defaults reproduce the paper's main setting: delta 0.5, rho 0.5, theta 0.3, 20 alphas from 0.1 to 100,
stage counts 1, 2, 6 (0-SD, 1-SD, 5-SD).
One row per (alpha, T): eps, eps_error, the optimal lam_t, beta_t, at_bound (hyperparameters on an edge
of the search box), and two references for balanced classes: noiseless = H(1 / sqrt(delta (1 + delta /
alpha))), the optimal 0-SD error without label noise, and bayes = H(1 / sqrt(delta)), the alpha -> inf
Bayes limit. --csv writes that table; --plot draws eps against alpha (log axis), one line per T, with the
two references dashed. A progress bar is shown on stderr when it is a terminal (or with --progress)."""


def add_curve(subparsers) -> None:

    p = subparsers.add_parser(
        "curve", formatter_class=Formatter,
        help="optimal error against alpha for several stage counts (table, csv, plot)",
        description=CURVE_DESCRIPTION,
        epilog="examples:\n"
               "  sdgmm curve --plot curve.png --csv curve.csv\n"
               "  sdgmm curve --alphas 0.5,1,2 --stage-counts 1,2 --loss square --labels soft --restarts 0\n\n"
               + OPTIMIZE_EXIT_STATUS,
    )
    g = p.add_argument_group("problem (data model)")
    g.add_argument("--alphas", type=_alpha_grid, default="0.1:100:20", metavar="GRID",
                   help="sample ratios alpha = M / N: 'A:B:K' = K points log-spaced from A to B inclusive "
                        "(0 < A < B, K >= 1), or a comma list of positive numbers such as 0.5,1,2 "
                        "(default: %(default)s)")
    add_delta_and_spectrum(g)
    for name, meta, text in (("rho", "R", "class prior rho = P(s = +1); in (0, 1)"),
                             ("theta", "T", "label-flip rate theta; in [0, 1)")):
        g.add_argument(f"--{name}", type=float, default=api_default(curve, name), metavar=meta,
                       help=f"{text} (default: %(default)s)")
    g.add_argument("--stage-counts", type=_stage_counts, default=",".join(map(str, api_default(curve, "stage_counts"))),
                   metavar="T1,T2,...",
                   help="stage counts T to report, each >= 1 (T = 1 is 0-SD) (default: %(default)s)")
    _add_search_args(p, curve)
    g = add_output_args(p, help="'table' aligned text, 'csv' one row per (alpha, T), 'json' settings and rows "
                                 "(inf and NaN as the tokens Infinity and NaN), on stdout (default: %(default)s)")
    g.add_argument("--csv", default=None, metavar="PATH", help="also write the table as csv to PATH")
    g.add_argument("--plot", default=None, metavar="PATH",
                   help="also draw eps against alpha into PATH (format from the extension, PNG by default)")
    g.add_argument("--progress", action="store_true",
                   help="show the progress bar on stderr even when it is not a terminal")
    p.set_defaults(run=run_curve)


def run_curve(args) -> int:


    plot_path = writable_path(args.plot, "--plot", figure=True)
    csv_path = writable_path(args.csv, "--csv")
    problem = problem_from_args(args, alpha=args.alphas[0])  # bad delta/rho/theta/spectrum: fail now
    bar = ProgressBar(len(args.alphas), "sdgmm curve", "alphas") if args.progress or sys.stderr.isatty() else None
    start = time.perf_counter()
    try:
        df = call_reporting_warnings(curve, args.alphas, delta=args.delta, rho=args.rho, theta=args.theta,
                                     spectrum=problem.spectrum,
                                      stage_counts=args.stage_counts, progress=bar, **_search_kwargs(args))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    fig = plot_curve(df, title=curve_title(args)) if plot_path is not None else None
    for path in write_outputs(fig, plot_path, {csv_path: df}):
        print(f"sdgmm curve: wrote {os.path.abspath(path)}", file=sys.stderr)
    emit(args, table=lambda: curve_table(df, args, seconds), frame=lambda: df,
          data=lambda: curve_dict(df, args, seconds))
    return EXIT_OK


