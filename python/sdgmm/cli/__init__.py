"""Command line of sdgmm: ``sdgmm <subcommand> [options]``.

Each subcommand is a module with ``add(subparsers)``, which registers its parser and its ``run(args) -> int``;
the flags and output helpers they share are in :mod:`sdgmm.cli._common`. This module only dispatches.

Exit status: 0 success, 2 invalid input, 3 state evolution did not converge.
"""

from __future__ import annotations

import sys

from sdgmm._version import __version__
from sdgmm.cli import figure, mixture, optimize, probe, simulate, sweep, theory
from sdgmm.cli._common import (
    EXIT_NOT_CONVERGED,
    EXIT_OK,
    EXIT_STATUS,
    EXIT_USAGE,
    Formatter,
    Parser,
    UsageError,
    glue_negative_values,
)
from sdgmm.errors import ConvergenceError

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

# Registration order is the order of 'sdgmm --help'.
SUBCOMMANDS = (theory.add, simulate.add, optimize.add_optimize, optimize.add_curve, figure.add, sweep.add,
               probe.add_probe, mixture.add, probe.add_features)


def build_parser() -> Parser:
    parser = Parser(prog="sdgmm", description=DESCRIPTION, formatter_class=Formatter,
                    epilog="examples:\n  sdgmm theory --alpha 2 --delta 0.5 --rho 0.5 --theta 0.3 "
                           "--lam 1.0,0.5,0.5 --beta 2,2\n"
                           "  sdgmm simulate --alpha 2 --delta 0.5 --rho 0.5 --theta 0.3 --lam 1.0,0.5,0.5 "
                           "--beta 2,2 --N 1000 --trials 8 --compare\n"
                           "  sdgmm optimize --alpha 1 --max-stages 6 --loss square --labels soft\n"
                           "  sdgmm curve --alphas 0.1:100:20 --stage-counts 1,2,6 --plot curve.png\n\n"
                           "Run 'sdgmm <subcommand> --help' for its parameters.\n\n" + EXIT_STATUS)
    parser.add_argument("--version", action="version", version=f"sdgmm {__version__}")
    subparsers = parser.add_subparsers(title="subcommands", dest="command", metavar="<subcommand>")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 invalid input, 3 not converged)."""
    parser = build_parser()
    try:
        args = parser.parse_args(glue_negative_values(sys.argv[1:] if argv is None else list(argv)))
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
