"""The second assignment through the same pipeline: `python -m autograder grade netviz` on its sample class.

Nothing in autograder/ is specific to an assignment but what autograder/assignments/netviz.toml
declares; this grades autograder/testdata/netviz_class.py through the CLI (2 workers, the
sandbox when the machine has it) and checks every test cell's score, every problem line and
every feedback page.
"""
import csv
import os

import nbformat
import pytest

from autograder.isolation import launch
from autograder.testdata import netviz_class
from test_pipeline import cli

POINTS = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
          for c in nbformat.read(netviz_class.RELEASE, as_version=4).cells
          if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory, real_data_dir):
    reason = launch.unavailable_reason()
    if reason and os.environ.get("CGAN_REQUIRE_SANDBOX"):
        pytest.fail(f"the sandbox is required here (CGAN_REQUIRE_SANDBOX) but unavailable: {reason}")
    tmp = tmp_path_factory.mktemp("netviz")
    cases = netviz_class.write(tmp / "class")
    result = cli("grade", "netviz", str(tmp / "class"), "--workspace", str(tmp / "ws"), "--workers", "2",
                 *(["--no-sandbox"] if reason else []))
    return tmp / "ws", result, cases


def test_every_netviz_submission_gets_its_expected_scores_and_problems(graded):
    workspace, result, cases = graded
    assert result.returncode == 1, result.stderr[-3000:]
    rows = {row["student"]: row for row in read_csv(workspace / "grades-netviz.csv")}
    assert set(rows) == set(cases)
    wrong = [f"{student}: {test} scored {rows[student][test]!r}"
             for student, case in cases.items() for test in POINTS
             if float(rows[student][test] or "nan") != (0 if "all" in case.fails or test in case.fails else POINTS[test])]
    assert not wrong, "\n".join(wrong)
    found = {}
    for row in read_csv(workspace / "problems-netviz.csv"):
        found.setdefault(row["student"], set()).add(row["problem"])
    wrong = [f"{student}: reported {sorted(found.get(student, set()))}, expected {sorted(case.problems)}"
             for student, case in cases.items()
             if not case.problems <= found.get(student, set()) <= case.problems | case.also]
    assert not wrong, "\n".join(wrong)


def test_every_netviz_student_gets_a_feedback_page(graded):
    workspace, _, cases = graded
    for student in cases:
        page = workspace / "feedback" / student / "netviz" / "netviz.html"
        assert page.exists(), f"no feedback page for {student}"
        assert "BEGIN HIDDEN TESTS" not in page.read_text()
