"""Command-line front of sdgmm: ``sdgmm <subcommand> [options]``.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int`` registered in
``SUBCOMMANDS``; the problem, stage and solver flags are shared helpers so later subcommands
(simulate, optimize, curve, figure, probe, sweep) take the same flags with the same meaning.
theory and simulate live here; optimize, curve and figure in cli_optimize.py, probe and features in
cli_probe.py, sweep in cli_sweep.py (each imported lazily by its registrar).

Exit status: 0 success, 2 invalid input, 3 state evolution did not converge.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import sys
import time
import warnings

from sdgmm._params import PAPER_SETTING

EXIT_OK, EXIT_USAGE, EXIT_NOT_CONVERGED = 0, 2, 3

# The paper's main setting: balanced classes, delta 0.5, 30% label noise, alpha 2, three soft stages.
DEFAULTS = {**PAPER_SETTING, "lam": "1.0,0.5,0.5", "beta": 2.0}

DESCRIPTION = """\
Exact (replica) theory of multi-stage self-distillation (SD) of a linear classifier on a noisy
two-class Gaussian mixture.

Data: x = s v / sqrt(N) + sqrt(delta) zeta in dimension N, true class s = +1 with probability rho
(class prior), zeta ~ N(0, I); M training points, alpha = M / N. Each observed label is flipped with
probability theta (or theta_plus / theta_minus for true class +1 / -1).
Stage t = 1..T fits logit u = w.x / sqrt(N) + B with the logistic (or square) loss and ridge penalty
lam_t |w|^2 / 2. Stage 1 trains on the noisy labels; stage t >= 2 trains on pseudo-labels made from
stage t-1's logits on the same inputs: soft sigmoid(beta_t u) (temperature 1 / beta_t), or hard 1{u > 0}.
Reported per stage: test error eps against the true label, overlap m = v.w / N, bias b, Q = |w|^2 / N.

'sdgmm theory' solves the exact state evolution (the limit N -> inf at fixed alpha); 'sdgmm simulate'
trains the same pipeline on finite data (dimension N, several independent trials) and, with --compare,
prints it next to the theory; 'sdgmm optimize' tunes lam_t (and beta_t) to minimise the final error for
each stage count T and picks the best T*; 'sdgmm curve' traces that optimal error against alpha (table,
csv, plot)."""

EXIT_STATUS = """\
exit status:
  0  success
  2  invalid input (a bad parameter value; the message names the parameter)
  3  the state evolution did not converge (with --on-nonconvergence raise)"""


class UsageError(Exception):
    """A command-line error: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message + SystemExit
        raise UsageError(message)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30, width=100)


def _float_list(text: str) -> list[float]:
    """Comma-separated numbers, e.g. '1.5,0.5,2.0' (NaN/inf parse here and are rejected by the engine)."""
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 1.5,0.5,2.0 (got {text!r})"
        ) from None
    return values


_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _glue_negative_values(argv: list[str]) -> list[str]:
    """'--lam -1,2' -> '--lam=-1,2': argparse would take '-1,2' (or '-1e-3', '-inf') for an option."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE.match(tok):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


# --- shared flags ------------------------------------------------------------------------------


def _add_problem_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("problem (data model)")
    g.add_argument("--alpha", type=float, default=DEFAULTS["alpha"], metavar="A",
                   help="sample ratio alpha = M / N, training points per dimension; > 0 (default: %(default)s)")
    g.add_argument("--delta", type=float, default=DEFAULTS["delta"], metavar="D",
                   help="noise variance per coordinate of the inputs (class means at distance 1 from the "
                        "origin); > 0 (default: %(default)s)")
    g.add_argument("--rho", type=float, default=DEFAULTS["rho"], metavar="R",
                   help="class prior rho = P(s = +1); in (0, 1) (default: %(default)s)")
    g.add_argument("--theta", type=float, default=DEFAULTS["theta"], metavar="T",
                   help="label-flip rate theta: each training label is flipped with this probability; "
                        "in [0, 1) (default: %(default)s)")
    g.add_argument("--theta-plus", type=float, default=None, metavar="T",
                   help="flip rate of the labels of true class s = +1, in [0, 1) (default: --theta)")
    g.add_argument("--theta-minus", type=float, default=None, metavar="T",
                   help="flip rate of the labels of true class s = -1, in [0, 1) (default: --theta)")


def _add_stage_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("stages (self-distillation schedule)")
    g.add_argument("--lam", type=_float_list, default=_float_list(DEFAULTS["lam"]), metavar="L1,L2,...",
                   help="ridge penalties lam_t > 0, one per stage; their number sets the number of stages T "
                        f"(stage 1 = 0-SD, stage t = (t-1)-SD) (default: {DEFAULTS['lam']})")
    g.add_argument("--beta", type=_float_list, default=None, metavar="B2,...",
                   help="temperatures beta_t > 0 of the soft pseudo-labels sigmoid(beta_t u) that stage t "
                        "builds from stage t-1's logits u, for stages 2..T (T - 1 values; a single value is "
                        f"repeated). Larger beta = sharper labels (default: {DEFAULTS['beta']:g} for every stage)")
    g.add_argument("--hard", action="store_true",
                   help="hard pseudo-labels 1{u > 0} for stages 2..T (the limit beta -> inf); no --beta")
    g.add_argument("--bias", choices=("learn", "fix_first", "fixed"), default="learn",
                   help="bias policy: 'learn' = every stage learns its bias B_t; 'fix_first' = stage 1 learns "
                        "B_1 and stages 2..T keep B_t = B_1 (the paper's bias fixing, against collapse to the "
                        "majority class under imbalance); 'fixed' = every stage uses B_t = --bias-value "
                        "(default: %(default)s)")
    g.add_argument("--bias-value", type=float, default=None, metavar="V",
                   help="the bias of every stage under --bias fixed (default: 0)")
    g.add_argument("--loss", choices=("logistic", "square"), default="logistic",
                   help="training loss: 'logistic' (binary cross-entropy) or 'square' ((u+1)/2 - y)^2, whose "
                        "soft targets are (beta u + 1) / 2 (default: %(default)s)")


def _int_below(limit: int):
    """An argparse type: an integer below `limit` (the engine's C integer range; the API checks the lower bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer (got {text!r})") from None
        if value >= limit:
            raise argparse.ArgumentTypeError(f"must be below {limit} (got {value})")
        return value

    return parse


_C_INT = _int_below(2**31)


def _api_default(func, name: str):
    """The default of keyword `name` of the API function `func` (sdgmm.theory, sdgmm.simulate):
    one source for the API and the CLI."""
    import inspect

    return inspect.signature(func).parameters[name].default


def _add_solver_args(parser: argparse.ArgumentParser) -> None:
    from sdgmm.theory import theory

    g = parser.add_argument_group("solver (integration and fixed point)")
    g.add_argument("--method", choices=("auto", "tensor", "qmc", "mc"), default="auto",
                   help="integration over the Gaussian fields: 'tensor' Gauss-Hermite product rule, 'qmc' "
                        "scrambled Sobol points, 'mc' Monte Carlo (the reference's method), 'auto' = tensor "
                        "for T <= 3, else qmc (default: %(default)s)")
    g.add_argument("--gh-nodes", type=_C_INT, default=_api_default(theory, "gh_nodes"), metavar="N",
                   help="Gauss-Hermite nodes per dimension for 'tensor', in [2, 400] (default: %(default)s)")
    g.add_argument("--split-nodes", type=_C_INT, default=_api_default(theory, "split_nodes"), metavar="N",
                   help="Gauss-Legendre nodes on each piece cut by a hard-label jump, in [2, 400] "
                        "(default: %(default)s)")
    g.add_argument("--qmc-gh-nodes", type=_C_INT, default=_api_default(theory, "qmc_gh_nodes"), metavar="N",
                   help="Gauss-Hermite nodes on each stage's own coordinate for 'qmc' (default: %(default)s)")
    g.add_argument("--qmc-points", type=_C_INT, default=_api_default(theory, "qmc_points"), metavar="N",
                   help="Sobol points per replicate for 'qmc' (default: %(default)s)")
    g.add_argument("--qmc-replicates", type=_C_INT, default=_api_default(theory, "qmc_replicates"), metavar="N",
                   help="independent scrambles for 'qmc', >= 2; their spread is eps_error (default: %(default)s)")
    g.add_argument("--mc-samples", type=_C_INT, default=_api_default(theory, "mc_samples"), metavar="N",
                   help="samples for 'mc' (default: %(default)s)")
    g.add_argument("--seed", type=_int_below(2**64), default=_api_default(theory, "seed"), metavar="S",
                   help="random seed of 'qmc' / 'mc', >= 0 (default: %(default)s)")
    g.add_argument("--tol", type=float, default=_api_default(theory, "tol"), metavar="TOL",
                   help="fixed-point tolerance on the conjugate order parameters, > 0 (default: %(default)g)")
    g.add_argument("--max-iter", type=_C_INT, default=_api_default(theory, "max_iter"), metavar="N",
                   help="fixed-point iterations per stage, >= 1 (default: %(default)s)")
    g.add_argument("--threads", type=_C_INT, default=_api_default(theory, "threads"), metavar="N",
                   help="worker threads, 0 = all cores (default: %(default)s)")
    g.add_argument("--on-nonconvergence", choices=("raise", "warn"), default="raise",
                   help="'raise': stop with exit status 3; 'warn': print a warning and report the failed stage "
                        "and those after it as NaN (default: %(default)s)")


def _add_simulation_args(parser: argparse.ArgumentParser) -> None:
    from sdgmm.simulate import simulate

    g = parser.add_argument_group("simulation (finite size)")
    g.add_argument("--N", type=_C_INT, default=_api_default(simulate, "N"), metavar="N",
                   help="dimension N of the inputs, >= 1; every trial draws M = round(alpha N) training points "
                        "(default: %(default)s)")
    g.add_argument("--trials", type=_C_INT, default=_api_default(simulate, "trials"), metavar="K",
                   help="independent draws of the training set (inputs, classes and label flips), each trained "
                        "through all stages; every reported number is the mean over the trials and se its "
                        "standard error, std / sqrt(trials); >= 1 (default: %(default)s)")
    g.add_argument("--seed", type=_int_below(2**64), default=_api_default(simulate, "seed"), metavar="S",
                   help="random seed, >= 0: the data of trial k depend on (seed, k) alone, so a run is "
                        "reproducible and independent of --threads (default: %(default)s)")
    g.add_argument("--threads", type=_C_INT, default=_api_default(simulate, "threads"), metavar="N",
                   help="worker threads, 0 = all cores; trials run in parallel, one fit per thread "
                        "(default: %(default)s)")
    g.add_argument("--tol", type=float, default=_api_default(simulate, "tol"), metavar="TOL",
                   help="tolerance of the Newton-CG training solver: a fit stops when the gradient norm falls "
                        "to tol times its value at the start (relative gradient norm), > 0 (default: %(default)g)")
    g.add_argument("--max-newton", type=_C_INT, default=_api_default(simulate, "max_newton"), metavar="N",
                   help="Newton iterations per fit, >= 1; fits that do not reach --tol are reported by a "
                        "warning and converged = no (default: %(default)s)")
    g.add_argument("--compare", action="store_true",
                   help="also solve the state evolution (with the default settings of 'sdgmm theory') and "
                        "print theory next to simulation: difference = simulation - theory, z = difference / se "
                        "(not with --tol or --max-newton: the comparison trains with their defaults)")


def _add_output_args(parser: argparse.ArgumentParser, help: str | None = None):
    g = parser.add_argument_group("output")
    g.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help=help or "'table' aligned text, 'csv' one row per stage, 'json' all order parameters "
                                "(inf and NaN as the tokens Infinity and NaN, which Python's json reads back) (default: %(default)s)")
    return g


def _problem_from_args(args):
    import sdgmm

    return sdgmm.Problem(args.alpha, args.delta, args.rho, args.theta,
                         theta_plus=args.theta_plus, theta_minus=args.theta_minus)


def _stages_from_args(args) -> list:
    import sdgmm

    beta = args.beta
    if args.hard and beta is not None:
        raise UsageError("beta must not be given with --hard: hard pseudo-labels 1{u > 0} have no temperature")
    if beta is None and not args.hard and len(args.lam) > 1:
        beta = [DEFAULTS["beta"]]
    if args.bias_value is not None and args.bias != "fixed":
        raise UsageError(f"bias_value only applies with --bias fixed (got --bias {args.bias})")
    bias_value = 0.0 if args.bias_value is None else args.bias_value
    return sdgmm.make_stages(args.lam, beta, hard=args.hard, bias=args.bias, bias_value=bias_value)


def _solver_kwargs(args) -> dict:
    return {
        "method": args.method, "gh_nodes": args.gh_nodes, "split_nodes": args.split_nodes,
        "qmc_gh_nodes": args.qmc_gh_nodes, "qmc_points": args.qmc_points,
        "qmc_replicates": args.qmc_replicates, "mc_samples": args.mc_samples, "seed": args.seed,
        "tol": args.tol, "max_iter": args.max_iter, "threads": args.threads,
        "on_nonconvergence": args.on_nonconvergence,
    }


# --- output ------------------------------------------------------------------------------------


def _json_text(data) -> str:
    """JSON with non-finite numbers as the tokens Infinity, -Infinity and NaN: Python's json.loads and pandas read
    them back as the same floats, so lam = inf round-trips (strict parsers: map them with parse_constant)."""
    return json.dumps(data, indent=2, allow_nan=True) + "\n"


def _fixed6(v) -> str:
    """Six decimals, without the sign of a value that rounds to zero (b = -1e-17 is 0.000000)."""
    text = format(v, ".6f")
    return text[1:] if text == "-0.000000" else text


def _fmt_number(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _problem_line(problem) -> str:
    p = problem
    flips = f"theta={p.theta:g}"
    if p.theta_plus is not None or p.theta_minus is not None:
        flips += f" theta_plus={p.theta_plus if p.theta_plus is not None else p.theta:g}"
        flips += f" theta_minus={p.theta_minus if p.theta_minus is not None else p.theta:g}"
    return f"# problem: alpha={p.alpha:g} delta={p.delta:g} rho={p.rho:g} {flips}"


def _header(problem, n_stages: int, loss: str, args) -> list[str]:
    """The '# problem' and '# stages' lines shared by every table."""
    labels = "hard" if args.hard else "soft"
    return [_problem_line(problem), f"# stages: T={n_stages} labels={labels} bias={args.bias} loss={loss}"]


def _align(cells: list) -> list[str]:
    """Right-aligned columns; cells[0] is the column header."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]


def _yes_no(flag) -> str:
    return "yes" if flag else "no"


def _format_table(res, args) -> str:
    header = _header(res.problem, res.n_stages, res.loss, args)
    header.append(f"# method: {res.method} ({res.seconds * 1e3:.1f} ms)")
    if any(math.isinf(st.lam) for st in res.stages):
        header.append("# lam = inf: the exact limit; its m, b, Q are the finite limits of lam m, lam b, lam^2 Q")
    cols = ("stage", "lam", "beta", "eps", "eps_error", "m", "b", "Q", "iterations", "converged", "collapsed")
    cells = [cols]
    for r in res.rows():
        beta = r["beta"] if isinstance(r["beta"], str) else _fmt_number(r["beta"], "g")
        cells.append((
            str(r["stage"]), format(r["lam"], "g"), beta, format(r["eps"], ".8f"), format(r["eps_error"], ".1e"),
            format(r["m"], ".6f"), _fixed6(r["b"]), format(r["Q"], ".6f"), str(r["iterations"]),
            _yes_no(r["converged"]), _yes_no(r["collapsed"]),
        ))
    return "\n".join(header + _align(cells))


def _simulation_line(args, M: int, seconds: float) -> str:
    return (f"# simulation: N={args.N} M={M} trials={args.trials} seed={args.seed} "
            f"({seconds * 1e3:.1f} ms wall time)")


def _format_simulation_table(res, args) -> str:
    header = _header(res.problem, len(res.stages), res.loss, args) + [_simulation_line(args, res.M, res.seconds)]
    cols = ("stage", "eps", "se", "m", "Q", "b", "train_error", "targets_vs_true", "targets_vs_noisy",
            "newton_iterations", "converged")
    cells = [cols]
    for r in res.summary().to_dict(orient="records"):
        cells.append((
            str(r["stage"]), format(r["eps"], ".6f"), format(r["eps_se"], ".1e"), format(r["m"], ".6f"),
            format(r["Q"], ".6f"), _fixed6(r["b"]), format(r["train_error"], ".4f"),
            format(r["targets_vs_true"], ".4f"), format(r["targets_vs_noisy"], ".4f"),
            format(r["newton_iterations"], ".1f"), _yes_no(r["converged"]),
        ))
    return "\n".join(header + _align(cells))


def _format_compare_table(df, problem, args, M: int, seconds: float) -> str:
    header = _header(problem, len(df), args.loss, args) + [
        _simulation_line(args, M, seconds),
        ("# theory: state evolution with the default settings of 'sdgmm theory'; "
         "difference = simulation - theory, z = difference / se"),
    ]
    cells = [("stage", "theory", "simulation", "se", "difference", "z")]
    for r in df.to_dict(orient="records"):
        cells.append((str(r["stage"]), format(r["theory"], ".8f"), format(r["simulation"], ".6f"),
                      format(r["se"], ".1e"), format(r["difference"], "+.6f"), format(r["z"], "+.2f")))
    return "\n".join(header + _align(cells))


def _emit(args, *, table, frame, data) -> None:
    """Print in --format: `table`, `frame` and `data` are called lazily (str, DataFrame, JSON-like dict)."""
    if args.format == "csv":
        sys.stdout.write(frame().to_csv(index=False))
    elif args.format == "json":
        sys.stdout.write(_json_text(data()))
    else:
        sys.stdout.write(table() + "\n")


def _call_reporting_warnings(func, *args, **kwargs):
    """Call `func`; each warning it raises becomes one 'sdgmm: warning:' line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        result = func(*args, **kwargs)
    for w in caught:
        print(f"sdgmm: warning: {w.message}", file=sys.stderr)
    return result


def _writable_path(path: str | None, flag: str, *, figure: bool = False) -> str | None:
    """Check, before any computing, that `path` can be written (its directory exists and is writable,
    it is no directory, and for a figure its extension is a format matplotlib writes)."""
    import os

    if path is None:
        return None
    if not path:
        raise UsageError(f"argument {flag}: expected a file name (got '')")
    if os.path.isdir(path):
        raise UsageError(f"argument {flag}: {path!r} is a directory, not a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"argument {flag}: cannot write {path!r}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"argument {flag}: cannot write {path!r}: permission denied")
    if figure:
        from matplotlib.backend_bases import FigureCanvasBase

        ext = os.path.splitext(path)[1].lstrip(".").lower()
        formats = FigureCanvasBase.get_supported_filetypes()
        if ext and ext not in formats:
            raise UsageError(f"argument {flag}: unsupported image format {ext!r} (use one of "
                             f"{', '.join(sorted(formats))}; png by default)")
    return path


def _figure_format(path: str) -> str:
    import os

    return os.path.splitext(path)[1].lstrip(".").lower() or "png"


# --- subcommands -------------------------------------------------------------------------------


def _add_theory(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", formatter_class=_Formatter,
        help="solve the state evolution: exact test error and order parameters of every stage",
        description="Solve the replica-symmetric state evolution of T-stage self-distillation, stage by stage,\n"
                    "and report per stage the test error eps (against the true labels), its integration error\n"
                    "estimate eps_error, the order parameters m, b, Q, and the fixed-point diagnostics.\n"
                    "Model and notation: see 'sdgmm --help'.",
        epilog="example (table row 1 of the theory notes: rho 0.4, 20% label noise, three soft stages):\n"
               "  sdgmm theory --alpha 1.5 --delta 0.5 --rho 0.4 --theta 0.2 --lam 1.5,0.5,2.0 --beta 0.8,1.2\n"
               "  sdgmm theory --rho 0.3 --theta 0.2 --lam 0.5,0.5,0.5 --hard --bias fix_first --format csv\n\n"
               + EXIT_STATUS,
    )
    _add_problem_args(p)
    _add_stage_args(p)
    _add_solver_args(p)
    _add_output_args(p)
    p.set_defaults(run=_run_theory)


def _run_theory(args) -> int:
    import sdgmm

    problem = _problem_from_args(args)
    stages = _stages_from_args(args)
    res = _call_reporting_warnings(sdgmm.theory, problem, stages, args.loss, **_solver_kwargs(args))
    _emit(args, table=lambda: _format_table(res, args), frame=res.to_dataframe, data=res.to_dict)
    return EXIT_OK


SIMULATE_DESCRIPTION = """\
Train T-stage self-distillation on finite data: each of --trials independent training sets holds
M = round(alpha N) points in dimension N; stage 1 is fitted to the noisy labels and every later stage
to the previous stage's pseudo-labels on the same inputs, by a Newton-CG solver. Model and notation:
see 'sdgmm --help'. Reported per stage, as the mean over the trials:
  eps                test error against the true labels, computed exactly from the trained weights via
                     (m, Q, b) (the population error; no test set, so no test-sampling noise)
  se                 standard error of the mean eps over the trials, std / sqrt(trials) (0 for one trial)
  m, Q, b            overlap m = v.w / N, squared norm Q = |w|^2 / N, bias b = B
  train_error        fraction of training points whose prediction 1{u > 0} differs from the stage's own
                     targets (read as 1{y >= 1/2})
  targets_vs_true    fraction of the stage's (pseudo-)labels, read as 1{y >= 1/2}, that disagree with the
                     true labels: the denoising (stage 1: the realised flip rate, about theta)
  targets_vs_noisy   fraction of the stage's (pseudo-)labels that disagree with the observed noisy labels
                     (0 at stage 1)
  newton_iterations  Newton iterations per fit; converged = every trial's fit reached --tol
The csv output (one row per stage) also holds the standard error <name>_se of every measure; json holds
the same summary with N, M, seed and the per-stage eps and eps_se."""

SIMULATE_EXIT_STATUS = """\
exit status:
  0  success (fits that did not reach --tol are reported by one 'sdgmm: warning:' line)
  2  invalid input (a bad parameter value, or a size that does not fit in memory; the message names
     the parameter)
  3  with --compare: the state evolution did not converge"""


def _add_simulate(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", formatter_class=_Formatter,
        help="train SD on finite data: mean test error and order parameters of every stage over trials",
        description=SIMULATE_DESCRIPTION,
        epilog="examples:\n"
               "  sdgmm simulate --alpha 3 --rho 0.4 --theta 0.2 --lam 1.5,0.5,2.0 --beta 0.8,1.2 --N 1000 --trials 8\n"
               "  sdgmm simulate --rho 0.3 --theta 0.2 --lam 0.5,0.5,0.5 --hard --bias fix_first --N 800 "
               "--compare\n\n" + SIMULATE_EXIT_STATUS,
    )
    _add_problem_args(p)
    _add_stage_args(p)
    _add_simulation_args(p)
    _add_output_args(p)
    p.set_defaults(run=_run_simulate)


def _run_simulate(args) -> int:
    from sdgmm import _core
    from sdgmm.simulate import compare, simulate

    problem = _problem_from_args(args)
    stages = _stages_from_args(args)
    sizes = {"N": args.N, "trials": args.trials, "seed": args.seed, "threads": args.threads}
    if not args.compare:
        res = _call_reporting_warnings(simulate, problem, stages, args.loss, tol=args.tol,
                                       max_newton=args.max_newton, **sizes)
        _emit(args, table=lambda: _format_simulation_table(res, args), frame=res.summary, data=res.to_dict)
        return EXIT_OK
    for name, flag in (("tol", "--tol"), ("max_newton", "--max-newton")):
        if getattr(args, name) != _api_default(simulate, name):
            raise UsageError(f"{name}: {flag} cannot be combined with --compare (sdgmm.compare trains with the "
                             f"default {name} = {_api_default(simulate, name)})")
    start = time.perf_counter()
    df = _call_reporting_warnings(compare, problem, stages, args.loss, **sizes)
    seconds = time.perf_counter() - start
    M = _core.training_size(problem, args.N)
    _emit(args, table=lambda: _format_compare_table(df, problem, args, M, seconds), frame=lambda: df,
          data=lambda: df.to_dict(orient="list"))
    return EXIT_OK


def _lazy(module: str, name: str):
    """A registrar that imports `module` only when the parser is built: those modules import this
    one's helpers, so importing them here would be circular."""

    def add(subparsers) -> None:
        getattr(importlib.import_module(f"sdgmm.{module}"), name)(subparsers)

    return add


SUBCOMMANDS = (_add_theory, _add_simulate, _lazy("cli_optimize", "add_optimize"), _lazy("cli_optimize", "add_curve"),
               _lazy("cli_optimize", "add_figure"), _lazy("cli_sweep", "add_sweep"), _lazy("cli_probe", "add_probe"),
               _lazy("cli_probe", "add_features"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sdgmm", description=DESCRIPTION, formatter_class=_Formatter,
                     epilog="examples:\n  sdgmm theory --alpha 2 --delta 0.5 --rho 0.5 --theta 0.3 "
                            "--lam 1.0,0.5,0.5 --beta 2,2\n"
                            "  sdgmm simulate --alpha 2 --delta 0.5 --rho 0.5 --theta 0.3 --lam 1.0,0.5,0.5 "
                            "--beta 2,2 --N 1000 --trials 8 --compare\n"
                            "  sdgmm optimize --alpha 1 --max-stages 6 --loss square --labels soft\n"
                            "  sdgmm curve --alphas 0.1:100:20 --stage-counts 1,2,6 --plot curve.png\n\n"
                            "Run 'sdgmm <subcommand> --help' for "
                            "its parameters.\n\n" + EXIT_STATUS)
    from sdgmm import __version__

    parser.add_argument("--version", action="version", version=f"sdgmm {__version__}")
    subparsers = parser.add_subparsers(title="subcommands", dest="command", metavar="<subcommand>")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 invalid input, 3 not converged)."""
    from sdgmm.errors import ConvergenceError

    parser = build_parser()
    try:
        args = parser.parse_args(_glue_negative_values(sys.argv[1:] if argv is None else list(argv)))
        if args.command is None:
            raise UsageError("a subcommand is required (e.g. 'sdgmm theory'); see 'sdgmm --help'")
        return args.run(args)
    except SystemExit as e:  # --help / --version
        return e.code if isinstance(e.code, int) else EXIT_OK
    except (UsageError, ValueError) as e:
        print(f"sdgmm: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ConvergenceError as e:
        print(f"sdgmm: error: {e}", file=sys.stderr)
        return EXIT_NOT_CONVERGED


if __name__ == "__main__":
    raise SystemExit(main())
