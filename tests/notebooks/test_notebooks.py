"""The notebooks in ``notebooks/``: stored without outputs, and each runs top to bottom.

Each notebook is executed in a fresh ``python3`` kernel whose working directory is the
test's temporary folder (the notebooks write their files there, never into the
repository), as a user would run it: a failing cell fails the test with the cell and its
traceback (nbclient's `CellExecutionError`). The kernel gets this checkout on its
``PYTHONPATH``, so that it (and every ``python -m tomogan_tf...`` / ``python -m
data_tools...`` the notebooks start) runs this repository's code whether or not the
package is installed, and matplotlib's inline backend, so that plots become ``image/png``
outputs even where ``MPLBACKEND`` says otherwise.

One test per notebook, so that pytest-xdist spreads them over its workers. Each takes
20-50 s on 2 CPU cores (the notebooks train for a few dozen iterations at most).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from helpers import ROOT

NOTEBOOKS = sorted((Path(ROOT) / "notebooks").glob("*.ipynb"))


def kernel_env() -> dict[str, str]:
    """The notebook kernel's environment: this checkout first on the path, inline plots."""
    paths = [ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }


def test_notebooks_exist():
    assert len(NOTEBOOKS) >= 5, f"expected the notebooks in {ROOT}/notebooks, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    with_outputs = [i for i, cell in enumerate(nb.cells) if cell.get("outputs")]
    counted = [i for i, cell in enumerate(nb.cells) if cell.get("execution_count") is not None]
    assert not with_outputs, f"{path.name}: cells {with_outputs} hold outputs; strip them"
    assert not counted, f"{path.name}: cells {counted} hold execution counts; strip them"
    assert nb.cells[0].cell_type == "markdown", f"{path.name} should open with its title"


@pytest.mark.cli
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path: Path, tmp_path: Path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=kernel_env())  # raises CellExecutionError on the first failing cell

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert images, f"{path.name} drew no plot"
    assert not [out for out in outputs if out.output_type == "error"]
    # Its files went to the working directory (the temporary folder), not the repository.
    assert any(tmp_path.iterdir()), f"{path.name} wrote nothing into its working directory"
