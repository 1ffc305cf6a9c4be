"""autograder.intake.lms finds one notebook per student in whatever the instructor downloaded
(a folder per student, nbgrader's submitted/ layout, a zip of either, an LMS zip), says what was
odd about it, refuses archives that would write outside the workspace, and never touches the input."""
import os
import zipfile

import pytest

from autograder.intake.lms import Submission, find_submissions, student_id

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
OLD, NEW = 1_600_000_000, 1_700_000_000  # mtimes: NEW is the later one


def write(path, content=NOTEBOOK, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def make_zip(zip_path, entries):
    """A zip holding {name in the archive: bytes}."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return zip_path


def snapshot(path):
    """{file: (bytes, mtime_ns)} for every file under `path` (or of `path` itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def by_student(submissions):
    return {s.student: s for s in submissions}


def kinds(submission):
    return [kind for kind, _ in submission.problems]


# --------------------------------------------------------------------------- student_id
@pytest.mark.parametrize("name, expected", [
    ("jane", "jane"),
    ("Jane", "jane"),
    ("Jane Doe", "jane_doe"),
    ("  Jane   Doe  ", "jane_doe"),
    ("jane.doe-2", "jane.doe-2"),
    ("Jöhn/O'Neil", "j_hn_o_neil"),
    ("Jane Doe_123456_assignsubmission_file_", "jane_doe"),
    ("Jane Doe_123456_assignsubmission_onlinetext_", "jane_doe"),
    ("doejane", "doejane"),
    (".hidden.", "hidden"),
])
def test_student_id_is_a_lowercase_slug_and_drops_moodle_suffix(name, expected):
    assert student_id(name) == expected, f"student_id({name!r}) should be {expected!r}"


@pytest.mark.parametrize("name", ["", "   ", "...", "__", "!!!"])
def test_student_id_of_a_name_with_nothing_usable_is_unnamed(name):
    assert student_id(name) == "unnamed", f"student_id({name!r}) should fall back to 'unnamed'"


# --------------------------------------------------------------------------- folders
def test_folder_per_student_and_nbgrader_layout_are_both_found(tmp_path):
    classroom = tmp_path / "class"
    jane = write(classroom / "jane" / "cgan.ipynb")
    john = write(classroom / "John Smith" / "cgan" / "cgan.ipynb")
    found = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert [s.student for s in found] == ["jane", "john_smith"], "one submission per student, sorted by id"
    students = by_student(found)
    assert students["jane"].notebook == jane, "<student>/cgan.ipynb is the notebook graded"
    assert students["john_smith"].notebook == john, "<student>/cgan/cgan.ipynb (nbgrader layout) is graded"
    assert all(isinstance(s, Submission) and s.problems == [] for s in found), "nothing odd: no problems noted"
    assert students["jane"].origin == str(classroom / "jane"), "origin names the student's folder"


def test_student_folder_without_a_notebook_is_reported_not_skipped(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "jane" / "cgan.ipynb")
    write(classroom / "john" / "cgan.py", b"print('not a notebook')")
    john = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["john"]
    assert john.notebook is None, "a student without a notebook still gets a Submission, with notebook None"
    assert kinds(john) == ["no notebook"], "the missing notebook is noted as a 'no notebook' problem"
    assert "cgan.py" in john.problems[0][1], "the problem lists what the student did hand in"


def test_empty_student_folder_says_it_found_nothing(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "jane" / "cgan.ipynb")
    (classroom / "john").mkdir()
    john = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["john"]
    assert john.notebook is None
    assert john.problems == [("no notebook", "no .ipynb file in john/ (found: nothing)")]


def test_notebook_named_after_the_assignment_wins_over_others(tmp_path):
    classroom = tmp_path / "class"
    graded = write(classroom / "jane" / "cgan.ipynb", mtime=OLD)
    write(classroom / "jane" / "scratch.ipynb", mtime=NEW)
    jane = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["jane"]
    assert jane.notebook == graded, "cgan.ipynb is graded even when another notebook is newer"
    assert jane.problems == [], "the choice was obvious: no problem noted"


def test_without_the_assignment_notebook_the_newest_is_graded_and_noted(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "jane" / "b_old.ipynb", mtime=OLD)
    newest = write(classroom / "jane" / "a_new.ipynb", mtime=NEW)
    jane = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["jane"]
    assert jane.notebook == newest, "with no cgan.ipynb, the newest notebook is graded (not the first by name)"
    assert kinds(jane) == ["several notebooks"], "the guess is noted as a 'several notebooks' problem"
    assert "a_new.ipynb" in jane.problems[0][1] and "b_old.ipynb" in jane.problems[0][1]


def test_a_single_notebook_with_another_name_is_graded_without_a_problem(tmp_path):
    classroom = tmp_path / "class"
    only = write(classroom / "jane" / "CGAN lab (1).ipynb")
    jane = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["jane"]
    assert jane.notebook == only and jane.problems == []


def test_checkpoints_and_hidden_notebooks_are_ignored(tmp_path):
    classroom = tmp_path / "class"
    graded = write(classroom / "jane" / "cgan.ipynb", mtime=OLD)
    write(classroom / "jane" / ".ipynb_checkpoints" / "cgan-checkpoint.ipynb", mtime=NEW)
    write(classroom / "jane" / ".~cgan.ipynb", mtime=NEW)
    write(classroom / "john" / ".ipynb_checkpoints" / "cgan-checkpoint.ipynb")
    write(classroom / ".ipynb_checkpoints" / "x-checkpoint.ipynb")
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"jane", "john"}, "a hidden folder of the class folder is not a student"
    assert students["jane"].notebook == graded and students["jane"].problems == [], \
        ".ipynb_checkpoints and hidden files do not count as extra notebooks"
    assert students["john"].notebook is None, "a checkpoint alone is not a submission"
    assert kinds(students["john"]) == ["no notebook"]


def test_flat_lms_files_in_a_folder_are_named_by_their_first_part(tmp_path):
    classroom = tmp_path / "class"
    late = write(classroom / "doejane_LATE_123_456_cgan.ipynb")
    smith = write(classroom / "smithjohn_124_457_cgan.ipynb")
    write(classroom / "readme.txt", b"not a submission")
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"doejane", "smithjohn"}, "files other than .ipynb are not submissions"
    assert students["doejane"].notebook == late and students["smithjohn"].notebook == smith
    assert students["doejane"].problems == []


@pytest.mark.parametrize("newer_name, older_name", [
    ("doejane_LATE_123_999_cgan.ipynb", "doejane_123_456_cgan.ipynb"),
    ("doejane_123_456_cgan.ipynb", "doejane_LATE_123_999_cgan.ipynb"),
])
def test_two_files_for_one_student_keep_the_newer(tmp_path, newer_name, older_name):
    classroom = tmp_path / "class"
    newer = write(classroom / newer_name, mtime=NEW)
    older = write(classroom / older_name, mtime=OLD)
    found = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert len(found) == 1, "two files of one student make one submission"
    assert found[0].student == "doejane"
    assert found[0].notebook == newer, "the newer file is graded, whichever comes first by name"
    assert kinds(found[0]) == ["several submissions"], "the discarded file is noted"
    assert str(newer) in found[0].problems[0][1] and str(older) in found[0].problems[0][1]


def test_a_folder_and_a_flat_file_of_one_student_keep_the_newer(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "doejane" / "cgan.ipynb", mtime=OLD)
    newer = write(classroom / "doejane_1_2_cgan.ipynb", mtime=NEW)
    found = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert [s.notebook for s in found] == [newer]
    assert kinds(found[0]) == ["several submissions"]


# --------------------------------------------------------------------------- zips
def test_zip_of_the_class_folder_is_extracted_and_read_like_the_folder(tmp_path):
    archive = make_zip(tmp_path / "class.zip", {
        "class/jane/cgan.ipynb": NOTEBOOK,
        "class/john/cgan/cgan.ipynb": NOTEBOOK,
        "__MACOSX/class/jane/._cgan.ipynb": b"resource fork",
    })
    unpack = tmp_path / "unpack"
    found = find_submissions(archive, "cgan", unpack)
    assert [s.student for s in found] == ["jane", "john"], "the zip's single top folder is the class folder"
    for submission in found:
        assert submission.notebook.is_relative_to(unpack), "notebooks are extracted into unpack_to"
        assert submission.notebook.read_bytes() == NOTEBOOK
        assert submission.problems == []
    assert not (unpack / "__MACOSX").exists(), "macOS resource forks are not extracted"


def test_zip_of_student_folders_without_a_top_folder(tmp_path):
    archive = make_zip(tmp_path / "class.zip", {"jane/cgan.ipynb": NOTEBOOK, "john/cgan.ipynb": NOTEBOOK})
    found = find_submissions(archive, "cgan", tmp_path / "unpack")
    assert [s.student for s in found] == ["jane", "john"]


def test_moodle_zip_gives_student_ids_from_the_folder_names(tmp_path):
    archive = make_zip(tmp_path / "moodle.zip", {
        "Jane Doe_123456_assignsubmission_file_/cgan.ipynb": NOTEBOOK,
        "John Smith_123457_assignsubmission_file_/my lab.ipynb": NOTEBOOK,
    })
    found = find_submissions(archive, "cgan", tmp_path / "unpack")
    assert [s.student for s in found] == ["jane_doe", "john_smith"]
    assert all(s.notebook is not None and s.problems == [] for s in found)


def test_canvas_flat_zip_gives_student_ids_from_the_file_names(tmp_path):
    archive = make_zip(tmp_path / "canvas.zip", {
        "doejane_LATE_123_456_cgan.ipynb": NOTEBOOK,
        "smithjohn_124_457_cgan.ipynb": NOTEBOOK,
    })
    unpack = tmp_path / "unpack"
    found = find_submissions(archive, "cgan", unpack)
    assert [s.student for s in found] == ["doejane", "smithjohn"]
    assert found[0].notebook == unpack / "doejane_LATE_123_456_cgan.ipynb"
    assert found[0].problems == []


def test_extracting_replaces_a_previous_extraction(tmp_path):
    unpack = tmp_path / "unpack"
    write(unpack / "stale_1_2_cgan.ipynb")  # left over from an earlier run
    archive = make_zip(tmp_path / "canvas.zip", {"doejane_1_2_cgan.ipynb": NOTEBOOK})
    assert [s.student for s in find_submissions(archive, "cgan", unpack)] == ["doejane"], \
        "files left in unpack_to by an earlier run are not graded again"


def test_in_a_zip_the_newer_of_two_files_is_judged_by_the_zips_dates(tmp_path):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zipped:  # the newer submission first in the archive
        zipped.writestr(zipfile.ZipInfo("doejane_LATE_1_3_cgan.ipynb", (2024, 5, 2, 12, 0, 0)), b"new")
        zipped.writestr(zipfile.ZipInfo("doejane_1_2_cgan.ipynb", (2024, 5, 1, 12, 0, 0)), b"old")
    found = find_submissions(archive, "cgan", tmp_path / "unpack")
    assert found[0].notebook.read_bytes() == b"new", "the submission the zip dates later is graded"


@pytest.mark.parametrize("evil", ["../evil.ipynb", "class/../../evil.ipynb", "/tmp/cgan-zip-slip-test.ipynb"])
def test_zip_entry_pointing_outside_is_refused(tmp_path, evil):
    archive = make_zip(tmp_path / "evil.zip", {"jane/cgan.ipynb": NOTEBOOK, evil: b"owned"})
    unpack = tmp_path / "work" / "unpack"
    with pytest.raises(ValueError, match="points outside the archive") as raised:
        find_submissions(archive, "cgan", unpack)
    assert repr(evil) in str(raised.value), "the error names the offending entry"
    assert not (tmp_path / "work" / "evil.ipynb").exists(), "nothing is written outside unpack_to"
    assert not (tmp_path / "evil.ipynb").exists()
    if os.path.isabs(evil):
        assert not os.path.exists(evil), "an absolute entry is not written where it points"


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    not_zip = write(tmp_path / "class.zip", b"this is not a zip file")
    with pytest.raises(ValueError, match="expected a folder of submissions or an LMS zip"):
        find_submissions(not_zip, "cgan", tmp_path / "unpack")
    loose_notebook = write(tmp_path / "cgan.ipynb")
    with pytest.raises(ValueError):
        find_submissions(loose_notebook, "cgan", tmp_path / "unpack")


def test_a_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder or zip"):
        find_submissions(tmp_path / "nowhere", "cgan", tmp_path / "unpack")


def test_an_empty_folder_is_refused(tmp_path):
    (tmp_path / "class").mkdir()
    with pytest.raises(ValueError, match="no submissions found"):
        find_submissions(tmp_path / "class", "cgan", tmp_path / "unpack")


def test_a_folder_of_other_files_or_an_empty_zip_is_refused(tmp_path):
    write(tmp_path / "class" / "notes.txt", b"hello")
    write(tmp_path / "class" / ".hidden" / "cgan.ipynb")
    with pytest.raises(ValueError, match="no submissions found"):
        find_submissions(tmp_path / "class", "cgan", tmp_path / "unpack")
    empty = make_zip(tmp_path / "empty.zip", {})
    with pytest.raises(ValueError, match="no submissions found"):
        find_submissions(empty, "cgan", tmp_path / "unpack")


# --------------------------------------------------------------------------- input untouched
def test_a_folder_of_submissions_is_never_modified(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "jane" / "cgan.ipynb", mtime=OLD)
    write(classroom / "jane" / "other.ipynb", mtime=NEW)
    write(classroom / "john" / "cgan" / "cgan.ipynb", mtime=OLD)
    write(classroom / "mia" / "notes.txt", b"no notebook", mtime=OLD)
    write(classroom / "doejane_1_2_cgan.ipynb", mtime=OLD)
    write(classroom / "doejane_LATE_1_3_cgan.ipynb", mtime=NEW)
    before = snapshot(classroom)
    listing = sorted(str(p) for p in classroom.rglob("*"))
    find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert snapshot(classroom) == before, "no submitted file's bytes or mtime changed"
    assert sorted(str(p) for p in classroom.rglob("*")) == listing, "no file or folder was added or removed"
    assert not (tmp_path / "unpack").exists(), "a folder is read in place, not copied"


def test_a_zip_of_submissions_is_never_modified(tmp_path):
    archive = make_zip(tmp_path / "class.zip", {"class/jane/cgan.ipynb": NOTEBOOK,
                                                "class/john/cgan/cgan.ipynb": NOTEBOOK})
    os.utime(archive, (OLD, OLD))
    before = snapshot(archive)
    find_submissions(archive, "cgan", tmp_path / "unpack")
    find_submissions(archive, "cgan", tmp_path / "unpack")  # and again, over the first extraction
    assert snapshot(archive) == before, "the zip's bytes and mtime are unchanged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["class.zip", "unpack"], \
        "nothing is extracted next to the zip"
