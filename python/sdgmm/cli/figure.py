"""'sdgmm figure NAME --out DIR': one of the paper's figures F1-F5, or F6 (mixing; PNG + CSV)."""

from __future__ import annotations

import os
import sys
import time

from sdgmm._progress import ProgressBar
from sdgmm.cli._common import EXIT_OK, Formatter, UsageError, call_reporting_warnings
from sdgmm.figures import FIGURES, make_figure


def add(subparsers) -> None:

    p = subparsers.add_parser(
        "figure", formatter_class=Formatter,
        help="compute one of the paper's figures F1-F5, or F6 beyond the paper (PNG + CSV)",
        description="Compute a figure of optimally tuned SD in the paper's main setting and write NAME_*.png and "
                    "NAME_*.csv into --out:\n" + "\n".join(f"  {k}: {f.__doc__.splitlines()[0]}"
                                                            for k, f in FIGURES.items()),
        epilog="example:\n  sdgmm figure F1 --out docs/figures")
    p.add_argument("name", choices=sorted(FIGURES), metavar="NAME", help="F1, F2, F3, F4, F5 or F6")
    p.add_argument("--out", required=True, metavar="DIR", help="existing directory to write the PNG and CSV into")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar on stderr even when it is not a terminal")
    p.set_defaults(run=run)


def run(args) -> int:

    if not os.path.isdir(args.out) or not os.access(args.out, os.W_OK):
        raise UsageError(f"argument --out: {args.out!r} is not a writable directory")
    bar = (ProgressBar(1, f"sdgmm figure {args.name}", "alphas") if args.progress or sys.stderr.isatty()
           else None)
    start = time.perf_counter()
    try:
        paths = call_reporting_warnings(make_figure, args.name, args.out, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    print(f"# sdgmm figure {args.name}: {time.perf_counter() - start:.1f} s")
    for path in paths:
        print(path)
    return EXIT_OK
