"""The instructor's pipeline, end to end through its CLI, on the bundled sample class.

One grading run of the whole class (autograder/testdata/sample_class.py: correct, buggy, broken,
hostile and attacking submissions) with 2 workers and the sandbox; then every expected
score, problem line, feedback property and attack outcome is checked against it.
"""
import csv
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.isolation import sandbox
from autograder.testdata import sample_class
from autograder.testdata.sample_class import MARKERS, RELEASE, SOLUTION, TESTS

REPO = Path(__file__).resolve().parent.parent
LIMITS = ["--cell-timeout", str(sample_class.LIMITS.cell_timeout),
          "--notebook-timeout", str(sample_class.LIMITS.notebook_timeout), "--memory-gb", str(sample_class.LIMITS.memory_gb)]
POINTS = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
          for c in nbformat.read(RELEASE, as_version=4).cells if c.metadata.get("nbgrader", {}).get("grade")}


def cli(*args, env=None):
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True)


def digest(folder):
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def outputs_of(notebook):
    """All the text a notebook's cells printed (not their source, which names the markers too)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) + str(o.get("data", ""))
                     for c in cells if c.cell_type == "code" for o in c.outputs)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sandboxed():
    reason = sandbox.unavailable_reason()
    if reason and os.environ.get("CGAN_REQUIRE_SANDBOX"):
        pytest.fail(f"the sandbox is required here (CGAN_REQUIRE_SANDBOX) but unavailable: {reason}")
    return reason is None


@pytest.fixture(scope="module")
def graded(tmp_path_factory, real_data_dir, sandboxed):
    """The sample class, graded once: (class folder, workspace, CLI result, cases, files before, listener)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    listener = socket.create_server(("127.0.0.1", 0))  # the network attack tries to reach it
    listener.setblocking(False)
    cases = sample_class.write(tmp / "class", sandbox=sandboxed, listen_port=listener.getsockname()[1])
    before = digest(tmp / "class")
    solution_before = SOLUTION.read_bytes()
    options = [] if sandboxed else ["--no-sandbox"]
    result = cli("grade", "cgan", str(tmp / "class"), "--workspace", str(tmp / "ws"), "--workers", "2", *LIMITS, *options)
    assert SOLUTION.read_bytes() == solution_before, "grading changed the instructor's solution notebook"
    yield tmp / "class", tmp / "ws", result, cases, before, listener
    listener.close()


def test_grading_finishes_and_says_that_some_submissions_need_attention(graded):
    _, workspace, result, cases, _, _ = graded
    assert result.returncode == 1, f"expected exit status 1 (problems found), got {result.returncode}:\n{result.stderr[-3000:]}"
    for student in cases:
        assert re.search(rf"^{student}\s", result.stdout, re.M), f"{student} missing from the summary table"
    assert (workspace / "grades-cgan.csv").exists() and (workspace / "problems-cgan.csv").exists()


def test_every_submission_gets_its_expected_scores(graded):
    _, workspace, _, cases, _, _ = graded
    rows = {row["student"]: row for row in read_csv(workspace / "grades-cgan.csv")}
    assert set(rows) == set(cases), "grades.csv must have exactly one row per student"
    wrong = []
    for student, case in cases.items():
        for test in TESTS:
            expected = 0 if "all" in case.fails or test in case.fails else POINTS[test]
            if float(rows[student][test] or "nan") != expected:
                wrong.append(f"{student}: {test} scored {rows[student][test]!r}, expected {expected}")
        total = sum(float(rows[student][t]) for t in TESTS)
        assert float(rows[student]["score"]) >= total
    assert not wrong, "\n".join(wrong)


def test_every_problem_is_reported_and_nothing_else(graded):
    _, workspace, _, cases, _, _ = graded
    found = {}
    for row in read_csv(workspace / "problems-cgan.csv"):
        found.setdefault(row["student"], set()).add(row["problem"])
        assert row["detail"] and row["submitted_file"], row
    wrong = [f"{student}: reported {sorted(found.get(student, set()))}, expected {sorted(case.problems)}"
             + (f" (and maybe {sorted(case.also)})" if case.also else "")
             for student, case in cases.items()
             if not case.problems <= found.get(student, set()) <= case.problems | case.also]
    assert not wrong, "\n".join(wrong)


def test_no_submitted_file_is_altered_or_lost(graded):
    folder, workspace, _, cases, before, _ = graded
    assert digest(folder) == before, "grading changed the submitted files"
    for relative, (sha, _) in before.items():
        student, name = relative.split("/")[0], Path(relative).name
        if cases[student].layout == "symlink":
            assert not (workspace / "originals" / student).exists(), "a linked submission was read"
            continue
        copy = workspace / "originals" / student / "cgan" / name
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha, f"{copy} is not a byte-for-byte copy"


def test_the_gradebook_has_one_submission_per_student(graded):
    _, workspace, _, cases, _, _ = graded
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gradebook:
        assert sorted(s.id for s in gradebook.students) == sorted(cases)
        assert len(gradebook.find_assignment("cgan").submissions) == len(cases)


def test_feedback_shows_results_and_messages_but_never_hidden_tests(graded):
    _, workspace, _, cases, _, _ = graded
    hidden = [line.strip() for cell in nbformat.read(SOLUTION, as_version=4).cells
              for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S)
              for line in block.splitlines() if len(line.strip()) >= 16]
    release_text = RELEASE.read_text()
    hidden = [line for line in hidden if line not in release_text]
    assert len(hidden) > 50
    for student in cases:
        page = (workspace / "feedback" / student / "cgan" / "cgan.html").read_text()
        leaked = [line for line in hidden if line in page or line.replace('"', "&quot;") in page]
        assert not leaked, f"{student}'s feedback shows hidden test code: {leaked[:3]}"
    page = (workspace / "feedback" / "bug_no_tanh" / "cgan" / "cgan.html").read_text()
    assert "nn.Tanh()" in page and "TestFailed" in page, "a failing hidden test's message must be in the feedback"
    assert "Hidden tests: their code is not shown" in page
    assert re.search(r"Score: 25(\.0)? / 34", page), "the feedback shows the total"
    squeezed = (workspace / "feedback" / "bug_squeezed_discriminator" / "cgan" / "cgan.html").read_text()
    assert "Did you call .squeeze()?" in squeezed
    unreadable = (workspace / "feedback" / "invalid_json" / "cgan" / "cgan.html").read_text()
    assert "not valid JSON" in unreadable and "0 / 34" in unreadable
    linked = (workspace / "feedback" / "link_to_the_solution" / "cgan" / "cgan.html").read_text()
    assert "0 / 34" in linked and "BEGIN SOLUTION" not in linked and "label_embedding(labels)" not in linked


def test_no_hidden_test_ever_reaches_the_notebook_kernel(graded):
    """Test cells are blanked before the notebook runs: its history holds no test, hidden or visible."""
    _, workspace, _, _, _, _ = graded
    outputs = outputs_of(workspace / "autograded" / "attack_read_history" / "cgan" / "cgan.ipynb")
    assert "history read:" in outputs and "HISTORY:" not in outputs, outputs[-2000:]


def test_the_output_of_a_flood_is_bounded_everywhere(graded):
    _, workspace, _, _, _, _ = graded
    for student in ("display_flood", "output_flood"):
        page = workspace / "feedback" / student / "cgan" / "cgan.html"
        executed = workspace / "autograded" / student / "cgan" / "cgan.ipynb"
        assert page.stat().st_size < 3_000_000 and executed.stat().st_size < 3_000_000, student


def test_a_submission_that_timed_out_beside_another_was_graded_again_alone(graded):
    """With two workers, a time limit hit may be the neighbour's fault: such a submission gets a second run, alone."""
    _, workspace, _, _, _, _ = graded
    lines = [json.loads(line) for line in (workspace / "journal-cgan.jsonl").read_text().splitlines()]
    assert sum(line["key"] == "too_slow" for line in lines) == 2
    assert sum(line["key"] == "correct_solution" for line in lines) == 1

def test_attacks_on_the_grader_get_nothing(graded, sandboxed):
    """Reads, writes and connections fail; a full disk, a memfd hoard and a flood of stderr stay inside."""
    if not sandboxed:
        pytest.skip("no sandbox here: the attacks were left out of the class")
    _, workspace, _, cases, _, listener = graded
    for student in [s for s in cases if s.startswith("attack_")]:
        executed = workspace / "autograded" / student / "cgan" / "cgan.ipynb"
        if executed.exists():
            outputs = outputs_of(executed)
            got = [m for m in MARKERS if m in outputs]
            assert not got, f"{student}'s code got through the sandbox: {got}"
            if student in ("attack_read_files", "attack_write_files", "attack_network"):
                assert "attack finished" in outputs, f"{student}'s attack did not run at all"
    for path in workspace.rglob("*"):
        assert path.name != "planted.txt", f"an attack wrote {path}"
        if path.suffix in (".csv", ".db"):
            assert b"PWNED" not in path.read_bytes(), f"an attack wrote into {path}"
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected to the grader's machine
    disk = outputs_of(workspace / "autograded" / "attack_fill_the_disk" / "cgan" / "cgan.ipynb")
    assert "disk full after" in disk and "no more files after" in disk, disk[-1000:]
    assert (workspace / "logs" / "cgan" / "attack_stderr_flood.log").stat().st_size < 2_000_000


def test_without_the_sandbox_the_same_attack_succeeds(tmp_path, real_data_dir, sandboxed):
    """The attack test above can fail: unsandboxed, the read attack finds the gradebook."""
    if not sandboxed:
        pytest.skip("no sandbox here")
    sample_class.write(tmp_path / "all")
    shutil.copytree(tmp_path / "all" / "attack_read_files", tmp_path / "class" / "attack_read_files")
    result = cli("grade", "cgan", str(tmp_path / "class"), "--workspace", str(tmp_path / "ws"), "--no-sandbox",
                 "--workers", "1", *LIMITS)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    outputs = outputs_of(tmp_path / "ws" / "autograded" / "attack_read_files" / "cgan" / "cgan.ipynb")
    assert "LEAK:" in outputs and "gradebook.db" in outputs


def test_regrading_the_same_zip_changes_nothing(tmp_path, real_data_dir, sandboxed):
    """An LMS zip (Canvas file names) graded twice: same students, same scores, no duplicates."""
    folder = tmp_path / "class"
    written = sample_class.write(folder, sandbox=False)
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for n, student in enumerate(["correctsolution", "invalidjson", "bugnotanh"]):
            case = {"correctsolution": "correct_solution", "invalidjson": "invalid_json", "bugnotanh": "bug_no_tanh"}
            source = next((folder / case[student]).rglob("*.ipynb"))
            z.write(source, f"{student}_LATE_{1000 + n}_{2000 + n}_cgan.ipynb" if n == 1 else
                    f"{student}_{1000 + n}_{2000 + n}_cgan.ipynb")
        z.writestr("../escape_9_9_cgan.ipynb", "{}")  # refused; the class is graded all the same
    assert written
    options = [] if sandboxed else ["--no-sandbox"]
    runs = []
    for _ in range(2):
        result = cli("grade", "cgan", str(archive), "--workspace", str(tmp_path / "ws"), *LIMITS, *options)
        assert result.returncode == 1, result.stderr[-3000:]
        runs.append(read_csv(tmp_path / "ws" / "grades-cgan.csv"))
    assert runs[0] == runs[1]
    assert {row["student"]: row["score"] for row in runs[0]} == \
        {"bugnotanh_1002": "25.0", "correctsolution_1000": "28.0", "invalidjson_1001": "0.0"}
    with Gradebook(f"sqlite:///{tmp_path / 'ws' / 'gradebook.db'}") as gradebook:
        assert len(gradebook.students) == 3 and len(gradebook.find_assignment("cgan").submissions) == 3
    report = cli("report", "cgan", "--workspace", str(tmp_path / "ws"))
    assert report.returncode == 1 and read_csv(tmp_path / "ws" / "grades-cgan.csv") == runs[0]
    refused = [row for row in read_csv(tmp_path / "ws" / "problems-cgan.csv") if row["student"] == "(class)"]
    assert [row["problem"] for row in refused] == ["unsafe zip entry"] and "../escape" in refused[0]["detail"]


def test_asking_for_an_unavailable_sandbox_is_a_clear_error(tmp_path):
    (tmp_path / "class" / "someone").mkdir(parents=True)
    (tmp_path / "class" / "someone" / "cgan.ipynb").write_text("{}")
    result = cli("grade", "cgan", str(tmp_path / "class"), "--workspace", str(tmp_path / "ws"),
                 env={"PATH": str(tmp_path)})  # no bwrap on this PATH
    assert result.returncode == 2
    assert "bubblewrap" in result.stderr and "--no-sandbox" in result.stderr and "Traceback" not in result.stderr
