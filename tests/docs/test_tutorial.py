"""docs/tutorial.ipynb runs from top to bottom without an error, in a temporary directory.

The kernel is this interpreter's ipykernel (the test extra installs nbclient, nbformat and ipykernel):
a kernelspec named python3 whose argv is sys.executable is put first on JUPYTER_PATH, so a python3
kernelspec elsewhere on the machine cannot substitute another Python. A last cell checks that the
kernel's sys.prefix is this environment's.
"""

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "tutorial.ipynb"
CELL_TIMEOUT = 120  # seconds per cell; the whole notebook takes about 20-30 s on 2 cores
BUDGET = 60  # seconds for the whole notebook, as promised in its first cell


def test_tutorial_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the tutorial has no code cell"
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs before committing"


@pytest.fixture
def this_python_kernel(tmp_path, monkeypatch):
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (sdgmm tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    return "python3"


@pytest.mark.slow  # 37 s alone on the 2-core machine
def test_tutorial_runs(tmp_path, this_python_kernel):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import os, sys; print(os.path.realpath(sys.prefix))"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = NotebookClient(nb, kernel_name=this_python_kernel, timeout=CELL_TIMEOUT, startup_timeout=60,
                            resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    seconds = time.perf_counter() - start
    kernel_prefix = nb.cells[-1].outputs[0]["text"].strip()
    assert kernel_prefix == os.path.realpath(sys.prefix), f"the kernel ran another environment: {kernel_prefix}"
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert figures == 3, f"expected the tutorial's 3 figures, got {figures}"
    assert not any(workdir.iterdir()), "the tutorial should write no file"
    assert seconds < BUDGET, f"the tutorial took {seconds:.0f} s, more than the promised {BUDGET} s"
