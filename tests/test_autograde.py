"""nbgrader grades the instructor's notebook as a submission with full points, and the
untouched student notebook with 0, finishing all the same."""
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from test_assignment import RELEASE, SOURCE, nbgrader


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A throw-away grading workspace: gradebook and folders in tmp, the assignment generated into it."""
    tmp = tmp_path_factory.mktemp("course")
    options = [f"--CourseDirectory.db_url=sqlite:///{tmp / 'gradebook.db'}",
               f"--CourseDirectory.release_directory={tmp / 'release'}",
               f"--CourseDirectory.submitted_directory={tmp / 'submitted'}",
               f"--CourseDirectory.autograded_directory={tmp / 'autograded'}",
               f"--CourseDirectory.feedback_directory={tmp / 'feedback'}"]
    nbgrader("generate_assignment", "cgan", "--force", *options)
    return tmp, options


def autograde(course, student, notebook):
    tmp, options = course
    target = tmp / "submitted" / student / "cgan" / "cgan.ipynb"
    target.parent.mkdir(parents=True)
    shutil.copy(notebook, target)
    nbgrader("autograde", "cgan", "--student", student, "--create", "--force", *options)
    with Gradebook(options[0].split("=", 1)[1]) as gradebook:
        submission = gradebook.find_submission_notebook("cgan", "cgan", student)
        return {g.name: (g.score, g.max_score, g.name.startswith("test_")) for g in submission.grades}


def test_solution_gets_every_automatic_point(course, real_data_dir):
    grades = autograde(course, "instructor", SOURCE)
    # nbgrader zeroes a test cell with any stderr output: the tests themselves must print none
    graded = nbformat.read(course[0] / "autograded" / "instructor" / "cgan" / "cgan.ipynb", as_version=4)
    for cell in graded.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
            assert not stderr, f"{cell.metadata['nbgrader']['grade_id']} wrote to stderr: {stderr}"
    automatic = {name: g for name, g in grades.items() if g[2]}
    assert len(automatic) == 9
    lost = {name: f"{score}/{max_score}" for name, (score, max_score, _) in automatic.items() if score != max_score}
    assert not lost, f"the solution lost points in {lost}"
    assert sum(g[1] for g in automatic.values()) == 28


def test_untouched_release_gets_zero_and_finishes(course, real_data_dir):
    grades = autograde(course, "untouched", RELEASE)
    automatic = {name: g for name, g in grades.items() if g[2]}
    assert len(automatic) == 9
    assert all(score == 0 for score, _, _ in automatic.values()), automatic
