"""Command-line front of sdgmm: ``sdgmm <subcommand> [options]``.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int`` registered in
``SUBCOMMANDS``; the problem, stage and solver flags are shared helpers so later subcommands
(simulate, optimize, curve, figure, probe, sweep) take the same flags with the same meaning.

Exit status: 0 success, 2 invalid input, 3 state evolution did not converge.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import warnings

EXIT_OK, EXIT_USAGE, EXIT_NOT_CONVERGED = 0, 2, 3

# The paper's main setting: balanced classes, delta 0.5, 30% label noise, alpha 2, three soft stages.
DEFAULTS = {"alpha": 2.0, "delta": 0.5, "rho": 0.5, "theta": 0.3, "lam": "1.0,0.5,0.5", "beta": 2.0}

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
                                "(non-finite numbers as null) (default: %(default)s)")
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


def _finite_or_none(obj):
    """Replace NaN/inf anywhere in a JSON-like structure by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


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
        sys.stdout.write(json.dumps(_finite_or_none(data()), indent=2, allow_nan=False) + "\n")
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
    beta = f" beta in [{args.beta_bounds[0]:g}, {args.beta_bounds[1]:g}]" if args.labels == "soft" else ""
    return (f"# search: loss={args.loss} labels={args.labels} bias={args.bias} "
            f"lam in [{args.lam_bounds[0]:g}, {args.lam_bounds[1]:g}]{' and inf' if args.limits else ''}{beta} "
            f"restarts={args.restarts} "
            f"seed={args.seed} ({seconds:.2f} s)")


def _joined(values) -> str:
    return ",".join(format(float(v), ".4g") for v in values)


def _beta_cell(optimum, labels: str) -> str:
    if optimum.n_stages == 1:
        return "-"
    return "hard" if labels == "hard" else _joined(optimum.beta)


AT_BOUND_NOTE = ("# at_bound: the optimum lies on an edge of the search box: lam_t=inf is the exact limit "
                 "lam -> inf; at 'lower' / 'upper' the error may keep falling beyond (widen --lam-bounds / "
                 "--beta-bounds); beta<=X(accuracy): beta capped where the quadrature resolves the soft targets")


def _format_optimize_table(res, args, stopped_early: bool) -> str:
    best = res.best_n_stages
    header = [_problem_line(res.problem), _search_line(args, res.seconds)]
    if args.n_stages is not None:
        header.append(f"# stage counts: T = 1..{args.n_stages}")
    else:
        why = (f"stopped at T={res.optima[-1].n_stages}: the last stage gained less than gain_tol"
               if stopped_early else "no early stop")
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
                      _joined(o.lam), _beta_cell(o, res.labels), *bias, str(o.evaluations), format(o.seconds, ".2f"),
                      _yes_no(o.converged), ";".join(o.at_bound) or "-", "*" if o.n_stages == best else ""))
    if any(o.at_bound for o in res.optima):
        header.append(AT_BOUND_NOTE)
    return "\n".join(header + [line.rstrip() for line in _align(cells)])


def _optimize_frame(res):
    df = res.to_dataframe()
    df["best"] = df["n_stages"] == res.best_n_stages
    return df


def _floats(values) -> list:
    return [float(v) for v in values]


def _optimize_dict(res, args) -> dict:
    p = res.problem
    return {
        "problem": {"alpha": p.alpha, "delta": p.delta, "rho": p.rho, "theta": p.theta,
                    "theta_plus": p.theta_plus, "theta_minus": p.theta_minus},
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


def _add_optimize(subparsers) -> None:
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
                             "stage's eps at each optimum (non-finite numbers as null) (default: %(default)s)")
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


class _ProgressBar:
    """A one-line text bar on stderr, redrawn in place: 'sdgmm curve: [#####.....] 5/10 alphas, 3.2 s'."""

    WIDTH = 30

    def __init__(self, total: int, stream=None, label: str = "sdgmm curve"):
        self.total, self.stream, self.start = total, stream or sys.stderr, time.perf_counter()
        self.label = label
        self(0, total)

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // max(total, 1)
        self.stream.write(f"\r{self.label}: [{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} alphas, "
                          f"{time.perf_counter() - self.start:.1f} s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _curve_title(args) -> str:
    return (f"optimally tuned SD: delta={args.delta:g} rho={args.rho:g} theta={args.theta:g}\n"
            f"loss={args.loss}, labels={args.labels}, bias={args.bias}")


def _format_curve_table(df, args, seconds: float) -> str:
    alphas = args.alphas
    header = [
        (f"# curve: delta={args.delta:g} rho={args.rho:g} theta={args.theta:g}; {len(alphas)} alphas from "
         f"{alphas[0]:g} to {alphas[-1]:g}; stage counts {','.join(map(str, args.stage_counts))}"),
        _search_line(args, seconds),
        "# noiseless = optimal 0-SD without label noise, bayes = alpha -> inf Bayes limit (balanced classes)",
    ]
    cols = ("alpha", "T", "SD", "eps", "eps_error", "lam", "beta", "at_bound", "noiseless", "bayes")
    cells = [cols]
    for r in df.to_dict(orient="records"):
        T = int(r["n_stages"])
        lam = [r[f"lam_{t}"] for t in range(1, T + 1)]
        beta = "-" if T == 1 else "hard" if args.labels == "hard" else _joined(r[f"beta_{t}"] for t in range(2, T + 1))
        cells.append((format(r["alpha"], ".4g"), str(T), f"{T - 1}-SD", format(r["eps"], ".8f"),
                      format(r["eps_error"], ".1e"), _joined(lam), beta, r["at_bound"] or "-",
                      format(r["noiseless"], ".6f"), format(r["bayes"], ".6f")))
    if (df["at_bound"] != "").any():
        header.append(AT_BOUND_NOTE)
    return "\n".join(header + _align(cells))


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


def _add_curve(subparsers) -> None:
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
                                 "(non-finite numbers as null), on stdout (default: %(default)s)")
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
    bar = _ProgressBar(len(args.alphas)) if args.progress or sys.stderr.isatty() else None
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
    _emit(args, table=lambda: _format_curve_table(df, args, seconds), frame=lambda: df,
          data=lambda: _curve_dict(df, args, seconds))
    return EXIT_OK


def _figure_format(path: str) -> str:
    import os

    return os.path.splitext(path)[1].lstrip(".").lower() or "png"


def _add_figure(subparsers) -> None:
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
    import os

    from sdgmm.figures import make_figure

    if not os.path.isdir(args.out) or not os.access(args.out, os.W_OK):
        raise UsageError(f"argument --out: {args.out!r} is not a writable directory")
    bar = _ProgressBar(1, label=f"sdgmm figure {args.name}") if args.progress or sys.stderr.isatty() else None
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


def _add_sweep(subparsers) -> None:
    from sdgmm.cli_sweep import add_sweep  # lazily: cli_sweep imports this module's helpers

    add_sweep(subparsers)


def _add_probe(subparsers) -> None:
    from sdgmm.cli_probe import add_features, add_probe  # lazily: cli_probe imports this module's helpers

    add_probe(subparsers)
    add_features(subparsers)


SUBCOMMANDS = (_add_theory, _add_simulate, _add_optimize, _add_curve, _add_figure, _add_sweep, _add_probe)


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
