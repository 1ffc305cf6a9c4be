"""Store the expected outputs that CI checks in the instructor notebooks.

    .venv/bin/python autograder/refresh_solution_outputs.py [solutions/cgan/cgan.ipynb ...]

Runs each notebook top to bottom on the short schedule, keeps the outputs of the cells
tagged ``nbval-check-output`` (nbval compares them in CI) and clears every other output,
so the committed source notebooks stay small and free of volatile numbers.
"""
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CHECKED = "nbval-check-output"


def refresh(path):
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:  # checkpoints and plots go here, not into solutions/
        os.environ.update(CGAN_SCHEDULE="short", CGAN_CHECKPOINT_DIR=scratch)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": scratch}}).execute()
    nb.metadata.pop("widgets", None)  # the progress bar's widget state: volatile, and not for students
    kept = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if CHECKED in cell.metadata.get("tags", []):
            kept += 1
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    print(f"{path.relative_to(ROOT)}: kept the outputs of {kept} checked cells")


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(map(str, (ROOT / "solutions").glob("*/*.ipynb"))):
        refresh(Path(name).resolve())
