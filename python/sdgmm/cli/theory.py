"""'sdgmm theory': the state evolution of every stage, as a table, csv or json."""

from __future__ import annotations

import math

import numpy as np

from sdgmm._theory import theory
from sdgmm.cli._common import (
    EXIT_OK,
    EXIT_STATUS,
    Formatter,
    add_output_args,
    add_problem_args,
    add_solver_args,
    add_stage_args,
    align,
    call_reporting_warnings,
    emit,
    fixed6,
    fmt_number,
    problem_from_args,
    solver_kwargs,
    stages_from_args,
    table_header,
    yes_no,
)


def add(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", formatter_class=Formatter,
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
    add_problem_args(p)
    add_stage_args(p)
    add_solver_args(p)
    add_output_args(p)
    p.set_defaults(run=run)


def run(args) -> int:
    problem = problem_from_args(args)
    stages = stages_from_args(args)
    res = call_reporting_warnings(theory, problem, stages, args.loss, **solver_kwargs(args))
    emit(args, table=lambda: _format_table(res, args), frame=res.to_dataframe, data=res.to_dict)
    return EXIT_OK


def _rule(res) -> str:
    if res.gh_nodes:
        return f"{res.method}, {res.gh_nodes} nodes"
    return f"{res.method}, {res.qmc_points} points" if res.qmc_points else res.method


def _accuracy(res) -> str:
    if not res.accuracy:
        return ""
    if res.accuracy_reached:
        return f"; eps_error <= accuracy {res.accuracy:g}"
    worst = float(np.nanmax(res.eps_error)) if np.isfinite(res.eps_error).any() else math.nan
    return f"; accuracy {res.accuracy:g} NOT reached at the rule's cap (largest eps_error {worst:.1e})"


def _format_table(res, args) -> str:
    header = table_header(res.problem, res.n_stages, res.loss, args)
    header.append(f"# method: {_rule(res)} ({res.seconds * 1e3:.1f} ms){_accuracy(res)}")
    if any(math.isinf(st.lam) for st in res.stages):
        header.append("# lam = inf: the exact limit; its m, b, Q are the finite limits of lam m, lam b, lam^2 Q")
    cols = ("stage", "lam", "beta", "eps", "eps_error", "m", "b", "Q", "iterations", "converged", "collapsed")
    cells = [cols]
    for r in res.rows():
        beta = r["beta"] if isinstance(r["beta"], str) else fmt_number(r["beta"], "g")
        cells.append((
            str(r["stage"]), format(r["lam"], "g"), beta, format(r["eps"], ".8f"), format(r["eps_error"], ".1e"),
            format(r["m"], ".6f"), fixed6(r["b"]), format(r["Q"], ".6f"), str(r["iterations"]),
            yes_no(r["converged"]), yes_no(r["collapsed"]),
        ))
    return "\n".join(header + align(cells))


