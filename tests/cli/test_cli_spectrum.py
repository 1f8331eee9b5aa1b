"""--spectrum (theory, simulate, optimize, curve) and 'sdgmm fit-mixture': the general-covariance model from the
command line, equal to the API, with bad spectrum files refused by name."""

import math

import numpy as np
import pytest
import sdgmm
from cli_helpers import read_csv, run
from sdgmm import Problem, Spectrum


@pytest.fixture(scope="module")
def spectrum_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spectrum") / "s.npz"
    i = np.arange(1, 151)
    Spectrum(i**-0.7 / np.mean(i**-0.7) * 0.5, np.linspace(0.4, 1.4, 150)).save(path)
    return str(path)


def _problem(path, **kw):
    return Problem(**{"alpha": 2.0, "rho": 0.5, "theta": 0.3, **kw}, spectrum=Spectrum.load(path))


def test_theory_with_a_spectrum_equals_the_api(spectrum_file, capsys):
    code, out, _ = run(["theory", "--spectrum", spectrum_file, "--lam", "1,0.5", "--beta", "2", "--format", "csv"],
                       capsys)
    assert code == 0
    ref = sdgmm.theory(_problem(spectrum_file), sdgmm.make_stages([1.0, 0.5], [2.0]))
    np.testing.assert_allclose(read_csv(out)["eps"], ref.eps, atol=1e-12)


def test_simulate_takes_the_spectrums_dimension(spectrum_file, capsys):
    code, out, _ = run(["simulate", "--spectrum", spectrum_file, "--lam", "1", "--trials", "2", "--format", "json"],
                       capsys)
    assert code == 0 and '"N": 150' in out
    code, _, err = run(["simulate", "--spectrum", spectrum_file, "--lam", "1", "--N", "100"], capsys)
    assert code == 2 and "N must be the spectrum's dimension 150" in err


def test_optimize_and_curve_with_a_spectrum(spectrum_file, capsys):
    code, out, _ = run(["optimize", "--spectrum", spectrum_file, "--n-stages", "2", "--restarts", "0", "--format",
                        "csv"], capsys)
    assert code == 0
    ref = sdgmm.optimize(_problem(spectrum_file), n_stages=2, restarts=0)
    np.testing.assert_allclose(read_csv(out)["eps"], [o.eps_final for o in ref.optima], atol=1e-12)
    code, out, _ = run(["curve", "--spectrum", spectrum_file, "--alphas", "1,3", "--stage-counts", "1",
                        "--format", "csv"], capsys)
    df = read_csv(out)
    assert code == 0 and list(df["alpha"]) == [1.0, 3.0] and (df["bayes"] < df["noiseless"]).all()


BAD = [
    (["--delta", "0.5"], "delta: --delta and --spectrum exclude each other"),
    (["--alpha", "-1"], "alpha must be > 0"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_arguments_next_to_a_spectrum(spectrum_file, capsys, extra, message):
    code, out, err = run(["theory", "--spectrum", spectrum_file, *extra], capsys)
    assert code == 2 and out == "" and message in err


BAD_FILES = [
    ({"values": np.ones(3)}, "has no array 'eigenvalues'"),
    ({"eigenvalues": np.array([1.0, -1.0]), "mean": np.ones(2)}, "eigenvalues[1] must be >= 0"),
    ({"eigenvalues": np.array([1.0, math.nan]), "mean": np.ones(2)}, "eigenvalues[1] must be a finite number"),
    ({"eigenvalues": np.ones(3), "mean": np.ones(2)}, "mean must hold one value per eigenvalue"),
    ({"eigenvalues": np.ones(3), "mean": np.zeros(3)}, "mean must hold a value other than 0"),
]


@pytest.mark.parametrize(("arrays", "message"), BAD_FILES)
def test_bad_spectrum_files_are_refused_by_name(tmp_path, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    code, out, err = run(["theory", "--spectrum", str(path)], capsys)
    assert code == 2 and out == "" and message in err and len(err.splitlines()) == 1
    code, _, err = run(["theory", "--spectrum", str(tmp_path / "missing.npz")], capsys)
    assert code == 2 and "spectrum: cannot read" in err


def test_fit_mixture_writes_what_spectrum_reads(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat([3, 5], 400)
    X = rng.normal(size=(800, 40)) * np.linspace(0.5, 2, 40) + 0.4 * (y[:, None] == 5)
    np.savez(tmp_path / "feats.npz", X_train=X, y_train=y)  # a pool alone: no test split is needed
    out = tmp_path / "spectrum.npz"
    code, text, err = run(["fit-mixture", str(tmp_path / "feats.npz"), "--classes", "3,5", "--out", str(out)], capsys)
    assert code == 0 and "N=40 points=800 rho=0.5000" in text and "wrote" in err
    fitted = sdgmm.fit_mixture((X - X.mean(0)) / X.std(0), (y == 5).astype(int))
    assert Spectrum.load(out) == fitted.spectrum
    code, _, _ = run(["curve", "--spectrum", str(out), "--alphas", "2", "--stage-counts", "1"], capsys)
    assert code == 0
    code, _, err = run(["fit-mixture", str(tmp_path / "feats.npz"), "--out", str(tmp_path / "s.txt")], capsys)
    assert code == 2 and "must be an .npz file" in err and not (tmp_path / "s.txt").exists()
