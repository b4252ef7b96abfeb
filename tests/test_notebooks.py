"""The education notebooks (``notebooks/*.ipynb``): each runs top to bottom in a fresh ``python3`` kernel
(nbclient) from the repository root without a cell error and within its time budget, and each is
committed without outputs or execution counts, so outputs never enter version control.

The kernel gets ``MPLBACKEND=Agg`` (matplotlib draws off screen) and one torch thread. Notebooks
are found when the tests are collected, so a new notebook is tested without touching this file.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from notewave.paths import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
# Each notebook is meant to run in under a minute on 2 CPU cores; the budget leaves room for a
# machine shared with other jobs and for the kernel's start.
NOTEBOOK_SECONDS = 240
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _failing_cell(nb: nbformat.NotebookNode) -> str:
    """The first cell with an error output: its index, the start of its source and the error."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
                source = "\n".join(cell.source.splitlines()[:8])
                return f"cell {index}:\n{source}\n---\n{trace}"
    return "no cell holds an error output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_SECONDS
    client = NotebookClient(
        nb,
        kernel_name="python3",
        resources={"metadata": {"path": str(PROJECT_ROOT)}},
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),  # the notebook's budget
    )
    # One torch thread: the models decode step by step, and two threads on a busy 2-core machine
    # measured several times slower than one (the notebooks' pace then depends on the neighbours).
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    try:
        client.execute(env=env)
    except CellTimeoutError:
        pytest.fail(f"{path.name} ran past its {NOTEBOOK_SECONDS} s budget", pytrace=False)
    except CellExecutionError as exc:
        detail = _failing_cell(nb)
        if detail.startswith("no cell"):
            detail = _ANSI.sub("", str(exc))
        pytest.fail(f"{path.name}: {detail}", pytrace=False)
    took = time.monotonic() - start
    assert took < NOTEBOOK_SECONDS, f"{path.name} took {took:.0f} s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} hold outputs or execution counts; clear them before committing "
        "(Jupyter: Edit > Clear Outputs of All Cells)"
    )


def test_notebooks_are_found() -> None:
    assert NOTEBOOKS, f"no notebooks under {PROJECT_ROOT / 'notebooks'}"
