"""Bad input to the probe: a clear ValueError naming the parameter (API), one stderr line and exit 2 (CLI),
and no output file written."""

import importlib.util

import numpy as np
import pandas as pd
import pytest
from sdgmm.cli import main
from sdgmm.realdata import METHODS, load_split, probe
from sklearn.datasets import load_breast_cancer

FAST = ["--M", "40", "--theta", "0.2", "--trials", "1", "--validation", "3"]


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True)


@pytest.fixture
def files(tmp_path, cancer):
    X, y = cancer
    paths = {"npz": tmp_path / "f.npz", "csv": tmp_path / "f.csv", "npy": tmp_path / "f.npy"}
    np.savez(paths["npz"], X=X, y=y)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=y)
    frame.to_csv(paths["csv"], index=False)
    np.save(paths["npy"], np.column_stack([X, y]))
    bad = X.copy()
    bad[5, 3] = np.nan
    np.savez(tmp_path / "nan.npz", X=bad, y=y)
    np.save(tmp_path / "flat.npy", X[:, 0])
    np.savez(tmp_path / "short.npz", X=X, y=y[:-1])
    return paths


def _cli(capsys, tmp_path, *argv):
    outputs = [tmp_path / "out.csv", tmp_path / "out.png", tmp_path / "trials.csv"]
    code = main(["probe", *map(str, argv), "--csv", str(outputs[0]), "--plot", str(outputs[1]),
                 "--trials-csv", str(outputs[2])])
    captured = capsys.readouterr()
    return code, captured.err, captured.out, [p for p in outputs if p.exists()]


def test_every_format_loads_the_same_data(files, cancer):
    _X, y = cancer
    splits = [load_split(str(files[k]), seed=3) for k in ("npz", "csv", "npy")]
    for s in splits[1:]:
        np.testing.assert_array_equal(s.X_train, splits[0].X_train)
        np.testing.assert_array_equal(s.y_test, splits[0].y_test)
    assert len(splits[0].y_train) + len(splits[0].y_test) == len(y)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow installed: parquet is read")
def test_parquet_without_pyarrow_is_refused_clearly(tmp_path):
    path = tmp_path / "f.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(ValueError, match="needs pyarrow"):
        load_split(str(path))


@pytest.mark.parametrize("argv, message", [
    (["missing.npz"], "features: no such file"),
    (["flat.npy"], "must hold a 2-D array"),
    (["short.npz"], "one label per row"),
    (["nan.npz"], r"features must be finite \(row 5, column 3 is nan\)"),
    (["f.npz", "--classes", "0,7"], "class 7 is not present in the train labels"),
    (["f.npz", "--M", "100000"], "M: 100000 training points"),
    (["f.npz", "--theta", "1.0"], r"theta must be in \[0, 1\)"),
    (["f.npz", "--theta", "-0.1"], r"theta must be in \[0, 1\)"),
    (["f.txt"], "unsupported extension"),
    (["f.csv", "--label-column", "target"], "label_column: 'target' is not a column"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(capsys, tmp_path, files, argv, message):
    import re

    code, err, _, written = _cli(capsys, tmp_path, tmp_path / argv[0], *FAST, *argv[1:])  # later flags win
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sdgmm: error: ") and re.search(message, err), err
    assert written == []


def test_api_bad_input_names_the_parameter(cancer):
    X, y = cancer
    for kwargs, message in (({"M": [10**6]}, "^M: "), ({"theta": [1.5]}, "^theta must"),
                            ({"trials": 0}, "^trials must"), ({"classes": (0, 2)}, "^classes: class 2"),
                            ({"validation": 1}, "^validation must"), ({"max_stages": 1}, "^max_stages must")):
        with pytest.raises(ValueError, match=message):
            probe(X, y, X, y, **{"M": [40], "theta": [0.2], "trials": 1, **kwargs})
    with pytest.raises(ValueError, match="^test: features must have 30 columns"):
        probe(X, y, X[:, :5], y)


def test_cli_writes_all_outputs_on_success(capsys, tmp_path, files):
    code, _err, out, written = _cli(capsys, tmp_path, files["csv"], *FAST)
    assert code == 0 and len(written) == 3
    table = pd.read_csv(tmp_path / "out.csv")
    assert table["method"].tolist() == [*METHODS, "selected"]
    for method, error, xi in zip(table["method"], table["test_error"], table["xi"]):
        shown = "-" if np.isnan(xi) else f"{xi:g}"  # the xi column: stage 2's mixing weight
        assert any(method in line and f"{error:.4f}" in line and f" {shown} " in line for line in out.splitlines())
    assert np.isnan(table["xi"].iloc[0]) and table["xi"].iloc[1:].notna().all()
    _, _, again, _ = _cli(capsys, tmp_path, files["csv"], *FAST)
    assert again.splitlines()[1:] == out.splitlines()[1:]  # the same seed prints the same numbers (line 0: time)


def test_features_cli_refuses_bad_paths_before_loading_torch(capsys, tmp_path):
    assert main(["features", "--images", str(tmp_path / "none.npz"), "--out", str(tmp_path / "f.npz")]) == 2
    assert "argument --images: no such file" in capsys.readouterr().err
    np.savez(tmp_path / "img.npz", x=np.zeros((2, 8, 8, 3), np.uint8), y=np.zeros(2))
    assert main(["features", "--images", str(tmp_path / "img.npz"), "--out", str(tmp_path / "f.txt")]) == 2
    assert "must be an .npz" in capsys.readouterr().err
    assert not (tmp_path / "f.npz").exists() and not (tmp_path / "f.txt").exists()


def test_images_are_checked():
    from sdgmm.realdata._features import check_images

    with pytest.raises(ValueError, match=r"images must have shape \(n, height, width, 3\)"):
        check_images(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="must be uint8"):
        check_images(np.zeros((2, 8, 8, 3)))
