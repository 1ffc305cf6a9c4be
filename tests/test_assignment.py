"""The CGAN assignment: the committed student notebook is what nbgrader makes from the
instructor's, it leaks nothing, and run untouched it stops cleanly at the first unfinished part."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "cgan" / "cgan.ipynb"
RELEASE = ROOT / "assignments" / "cgan" / "cgan.ipynb"
VOLATILE_METADATA = {"execution", "collapsed", "scrolled", "jupyter"}


def nbgrader(*args, cwd=ROOT):
    """Run the venv's nbgrader from the course root; fail with its output if it fails."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def comparable(path):
    nb = nbformat.read(path, as_version=4)
    cells = [(c.cell_type, c.source, {k: v for k, v in c.metadata.items() if k not in VOLATILE_METADATA})
             for c in nb.cells]
    return nb.metadata.get("kernelspec"), cells


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """The release notebook as nbgrader makes it now from solutions/, in a temporary place."""
    tmp = tmp_path_factory.mktemp("release")
    nbgrader("generate_assignment", "cgan", "--force",
             f"--CourseDirectory.release_directory={tmp / 'release'}",
             f"--CourseDirectory.db_url=sqlite:///{tmp / 'gradebook.db'}")
    return tmp / "release" / "cgan" / "cgan.ipynb"


def test_committed_release_is_what_nbgrader_generates(regenerated):
    expected_kernel, expected = comparable(regenerated)
    kernel, committed = comparable(RELEASE)
    assert kernel == expected_kernel
    assert len(committed) == len(expected), "assignments/ is out of date: run `make release` and commit it"
    for i, (have, want) in enumerate(zip(committed, expected)):
        assert have == want, f"cell {i} of {RELEASE} differs from the generated release: run `make release` and commit it"


def solution_and_hidden_lines(nb):
    """Substantial lines found only inside BEGIN/END SOLUTION or BEGIN/END HIDDEN TESTS regions."""
    secret, public = set(), set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if re.search(r"BEGIN (SOLUTION|HIDDEN TESTS)", line):
                inside = True
            elif re.search(r"END (SOLUTION|HIDDEN TESTS)", line):
                inside = False
            elif len(line.strip()) > 25:
                (secret if inside else public).add(line.strip())
    return secret - public


def test_release_contains_no_solution_or_hidden_test():
    source = nbformat.read(SOURCE, as_version=4)
    secret = solution_and_hidden_lines(source)
    assert len(secret) > 50, "the source notebook should have solutions and hidden tests"
    for path in (ROOT / "assignments").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not re.search(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS", text), path
            release_lines = {line.strip() for cell in nbformat.reads(text, as_version=4).cells
                             for line in cell.source.splitlines()} if path.suffix == ".ipynb" else set()
            leaked = secret & release_lines
            assert not leaked, f"{path} contains solution/hidden-test lines: {sorted(leaked)[:3]}"


def test_release_has_the_course_skeleton():
    nb = nbformat.read(RELEASE, as_version=4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    for grade_id, regions in (("generator", 2), ("discriminator", 2), ("train_step", 2), ("generate_latent_points", 1)):
        source = by_id[grade_id].source
        assert source.count("### START CODE HERE") == regions and source.count("### END CODE HERE") == regions
        assert source.count("raise NotImplementedError(") == regions
    assert "## TODO: There are many ways to implement the model" in by_id["generator"].source
    assert "## TODO: There are many ways to implement the discriminator" in by_id["discriminator"].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "the release must have no outputs"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, \
        f"the release carries notebook metadata from a run: {sorted(nb.metadata)}"


def test_untouched_release_stops_cleanly_at_the_first_unfinished_part(tmp_path, real_data_dir):
    nb = nbformat.read(RELEASE, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    with pytest.raises(CellExecutionError) as err:
        client.execute()
    assert time.perf_counter() - start < 120
    assert "NotImplementedError" in str(err.value) and "START CODE HERE" in str(err.value)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and failed[0].metadata["nbgrader"]["grade_id"] == "test_generator"
