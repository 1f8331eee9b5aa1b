"""'sdgmm sweep run | status | export | plot': parameter sweeps on Dask with a resumable result store (Dask is
imported when a sweep subcommand runs)."""

from __future__ import annotations

import argparse
import sys

from sdgmm._output import write_outputs
from sdgmm.cli._common import EXIT_OK, Formatter, UsageError, writable_path

EXIT_POINT_ERRORS = 1

SWEEP_DESCRIPTION = """\
Parameter sweeps: every combination of the grid axes (alpha, delta, rho, theta, stages, loss, labels,
bias) is one point, solved by a job kind: 'theory' (given lam_t, beta_t), 'optimize' (optimal SD with
T* by early stopping, up to 'stages' stages) or 'simulate' (finite-size training). Points run as Dask
tasks, on a local cluster (one worker process per core) or an existing scheduler, and each finished
point is stored at once in a SQLite file keyed by a hash of its spec and the engine version, so an
interrupted sweep resumes where it stopped. Spec layout and examples: docs/sweeps.md."""

RUN_EPILOG = """\
examples:
  sdgmm sweep run docs/sweeps/phase_hard.toml --progress
  sdgmm sweep run --kind theory --alpha 0.5:4:8 --theta 0.1,0.2,0.3 --stages 1,2,3 --lam 1 --beta 2 \\
      --store theory.sqlite
  sdgmm sweep run spec.toml --scheduler tcp://10.0.0.5:8786

exit status:
  0  every point is in the store (points whose state evolution failed are stored with a 'failure')
  1  some points raised an error and were not stored; running again retries them
  2  invalid input (nothing was computed or written)"""


def _axis(name: str):
    """CLI axis values: a comma list, or 'A:B:K' = K points from A to B (log-spaced for alpha)."""

    def parse(text: str):
        if name in ("alpha", "delta", "rho", "theta") and text.count(":") == 2:
            a, b, k = text.split(":")
            try:
                return {"log" if name == "alpha" else "lin": [float(a), float(b), int(k)]}
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected A:B:K with numbers A, B and a count K (got {text!r})") \
                    from None
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            if name in ("alpha", "delta", "rho", "theta"):
                return [float(t) for t in items]
            if name == "stages":
                return [int(t) for t in items]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {'integers' if name == 'stages' else 'numbers'}"
                                             f" (got {text!r})") from None
        return items

    return parse


def _numbers(text: str) -> list:
    try:
        return [float(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (got {text!r})") from None


# flag -> (section, spec name, argparse type, help)
RUN_FLAGS = [
    ("--kind", None, "kind", str, "job kind: theory, optimize or simulate"),
    ("--store", None, "store", str, "the SQLite result store (created with its directories)"),
    ("--chain", None, "chain", int, "neighbouring alphas per warm-start chain (default 4)"),
    ("--scheduler", None, "scheduler", str, ("an existing Dask scheduler, e.g. tcp://127.0.0.1:8786 (default: a "
                                            "local cluster)")),
    ("--workers", None, "workers", int, "worker processes of the local cluster (default: one per core)"),
    ("--spectrum", None, "spectrum", str, ("a spectrum file (.npz with eigenvalues, mean) for every point, in place "
                                          "of the delta axis")),
    *[(f"--{a}", "axes", a, _axis(a), text) for a, text in (
        ("alpha", "axis: sample ratios; comma list or A:B:K log-spaced"),
        ("delta", "axis: input noise variances; comma list or A:B:K"),
        ("rho", "axis: class priors; comma list or A:B:K"),
        ("theta", "axis: label-flip rates; comma list or A:B:K"),
        ("stages", "axis: stage counts T (optimize: the largest T tried)"),
        ("loss", "axis: logistic, square"), ("labels", "axis: hard, soft"), ("bias", "axis: learn, fix_first (optimize: also tune)"))],
    ("--lam", "job", "lam", _numbers, "theory/simulate: lam_t, one value for every stage or one per stage"),
    ("--beta", "job", "beta", _numbers, "theory/simulate: beta_t of soft labels, one value or one per stage 2..T"),
    ("--N", "job", "N", int, "simulate: dimension N"),
    ("--trials", "job", "trials", int, "simulate: independent trials"),
    ("--seed", "job", "seed", int, "simulate / optimize: random seed"),
    ("--restarts", "job", "restarts", int, "optimize: random restarts per stage count (default 1)"),
    ("--gain-tol", "job", "gain_tol", float, "optimize: early stopping tolerance (default 1e-6)"),
    ("--lam-bounds", "job", "lam_bounds", _numbers, "optimize: LO,HI search box of lam (default 1e-4,1e3)"),
    ("--beta-bounds", "job", "beta_bounds", _numbers, "optimize: LO,HI search box of beta (default 1e-2,1e2)"),
]


def add(subparsers) -> None:
    p = subparsers.add_parser("sweep", formatter_class=Formatter, description=SWEEP_DESCRIPTION,
                              help="parameter grids on Dask with a resumable result store (run, status, export, "
                                   "plot)")
    sub = p.add_subparsers(title="sweep commands", dest="sweep_command", metavar="<command>")
    p.set_defaults(run=_run_without_command)

    r = sub.add_parser("run", formatter_class=Formatter, help="compute the points missing from the store",
                       description="Compute every point of the sweep that is not in its store yet. The spec is "
                                   "a TOML file, flags, or both (flags override the file).", epilog=RUN_EPILOG)
    r.add_argument("spec", nargs="?", help="TOML sweep spec (see docs/sweeps.md)")
    for flag, section, name, kind, text in RUN_FLAGS:
        r.add_argument(flag, type=kind, default=None, help=text, dest=f"{section or 'top'}__{name}",
                       metavar=name.upper())
    r.add_argument("--n-stages", action="store_true",
                   help="optimize: optimise every T up to 'stages' instead of stopping early")
    r.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for --scheduler (default 10)")
    r.add_argument("--progress", action="store_true", help="progress bar with ETA on stderr")
    r.set_defaults(run=_run_run)

    s = sub.add_parser("status", formatter_class=Formatter, help="how many points are done, stale or missing")
    s.add_argument("source", help="the TOML spec or the store file")
    s.set_defaults(run=_run_status)

    e = sub.add_parser("export", formatter_class=Formatter, help="write the results as CSV or Parquet",
                       description="One row per finished point: its axes, job parameters and results.")
    e.add_argument("source", help="the TOML spec or the store file")
    e.add_argument("--csv", default=None, metavar="PATH")
    e.add_argument("--parquet", default=None, metavar="PATH", help="needs pyarrow (pip install 'sdgmm[parquet]')")
    e.set_defaults(run=_run_export)

    m = sub.add_parser("plot", formatter_class=Formatter, help="heat / contour map of a result over two axes",
                       description="Draw a result column (e.g. gain, eps_best, best_n_stages) over two axes as "
                                   "coloured cells; other varying axes must be fixed with --where.",
                       epilog="example:\n  sdgmm sweep plot docs/sweeps/phase_hard.toml --x alpha --y theta "
                              "--value gain --contour --out gain.png")
    m.add_argument("source", help="the TOML spec or the store file")
    m.add_argument("--x", default="alpha", help="horizontal axis (default: alpha)")
    m.add_argument("--y", default="theta", help="vertical axis (default: theta)")
    m.add_argument("--value", default="gain", help="result column to colour by (default: gain)")
    m.add_argument("--where", action="append", default=[], metavar="AXIS=VALUE",
                   help="keep the points with this value on another axis (repeatable)")
    m.add_argument("--contour", action="store_true", help="add labelled contour lines")
    m.add_argument("--annotate", default=None, metavar="COLUMN",
                   help="write this result column into every cell (e.g. best_n_stages)")
    m.add_argument("--title", default=None)
    m.add_argument("--out", required=True, metavar="PATH", help="the figure (format from the extension)")
    m.set_defaults(run=_run_plot)


def _run_without_command(args) -> int:
    raise UsageError("a sweep command is required (run, status, export, plot); see 'sdgmm sweep --help'")


def _spec_from_args(args):
    from sdgmm.sweep import spec as specs

    overrides: dict = {"axes": {}, "job": {}}
    for _, section, name, _, _ in RUN_FLAGS:
        value = getattr(args, f"{section or 'top'}__{name}")
        if value is not None:
            (overrides[section] if section else overrides)[name] = value
    if args.n_stages:
        overrides["job"]["early_stopping"] = False
    if args.spec is not None:
        return specs.load(args.spec, overrides)
    return specs.from_dict(overrides)


def _run_run(args) -> int:
    from sdgmm.sweep.run import run_sweep

    if not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds (got {args.timeout!r})")
    spec = _spec_from_args(args)
    s = run_sweep(spec, timeout=args.timeout, progress=args.progress)
    print(f"sweep: {s.total} points; {s.stored_before} stored before, {s.computed} computed now "
          f"({s.failed} not converged), {len(s.errors)} errors; {s.seconds:.1f} s; store {spec.store}")
    for line in s.errors[:20]:
        print(f"sdgmm sweep: error: {line}", file=sys.stderr)
    return EXIT_POINT_ERRORS if s.errors else EXIT_OK


def _open(source: str):
    """(spec, rows, engine) of a TOML spec's store, or of a store file with the spec it last ran."""
    from sdgmm.sweep import spec as specs
    from sdgmm.sweep.store import Store
    from sdgmm.sweep.task import engine_version

    if source.endswith(".toml"):
        spec = specs.load(source)
        store = Store(spec.store)
    else:
        store = Store(source)
        raw = store.spec()
        if raw is None:
            store.close()
            raise ValueError(f"store {source!r} holds no sweep spec")
        spec = specs.from_dict({**raw, "store": source})
    try:
        return spec, store.rows(), engine_version()
    finally:
        store.close()


def _run_status(args) -> int:
    import datetime

    from sdgmm.sweep.results import status

    spec, rows, engine = _open(args.source)
    st = status(spec, rows, engine)
    axes = ", ".join(f"{a} ({len(spec.axes[a])})" for a in spec.varying_axes()) or "none"
    last = (datetime.datetime.fromtimestamp(st["last_finished"], datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            if st["last_finished"] else "-")
    print(f"store:   {spec.store}\n"
          f"sweep:   {spec.kind}, {st['total']} points; varying axes: {axes}\n"
          f"done:    {st['done']}/{st['total']} with engine {engine} ({st['failed']} not converged)\n"
          f"stale:   {st['stale']} done only with another engine (recomputed by the next run)\n"
          f"missing: {st['missing']}"
          + (f"\ncompute: {st['compute_seconds']:.1f} s in total, slowest point {st['slowest_seconds']:.1f} s; "
             f"last finished {last}" if st["done"] else ""))
    return EXIT_OK


def _run_export(args) -> int:
    import importlib.util

    from sdgmm.sweep.results import frame

    if args.csv is None and args.parquet is None:
        raise UsageError("sweep export: give --csv PATH and/or --parquet PATH")
    if args.parquet is not None and importlib.util.find_spec("pyarrow") is None:
        raise UsageError("--parquet needs pyarrow, which is not installed (pip install 'sdgmm[parquet]'); "
                         "use --csv instead")
    csv_path = writable_path(args.csv, "--csv")
    parquet_path = writable_path(args.parquet, "--parquet")
    spec, rows, engine = _open(args.source)
    df = frame(spec, rows, engine)
    if csv_path:
        df.to_csv(csv_path, index=False)
    if parquet_path:
        df.to_parquet(parquet_path, index=False)
    print(f"sweep export: {len(df)} of {len(spec.points)} points", file=sys.stderr)
    return EXIT_OK


def _run_plot(args) -> int:
    from sdgmm.sweep._plot import plot_map
    from sdgmm.sweep.results import frame

    out = writable_path(args.out, "--out", figure=True)
    spec, rows, engine = _open(args.source)
    for name in (args.x, args.y):
        if name not in spec.axes:
            raise ValueError(f"--x/--y: {name!r} is not an axis; axes are {list(spec.axes)}")
    df = frame(spec, rows, engine)
    if df.empty:
        raise ValueError(f"{args.source}: no finished points to plot")
    fixed = {}
    for item in args.where:
        name, sep, value = item.partition("=")
        if not sep or name not in spec.axes:
            raise ValueError(f"--where: expected AXIS=VALUE with an axis of {list(spec.axes)} (got {item!r})")
        match = [v for v in spec.axes[name] if str(v) == value or _same_number(v, value)]
        if not match:
            raise ValueError(f"--where: {name} has no value {value!r}; its values are {spec.axes[name]}")
        fixed[name] = match[0]
        df = df[df[name] == match[0]]
    loose = [a for a in spec.varying_axes() if a not in (args.x, args.y, *fixed)]
    if loose:
        raise ValueError(f"--where: fix the other varying axes {loose} (e.g. --where {loose[0]}="
                         f"{spec.axes[loose[0]][0]})")
    constant = {a: spec.axes[a][0] for a in spec.axes if len(spec.axes[a]) == 1}
    title = args.title or f"{args.value}, {spec.kind}: " + ", ".join(f"{k}={v}" for k, v in {**constant, **fixed}.items())
    fig = plot_map(df, args.x, args.y, args.value, contour=args.contour, annotate=args.annotate, title=title)
    write_outputs(fig, out)
    print(f"sweep plot: {len(df)} points -> {out}", file=sys.stderr)
    return EXIT_OK


def _same_number(v, text: str) -> bool:
    try:
        return isinstance(v, float) and abs(v - float(text)) <= 1e-12 * max(1.0, abs(v))
    except ValueError:
        return False
