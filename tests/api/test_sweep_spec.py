"""Sweep specs, the result store and bad input: every bad input fails before any work and writes nothing."""

import json
import os
import socket
import textwrap

import pytest
from cli_helpers import run
from sdgmm.sweep import spec as specs
from sdgmm.sweep.store import Store, row_key

THEORY = ["sweep", "run", "--kind", "theory", "--lam", "1", "--beta", "2"]


def write_spec(tmp_path, body: str, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_toml_spec_expands_every_combination_and_resolves_the_store_next_to_it(tmp_path):
    path = write_spec(tmp_path, """
        kind = "theory"
        store = "out/results.sqlite"
        [axes]
        alpha = {log = [0.5, 8, 5]}
        theta = {lin = [0.0, 0.4, 3]}
        stages = [1, 3]
        labels = ["hard", "soft"]
        [job]
        lam = [1.0, 0.5, 0.5]
        beta = 2
    """)
    spec = specs.load(str(path))
    assert spec.store == str(tmp_path / "out" / "results.sqlite")
    assert spec.axes["alpha"] == pytest.approx([0.5, 1, 2, 4, 8])
    assert spec.axes["theta"] == pytest.approx([0.0, 0.2, 0.4])
    assert len(spec.points) == 5 * 3 * 2 * 2
    assert spec.varying_axes() == ["alpha", "theta", "stages", "labels"]
    one = next(p for p in spec.points if p["stages"] == 1 and p["labels"] == "soft")
    assert one["lam"] == [1.0] and one["beta"] is None
    three = next(p for p in spec.points if p["stages"] == 3 and p["labels"] == "soft")
    assert three["lam"] == [1.0, 0.5, 0.5] and three["beta"] == [2.0, 2.0]
    assert len({specs.point_id(p) for p in spec.points}) == len(spec.points)


def test_cli_flags_override_the_toml_file(tmp_path):
    path = write_spec(tmp_path, """
        kind = "optimize"
        store = "a.sqlite"
        [axes]
        alpha = [1, 2]
        stages = 3
    """)
    spec = specs.load(str(path), {"axes": {"theta": [0.1, 0.2]}, "job": {"restarts": 0}, "chain": 2})
    assert spec.axes["theta"] == [0.1, 0.2] and spec.axes["stages"] == [3] and spec.chain == 2
    assert {p["restarts"] for p in spec.points} == {0}


def test_chains_cut_the_alpha_axis_in_order_within_each_other_value():
    spec = specs.from_dict({"kind": "theory", "store": "x.sqlite", "job": {"lam": 1.0},
                            "axes": {"alpha": [4.0, 1.0, 3.0, 2.0, 5.0], "theta": [0.1, 0.2]}})
    runs = specs.chains(spec.points, 2)
    assert [[p["alpha"] for p in c] for c in runs] == [[1, 2], [3, 4], [5]] * 2
    assert all(len({p["theta"] for p in c}) == 1 for c in runs)


def test_store_keys_rows_by_point_and_engine_and_ignores_duplicates(tmp_path):
    store = Store(str(tmp_path / "s.sqlite"), create=True)
    point = {"kind": "theory", "alpha": 1.0}
    out = {"result": {"eps_final": 0.25}, "seconds": 0.1, "engine": "e1", "worker": "w"}
    assert store.add("p1", point, out)
    assert not store.add("p1", point, {**out, "result": {"eps_final": 0.5}})  # same point, same engine
    assert store.add("p1", point, {**out, "engine": "e2"})  # a rebuilt engine gets its own row
    assert store.existing([row_key("p1", "e1"), row_key("p1", "e3")]) == {row_key("p1", "e1")}
    assert store.output(row_key("p1", "e1"))["result"] == {"eps_final": 0.25}
    assert len(store.rows()) == 2
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


@pytest.mark.parametrize("flags, message", [
    (["--alpha", "1", "--gamma", "1"], "unrecognized arguments: --gamma"),
    (["--alpha", ""], "axis alpha is empty"),
    (["--alpha", "1,2", "--theta", "0.1,1.5"], "theta must lie in [0, 1) (got 1.5)"),
    (["--alpha", "1", "--labels", "hard,fuzzy"], "axis labels: 'fuzzy'"),
    (["--alpha", "1", "--stages", "0"], "axis stages must hold integers >= 1"),
    (["--alpha", "1", "--lam", "1,2", "--stages", "3"], "job.lam holds 2 values, but stages = 3 needs one value or at least 3"),
])
def test_bad_axis_on_the_command_line_fails_before_anything_is_written(tmp_path, capsys, flags, message):
    store = tmp_path / "sub" / "s.sqlite"
    code, out, err = run([*THEORY, *flags, "--store", str(store)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sdgmm: error:") and message in err, err
    assert not store.exists() and not store.parent.exists()


@pytest.mark.parametrize("body, message", [
    ('[axes]\nalpha = [1]\ngamma = [1, 2]', "unknown axis 'gamma'"),
    ('[axes]\nalpha = []', "axis alpha is empty"),
    ('[axes]\nalpha = {log = [1, 10, 0]}', "axis alpha is empty"),
    ('[axes]\nalpha = [1, 2]\ntheta = [0.2, 1.5]', "theta must lie in [0, 1)"),
    ('[axes]\nalpha = [1]\n[job]\nlam = 1\nwarmth = 3', "job has unknown parameter(s) ['warmth']"),
    ('[axes]\ntheta = [0.1]', "axis alpha is required"),
])
def test_bad_toml_spec_fails_before_anything_is_written(tmp_path, capsys, body, message):
    path = write_spec(tmp_path, 'kind = "theory"\nstore = "s.sqlite"\n' + body + ('\n[job]\nlam = 1' if "[job]" not in body
                                                                                  else ""))
    code, _out, err = run(["sweep", "run", str(path)], capsys)
    assert code == 2 and message in err, err
    assert os.listdir(tmp_path) == ["s.toml"]


def test_unreachable_scheduler_fails_fast_and_creates_no_store(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "s.sqlite"
    code, _, err = run([*THEORY, "--alpha", "1", "--store", str(store), "--scheduler", f"tcp://127.0.0.1:{port}",
                        "--timeout", "2"], capsys)
    assert code == 2 and f"scheduler tcp://127.0.0.1:{port}: cannot connect within 2 s" in err, err
    assert not store.exists()


def test_status_export_and_plot_refuse_a_missing_store_without_creating_it(tmp_path, capsys):
    store = tmp_path / "none.sqlite"
    for args in (["status", str(store)], ["export", str(store), "--csv", str(tmp_path / "x.csv")],
                 ["plot", str(store), "--out", str(tmp_path / "x.png")]):
        code, _, err = run(["sweep", *args], capsys)
        assert code == 2 and "no such file" in err, err
    assert os.listdir(tmp_path) == []


def test_store_remembers_the_spec_it_ran(tmp_path):
    store = Store(str(tmp_path / "s.sqlite"), create=True)
    spec = specs.from_dict({"kind": "theory", "store": "x", "job": {"lam": 1.0}, "axes": {"alpha": [1.0, 2.0]}})
    store.set_spec(spec.to_dict())
    again = specs.from_dict({**store.spec(), "store": "x"})
    assert again.points == spec.points
    assert json.loads(json.dumps(spec.to_dict())) == store.spec()
    store.close()


def test_engine_version_covers_the_job_adapters_and_what_they_import_not_the_front_end(tmp_path):
    from sdgmm.sweep.task import _job_modules

    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "task.py").write_text("from sdgmm.optimize import start\nfrom .store import s\n")
    (tmp_path / "optimize").mkdir()
    (tmp_path / "optimize" / "__init__.py").write_text("from ._search import x\nfrom sdgmm import _core\n")
    (tmp_path / "optimize" / "_search.py").write_text("from sdgmm._theory import theory\nimport sdgmm.helper\n")
    for name in ("_theory", "helper", "cli", "plot", "sweep/store", "sweep/plot"):
        (tmp_path / f"{name}.py").write_text("import numpy\n")
    found = [os.path.relpath(p, tmp_path) for p in _job_modules(str(tmp_path))]
    assert found == ["_theory.py", "helper.py", "optimize/__init__.py", "optimize/_search.py", "sweep/store.py",
                     "sweep/task.py"]
    # The adapters themselves are hashed: a fix there recomputes the stores made with the bug.
    from sdgmm.sweep import task

    real = _job_modules(os.path.dirname(os.path.dirname(task.__file__)))
    assert task.__file__ in real and any(p.endswith(os.path.join("optimal", "_search.py")) for p in real)
    assert not any(os.path.basename(p).startswith("cli") for p in real)


def test_a_spectrum_replaces_the_delta_axis_and_enters_every_point(tmp_path):
    import numpy as np
    import sdgmm
    from sdgmm.sweep.task import run_point

    path = tmp_path / "s.npz"
    sdgmm.Spectrum(np.linspace(0.2, 1.0, 30), np.ones(30)).save(path)
    raw = {"kind": "theory", "store": str(tmp_path / "t.sqlite"), "spectrum": str(path),
           "axes": {"alpha": [1.0, 2.0], "stages": 2}, "job": {"lam": [1.0, 0.5], "beta": 2.0}}
    spec = specs.from_dict(raw)
    assert spec.axes["delta"] == [None] and all(p["spectrum"] == str(path) for p in spec.points)
    out = run_point(spec.points[1], specs.point_id(spec.points[1]))["result"]
    problem = sdgmm.Problem(alpha=2.0, spectrum=sdgmm.Spectrum.load(path))
    ref = sdgmm.theory(problem, sdgmm.make_stages([1.0, 0.5], hard=True))  # sweeps default to hard labels
    assert out["eps_2"] == pytest.approx(ref.eps[1], abs=1e-12)
    sdgmm.Spectrum(np.linspace(0.2, 2.0, 30), np.ones(30)).save(path)  # another file: other point ids
    assert specs.point_id(specs.from_dict(raw).points[1]) != specs.point_id(spec.points[1])
    with pytest.raises(ValueError, match="axis delta: a sweep with a spectrum has no delta axis"):
        specs.from_dict({**raw, "axes": {**raw["axes"], "delta": [0.5]}})
    with pytest.raises(ValueError, match="spectrum: cannot read"):
        specs.from_dict({**raw, "spectrum": str(tmp_path / "missing.npz")})
