"""Speed of the training solver (line-search Newton-CG, fused passes over X) against scikit-learn,
and its cost floor, all measured in one run on the same data.

Run: .venv/bin/python bench/bench_train.py   (about 1 minute on a 2-core machine)

Setting: Problem(alpha=5, delta=0.5, rho=0.5, theta=0.2), N = 1000, M = alpha N = 5000, logistic
loss, lam = 1, learned (unpenalised) bias, sdgmm at the tolerance sdgmm.simulate uses by default.
Targets:
  1. soft targets y = sigmoid(2 u) (u: the logits of a first fit on the noisy labels, i.e. stage 2
     of self-distillation with beta = 2): sdgmm >= 3x faster than LogisticRegression(solver='lbfgs')
     and not slower than solver='liblinear', at equal or better accuracy;
  2. hard targets (the noisy labels): sdgmm >= 1.5x faster than solver='lbfgs' (liblinear reported);
  3. cost floor: passes over X per fit, the bytes those passes read and the bandwidth that implies,
     next to the machine's streaming bandwidth measured in the same run (np.add over 200 MB arrays);
  4. a full 3-stage soft simulation (N = 1000, 8 trials, 2 threads): wall time, passes per stage.

The same minimiser in both libraries. sdgmm minimises
    F(w, B) = sum_i l(y_i, u_i) + (lam / 2) |w|^2,   u_i = x_i . w / sqrt(N) + B,
    l(y, u) = log(1 + e^u) - y u.
scikit-learn minimises C sum_i s_i l(y_i, u_i) + |w|^2 / 2 over the features X / sqrt(N): that is
F / lam for C = 1 / lam (lbfgs also divides by sum_i s_i: same minimiser). sklearn takes only 0/1
labels, so soft targets p are given by duplicating every row, once with label 1 and weight p and once
with label 0 and weight 1 - p (p l(1, u) + (1 - p) l(0, u) = l(p, u)): sklearn then works on 2M rows.
liblinear penalises the intercept; see LIBLINEAR_SCALINGS below.

Equal accuracy. Every solver's accuracy is measured here, in NumPy, as the relative gradient norm
|grad F(w, B)| / |grad F(0, 0)| at the solution it returns (sdgmm's own stopping rule). sklearn's tol
is walked down a ladder 1e-4, 1e-5, ... until that measure is at most sdgmm's. A solver that stalls
above it (lbfgs stops on its ftol = 64 eps, liblinear when its reductions fall below 1e-12 |f|) keeps
its most accurate setting, is marked *, and sdgmm is also timed at the accuracy that solver did reach
(column "x @ equal acc.").

Timings are medians of repeated calls (the fastest is shown too); the script reports how much CPU
other processes took during the run, since on 2 cores any of it shows in the 2-thread timings.
"""

import inspect
import math
import os
import statistics
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import sdgmm
import sklearn
from sdgmm import _core
from sdgmm._linear import fit_linear
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

PROBLEM = {"alpha": 5.0, "delta": 0.5, "rho": 0.5, "theta": 0.2}
N = 1000
LAM = 1.0
BETA = 2.0  # temperature of the soft targets
SEED, TRIAL = 0, 0
_DEFAULTS = inspect.signature(sdgmm.simulate).parameters
TOL = _DEFAULTS["tol"].default  # sdgmm stops at |grad| <= TOL |grad(0, 0)|, as simulate does
MAX_NEWTON = _DEFAULTS["max_newton"].default
REPEAT_SDGMM, REPEAT_SKLEARN, REPEAT_SIM = 7, 3, 3
TOL_LADDER = [10.0**-k for k in range(4, 13)]
# liblinear penalises the intercept: it appends a constant column s to X whose weight b' = B / s enters
# |w|^2 / 2, i.e. a penalty B^2 / (2 s^2) that adds lam B / s^2 to the gradient in B of F (where B is
# unpenalised). A large s makes that negligible, but the constant column is then ~s sqrt(N) times the
# size of the features, and liblinear's (unpreconditioned) trust-region Newton stalls on the
# ill-conditioned problem. Both s = 1e2 (penalty gradient 1e-4 lam |B|) and s = 1e3 (1e-6 lam |B|) are
# tried and the more accurate is timed; what is left of the penalty shows up in the measured gradient.
LIBLINEAR_SCALINGS = (1e2, 1e3)
SOLVERS = ("lbfgs", "liblinear", "newton-cg")  # newton-cg: sklearn's own Newton-CG, for reference only
STREAM_DOUBLES = 25_000_000  # 200 MB per array
SETTLE = 0.1  # pause before each timed call, so idle BLAS / OpenMP workers of the last call stop spinning


class OthersLoad:
    """CPU used by other processes since construction, as a fraction of all CPUs: busy time of the
    whole machine (Linux /proc/stat) minus this process's own CPU time. NaN without /proc/stat."""

    def __init__(self):
        self.start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            tick = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return None
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return time.perf_counter(), (sum(v) - v[3] - v[4]) / tick, own  # v[3], v[4]: idle, iowait

    def fraction(self):
        end = self._sample()
        if self.start is None or end is None:
            return math.nan
        wall, busy, own = (e - s for e, s in zip(end, self.start))
        return max(0.0, busy - own) / (wall * (os.cpu_count() or 1))


def others_load(seconds=1.0):
    probe = OthersLoad()
    time.sleep(seconds)
    return probe.fraction()


def median_time(fn, repeat):
    """Median wall time of `repeat` calls and the last result (a Fit, given .best: the fastest time)."""
    times, out = [], None
    for _ in range(repeat):
        time.sleep(SETTLE)
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    out.best = min(times)
    return statistics.median(times), out


def sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # no overflow for any u


def gradient(X, y, w, B, lam):
    """Gradient of F (w part, then B), in NumPy: independent of both libraries."""
    scale = 1.0 / math.sqrt(X.shape[1])
    r = sigmoid(scale * (X @ w) + B) - y
    return np.concatenate([scale * (X.T @ r) + lam * w, [r.sum()]])


class Case:
    """One training problem: X, targets y in [0, 1], and the arrays sklearn needs for it."""

    def __init__(self, name, X, y):
        self.name, self.X, self.y = name, X, y
        self.M, self.N = X.shape
        self.g0 = np.linalg.norm(gradient(X, y, np.zeros(self.N), 0.0, LAM))
        Xs = X / math.sqrt(self.N)
        if np.all((y == 0.0) | (y == 1.0)):
            self.sk_X, self.sk_y, self.sk_w = Xs, y, None
        else:  # soft targets: every row twice, labels 1 / 0 with weights p / 1 - p
            self.sk_X = np.vstack([Xs, Xs])
            self.sk_y = np.concatenate([np.ones(self.M), np.zeros(self.M)])
            self.sk_w = np.concatenate([y, 1.0 - y])
        self.sk_rows = self.sk_X.shape[0]

    def relgrad(self, w, B):
        return float(np.linalg.norm(gradient(self.X, self.y, w, B, LAM)) / self.g0)


class Fit:
    """A returned solution; its accuracy (NumPy + BLAS) is computed on first use, outside any timing."""

    def __init__(self, case, w, B, iters, passes=None, cg=None):
        self.case, self.w, self.B, self.iters, self.passes, self.cg = case, w, B, iters, passes, cg
        self._relgrad = None

    @property
    def relgrad(self):
        if self._relgrad is None:
            self._relgrad = self.case.relgrad(self.w, self.B)
        return self._relgrad


def fit_sdgmm(case, tol, threads):
    fit = fit_linear(case.X, case.y, lam=LAM, tol=tol, max_newton=MAX_NEWTON, threads=threads)
    rep = fit.report
    return Fit(case, fit.w, fit.b, rep.newton_iterations, rep.passes, rep.cg_iterations)


def fit_sklearn(case, solver, tol, scaling=None):
    extra = {"intercept_scaling": scaling} if solver == "liblinear" else {}
    clf = LogisticRegression(C=1.0 / LAM, solver=solver, tol=tol, max_iter=10_000, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a stall is measured, not warned about
        clf.fit(case.sk_X, case.sk_y, sample_weight=case.sk_w)
    # coef_ is w (features X / sqrt(N)); intercept_ is B (for liblinear it is already s b')
    return Fit(case, clf.coef_.ravel().copy(), float(clf.intercept_[0]), int(np.max(clf.n_iter_)))


def calibrate(fit, target):
    """Walk the tol ladder until fit(tol).relgrad <= target, or until two steps in a row gain < 2x.

    Returns (tol, fit, reached, trail); when not reached, the cheapest tol that gave the best accuracy."""
    best, trail, stalls = None, [], 0
    for tol in TOL_LADDER:
        f = fit(tol)
        trail.append((tol, f.relgrad))
        if f.relgrad <= target:
            return tol, f, True, trail
        if best is None or f.relgrad < 0.5 * best[1].relgrad:
            best, stalls = (tol, f), 0
        else:
            stalls += 1
            if stalls >= 2:
                break
    return best[0], best[1], False, trail


def print_threadpools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        print("threadpoolctl not importable: the BLAS / OpenMP threads sklearn uses are unknown")
        return
    print("thread pools loaded (threadpoolctl; sklearn's BLAS and OpenMP among them; OPENBLAS_* left as is):")
    for p in threadpool_info():
        print(f"  {p.get('user_api', '?'):7s} {p.get('internal_api', '?'):9s} threads={p.get('num_threads')} "
              f"version={p.get('version')} {os.path.basename(p.get('filepath', ''))}")
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GOMP"))}
    print(f"  environment: {env if env else '(none set)'}")


def compare(case, sd_threads=(2, 1)):
    """The table of part 1 or 2. Returns the sdgmm timings by threads and the sklearn results."""
    dup = " = 2M rows: each row twice for the soft targets" if case.sk_rows > case.M else " rows"
    print(f"\n== {case.name}: M = {case.M}, N = {case.N}, lam = {LAM:g}, sdgmm tol = {TOL:g}; "
          f"sklearn sees {case.sk_rows}{dup}")
    sd = {th: median_time(lambda th=th: fit_sdgmm(case, TOL, th), REPEAT_SDGMM) for th in sd_threads}
    t_ref, ref = sd[sd_threads[0]]
    rows = []
    for solver in SOLVERS:
        picks = []
        for s in LIBLINEAR_SCALINGS if solver == "liblinear" else (None,):
            tol, f, reached, trail = calibrate(lambda tol, sv=solver, s=s: fit_sklearn(case, sv, tol, s),
                                               ref.relgrad)
            label = solver if s is None else f"{solver} (s={s:g})"
            print(f"  calibrate {label:19s} tol->relgrad: " + ", ".join(f"{t:.0e}->{g:.1e}" for t, g in trail)
                  + ("" if reached else "  [stalled]"))
            picks.append((f.relgrad, s, tol, reached))
        _, s, tol, reached = min(picks, key=lambda p: p[0])
        t, f = median_time(lambda sv=solver, tol=tol, s=s: fit_sklearn(case, sv, tol, s), REPEAT_SKLEARN)
        # sdgmm stopped at the accuracy this solver reached; the same passes mean the same work
        t_eq, f_eq = t_ref, ref
        if not reached:
            f_eq = fit_sdgmm(case, f.relgrad, sd_threads[0])
            if f_eq.passes != ref.passes:
                t_eq, f_eq = median_time(lambda g=f.relgrad: fit_sdgmm(case, g, sd_threads[0]), REPEAT_SDGMM)
        rows.append((solver, s, tol, reached, t, f, t_eq, f_eq))

    print(f"  {'solver':20s} {'tol':>7s} {'iters':>5s} {'passes':>6s} {'median s':>9s} {'best s':>7s} "
          f"{'relgrad':>8s} {'|dw|/|w|':>9s} {'|dB|':>8s} {'x sdgmm':>8s} {'x @ equal acc.':>15s}")
    for th, (t, f) in sd.items():
        dw = np.linalg.norm(f.w - ref.w) / np.linalg.norm(ref.w)
        print(f"  {f'sdgmm threads={th}':20s} {TOL:7.0e} {f.iters:5d} {f.passes:6d} {t:9.4f} {f.best:7.4f} "
              f"{f.relgrad:8.1e} {dw:9.1e} {abs(f.B - ref.B):8.1e} {t / t_ref:8.2f}")
    result = {}
    for solver, s, tol, reached, t, f, t_eq, f_eq in rows:
        label = solver + (f" s={s:g}" if s is not None else "") + ("" if reached else " *")
        dw = np.linalg.norm(f.w - ref.w) / np.linalg.norm(ref.w)
        eq = f"{t / t_eq:.2f} ({f_eq.passes}p)"
        print(f"  {label:20s} {tol:7.0e} {f.iters:5d} {'':>6s} {t:9.4f} {f.best:7.4f} {f.relgrad:8.1e} "
              f"{dw:9.1e} {abs(f.B - ref.B):8.1e} {t / t_ref:8.2f} {eq:>15s}")
        result[solver] = (t, t_eq, reached, f.relgrad)
    print("  relgrad: |grad F| / |grad F(0)| at the returned solution (NumPy); |dw|/|w|, |dB|: vs sdgmm "
          "threads=2;\n  x sdgmm: median time / sdgmm threads=2 median (> 1: sdgmm faster); *: stalled above "
          "sdgmm's accuracy,\n  most accurate tol kept; x @ equal acc.: time / sdgmm's time when stopped at "
          "that solver's relgrad (sdgmm's passes)")
    return sd, result


def stream_bandwidth():
    """np.add(a, b, out=c) over 200 MB arrays: bytes read + written (3 x 200 MB; the write-allocate
    read of c is not counted) / time, best of 5, with 1 thread and with 2 Python threads each adding
    one half (NumPy releases the GIL in the loop)."""
    a = np.full(STREAM_DOUBLES, 1.0)
    b = np.full(STREAM_DOUBLES, 2.0)
    c = np.zeros(STREAM_DOUBLES)  # touched now: no page faults in the timing
    halves = [slice(0, STREAM_DOUBLES // 2), slice(STREAM_DOUBLES // 2, None)]
    out = {}
    with ThreadPoolExecutor(2) as pool:
        for threads in (1, 2):
            best = math.inf
            for _ in range(5):
                start = time.perf_counter()
                if threads == 1:
                    np.add(a, b, out=c)
                else:
                    list(pool.map(lambda h: np.add(a[h], b[h], out=c[h]), halves))
                best = min(best, time.perf_counter() - start)
            out[threads] = 3 * a.nbytes / best
    return out


def gemv_pass(X):
    """One BLAS pass over X itself (X @ v, OpenBLAS threads as configured): best of 20."""
    v = np.ones(X.shape[1])
    best = math.inf
    for _ in range(20):
        start = time.perf_counter()
        X @ v
        best = min(best, time.perf_counter() - start)
    return X.nbytes / best, best


def main():
    busy = others_load()
    others = OthersLoad()
    print(f"machine: {os.cpu_count()} cores, {busy:.0%} of them used by other processes just before the run; "
          f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, sdgmm {sdgmm.__version__}")
    print_threadpools()
    problem = sdgmm.Problem(**PROBLEM)
    start = time.perf_counter()
    X, _, _, y_noisy = _core.draw_dataset(problem, N, SEED, TRIAL)
    t_draw = time.perf_counter() - start
    M = X.shape[0]
    print(f"data: {PROBLEM}, N = {N}, M = {M}, X float64 C-order {X.nbytes / 1e6:.0f} MB "
          f"({t_draw:.3f} s to draw)")

    # Soft targets: stage 2 of SD, sigmoid(beta u) from the logits of a fit on the noisy labels.
    u = fit_linear(X, y_noisy, lam=LAM, tol=TOL, max_newton=MAX_NEWTON, threads=2).logits
    y_soft = np.ascontiguousarray(sigmoid(BETA * u))
    soft = Case(f"1. logistic, SOFT targets sigmoid({BETA:g} u_prev)", X, y_soft)
    hard = Case("2. logistic, HARD targets (noisy labels)", X, np.ascontiguousarray(y_noisy, dtype=float))
    results = {key: compare(case) for key, case in (("soft", soft), ("hard", hard))}

    print("\n== 3. cost floor: passes over X (one pass reads M N 8 bytes)")
    stream = stream_bandwidth()
    gemv_bw, gemv_t = gemv_pass(X)
    print(f"  streaming kernel np.add(a, b, out=c), 200 MB arrays, (a + b read, c written) / time, best of 5:"
          f"\n    {stream[1] / 1e9:.1f} GB/s 1 thread, {stream[2] / 1e9:.1f} GB/s 2 threads")
    print(f"  one BLAS pass X @ v over this X ({X.nbytes / 1e6:.0f} MB; part of it may stay in L3): "
          f"{gemv_t * 1e3:.2f} ms = {gemv_bw / 1e9:.1f} GB/s")
    print(f"  {'case':5s} {'threads':>7s} {'newton':>6s} {'cg':>4s} {'passes':>6s} {'GB read':>8s} "
          f"{'median s':>9s} {'ms/pass':>8s} {'GB/s':>6s} {'/stream':>8s} {'/gemv':>6s}")
    for key in ("soft", "hard"):
        for th, (t, f) in results[key][0].items():
            moved = f.passes * M * N * 8
            bw = moved / t
            print(f"  {key:5s} {th:7d} {f.iters:6d} {f.cg:4d} {f.passes:6d} {moved / 1e9:8.2f} {t:9.4f} "
                  f"{t / f.passes * 1e3:8.2f} {bw / 1e9:6.1f} {bw / stream[th]:8.2f} {bw / gemv_bw:6.2f}")
    print("  /stream: effective GB/s over np.add's with as many threads; /gemv: over the BLAS pass's.\n"
          "  passes = 1 (gradient at 0, for the reference norm) + 1 (logits) + per Newton step: 1 (gradient)"
          "\n  + CG iterations (one Hessian product each) + 1 (logits of the direction); + 1 final gradient")

    print("\n== 4. full simulation: make_stages([1.0, 0.5, 0.5], [2.0, 2.0]), soft, N = 1000, 8 trials, "
          "threads = 2")
    stages = sdgmm.make_stages([1.0, 0.5, 0.5], [2.0, 2.0])
    sims = []
    for _ in range(REPEAT_SIM):
        time.sleep(SETTLE)
        sims.append(sdgmm.simulate(problem, stages, N=N, trials=8, threads=2))
    secs = sorted(s.seconds for s in sims)
    sim = sims[-1]
    p = sim.trials["passes"]
    total = p.sum() * M * N * 8
    print(f"  wall time: median {statistics.median(secs):.3f} s, best {secs[0]:.3f} s of {REPEAT_SIM} "
          f"(including 8 draws of ~{t_draw:.2f} s; trials run in parallel, one per thread)")
    print(f"  {'stage':>5s} {'newton':>7s} {'cg':>6s} {'passes':>7s} {'converged':>9s} {'eps':>8s}")
    for k in range(p.shape[1]):
        print(f"  {k + 1:5d} {sim.trials['newton_iterations'][:, k].mean():7.2f} "
              f"{sim.trials['cg_iterations'][:, k].mean():6.2f} {p[:, k].mean():7.2f} "
              f"{bool(sim.trials['converged'][:, k].all())!s:>9s} {sim.eps[k]:8.4f}")
    print(f"  total {int(p.sum())} passes = {total / 1e9:.1f} GB read: "
          f"{total / statistics.median(secs) / 1e9:.1f} GB/s over the whole wall time")

    print("\n== summary vs targets (ratios of medians, sdgmm with 2 threads)")
    for key, target_lbfgs in (("soft", 3.0), ("hard", 1.5)):
        t_sd = results[key][0][2][0]
        for solver, target in (("lbfgs", target_lbfgs), ("liblinear", 1.0 if key == "soft" else None)):
            t, t_eq, reached, g = results[key][1][solver]
            ratio = t / t_sd
            if target is None:
                goal, verdict = "reported, no target", ""
            else:
                goal = f"target >= {target:g}x"
                verdict = " MET" if ratio >= target else f" NOT MET (short by a factor {target / ratio:.2f})"
            acc = f"; {solver} stalled at relgrad {g:.1e}: {t / t_eq:.2f}x at that accuracy"
            acc = "" if reached else acc
            print(f"  {key}: {solver} / sdgmm = {ratio:.2f}x ({goal}){verdict}{acc}")
    load = others.fraction()
    warn = "  (WARNING: over 5%: the timings are disturbed; rerun on a quiet machine)" if load > 0.05 else ""
    print(f"  other processes used {load:.0%} of the CPUs during the run{warn}")


if __name__ == "__main__":
    main()
