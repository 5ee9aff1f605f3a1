"""Record the expected output of the check cells (``# NBVAL_CHECK_OUTPUT``) in the notebooks.

Usage: python scripts/record_checks.py notebooks/01_models.ipynb [...]

Each notebook is executed with its own (smoke) defaults; only the outputs of its check cells are
copied back into the source notebook, for ``pytest --nbval-lax`` to compare. Every other cell
stays without outputs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

MARK = "# NBVAL_CHECK_OUTPUT"


def record(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        executed = papermill.execute_notebook(str(path), str(Path(tmp) / path.name),
                                              kernel_name="python3", cwd=str(path.parent),
                                              progress_bar=False)
    source = nbformat.read(path, as_version=4)
    outputs = {cell.get("id"): cell.get("outputs", []) for cell in executed.cells}
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        keep = cell.source.startswith(MARK)
        cell.outputs = [o for o in outputs.get(cell.get("id"), []) if o.get("name") == "stdout"] \
            if keep else []
        # nbval refuses stored outputs of a cell that never ran: give check cells a count.
        cell.execution_count = 1 if keep else None
    nbformat.write(source, path)
    print(f"recorded the check outputs of {path}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        record(Path(arg))
