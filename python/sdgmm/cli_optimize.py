"""The optimal-SD subcommands of the command line: 'sdgmm optimize', 'sdgmm curve' and 'sdgmm figure'
(tuned hyperparameters, learning curves, the paper's figures). Shared flags and output helpers live
in :mod:`sdgmm.cli`."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from sdgmm._model import problem_dict
from sdgmm.cli import (
    _C_INT,
    EXIT_OK,
    UsageError,
    _add_output_args,
    _add_problem_args,
    _align,
    _api_default,
    _call_reporting_warnings,
    _emit,
    _figure_format,
    _Formatter,
    _int_below,
    _problem_from_args,
    _problem_line,
    _writable_path,
    _yes_no,
)
from sdgmm.progress import ProgressBar

# --- optimize and curve: tuned hyperparameters ---------------------------------------------------

DEFAULT_MAX_STAGES = 6  # 'sdgmm optimize' without --n-stages / --max-stages


def _stage_count(text: str) -> int:
    """An argparse type: a stage count, an integer >= 1."""
    value = _C_INT(text)
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


def _bounds(text: str) -> tuple[float, float]:
    """An argparse type: 'LO,HI' with 0 < LO < HI < inf."""
    try:
        lo, hi = (float(item) for item in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers LO,HI such as 1e-4,1e3 (got {text!r})") from None
    if not (0 < lo < hi < math.inf):
        raise argparse.ArgumentTypeError(f"expected 0 < LO < HI < inf (got {text!r})")
    return lo, hi


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
    from sdgmm.optimize import DEFAULT_BOUNDS, LABELS, SEARCH_BIASES
    from sdgmm.theory import LOSSES

    g = parser.add_argument_group("search (what is tuned, and how)")
    g.add_argument("--loss", choices=LOSSES, default=_api_default(func, "loss"),
                   help="training loss of every stage: 'logistic' (binary cross-entropy) or 'square' "
                        "((u+1)/2 - y)^2, whose soft targets are (beta u + 1) / 2 (default: %(default)s)")
    g.add_argument("--labels", choices=LABELS, default=_api_default(func, "labels"),
                   help="pseudo-labels of stages 2..T: 'hard' 1{u > 0} (only lam_t is tuned) or 'soft' with "
                        "temperature 1 / beta_t (lam_t and beta_t are tuned) (default: %(default)s)")
    g.add_argument("--bias", choices=SEARCH_BIASES, default=_api_default(func, "bias"),
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
    g.add_argument("--restarts", type=_C_INT, default=_api_default(func, "restarts"), metavar="K",
                   help="random starting points per stage count, besides the warm start from the previous "
                        "stage count's optimum; >= 0 (default: %(default)s)")
    g.add_argument("--seed", type=_int_below(2**64), default=_api_default(func, "seed"), metavar="S",
                   help="seed of the random restarts, >= 0 (default: %(default)s)")


def _search_kwargs(args) -> dict:
    return {"loss": args.loss, "labels": args.labels, "bias": args.bias,
            "bounds": {"lam": args.lam_bounds, "beta": args.beta_bounds},
            "restarts": args.restarts, "seed": args.seed, "limits": args.limits}


def _search_line(args, seconds: float) -> str:
    lam = f"lam in [{args.lam_bounds[0]:g}, {args.lam_bounds[1]:g}]{' + inf' if args.limits else ''}"
    beta = f", beta in [{args.beta_bounds[0]:g}, {args.beta_bounds[1]:g}]" if args.labels == "soft" else ""
    return (f"# search: loss={args.loss} labels={args.labels} bias={args.bias} restarts={args.restarts} "
            f"seed={args.seed} ({seconds:.2f} s)\n# search box: {lam}{beta}")


def _joined(values) -> str:
    return ",".join(format(float(v), ".4g") for v in values)


def _compact(values) -> str:
    """Per-stage values, shown once when every stage has the same one ('inf' for six stages at the limit)."""
    values = [float(v) for v in values]
    return format(values[0], ".4g") if len(set(values)) == 1 else ",".join(format(v, ".3g") for v in values)


def _beta_cell(optimum, labels: str) -> str:
    if optimum.n_stages == 1:
        return "-"
    return "hard" if labels == "hard" else _compact(optimum.beta)


# at_bound entries as the tables show them: the limit lam = inf is already in the lam column.
_EDGE = {"lower": "L", "upper": "U"}


def _at_bound_cell(at_bound) -> str:
    """'lam_1=lower;beta_3=upper;lam_2=inf' -> 'lam_1:L,beta_3:U' (the limit is shown as lam = inf)."""
    cells = []
    for entry in at_bound:
        name, _, edge = entry.partition("=")
        if edge in _EDGE:
            cells.append(f"{name}:{_EDGE[edge]}")
        elif edge != "inf":
            cells.append(entry.replace("(accuracy)", ""))
    return ",".join(cells) or "-"


AT_BOUND_NOTE = ("# at_bound: hyperparameters on an edge of the search box, L lower / U upper (the error may keep "
                 "falling\n#   beyond it: widen --lam-bounds / --beta-bounds); beta<=X: beta capped where the "
                 "quadrature\n#   resolves the soft targets. lam = inf is the exact limit lam -> inf, not an edge.")


def _format_optimize_table(res, args, stopped_early: bool) -> str:
    best = res.best_n_stages
    header = [_problem_line(res.problem), _search_line(args, res.seconds)]
    if args.n_stages is not None:
        header.append(f"# stage counts: T = 1..{args.n_stages}")
    else:
        why = (f"stopped at T={res.optima[-1].n_stages}: the last stage gained less than gain_tol"
               if stopped_early and not res.failure else "no early stop")
        header.append(f"# stage counts: T = 1..{args.max_stages} with early stopping "
                      f"(gain_tol={res.gain_tol:g}; {why})")
    header.append(f"# T* = {best}: the stage count with the lowest optimal final eps (marked *)")
    tuned = res.bias == "tune"  # the kept bias B is a searched hyperparameter: show it
    cols = ("T", "eps", "eps_error", "lam", "beta") + (("B",) if tuned else ()) + (
        "evaluations", "seconds", "converged", "at_bound", "best")
    cells = [cols]
    for o in res.optima:
        bias = (format(o.bias_value, ".4g"),) if tuned else ()
        cells.append((str(o.n_stages), format(o.eps_final, ".8f"), format(float(o.eps_error[-1]), ".1e"),
                      _compact(o.lam), _beta_cell(o, res.labels), *bias, str(o.evaluations), format(o.seconds, ".2f"),
                      _yes_no(o.converged), _at_bound_cell(o.at_bound), "*" if o.n_stages == best else ""))
    lines = header + [line.rstrip() for line in _align(cells)]
    if any(_at_bound_cell(o.at_bound) != "-" for o in res.optima):
        lines.append(AT_BOUND_NOTE)
    if res.failure:
        lines.append(f"# T = {len(res.optima) + 1}: no optimum: {res.failure}")
    return "\n".join(lines)


def _optimize_frame(res):
    df = res.to_dataframe()
    df["best"] = df["n_stages"] == res.best_n_stages
    return df


def _floats(values) -> list:
    return [float(v) for v in values]


def _optimize_dict(res, args) -> dict:
    p = res.problem
    return {
        "problem": problem_dict(p),
        "loss": res.loss, "labels": res.labels, "bias": res.bias,
        "bounds": {"lam": list(args.lam_bounds), "beta": list(args.beta_bounds)},
        "restarts": args.restarts, "seed": args.seed, "gain_tol": res.gain_tol,
        "n_stages": args.n_stages, "max_stages": args.max_stages,
        "best_n_stages": res.best_n_stages, "seconds": res.seconds,
        "optima": [
            {"n_stages": o.n_stages, "eps_final": o.eps_final, "eps": _floats(o.eps),
             "eps_error": _floats(o.eps_error), "lam": _floats(o.lam),
             "beta": _floats(o.beta) if res.labels == "soft" else None,  # hard labels: no temperature
             "at_bound": list(o.at_bound), "evaluations": int(o.evaluations), "seconds": o.seconds,
             "converged": bool(o.converged)}
            for o in res.optima
        ],
    }


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
  best         * marks T*, the stage count with the lowest optimal error
With --max-stages the loop stops early once one more stage gains less than --gain-tol; with --n-stages
every count up to it is optimised. The csv output has columns lam_1.., beta_2.. (inf for hard labels)
and best; the json output also holds every stage's eps at each optimum."""

OPTIMIZE_EXIT_STATUS = """\
exit status:
  0  success
  2  invalid input (a bad parameter value; the message names the parameter)
  3  no converged state evolution was found for some stage count inside the search box"""


def add_optimize(subparsers) -> None:
    from sdgmm.optimize import optimize

    p = subparsers.add_parser(
        "optimize", formatter_class=_Formatter,
        help="tune lam_t (and beta_t) per stage count to minimise the final error; report the best T*",
        description=OPTIMIZE_DESCRIPTION,
        epilog="examples:\n"
               "  sdgmm optimize --alpha 1 --delta 0.5 --rho 0.5 --theta 0.3 --max-stages 6 --loss square "
               "--labels soft\n"
               "  sdgmm optimize --alpha 0.5 --n-stages 3 --labels hard --lam-bounds 1e-3,1e2 --format csv\n\n"
               + OPTIMIZE_EXIT_STATUS,
    )
    _add_problem_args(p)
    g = p.add_argument_group("stage counts")
    counts = g.add_mutually_exclusive_group()
    counts.add_argument("--max-stages", type=_stage_count, default=None, metavar="T",
                        help="optimise T = 1, 2, ... up to this count, stopping early once one more stage gains "
                             f"less than --gain-tol; >= 1 (default: {DEFAULT_MAX_STAGES} when --n-stages is "
                             "not given)")
    counts.add_argument("--n-stages", type=_stage_count, default=None, metavar="T",
                        help="optimise every stage count 1..T, without early stopping; >= 1")
    g.add_argument("--gain-tol", type=float, default=_api_default(optimize, "gain_tol"), metavar="G",
                   help="early stopping: the smallest error decrease that justifies one more stage, >= 0 "
                        "(default: %(default)g)")
    _add_search_args(p, optimize)
    _add_output_args(p, help="'table' aligned text, 'csv' one row per stage count, 'json' everything, with every "
                             "stage's eps at each optimum (inf and NaN as the tokens Infinity and NaN) (default: %(default)s)")
    p.set_defaults(run=_run_optimize)


def _run_optimize(args) -> int:
    from sdgmm.optimize import optimize

    problem = _problem_from_args(args)
    if args.n_stages is None and args.max_stages is None:
        args.max_stages = DEFAULT_MAX_STAGES
    res = _call_reporting_warnings(optimize, problem, args.n_stages, max_stages=args.max_stages,
                                   gain_tol=args.gain_tol, **_search_kwargs(args))
    stopped_early = args.max_stages is not None and len(res.optima) < args.max_stages
    _emit(args, table=lambda: _format_optimize_table(res, args, stopped_early), frame=lambda: _optimize_frame(res),
          data=lambda: _optimize_dict(res, args))
    return EXIT_OK


def _curve_title(args) -> str:
    return (f"optimally tuned SD: delta={args.delta:g} rho={args.rho:g} theta={args.theta:g}\n"
            f"loss={args.loss}, labels={args.labels}, bias={args.bias}")


def _format_curve_table(df, args, seconds: float) -> str:
    """One row per (alpha, stage count), readable in 100 columns: lam once where every stage shares it, the
    alpha -> inf Bayes limit in the header, failures (NaN rows) explained below the table."""
    from sdgmm.optimize import bayes_limit

    alphas = args.alphas
    header = [
        (f"# curve: delta={args.delta:g} rho={args.rho:g} theta={args.theta:g}; {len(alphas)} alphas from "
         f"{alphas[0]:g} to {alphas[-1]:g}; stage counts {','.join(map(str, args.stage_counts))}"),
        _search_line(args, seconds),
        (f"# noiseless = optimal 0-SD without label noise; alpha -> inf Bayes limit = {bayes_limit(args.delta):.6f}"
         " (balanced)"),
    ]
    cols = ("alpha", "SD", "eps", "eps_error", "lam", "beta", "at_bound", "noiseless")
    cells, notes = [cols], []
    for r in df.to_dict(orient="records"):
        T = int(r["n_stages"])
        row = (format(r["alpha"], ".4g"), f"{T - 1}-SD")
        if isinstance(r.get("failure"), str) and r["failure"]:
            notes.append(f"# [{len(notes) + 1}] alpha={r['alpha']:.4g}, {T - 1}-SD: {r['failure']}")
            cells.append((*row, "nan", f"see [{len(notes)}]", "-", "-", "-", format(r["noiseless"], ".6f")))
            continue
        lam = [r[f"lam_{t}"] for t in range(1, T + 1)]
        beta = "-" if T == 1 else "hard" if args.labels == "hard" else _compact(r[f"beta_{t}"] for t in range(2, T + 1))
        at_bound = _at_bound_cell(r["at_bound"].split(";") if r["at_bound"] else ())
        cells.append((*row, format(r["eps"], ".8f"), format(r["eps_error"], ".1e"), _compact(lam), beta, at_bound,
                      format(r["noiseless"], ".6f")))
    lines = header + _align(cells)
    if any(c[6] != "-" for c in cells[1:]):
        lines.append(AT_BOUND_NOTE)
    return "\n".join(lines + notes)


def _curve_dict(df, args, seconds: float) -> dict:
    return {
        "delta": args.delta, "rho": args.rho, "theta": args.theta, "loss": args.loss, "labels": args.labels,
        "bias": args.bias, "bounds": {"lam": list(args.lam_bounds), "beta": list(args.beta_bounds)},
        "restarts": args.restarts, "seed": args.seed, "alphas": list(args.alphas),
        "stage_counts": list(args.stage_counts), "seconds": seconds,
        "rows": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                 for row in df.to_dict(orient="records")],
    }


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
    from sdgmm.optimize import curve

    p = subparsers.add_parser(
        "curve", formatter_class=_Formatter,
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
    for name, meta, text in (("delta", "D", "noise variance per coordinate of the inputs; > 0"),
                             ("rho", "R", "class prior rho = P(s = +1); in (0, 1)"),
                             ("theta", "T", "label-flip rate theta; in [0, 1)")):
        g.add_argument(f"--{name}", type=float, default=_api_default(curve, name), metavar=meta,
                       help=f"{text} (default: %(default)s)")
    g.add_argument("--stage-counts", type=_stage_counts, default=",".join(map(str, _api_default(curve, "stage_counts"))),
                   metavar="T1,T2,...",
                   help="stage counts T to report, each >= 1 (T = 1 is 0-SD) (default: %(default)s)")
    _add_search_args(p, curve)
    g = _add_output_args(p, help="'table' aligned text, 'csv' one row per (alpha, T), 'json' settings and rows "
                                 "(inf and NaN as the tokens Infinity and NaN), on stdout (default: %(default)s)")
    g.add_argument("--csv", default=None, metavar="PATH", help="also write the table as csv to PATH")
    g.add_argument("--plot", default=None, metavar="PATH",
                   help="also draw eps against alpha into PATH (format from the extension, PNG by default)")
    g.add_argument("--progress", action="store_true",
                   help="show the progress bar on stderr even when it is not a terminal")
    p.set_defaults(run=_run_curve)


def _run_curve(args) -> int:
    import io

    import sdgmm
    from sdgmm.optimize import curve

    plot_path = _writable_path(args.plot, "--plot", figure=True)
    csv_path = _writable_path(args.csv, "--csv")
    sdgmm.Problem(args.alphas[0], args.delta, rho=args.rho, theta=args.theta)  # bad delta/rho/theta: fail now
    bar = ProgressBar(len(args.alphas), "sdgmm curve", "alphas") if args.progress or sys.stderr.isatty() else None
    start = time.perf_counter()
    try:
        df = _call_reporting_warnings(curve, args.alphas, delta=args.delta, rho=args.rho, theta=args.theta,
                                      stage_counts=args.stage_counts, progress=bar, **_search_kwargs(args))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    png = None
    if plot_path is not None:  # render first: a failure leaves no file behind
        from sdgmm.plot import plot_curve

        png = io.BytesIO()
        fig = plot_curve(df, title=_curve_title(args))
        fig.savefig(png, format=_figure_format(plot_path), dpi=120)
    if csv_path is not None:
        df.to_csv(csv_path, index=False)
    if png is not None:
        with open(plot_path, "wb") as fh:
            fh.write(png.getvalue())
    for path in (csv_path, plot_path):
        if path is not None:
            print(f"sdgmm curve: wrote {os.path.abspath(path)}", file=sys.stderr)
    _emit(args, table=lambda: _format_curve_table(df, args, seconds), frame=lambda: df,
          data=lambda: _curve_dict(df, args, seconds))
    return EXIT_OK


def add_figure(subparsers) -> None:
    from sdgmm.figures import FIGURES

    p = subparsers.add_parser(
        "figure", formatter_class=_Formatter, help="compute one of the paper's figures F1-F5 (PNG + CSV)",
        description="Compute a figure of optimally tuned SD in the paper's main setting and write NAME_*.png and "
                    "NAME_*.csv into --out:\n" + "\n".join(f"  {k}: {f.__doc__.splitlines()[0]}"
                                                            for k, f in FIGURES.items()),
        epilog="example:\n  sdgmm figure F1 --out docs/figures")
    p.add_argument("name", choices=sorted(FIGURES), metavar="NAME", help="F1, F2, F3, F4 or F5")
    p.add_argument("--out", required=True, metavar="DIR", help="existing directory to write the PNG and CSV into")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar on stderr even when it is not a terminal")
    p.set_defaults(run=_run_figure)


def _run_figure(args) -> int:
    from sdgmm.figures import make_figure

    if not os.path.isdir(args.out) or not os.access(args.out, os.W_OK):
        raise UsageError(f"argument --out: {args.out!r} is not a writable directory")
    bar = (ProgressBar(1, f"sdgmm figure {args.name}", "alphas") if args.progress or sys.stderr.isatty()
           else None)
    start = time.perf_counter()
    try:
        paths = _call_reporting_warnings(make_figure, args.name, args.out, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    print(f"# sdgmm figure {args.name}: {time.perf_counter() - start:.1f} s")
    for path in paths:
        print(path)
    return EXIT_OK
