"""Data of the linear probe: reading feature files, two-class selection, training subsets, label noise,
standardisation. Every function checks its input and raises ValueError naming the parameter."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

FORMATS = (".npy", ".npz", ".csv", ".parquet")


@dataclass(frozen=True)
class Split:
    """Features and labels of a training pool and a test set (labels as given in the file)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _table(path: str, label_column: str):
    import pandas as pd

    if path.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except ImportError as e:
            raise ValueError(f"features: reading {path!r} needs pyarrow (pip install 'sdgmm[parquet]'): {e}") from None
    else:
        frame = pd.read_csv(path)
    if label_column not in frame.columns:
        raise ValueError(f"label_column: {label_column!r} is not a column of {path!r} "
                         f"(columns: {', '.join(map(str, frame.columns[:8]))}{', ...' if frame.shape[1] > 8 else ''})")
    try:
        X = frame.drop(columns=[label_column]).to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"features: every column of {path!r} but {label_column!r} must be numeric") from None
    return X, frame[label_column].to_numpy()


def read_features(path: str, label_column: str = "label"):
    """(X, y) from one file; for .npz a dict of its arrays instead.

    .npy: a 2-D array whose column ``label_column`` (an integer index, default the last) is the label;
    .csv / .parquet: a header row, the column named ``label_column`` holds the labels, all others features;
    .npz: arrays ``X``/``y`` or ``X_train``/``y_train``/``X_test``/``y_test``.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"features: {path!r} has an unsupported extension (use one of {', '.join(FORMATS)})")
    if not os.path.isfile(path):
        raise ValueError(f"features: no such file {path!r}")
    if ext == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if ext == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.ndim != 2 or array.shape[1] < 2:
            raise ValueError(f"features: {path!r} must hold a 2-D array (samples x (features + label)) "
                             f"(got shape {array.shape})")
        try:
            col = -1 if label_column == "label" else int(label_column)
            labels = array[:, col]
        except (ValueError, IndexError):
            raise ValueError(f"label_column: for .npy give a column index below {array.shape[1]} "
                             f"(got {label_column!r})") from None
        return np.delete(array, col % array.shape[1], axis=1).astype(np.float64), labels
    return _table(path, label_column)


def load_split(path: str, *, label_column: str = "label", test_path: str | None = None,
               test_fraction: float = 0.25, seed: int = 0) -> Split:
    """A training pool and a test set: the file's own X_train/X_test split (.npz), a separate test file,
    or else a stratified ``test_fraction`` of the file held out before anything else is done."""
    content = read_features(path, label_column)
    if isinstance(content, dict):
        if {"X_train", "y_train", "X_test", "y_test"} <= content.keys() and test_path is None:
            return Split(content["X_train"], content["y_train"], content["X_test"], content["y_test"])
        keys = ("X_train", "y_train") if "X_train" in content else ("X", "y")
        if not set(keys) <= content.keys():
            raise ValueError(f"features: {path!r} must hold arrays X and y, or X_train, y_train, X_test, y_test "
                             f"(found {sorted(content)})")
        content = (content[keys[0]], content[keys[1]])
    X, y = _check_xy(*content, "features")
    if test_path is not None:
        test = read_features(test_path, label_column)
        if isinstance(test, dict):
            test = (test.get("X_test", test.get("X")), test.get("y_test", test.get("y")))
            if test[0] is None or test[1] is None:
                raise ValueError(f"test: {test_path!r} must hold arrays X and y (or X_test, y_test)")
        return Split(X, y, *test)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1) (got {test_fraction!r})")
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_fraction, stratify=y,
                                                        random_state=seed)
    return Split(X_train, y_train, X_test, y_test)


def _check_xy(X, y, name: str):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name}: features must be a 2-D array (samples x features) (got shape {X.shape})")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: labels must be 1-D with one label per row of the features "
                         f"(got {y.shape} labels for {X.shape[0]} rows)")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{name}: features must be numeric (got dtype {X.dtype})")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{name}: features must be finite (row {bad[0]}, column {bad[1]} is {X[tuple(bad)]})")
    return X, y


def two_classes(split: Split, classes=None) -> tuple[Split, tuple]:
    """Keep the two chosen classes (default: the two in the data); labels become 0 / 1 in the given order."""
    X_train, y_train = _check_xy(split.X_train, split.y_train, "train")
    X_test, y_test = _check_xy(split.X_test, split.y_test, "test")
    if X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"test: features must have {X_train.shape[1]} columns like the training features "
                         f"(got {X_test.shape[1]})")
    present = np.unique(y_train)
    if classes is None:
        if present.size != 2:
            raise ValueError(f"classes: the data hold {present.size} classes; choose two (e.g. classes=(3, 5))")
        classes = tuple(present)
    classes = tuple(classes)
    if len(classes) != 2 or classes[0] == classes[1]:
        raise ValueError(f"classes must be two different labels (got {classes!r})")
    classes = tuple(_as_label(c, present) for c in classes)
    for c in classes:
        for name, y in (("train", y_train), ("test", y_test)):
            if not np.any(y == c):
                raise ValueError(f"classes: class {c} is not present in the {name} labels "
                                 f"(labels present: {np.unique(y)[:10].tolist()})")
    keep_train = np.isin(y_train, classes)
    keep_test = np.isin(y_test, classes)
    relabel = lambda y: (y == classes[1]).astype(np.int64)
    return Split(X_train[keep_train], relabel(y_train[keep_train]), X_test[keep_test],
                 relabel(y_test[keep_test])), classes


def _as_label(c, present):
    """A class given on the command line as text matches numeric labels too."""
    if isinstance(c, str) and present.dtype.kind in "iuf":
        try:
            return present.dtype.type(float(c))
        except ValueError:
            raise ValueError(f"classes: {c!r} is not a label of the data (labels are numbers)") from None
    return c


def draw_subset(y: np.ndarray, M: int, rng: np.random.Generator, sampling: str = "balanced") -> np.ndarray:
    """Indices of M training points: half per class (balanced) or in the pool's class proportions."""
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)) or M < 4:
        raise ValueError(f"M must be an integer >= 4 (got {M!r})")
    counts = np.array([np.sum(y == 0), np.sum(y == 1)])
    if sampling == "balanced":
        want = np.array([M - M // 2, M // 2])
    elif sampling == "stratified":
        n1 = round(M * counts[1] / counts.sum())
        want = np.array([M - n1, n1])
    else:
        raise ValueError(f"sampling must be 'balanced' or 'stratified' (got {sampling!r})")
    if np.any(want > counts):
        raise ValueError(f"M: {M} training points ({sampling}: {want[0]} + {want[1]} per class) exceed the "
                         f"available {counts[0]} + {counts[1]}")
    return np.concatenate([rng.choice(np.flatnonzero(y == c), want[c], replace=False) for c in (0, 1)])


def flip_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rank per point within its class; flipping the lowest ranks nests the noise across theta
    (common random numbers: the flips at theta = 0.2 are a subset of those at 0.4)."""
    order = np.empty(len(y))
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        order[idx] = rng.permutation(len(idx))
    return order


def noisy_labels(y: np.ndarray, theta: float, noise: str, ranks: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """'exact': floor(theta n_c) flips in class c, i.e. floor(theta M / 2) per class in a balanced set
    (the reference's protocol); 'bernoulli': each label flips independently with probability theta."""
    check_theta(theta)
    flipped = y.copy()
    if noise == "exact":
        per_class = np.where(y == 1, math.floor(theta * np.sum(y == 1)), math.floor(theta * np.sum(y == 0)))
        flip = ranks < per_class
    elif noise == "bernoulli":
        flip = uniforms < theta
    else:
        raise ValueError(f"noise must be 'exact' or 'bernoulli' (got {noise!r})")
    flipped[flip] = 1 - flipped[flip]
    return flipped


def check_theta(theta) -> float:
    if not (isinstance(theta, (int, float, np.floating)) and 0 <= theta < 1):
        raise ValueError(f"theta must be in [0, 1) (got {theta!r})")
    return float(theta)


def standardiser(X: np.ndarray):
    """Mean and scale of the training features; constant features keep scale 1."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale
