"""'sdgmm simulate': finite-size training of every stage over trials, alone or next to the theory."""

from __future__ import annotations

import time

import sdgmm._core as _core
from sdgmm._simulate import compare, default_dimension, simulate
from sdgmm.cli._common import (
    EXIT_OK,
    Formatter,
    UsageError,
    add_output_args,
    add_problem_args,
    add_simulation_args,
    add_stage_args,
    align,
    api_default,
    call_reporting_warnings,
    emit,
    fixed6,
    problem_from_args,
    stages_from_args,
    table_header,
    yes_no,
)

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


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", formatter_class=Formatter,
        help="train SD on finite data: mean test error and order parameters of every stage over trials",
        description=SIMULATE_DESCRIPTION,
        epilog="examples:\n"
               "  sdgmm simulate --alpha 3 --rho 0.4 --theta 0.2 --lam 1.5,0.5,2.0 --beta 0.8,1.2 --N 1000 --trials 8\n"
               "  sdgmm simulate --rho 0.3 --theta 0.2 --lam 0.5,0.5,0.5 --hard --bias fix_first --N 800 "
               "--compare\n\n" + SIMULATE_EXIT_STATUS,
    )
    add_problem_args(p)
    add_stage_args(p)
    add_simulation_args(p)
    add_output_args(p)
    p.set_defaults(run=run)


def run(args) -> int:
    problem = problem_from_args(args)
    stages = stages_from_args(args)
    if args.N is None:
        args.N = default_dimension(problem)
    sizes = {"N": args.N, "trials": args.trials, "seed": args.seed, "threads": args.threads}
    if not args.compare:
        res = call_reporting_warnings(simulate, problem, stages, args.loss, tol=args.tol,
                                       max_newton=args.max_newton, **sizes)
        emit(args, table=lambda: _format_simulation_table(res, args), frame=res.summary, data=res.to_dict)
        return EXIT_OK
    for name, flag in (("tol", "--tol"), ("max_newton", "--max-newton")):
        if getattr(args, name) != api_default(simulate, name):
            raise UsageError(f"{name}: {flag} cannot be combined with --compare (sdgmm.compare trains with the "
                             f"default {name} = {api_default(simulate, name)})")
    start = time.perf_counter()
    df = call_reporting_warnings(compare, problem, stages, args.loss, **sizes)
    seconds = time.perf_counter() - start
    M = _core.training_size(problem, args.N)
    emit(args, table=lambda: _format_compare_table(df, problem, args, M, seconds), frame=lambda: df,
          data=lambda: df.to_dict(orient="list"))
    return EXIT_OK



def _simulation_line(args, M: int, seconds: float) -> str:
    return (f"# simulation: N={args.N} M={M} trials={args.trials} seed={args.seed} "
            f"({seconds * 1e3:.1f} ms wall time)")


def _format_simulation_table(res, args) -> str:
    header = table_header(res.problem, len(res.stages), res.loss, args) + [_simulation_line(args, res.M, res.seconds)]
    cols = ("stage", "eps", "se", "m", "Q", "b", "train_error", "targets_vs_true", "targets_vs_noisy",
            "newton_iterations", "converged")
    cells = [cols]
    for r in res.summary().to_dict(orient="records"):
        cells.append((
            str(r["stage"]), format(r["eps"], ".6f"), format(r["eps_se"], ".1e"), format(r["m"], ".6f"),
            format(r["Q"], ".6f"), fixed6(r["b"]), format(r["train_error"], ".4f"),
            format(r["targets_vs_true"], ".4f"), format(r["targets_vs_noisy"], ".4f"),
            format(r["newton_iterations"], ".1f"), yes_no(r["converged"]),
        ))
    return "\n".join(header + align(cells))


def _format_compare_table(df, problem, args, M: int, seconds: float) -> str:
    header = table_header(problem, len(df), args.loss, args) + [
        _simulation_line(args, M, seconds),
        ("# theory: state evolution with the default settings of 'sdgmm theory'; "
         "difference = simulation - theory, z = difference / se"),
    ]
    cells = [("stage", "theory", "simulation", "se", "difference", "z")]
    for r in df.to_dict(orient="records"):
        cells.append((str(r["stage"]), format(r["theory"], ".8f"), format(r["simulation"], ".6f"),
                      format(r["se"], ".1e"), format(r["difference"], "+.6f"), format(r["z"], "+.2f")))
    return "\n".join(header + align(cells))


