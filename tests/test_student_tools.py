"""The student's tools: `python -m cgan_lib.validate` and the student mode's configuration
(`python -m cgan_lib.lab`), and a clean install of the package they come in.

The validator runs real notebooks (the release filled with the solution, untouched, and with
one bug); tests/test_browser.py drives the student mode in a real browser.
"""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from jupyter_server.serverapp import ServerApp
from jupyterlab_server.config import get_static_page_config

from autograder.testdata.sample_class import RELEASE, solved
from autograder.testdata.variants import BUGS
from cgan_lib import lab, validate

ROOT = Path(__file__).resolve().parent.parent
BUG = "generator returns (N, 28, 28) (seed 1)"  # fails test_generator fast; the training loop then stops
VALIDATE_TIMEOUT = 600  # seconds for one run of the notebook on 2 busy cores
PACKAGE_FILES = ["pyproject.toml", "README.md", "cgan_lib"]  # what `pip install .` builds from


def run_validate(notebook, *args):
    return subprocess.run([sys.executable, "-m", "cgan_lib.validate", str(notebook), *args], cwd=notebook.parent,
                          capture_output=True, text=True, timeout=VALIDATE_TIMEOUT)


def answer_cells(notebook):
    return [cell.metadata.nbgrader["grade_id"] for cell in notebook.cells
            if cell.metadata.get("nbgrader", {}).get("solution")]


@pytest.fixture
def student_folder(tmp_path, real_data_dir, monkeypatch):
    """A student's folder; CGAN_CHECKPOINT_DIR unset, as on a student's machine."""
    monkeypatch.delenv("CGAN_CHECKPOINT_DIR", raising=False)
    return tmp_path


# --- python -m cgan_lib.validate ---------------------------------------------------------

def test_validate_passes_the_solution_and_leaves_the_students_checkpoints_alone(student_folder):
    notebook = student_folder / "cgan.ipynb"
    nbformat.write(solved(), notebook)
    (student_folder / "checkpoints").mkdir()
    (student_folder / "checkpoints" / "mine.pth").write_bytes(b"a student's own checkpoint")
    before = notebook.read_bytes()
    done = run_validate(notebook)
    assert done.returncode == validate.EXIT_READY, done.stdout + done.stderr
    assert "Ready to hand in" in done.stdout
    assert [p.name for p in (student_folder / "checkpoints").iterdir()] == ["mine.pth"]
    assert notebook.read_bytes() == before, "validating must not change the notebook"


def test_validate_names_every_unanswered_cell_of_the_untouched_release(student_folder):
    notebook = student_folder / "cgan.ipynb"
    shutil.copy(RELEASE, notebook)
    done = run_validate(notebook, "--json")
    assert done.returncode == validate.EXIT_PROBLEMS, done.stdout + done.stderr
    problems = json.loads(done.stdout)["problems"]
    unanswered = [p["cell"] for p in problems if p["kind"] == "template"]
    assert unanswered == answer_cells(nbformat.read(RELEASE, as_version=4))
    assert len(unanswered) >= 7  # 4 pieces of code, 3 written answers
    assert {p["cell"] for p in problems if p["kind"] == "failed"} >= {"test_generator", "test_discriminator",
                                                                     "test_train_step", "test_generate_latent_points"}
    text = validate.report(notebook, [validate.Problem(**p) for p in problems])
    for name in unanswered:
        assert f'cell "{name}"' in text


def test_validate_names_the_failing_test_and_shows_its_message(student_folder):
    edits, test, phrase = BUGS[BUG]
    notebook = student_folder / "cgan.ipynb"
    nbformat.write(solved(edits), notebook)
    done = run_validate(notebook)
    assert done.returncode == validate.EXIT_PROBLEMS, done.stdout + done.stderr
    assert f'cell "{test}"' in done.stdout and "the test failed" in done.stdout
    assert phrase in done.stdout
    assert "still the template" not in done.stdout


def test_validate_without_a_notebook_says_where_it_looked(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cgan_lib.validate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == validate.EXIT_ERROR
    assert "no assignment notebook" in done.stderr and "cgan.ipynb" in done.stderr


def test_validate_says_when_a_file_is_no_notebook(tmp_path):
    broken = tmp_path / "cgan.ipynb"
    broken.write_text('{"cells": [', encoding="utf-8")
    done = run_validate(broken)
    assert done.returncode == validate.EXIT_ERROR
    assert "cannot read" in done.stderr and "cgan.ipynb" in done.stderr


def test_template_cells_are_exactly_the_unfinished_answers():
    release = nbformat.read(RELEASE, as_version=4)
    assert [p.cell for p in validate.template_cells(release)] == answer_cells(release)
    assert validate.template_cells(solved()) == []
    half_done = solved()
    generator = next(c for c in half_done.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "generator")
    generator.source += '\n    raise NotImplementedError("Not done yet")'
    assert [p.cell for p in validate.template_cells(half_done)] == ["generator"]


def test_find_notebook_prefers_the_assignment_in_this_folder(tmp_path):
    nested = tmp_path / "cgan" / "cgan.ipynb"
    nested.parent.mkdir()
    nested.write_text("{}")
    assert validate.find_notebook(folder=tmp_path) == nested.resolve()
    (tmp_path / "cgan.ipynb").write_text("{}")
    assert validate.find_notebook(folder=tmp_path) == (tmp_path / "cgan.ipynb").resolve()
    with pytest.raises(validate.NotValidated, match="no notebook at"):
        validate.find_notebook("other.ipynb", folder=tmp_path)


# --- python -m cgan_lib.lab ---------------------------------------------------------------

@pytest.mark.parametrize("with_assignment_list", [False, True])
def test_student_mode_config_turns_off_instructor_tools(tmp_path, monkeypatch, with_assignment_list):
    """What Jupyter reads from the student mode's config folder, with the venv's own config under it."""
    lab.write_config(tmp_path, with_assignment_list)
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path))
    disabled = {name for name, off in get_static_page_config(level="all")["disabledExtensions"].items() if off}
    assert disabled >= {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                        "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:menu",
                        "@jupyterlab/apputils-extension:announcements"}
    assert ("@jupyter/nbgrader:assignment-list" in disabled) != with_assignment_list
    assert "@jupyter/nbgrader:validate-assignment" not in disabled
    server = ServerApp()
    server.find_server_extensions()
    enabled = server.jpserver_extensions
    assert enabled["jupyterlab"] and enabled["cgan_lib.lab"]
    assert not enabled["nbgrader.server_extensions.formgrader"]
    assert not enabled["nbgrader.server_extensions.course_list"]
    assert not enabled["nbgrader.server_extensions.validate_assignment"]  # cgan_lib.lab answers the button
    assert enabled["nbgrader.server_extensions.assignment_list"] == with_assignment_list


def test_plain_jupyter_keeps_nbgrader_s_instructor_tools():
    server = ServerApp()
    server.find_server_extensions()
    assert server.jpserver_extensions.get("nbgrader.server_extensions.formgrader")
    assert "cgan_lib.lab" not in server.jpserver_extensions
    assert "@jupyter/nbgrader:formgrader" not in get_static_page_config(level="all").get("disabledExtensions", {})


def test_student_mode_without_a_notebook_says_where_it_looked(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cgan_lib.lab"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no assignment notebook" in done.stderr and "python -m cgan_lib.lab path/to/cgan.ipynb" in done.stderr


def test_validate_button_answer_has_nbgrader_s_shape():
    assert lab.validation_answer({"notebook": "cgan.ipynb", "problems": []}) == {"success": True, "value": {}}
    source = "# Tests of the Generator\n# (more)\ncheck_generator(Generator, opt)\nprint('done')"
    problem = validate.Problem("failed", "test_generator", 15, "the test failed:\nTestFailed: <shape>", source)
    answer = lab.validation_answer({"notebook": "cgan.ipynb", "problems": [problem.__dict__]})
    [failed] = answer["value"]["failed"]
    assert answer["success"] and failed["source"] == "# Tests of the Generator\n# (more)\ncheck_generator(Generator, opt)\n..."
    assert 'cell "test_generator"' in failed["error"] and "&lt;shape&gt;" in failed["error"]  # shown as HTML
    assert lab.validation_answer({"error": "no notebook"}) == {"success": False, "value": "no notebook"}


# --- installing the package ---------------------------------------------------------------

@pytest.mark.parametrize("hook", ["build_wheel", "build_editable"])
def test_package_builds_without_warnings_and_holds_all_of_cgan_lib(tmp_path, hook):
    """What `pip install .` / `pip install -e .` build, with the setuptools of the venv."""
    source = tmp_path / "source"
    source.mkdir()
    for name in PACKAGE_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-W", "always", "-c",
                            f"from setuptools import build_meta; print(build_meta.{hook}({str(tmp_path)!r}))"],
                           cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    output = built.stdout + built.stderr
    assert "Warning" not in output and "would be ignored" not in output, output
    if hook == "build_wheel":
        names = zipfile.ZipFile(tmp_path / built.stdout.split()[-1]).namelist()
        expected = [p.relative_to(ROOT).as_posix() for p in (ROOT / "cgan_lib").rglob("*")
                    if p.suffix in (".py", ".pt") and "__pycache__" not in p.parts]
        assert sorted(set(expected) - set(names)) == []
