"""Speed of the state-evolution engine, with ratios against anchors measured in the same run.

Run: .venv/bin/python bench/bench_theory.py
Targets (issue 2): logistic soft T = 3 at 1e-6 accuracy <= 50 ms per call and >= 50x faster than the
reference Monte Carlo mode (10^4 samples, damping 0.9, tolerance 1e-7); T = 6 <= 1 s per call.
"""

import os
import statistics
import time

import sdgmm


def timed(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    balanced = sdgmm.Problem(alpha=2.0, delta=0.5, rho=0.5, theta=0.3)
    table_row = sdgmm.Problem(alpha=1.5, delta=0.5, rho=0.4, theta=0.2)
    soft3 = sdgmm.make_stages([1.5, 0.5, 2.0], [0.8, 1.2])
    soft6 = sdgmm.make_stages([1.0, 0.5, 0.5, 0.5, 0.5, 0.5], [3.0] * 5)
    hard3 = sdgmm.make_stages([1.0, 0.5, 0.5], hard=True, bias="fix_first")
    hard6 = sdgmm.make_stages([1.0] + [0.5] * 5, hard=True, bias="fix_first")

    cases = [
        ("soft T=3 tensor (+error estimate)", lambda: sdgmm.theory(table_row, soft3), 20),
        ("soft T=3 tensor (no estimate)", lambda: sdgmm.theory(table_row, soft3, estimate_error=False), 20),
        ("soft T=3 reference MC (1e4, damping 0.9)", lambda: sdgmm.theory(table_row, soft3, method="mc"), 3),
        ("hard T=3 tensor", lambda: sdgmm.theory(table_row, hard3), 3),
        ("soft T=6 auto", lambda: sdgmm.theory(balanced, soft6), 3),
        ("soft T=6 qmc", lambda: sdgmm.theory(balanced, soft6, method="qmc"), 3),
        ("hard T=6 auto", lambda: sdgmm.theory(balanced, hard6), 1),
    ]
    print(f"machine: {os.cpu_count()} cores")
    print(f"{'case':44s} {'method':>7s} {'median s':>10s} {'max eps_error':>14s}  eps")
    seconds = {}
    for name, fn, repeat in cases:
        t, r = timed(fn, repeat)
        seconds[name] = t
        print(f"{name:44s} {r.method:>7s} {t:10.4f} {r.eps_error.max():14.1e}  {' '.join(f'{e:.6f}' for e in r.eps)}")
    fast = seconds["soft T=3 tensor (+error estimate)"]
    mc = seconds["soft T=3 reference MC (1e4, damping 0.9)"]
    print(f"\nsoft T=3: {fast * 1e3:.1f} ms per call (target <= 50 ms)")
    print(f"ratio reference MC / engine: {mc / fast:.0f}x (target >= 50x)")
    print(f"soft T=6: {seconds['soft T=6 auto']:.2f} s per call (target <= 1 s)")
    mirror_symmetry(soft3, sdgmm.make_stages([1.0, 0.5, 0.5, 0.5], hard=True))


def mirror_symmetry(soft3, hard4):
    """The tensor rule on a symmetric problem (one class of each mirror pair) against the same problem with rho a
    hair above 1/2, where every class is integrated."""
    print("\nmirror symmetry, tensor rule: rho = 1/2 against 1/2 + 1e-13 (all classes)")
    for name, stages in (("soft T=3", soft3), ("hard T=4", hard4)):
        (t_half, r_half), (t_full, r_full) = (
            timed(lambda rho=rho, st=stages: sdgmm.theory(sdgmm.Problem(alpha=2.0, delta=0.5, rho=rho, theta=0.3), st), 10)
            for rho in (0.5, 0.5 + 1e-13))
        print(f"  {name}: {t_half * 1e3:.1f} ms against {t_full * 1e3:.1f} ms, {t_full / t_half:.2f}x; "
              f"eps differ by {abs(r_half.eps - r_full.eps).max():.1e}")


if __name__ == "__main__":
    main()
