"""Tables, frames and JSON of 'sdgmm optimize' and 'sdgmm curve': readable in 100 columns (lam shown once where
every stage shares it, at_bound only for real edges of the search box)."""

from __future__ import annotations

from sdgmm._model import problem_dict
from sdgmm._params import PAPER_SETTING
from sdgmm.cli._common import align, problem_line, yes_no


def _covariance(args) -> str:
    return f"spectrum={args.spectrum}" if args.spectrum else f"delta={args.delta or PAPER_SETTING['delta']:g}"


def search_line(args, seconds: float) -> str:
    lam = f"lam in [{args.lam_bounds[0]:g}, {args.lam_bounds[1]:g}]{' + inf' if args.limits else ''}"
    beta = f", beta in [{args.beta_bounds[0]:g}, {args.beta_bounds[1]:g}]" if args.labels == "soft" else ""
    xi = f", xi in [{args.xi_bounds[0]:g}, {args.xi_bounds[1]:g}] (mixed)" if args.mix else ""
    return (f"# search: loss={args.loss} labels={args.labels} bias={args.bias} restarts={args.restarts} "
            f"seed={args.seed} ({seconds:.2f} s)\n# search box: {lam}{beta}{xi}")


def joined(values) -> str:
    return ",".join(format(float(v), ".4g") for v in values)


def compact(values) -> str:
    """Per-stage values, shown once when every stage has the same one ('inf' for six stages at the limit)."""
    values = [float(v) for v in values]
    return format(values[0], ".4g") if len(set(values)) == 1 else ",".join(format(v, ".3g") for v in values)


def beta_cell(optimum, labels: str) -> str:
    if optimum.n_stages == 1:
        return "-"
    return "hard" if labels == "hard" else compact(optimum.beta)


def xi_cell(xi) -> str:
    return "-" if len(xi) == 0 else compact(xi)


# at_bound entries as the tables show them: the limit lam = inf is already in the lam column.
_EDGE = {"lower": "L", "upper": "U"}


def at_bound_cell(at_bound) -> str:
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
                 "falling\n#   beyond it: widen --lam-bounds / --beta-bounds / --xi-bounds); beta<=X: beta capped where the "
                 "quadrature\n#   resolves the soft targets. lam = inf is the exact limit lam -> inf, not an edge.")


def optimize_table(res, args, stopped_early: bool) -> str:
    best = res.best_n_stages
    header = [problem_line(res.problem), search_line(args, res.seconds)]
    if args.n_stages is not None:
        header.append(f"# stage counts: T = 1..{args.n_stages}")
    else:
        why = (f"stopped at T={res.optima[-1].n_stages}: the last stage gained less than gain_tol or than the "
               "integration error"
               if stopped_early and not res.failure else "no early stop")
        header.append(f"# stage counts: T = 1..{args.max_stages} with early stopping "
                      f"(gain_tol={res.gain_tol:g}; {why})")
    header.append(f"# T* = {best}: the fewest stages with the lowest optimal final eps, to within integration error "
                  "(marked *)")
    tuned = res.bias == "tune"  # the kept bias B is a searched hyperparameter: show it
    cols = ("T", "eps", "eps_error", "lam", "beta") + (("xi",) if res.mix else ()) + (("B",) if tuned else ()) + (
        "evaluations", "seconds", "converged", "at_bound", "best")
    cells = [cols]
    for o in res.optima:
        bias = (format(o.bias_value, ".4g"),) if tuned else ()
        xi = (xi_cell(o.xi),) if res.mix else ()
        cells.append((str(o.n_stages), format(o.eps_final, ".8f"), format(float(o.eps_error[-1]), ".1e"),
                      compact(o.lam), beta_cell(o, res.labels), *xi, *bias, str(o.evaluations), format(o.seconds, ".2f"),
                      yes_no(o.converged), at_bound_cell(o.at_bound), "*" if o.n_stages == best else ""))
    lines = header + [line.rstrip() for line in align(cells)]
    if any(at_bound_cell(o.at_bound) != "-" for o in res.optima):
        lines.append(AT_BOUND_NOTE)
    if res.failure:
        lines.append(f"# T = {len(res.optima) + 1}: no optimum: {res.failure}")
    return "\n".join(lines)


def optimize_frame(res):
    df = res.to_dataframe()
    df["best"] = df["n_stages"] == res.best_n_stages
    return df


def _floats(values) -> list:
    return [float(v) for v in values]


def optimize_dict(res, args) -> dict:
    p = res.problem
    return {
        "problem": problem_dict(p),
        "loss": res.loss, "labels": res.labels, "bias": res.bias,
        "bounds": {"lam": list(args.lam_bounds), "beta": list(args.beta_bounds), "xi": list(args.xi_bounds)},
        "mix": res.mix, "restarts": args.restarts, "seed": args.seed, "gain_tol": res.gain_tol,
        "n_stages": args.n_stages, "max_stages": args.max_stages,
        "best_n_stages": res.best_n_stages, "seconds": res.seconds,
        "optima": [
            {"n_stages": o.n_stages, "eps_final": o.eps_final, "eps": _floats(o.eps),
             "eps_error": _floats(o.eps_error), "lam": _floats(o.lam),
             "beta": _floats(o.beta) if res.labels == "soft" else None,  # hard labels: no temperature
             "xi": _floats(o.xi) if res.mix else None,
             "at_bound": list(o.at_bound), "evaluations": int(o.evaluations), "seconds": o.seconds,
             "converged": bool(o.converged)}
            for o in res.optima
        ],
    }


def curve_title(args) -> str:
    return (f"optimally tuned SD: {_covariance(args)} rho={args.rho:g} theta={args.theta:g}\n"
            f"loss={args.loss}, labels={args.labels}, bias={args.bias}")


def curve_table(df, args, seconds: float) -> str:
    """One row per (alpha, stage count), readable in 100 columns: lam once where every stage shares it, the
    alpha -> inf Bayes limit in the header, failures (NaN rows) explained below the table."""

    alphas = args.alphas
    header = [
        (f"# curve: {_covariance(args)} rho={args.rho:g} theta={args.theta:g}; {len(alphas)} alphas from "
         f"{alphas[0]:g} to {alphas[-1]:g}; stage counts {','.join(map(str, args.stage_counts))}"),
        search_line(args, seconds),
        f"# noiseless = optimal 0-SD without label noise; alpha -> inf Bayes limit = {df['bayes'].iloc[0]:.6f}",
    ]
    cols = ("alpha", "SD", "eps", "eps_error", "lam", "beta") + (("xi",) if args.mix else ()) + ("at_bound",
                                                                                                "noiseless")
    cells, notes = [cols], []
    for r in df.to_dict(orient="records"):
        T = int(r["n_stages"])
        row = (format(r["alpha"], ".4g"), f"{T - 1}-SD")
        if isinstance(r.get("failure"), str) and r["failure"]:
            notes.append(f"# [{len(notes) + 1}] alpha={r['alpha']:.4g}, {T - 1}-SD: {r['failure']}")
            cells.append((*row, "nan", f"see [{len(notes)}]", "-", "-", *(("-",) if args.mix else ()), "-",
                          format(r["noiseless"], ".6f")))
            continue
        lam = [r[f"lam_{t}"] for t in range(1, T + 1)]
        beta = "-" if T == 1 else "hard" if args.labels == "hard" else compact(r[f"beta_{t}"] for t in range(2, T + 1))
        xi = (xi_cell([r[f"xi_{t}"] for t in range(2, T + 1)]),) if args.mix else ()
        at_bound = at_bound_cell(r["at_bound"].split(";") if r["at_bound"] else ())
        cells.append((*row, format(r["eps"], ".8f"), format(r["eps_error"], ".1e"), compact(lam), beta, *xi, at_bound,
                      format(r["noiseless"], ".6f")))
    lines = header + align(cells)
    if any(c[-2] != "-" for c in cells[1:]):
        lines.append(AT_BOUND_NOTE)
    return "\n".join(lines + notes)


def curve_dict(df, args, seconds: float) -> dict:
    return {
        "delta": args.delta, "spectrum": args.spectrum, "rho": args.rho, "theta": args.theta, "loss": args.loss,
        "labels": args.labels,
        "bias": args.bias, "bounds": {"lam": list(args.lam_bounds), "beta": list(args.beta_bounds),
                                      "xi": list(args.xi_bounds)},
        "mix": args.mix, "restarts": args.restarts, "seed": args.seed, "alphas": list(args.alphas),
        "stage_counts": list(args.stage_counts), "seconds": seconds,
        "rows": [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                 for row in df.to_dict(orient="records")],
    }


