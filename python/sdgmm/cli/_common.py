"""Helpers shared by the subcommands of the command line: the parser and its formatting, the problem, stage,
solver and simulation flags (the same flags with the same meaning everywhere), and the output helpers."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import sys
import warnings

from sdgmm._model import Problem, Spectrum, make_stages
from sdgmm._params import BIASES, LOSSES, METHODS, ON_NONCONVERGENCE, PAPER_SETTING
from sdgmm._simulate import simulate
from sdgmm._theory import theory

EXIT_OK, EXIT_USAGE, EXIT_NOT_CONVERGED = 0, 2, 3
FORMATS = ("table", "csv", "json")  # --format of every subcommand that prints results

# The paper's main setting: balanced classes, delta 0.5, 30% label noise, alpha 2, three soft stages.
DEFAULTS = {**PAPER_SETTING, "lam": "1.0,0.5,0.5", "beta": 2.0}

EXIT_STATUS = """\
exit status:
  0  success
  2  invalid input (a bad parameter value; the message names the parameter)
  3  the state evolution did not converge (with --on-nonconvergence raise)"""


class UsageError(Exception):
    """A command-line error: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message + SystemExit
        raise UsageError(message)


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog):
        super().__init__(prog, max_help_position=30, width=100)


def float_list(text: str) -> list[float]:
    """Comma-separated numbers, e.g. '1.5,0.5,2.0' (NaN/inf parse here and are rejected by the engine)."""
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 1.5,0.5,2.0 (got {text!r})"
        ) from None
    return values


_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def glue_negative_values(argv: list[str]) -> list[str]:
    """'--lam -1,2' -> '--lam=-1,2': argparse would take '-1,2' (or '-1e-3', '-inf') for an option."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE.match(tok):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


# --- shared flags ------------------------------------------------------------------------------


def add_problem_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("problem (data model)")
    g.add_argument("--alpha", type=float, default=DEFAULTS["alpha"], metavar="A",
                   help="sample ratio alpha = M / N, training points per dimension; > 0 (default: %(default)s)")
    add_delta_and_spectrum(g)
    g.add_argument("--rho", type=float, default=DEFAULTS["rho"], metavar="R",
                   help="class prior rho = P(s = +1); in (0, 1) (default: %(default)s)")
    g.add_argument("--theta", type=float, default=DEFAULTS["theta"], metavar="T",
                   help="label-flip rate theta: each training label is flipped with this probability; "
                        "in [0, 1) (default: %(default)s)")
    g.add_argument("--theta-plus", type=float, default=None, metavar="T",
                   help="flip rate of the labels of true class s = +1, in [0, 1) (default: --theta)")
    g.add_argument("--theta-minus", type=float, default=None, metavar="T",
                   help="flip rate of the labels of true class s = -1, in [0, 1) (default: --theta)")


def add_delta_and_spectrum(group) -> None:
    """--delta (the isotropic model) and --spectrum (a general covariance), which exclude each other."""
    group.add_argument("--delta", type=float, default=None, metavar="D",
                       help="noise variance per coordinate of the inputs (class means at distance 1 from the "
                            f"origin); > 0 (default: {DEFAULTS['delta']:g}; not with --spectrum)")
    group.add_argument("--spectrum", default=None, metavar="PATH",
                       help="a general covariance instead of delta: an .npz with arrays 'eigenvalues' (N,) of the "
                            "shared covariance and 'mean' (N,), the class-mean vector in its eigenbasis (as "
                            "'sdgmm fit-mixture' writes it; docs/theory.md section 6)")


def spectrum_from_args(args) -> Spectrum | None:
    """The --spectrum file, read; --delta is refused next to it."""
    if args.spectrum is None:
        return None
    if args.delta is not None:
        raise UsageError("delta: --delta and --spectrum exclude each other (the spectrum is the covariance)")
    return Spectrum.load(args.spectrum)


def add_stage_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("stages (self-distillation schedule)")
    g.add_argument("--lam", type=float_list, default=float_list(DEFAULTS["lam"]), metavar="L1,L2,...",
                   help="ridge penalties lam_t > 0, one per stage; their number sets the number of stages T "
                        f"(stage 1 = 0-SD, stage t = (t-1)-SD) (default: {DEFAULTS['lam']})")
    g.add_argument("--beta", type=float_list, default=None, metavar="B2,...",
                   help="temperatures beta_t > 0 of the soft pseudo-labels sigmoid(beta_t u) that stage t "
                        "builds from stage t-1's logits u, for stages 2..T (T - 1 values; a single value is "
                        f"repeated). Larger beta = sharper labels (default: {DEFAULTS['beta']:g} for every stage)")
    g.add_argument("--hard", action="store_true",
                   help="hard pseudo-labels 1{u > 0} for stages 2..T (the limit beta -> inf); no --beta")
    g.add_argument("--bias", choices=BIASES, default="learn",
                   help="bias policy: 'learn' = every stage learns its bias B_t; 'fix_first' = stage 1 learns "
                        "B_1 and stages 2..T keep B_t = B_1 (the paper's bias fixing, against collapse to the "
                        "majority class under imbalance); 'fixed' = every stage uses B_t = --bias-value "
                        "(default: %(default)s)")
    g.add_argument("--bias-value", type=float, default=None, metavar="V",
                   help="the bias of every stage under --bias fixed (default: 0)")
    g.add_argument("--xi", type=float_list, default=None, metavar="X2,...",
                   help="mixing weights xi_t of stages 2..T: stage t trains on xi_t * pseudo-label + (1 - xi_t) * "
                        "noisy label (T - 1 values; a single value is repeated; any real number: 0 retrains on the "
                        "noisy labels, > 1 gives them a negative weight) (default: 1, pure self-distillation)")
    g.add_argument("--loss", choices=LOSSES, default="logistic",
                   help="training loss: 'logistic' (binary cross-entropy) or 'square' ((u+1)/2 - y)^2, whose "
                        "soft targets are (beta u + 1) / 2 (default: %(default)s)")


def int_below(limit: int):
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


C_INT = int_below(2**31)


def api_default(func, name: str):
    """The default of keyword `name` of the API function `func` (sdgmm.theory, sdgmm.simulate):
    one source for the API and the CLI."""
    return inspect.signature(func).parameters[name].default


def add_solver_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("solver (integration and fixed point)")
    g.add_argument("--method", choices=METHODS, default=api_default(theory, "method"),
                   help="integration over the Gaussian fields: 'tensor' Gauss-Hermite product rule, 'qmc' "
                        "scrambled Sobol points, 'mc' Monte Carlo (the reference's method), 'auto' = tensor "
                        "up to T = 6 stages (5 with hard labels), else qmc; qmc for 3 or more lam = inf hard "
                        "stages (default: %(default)s)")
    g.add_argument("--gh-nodes", type=C_INT, default=api_default(theory, "gh_nodes"), metavar="N",
                   help="Gauss-Hermite nodes per dimension for 'tensor', in [2, 400] (default: %(default)s)")
    g.add_argument("--split-nodes", type=C_INT, default=api_default(theory, "split_nodes"), metavar="N",
                   help="Gauss-Legendre nodes on each piece cut by a hard-label jump, in [2, 400] "
                        "(default: %(default)s)")
    g.add_argument("--qmc-gh-nodes", type=C_INT, default=api_default(theory, "qmc_gh_nodes"), metavar="N",
                   help="Gauss-Hermite nodes on each stage's own coordinate for 'qmc' (default: %(default)s)")
    g.add_argument("--qmc-points", type=C_INT, default=api_default(theory, "qmc_points"), metavar="N",
                   help="Sobol points per replicate for 'qmc' (default: %(default)s)")
    g.add_argument("--qmc-replicates", type=C_INT, default=api_default(theory, "qmc_replicates"), metavar="N",
                   help="independent scrambles for 'qmc', >= 2; their spread is eps_error (default: %(default)s)")
    g.add_argument("--mc-samples", type=C_INT, default=api_default(theory, "mc_samples"), metavar="N",
                   help="samples for 'mc' (default: %(default)s)")
    g.add_argument("--seed", type=int_below(2**64), default=api_default(theory, "seed"), metavar="S",
                   help="random seed of 'qmc' / 'mc', >= 0 (default: %(default)s)")
    g.add_argument("--accuracy", type=float, default=api_default(theory, "accuracy"), metavar="EPS",
                   help="target of the largest eps_error: the rule (tensor nodes, qmc points) is refined until it "
                        "is met or capped, and the output says which; 0 keeps the rule as given (default: %(default)g)")
    g.add_argument("--tol", type=float, default=api_default(theory, "tol"), metavar="TOL",
                   help="fixed-point tolerance on the conjugate order parameters, > 0 (default: %(default)g)")
    g.add_argument("--max-iter", type=C_INT, default=api_default(theory, "max_iter"), metavar="N",
                   help="fixed-point iterations per stage, >= 1 (default: %(default)s)")
    g.add_argument("--threads", type=C_INT, default=api_default(theory, "threads"), metavar="N",
                   help="worker threads, 0 = all cores (default: %(default)s)")
    g.add_argument("--on-nonconvergence", choices=ON_NONCONVERGENCE, default="raise",
                   help="'raise': stop with exit status 3; 'warn': print a warning and report the failed stage "
                        "and those after it as NaN (default: %(default)s)")


def add_simulation_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("simulation (finite size)")
    g.add_argument("--N", type=C_INT, default=api_default(simulate, "N"), metavar="N",
                   help="dimension N of the inputs, >= 1; every trial draws M = round(alpha N) training points "
                        "(default: 1000, or the spectrum's dimension)")
    g.add_argument("--trials", type=C_INT, default=api_default(simulate, "trials"), metavar="K",
                   help="independent draws of the training set (inputs, classes and label flips), each trained "
                        "through all stages; every reported number is the mean over the trials and se its "
                        "standard error, std / sqrt(trials); >= 1 (default: %(default)s)")
    g.add_argument("--seed", type=int_below(2**64), default=api_default(simulate, "seed"), metavar="S",
                   help="random seed, >= 0: the data of trial k depend on (seed, k) alone, so a run is "
                        "reproducible and independent of --threads (default: %(default)s)")
    g.add_argument("--threads", type=C_INT, default=api_default(simulate, "threads"), metavar="N",
                   help="worker threads, 0 = all cores; trials run in parallel, one fit per thread "
                        "(default: %(default)s)")
    g.add_argument("--tol", type=float, default=api_default(simulate, "tol"), metavar="TOL",
                   help="tolerance of the Newton-CG training solver: a fit stops when the gradient norm falls "
                        "to tol times its value at the start (relative gradient norm), > 0 (default: %(default)g)")
    g.add_argument("--max-newton", type=C_INT, default=api_default(simulate, "max_newton"), metavar="N",
                   help="Newton iterations per fit, >= 1; fits that do not reach --tol are reported by a "
                        "warning and converged = no (default: %(default)s)")
    g.add_argument("--compare", action="store_true",
                   help="also solve the state evolution (with the default settings of 'sdgmm theory') and "
                        "print theory next to simulation: difference = simulation - theory, z = difference / se "
                        "(not with --tol or --max-newton: the comparison trains with their defaults)")


def add_output_args(parser: argparse.ArgumentParser, help: str | None = None):
    g = parser.add_argument_group("output")
    g.add_argument("--format", choices=FORMATS, default="table",
                   help=help or "'table' aligned text, 'csv' one row per stage, 'json' all order parameters "
                                "(inf and NaN as the tokens Infinity and NaN, which Python's json reads back) (default: %(default)s)")
    return g


def problem_from_args(args, alpha=None):
    """The Problem of the flags (at `alpha` instead of --alpha, where given)."""
    return Problem(args.alpha if alpha is None else alpha, args.delta, args.rho, args.theta,
                   theta_plus=getattr(args, "theta_plus", None), theta_minus=getattr(args, "theta_minus", None),
                   spectrum=spectrum_from_args(args))


def stages_from_args(args) -> list:
    beta = args.beta
    if args.hard and beta is not None:
        raise UsageError("beta must not be given with --hard: hard pseudo-labels 1{u > 0} have no temperature")
    if beta is None and not args.hard and len(args.lam) > 1:
        beta = [DEFAULTS["beta"]]
    if args.bias_value is not None and args.bias != "fixed":
        raise UsageError(f"bias_value only applies with --bias fixed (got --bias {args.bias})")
    bias_value = 0.0 if args.bias_value is None else args.bias_value
    return make_stages(args.lam, beta, hard=args.hard, bias=args.bias, bias_value=bias_value, xi=args.xi)


def solver_kwargs(args) -> dict:
    return {
        "method": args.method, "gh_nodes": args.gh_nodes, "split_nodes": args.split_nodes,
        "qmc_gh_nodes": args.qmc_gh_nodes, "qmc_points": args.qmc_points,
        "qmc_replicates": args.qmc_replicates, "mc_samples": args.mc_samples, "seed": args.seed,
        "tol": args.tol, "max_iter": args.max_iter, "accuracy": args.accuracy, "threads": args.threads,
        "on_nonconvergence": args.on_nonconvergence,
    }


# --- output ------------------------------------------------------------------------------------


def json_text(data) -> str:
    """JSON with non-finite numbers as the tokens Infinity, -Infinity and NaN: Python's json.loads and pandas read
    them back as the same floats, so lam = inf round-trips (strict parsers: map them with parse_constant)."""
    return json.dumps(data, indent=2, allow_nan=True) + "\n"


def fixed6(v) -> str:
    """Six decimals, without the sign of a value that rounds to zero (b = -1e-17 is 0.000000)."""
    text = format(v, ".6f")
    return text[1:] if text == "-0.000000" else text


def fmt_number(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def problem_line(problem) -> str:
    p = problem
    flips = f"theta={p.theta:g}"
    if p.theta_plus is not None or p.theta_minus is not None:
        flips += f" theta_plus={p.theta_plus if p.theta_plus is not None else p.theta:g}"
        flips += f" theta_minus={p.theta_minus if p.theta_minus is not None else p.theta:g}"
    cov = f"spectrum(N={len(p.spectrum.eigenvalues)})" if p.spectrum is not None else f"delta={p.delta:g}"
    return f"# problem: alpha={p.alpha:g} {cov} rho={p.rho:g} {flips}"


def table_header(problem, n_stages: int, loss: str, args) -> list[str]:
    """The '# problem' and '# stages' lines shared by every table."""
    labels = "hard" if args.hard else "soft"
    mixing = f" xi={','.join(f'{v:g}' for v in args.xi)}" if getattr(args, "xi", None) else ""
    return [problem_line(problem), f"# stages: T={n_stages} labels={labels} bias={args.bias} loss={loss}{mixing}"]


def align(cells: list) -> list[str]:
    """Right-aligned columns; cells[0] is the column header."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]


def yes_no(flag) -> str:
    return "yes" if flag else "no"


def emit(args, *, table, frame, data) -> None:
    """Print in --format: `table`, `frame` and `data` are called lazily (str, DataFrame, JSON-like dict)."""
    if args.format == "csv":
        sys.stdout.write(frame().to_csv(index=False))
    elif args.format == "json":
        sys.stdout.write(json_text(data()))
    else:
        sys.stdout.write(table() + "\n")


def call_reporting_warnings(func, *args, **kwargs):
    """Call `func`; each warning it raises becomes one 'sdgmm: warning:' line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        result = func(*args, **kwargs)
    for w in caught:
        print(f"sdgmm: warning: {w.message}", file=sys.stderr)
    return result


def writable_path(path: str | None, flag: str, *, figure: bool = False) -> str | None:
    """Check, before any computing, that `path` can be written (its directory exists and is writable,
    it is no directory, and for a figure its extension is a format matplotlib writes)."""
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


