"""autograder.intake.lms finds one notebook per student in whatever the instructor downloaded
(a folder per student, nbgrader's submitted/ layout, a zip of either, an LMS zip), says what was
odd about it, never follows a link nor merges two people into one student, refuses zip entries
that would write outside the workspace (that entry only), and never touches the input."""
import os
import re
import stat
import zipfile

import pytest

from autograder.intake import listing
from autograder.intake.lms import Refused, Submission, Submissions, find_submissions, read_submitted_bytes, student_id

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


def detail(submission, kind):
    """The detail of the one problem of `kind` the submission has."""
    found = [text for k, text in submission.problems if k == kind]
    assert len(found) == 1, f"expected one {kind!r} problem, got {submission.problems}"
    return found[0]


def zip_entry(name, content, mode=None, date=(2024, 5, 1, 12, 0, 0)):
    """(ZipInfo, bytes) for make_zip_entries; `mode` sets the Unix file type bits (a symlink: stat.S_IFLNK)."""
    info = zipfile.ZipInfo(name, date)
    if mode is not None:
        info.external_attr = (mode | 0o777) << 16
        info.create_system = 3  # Unix
    return info, content


def make_zip_entries(zip_path, entries):
    """A zip of [(ZipInfo, bytes)], in that order."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for info, content in entries:
            archive.writestr(info, content)
    return zip_path


def links_under(folder):
    return [p for p in folder.rglob("*") if p.is_symlink()]


SAFE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]*")


# --------------------------------------------------------------------------- student_id
@pytest.mark.parametrize("name, expected", [
    ("jane", "jane"),
    ("Jane", "jane"),
    ("Jane Doe", "jane_doe"),
    ("  Jane   Doe  ", "jane_doe"),
    ("jane.doe-2", "jane.doe-2"),
    ("Jöhn/O'Neil", "j_hn_o_neil"),
    ("Jane Doe_123456_assignsubmission_file_", "jane_doe_123456"),
    ("Jane Doe_123456_assignsubmission_onlinetext_", "jane_doe_123456"),
    ("Jane Doe_123456_assignsubmission_file", "jane_doe_123456"),
    ("Participant_98765_assignsubmission_file_", "participant_98765"),
    ("doejane", "doejane"),
    (".hidden.", "hidden"),
    ("-jane-", "jane"),
])
def test_student_id_is_a_lowercase_slug_and_keeps_the_moodle_participant_id(name, expected):
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


def test_flat_canvas_files_in_a_folder_are_named_by_name_and_user_id(tmp_path):
    classroom = tmp_path / "class"
    late = write(classroom / "doejane_LATE_123_456_cgan.ipynb")
    smith = write(classroom / "smithjohn_124_457_cgan.ipynb")
    write(classroom / "readme.txt", b"not a submission")
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"doejane_123", "smithjohn_124"}, "files other than .ipynb are not submissions"
    assert students["doejane_123"].notebook == late and students["smithjohn_124"].notebook == smith
    assert students["doejane_123"].problems == []


@pytest.mark.parametrize("newer_name, older_name", [
    ("doejane_LATE_123_999_cgan.ipynb", "doejane_123_456_cgan.ipynb"),
    ("doejane_123_456_cgan.ipynb", "doejane_LATE_123_999_cgan.ipynb"),
])
def test_two_files_for_one_canvas_user_keep_the_newer(tmp_path, newer_name, older_name):
    classroom = tmp_path / "class"
    newer = write(classroom / newer_name, mtime=NEW)
    older = write(classroom / older_name, mtime=OLD)
    found = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert len(found) == 1, "two files of one Canvas user id make one submission"
    assert found[0].student == "doejane_123"
    assert found[0].notebook == newer, "the newer file is graded, whichever comes first by name"
    assert kinds(found[0]) == ["several submissions"], "the discarded file is noted"
    assert str(newer) in found[0].problems[0][1] and str(older) in found[0].problems[0][1]


def test_canvas_late_re_upload_is_graded_and_the_first_upload_is_listed(tmp_path):
    classroom = tmp_path / "class"
    first = write(classroom / "doejane_123_456_cgan.ipynb", mtime=OLD)
    again = write(classroom / "doejane_LATE_123_789_cgan-1.ipynb", mtime=NEW)
    other = write(classroom / "doejane_777_458_cgan.ipynb", mtime=OLD)  # another Jane Doe (user 777)
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"doejane_123", "doejane_777"}, "one name, two Canvas user ids: two students"
    assert students["doejane_123"].notebook == again, "the late re-upload (cgan-1.ipynb) is newer: graded"
    text = detail(students["doejane_123"], "several submissions")
    assert text.startswith(f"graded {again}") and f"not {first}" in text
    assert students["doejane_777"].notebook == other and students["doejane_777"].problems == []


def test_canvas_anonymous_grading_names_are_ids_too(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "anon_Xy12z_456_cgan.ipynb")
    write(classroom / "LATE_anon_Ab34c_457_cgan.ipynb")
    assert [s.student for s in find_submissions(classroom, "cgan", tmp_path / "unpack")] == ["anon_ab34c", "anon_xy12z"]


def test_a_folder_and_a_flat_file_are_never_merged_into_one_student(tmp_path):
    classroom = tmp_path / "class"
    folder = write(classroom / "doejane" / "cgan.ipynb", mtime=OLD)
    flat = write(classroom / "doejane_1_2_cgan.ipynb", mtime=NEW)
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert students["doejane"].notebook == folder and students["doejane_1"].notebook == flat, \
        "a folder name and a Canvas user id are not known to be one person: both are graded"


def test_a_flat_notebook_not_named_by_an_lms_keeps_its_whole_name_and_says_so(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "jane_cgan.ipynb")
    write(classroom / "jane_smith.ipynb")
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"jane_cgan", "jane_smith"}, "the first part alone would merge two people"
    assert kinds(students["jane_smith"]) == ["student id guessed"]
    assert "folder named after the student" in students["jane_smith"].problems[0][1]


# --------------------------------------------------------------------------- identity: Moodle and slugs
def test_moodle_students_with_one_display_name_are_two_students(tmp_path):
    archive = make_zip(tmp_path / "moodle.zip", {
        "Jane Doe_1001_assignsubmission_file_/cgan.ipynb": b"first jane",
        "Jane Doe_1002_assignsubmission_file_/cgan.ipynb": b"second jane",
    })
    found = find_submissions(archive, "cgan", tmp_path / "unpack")
    assert [s.student for s in found] == ["jane_doe_1001", "jane_doe_1002"]
    assert [s.notebook.read_bytes() for s in found] == [b"first jane", b"second jane"], "each graded her own"
    assert all(s.problems == [] for s in found)


def test_moodle_student_with_two_uploads_gets_the_newest_graded(tmp_path):
    archive = make_zip_entries(tmp_path / "moodle.zip", [
        zip_entry("Jane Doe_1001_assignsubmission_file_/cgan.ipynb", b"old", date=(2024, 5, 1, 9, 0, 0)),
        zip_entry("Jane Doe_1001_assignsubmission_file_/cgan_final.ipynb", b"new", date=(2024, 5, 2, 9, 0, 0)),
        zip_entry("Jane Doe_1001_assignsubmission_onlinetext_/onlinetext.html", b"<p>see file</p>"),
        zip_entry("John Roe_1003_assignsubmission_file_/cgan.ipynb", b"john"),
    ])
    students = by_student(find_submissions(archive, "cgan", tmp_path / "unpack"))
    assert set(students) == {"jane_doe_1001", "john_roe_1003"}, "file and online-text folders of one participant: one"
    jane = students["jane_doe_1001"]
    assert jane.notebook.read_bytes() == b"new", "Moodle uploads: the newest is graded, even under another name"
    assert kinds(jane) == ["several submissions"]
    assert "cgan_final.ipynb" in jane.problems[0][1].split(", not")[0] and "cgan.ipynb" in jane.problems[0][1]


def test_moodle_flat_download_keeps_participant_ids(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "Jane Doe_1001_assignsubmission_file_cgan.ipynb", mtime=OLD)
    newer = write(classroom / "Jane Doe_1001_assignsubmission_file_cgan (2).ipynb", mtime=NEW)
    write(classroom / "Jane Doe_1002_assignsubmission_file_cgan.ipynb")
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"jane_doe_1001", "jane_doe_1002"}
    assert students["jane_doe_1001"].notebook == newer and kinds(students["jane_doe_1001"]) == ["several submissions"]


@pytest.mark.parametrize("names", [("Jörg", "J_rg"), ("Jane", "jane"), ("!!!", "???")])
def test_names_that_slug_alike_stay_two_students_with_stable_ids(tmp_path, names):
    classroom = tmp_path / "class"
    for name in names:
        write(classroom / name / "cgan.ipynb", name.encode())
    found = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert len(found) == 2 and len({s.student for s in found}) == 2, "two names are two students"
    base = student_id(names[0])
    assert all(s.student.startswith(f"{base}-") and SAFE_ID.fullmatch(s.student) for s in found)
    assert sorted(s.notebook.read_bytes() for s in found) == sorted(n.encode() for n in names)
    for submission in found:
        text = detail(submission, "student id disambiguated")
        assert all(repr(name) in text for name in names) and repr(submission.student) in text
    again = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert [(s.student, s.notebook) for s in again] == [(s.student, s.notebook) for s in found], \
        "grading again gives the same ids"


def test_a_disambiguated_id_does_not_depend_on_the_other_students(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for classroom, names in ((one, ["Jörg", "J_rg"]), (two, ["Jörg", "J_rg", "J-rg", "alice"])):
        for name in names:
            write(classroom / name / "cgan.ipynb")
    ids = [{s.entry_name: s.student for s in find_submissions(c, "cgan", tmp_path / "unpack")} for c in (one, two)]
    assert ids[0]["Jörg"] == ids[1]["Jörg"] and ids[0]["J_rg"] == ids[1]["J_rg"]
    assert ids[1]["J-rg"] == "j-rg" and ids[1]["alice"] == "alice"


def test_student_ids_are_safe_and_short_whatever_the_names(tmp_path):
    classroom = tmp_path / "class"
    names = ["Zoë O'Brien-Łukasz", "  spaced  out  ", "a" * 200, "-leading.dash", "日本語"]
    for name in names:
        write(classroom / name / "cgan.ipynb")
    found = find_submissions(classroom, "cgan", tmp_path / "unpack")
    assert len(found) == len(names)
    for submission in found:
        assert SAFE_ID.fullmatch(submission.student), submission.student
        assert len(submission.student) <= 64


# --------------------------------------------------------------------------- links and special files
@pytest.fixture
def outside(tmp_path):
    """A solution notebook outside the class folder, as in a git checkout of the course."""
    return write(tmp_path / "course" / "solutions" / "cgan" / "cgan.ipynb", b"THE SOLUTION")


def test_a_symlink_to_a_file_outside_is_refused_for_that_student_only(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    write(classroom / "bob" / "cgan.ipynb")
    (classroom / "alice").mkdir()
    (classroom / "alice" / "cgan.ipynb").symlink_to("../../solutions/cgan/cgan.ipynb")
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    alice = students["alice"]
    assert alice.notebook is None, "the solution behind the link is never graded as alice's"
    assert kinds(alice) == ["symlink refused"], "refused, and no misleading 'no notebook' line"
    assert str(classroom / "alice" / "cgan.ipynb") in alice.problems[0][1], "the problem names the entry"
    assert "../../solutions/cgan/cgan.ipynb" in alice.problems[0][1], "and where it points"
    assert students["bob"].notebook == classroom / "bob" / "cgan.ipynb" and students["bob"].problems == []


def test_a_symlink_next_to_a_real_notebook_is_noted_and_the_real_one_graded(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    own = write(classroom / "alice" / "cgan.ipynb", mtime=OLD)
    (classroom / "alice" / "newer.ipynb").symlink_to(outside)
    os.utime(classroom / "alice" / "newer.ipynb", (NEW, NEW), follow_symlinks=False)
    alice = find_submissions(classroom, "cgan", tmp_path / "unpack")[0]
    assert alice.notebook == own and kinds(alice) == ["symlink refused"]


def test_a_symlinked_student_folder_is_refused(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    write(classroom / "bob" / "cgan.ipynb")
    (classroom / "carol").symlink_to(outside.parent, target_is_directory=True)
    (classroom / "doejane_1_2_cgan.ipynb").symlink_to(outside)  # a flat LMS file, linked
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert set(students) == {"bob", "carol", "doejane_1"}
    for student in ("carol", "doejane_1"):
        assert students[student].notebook is None and kinds(students[student]) == ["symlink refused"]
    assert students["bob"].problems == []


def test_a_hardlinked_notebook_is_refused(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    os.makedirs(classroom / "carol")
    os.link(outside, classroom / "carol" / "cgan.ipynb")
    write(classroom / "bob" / "cgan.ipynb")
    carol = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["carol"]
    assert carol.notebook is None and kinds(carol) == ["hardlink refused"]
    assert "2 names" in carol.problems[0][1] and "cp, not ln" in carol.problems[0][1]


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    classroom = tmp_path / "class"
    os.makedirs(classroom / "dan")
    os.mkfifo(classroom / "dan" / "cgan.ipynb")  # opening it to read would wait for a writer forever
    write(classroom / "bob" / "cgan.ipynb")
    dan = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))["dan"]
    assert dan.notebook is None and kinds(dan) == ["special file refused"]
    assert "FIFO" in dan.problems[0][1]


def test_many_links_in_one_folder_make_a_few_lines(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    write(classroom / "eve" / "cgan.ipynb")
    for i in range(8):
        (classroom / "eve" / f"link{i}").symlink_to(outside)
    eve = find_submissions(classroom, "cgan", tmp_path / "unpack")[0]
    assert eve.notebook is not None and kinds(eve) == ["symlink refused"] * 6
    assert eve.problems[-1][1].startswith("and 3 more: ") and "link7" in eve.problems[-1][1]


def test_links_and_special_files_are_left_as_they_were(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    write(classroom / "alice" / "cgan.ipynb")
    (classroom / "bob").symlink_to(outside.parent, target_is_directory=True)
    os.makedirs(classroom / "carol")
    os.link(outside, classroom / "carol" / "cgan.ipynb")
    os.mkfifo(classroom / "dan")
    before = {str(p): os.lstat(p) for p in [classroom, *classroom.rglob("*")]}
    outside_before = snapshot(outside)
    find_submissions(classroom, "cgan", tmp_path / "unpack")
    after = {str(p): os.lstat(p) for p in [classroom, *classroom.rglob("*")]}
    assert {p: (s.st_mode, s.st_mtime_ns, s.st_nlink) for p, s in after.items()} == \
        {p: (s.st_mode, s.st_mtime_ns, s.st_nlink) for p, s in before.items()}
    assert snapshot(outside) == outside_before


def test_an_unreadable_student_folder_is_noted_for_that_student(tmp_path, monkeypatch):
    classroom = tmp_path / "class"
    write(classroom / "bob" / "cgan.ipynb")
    write(classroom / "zoe" / "cgan" / "cgan.ipynb")
    real_scandir = os.scandir

    def scandir(path):  # as for a folder without read permission (root reads those anyway)
        if str(path) == str(classroom / "zoe" / "cgan"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(listing.os, "scandir", scandir)
    students = by_student(find_submissions(classroom, "cgan", tmp_path / "unpack"))
    assert students["bob"].notebook is not None, "the rest of the class is still found"
    assert students["zoe"].notebook is None and kinds(students["zoe"]) == ["unreadable folder"]
    assert "Permission denied" in students["zoe"].problems[0][1]


# --------------------------------------------------------------------------- reading a found notebook
def test_read_bytes_reads_what_was_found(tmp_path):
    classroom = tmp_path / "class"
    write(classroom / "jane" / "cgan" / "cgan.ipynb", b"jane's work")
    jane = find_submissions(classroom, "cgan", tmp_path / "unpack")[0]
    assert jane.root == classroom and jane.read_bytes() == b"jane's work"
    assert read_submitted_bytes(jane.notebook) == b"jane's work", "without a root, the file itself is checked"


def test_a_notebook_swapped_for_a_link_after_it_was_found_is_refused(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    write(classroom / "alice" / "cgan.ipynb")
    alice = find_submissions(classroom, "cgan", tmp_path / "unpack")[0]
    alice.notebook.unlink()
    alice.notebook.symlink_to(outside)
    with pytest.raises(Refused) as refused:
        alice.read_bytes()
    assert refused.value.kind == "symlink refused" and str(alice.notebook) in refused.value.detail
    with pytest.raises(Refused):
        read_submitted_bytes(alice.notebook)


def test_a_student_folder_swapped_for_a_link_after_it_was_found_is_refused(tmp_path, outside):
    classroom = tmp_path / "course" / "class"
    write(classroom / "alice" / "cgan" / "cgan.ipynb")
    alice = find_submissions(classroom, "cgan", tmp_path / "unpack")[0]
    (classroom / "alice").rename(tmp_path / "moved")
    (classroom / "alice").symlink_to(outside.parent.parent, target_is_directory=True)  # alice/cgan/cgan.ipynb exists
    assert alice.notebook.read_bytes() == b"THE SOLUTION", "a plain read would follow the link"
    with pytest.raises(Refused) as refused:
        alice.read_bytes()
    assert refused.value.kind == "symlink refused" and str(classroom / "alice") in refused.value.detail


def test_read_refuses_hardlinks_fifos_and_oversized_files(tmp_path, outside, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    os.link(outside, folder / "linked.ipynb")
    os.mkfifo(folder / "fifo.ipynb")
    write(folder / "big.ipynb", b" " * 2000)
    expected = {"linked.ipynb": "hardlink refused", "fifo.ipynb": "special file refused",
                "big.ipynb": "notebook too large"}
    monkeypatch.setattr(listing, "MAX_NOTEBOOK_BYTES", 1000)
    for name, kind in expected.items():
        with pytest.raises(Refused) as refused:
            read_submitted_bytes(folder / name, folder)
        assert refused.value.kind == kind, name


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
    assert [s.student for s in found] == ["jane_doe_123456", "john_smith_123457"]
    assert all(s.notebook is not None and s.problems == [] for s in found)


def test_canvas_flat_zip_gives_student_ids_from_the_file_names(tmp_path):
    archive = make_zip(tmp_path / "canvas.zip", {
        "doejane_LATE_123_456_cgan.ipynb": NOTEBOOK,
        "smithjohn_124_457_cgan.ipynb": NOTEBOOK,
    })
    unpack = tmp_path / "unpack"
    found = find_submissions(archive, "cgan", unpack)
    assert [s.student for s in found] == ["doejane_123", "smithjohn_124"]
    assert found[0].notebook == unpack / "doejane_LATE_123_456_cgan.ipynb"
    assert found[0].problems == []


def test_extracting_replaces_a_previous_extraction(tmp_path):
    unpack = tmp_path / "unpack"
    write(unpack / "stale_1_2_cgan.ipynb")  # left over from an earlier run
    archive = make_zip(tmp_path / "canvas.zip", {"doejane_1_2_cgan.ipynb": NOTEBOOK})
    assert [s.student for s in find_submissions(archive, "cgan", unpack)] == ["doejane_1"], \
        "files left in unpack_to by an earlier run are not graded again"


def test_in_a_zip_the_newer_of_two_files_is_judged_by_the_zips_dates(tmp_path):
    archive = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zipped:  # the newer submission first in the archive
        zipped.writestr(zipfile.ZipInfo("doejane_LATE_1_3_cgan.ipynb", (2024, 5, 2, 12, 0, 0)), b"new")
        zipped.writestr(zipfile.ZipInfo("doejane_1_2_cgan.ipynb", (2024, 5, 1, 12, 0, 0)), b"old")
    found = find_submissions(archive, "cgan", tmp_path / "unpack")
    assert found[0].notebook.read_bytes() == b"new", "the submission the zip dates later is graded"


@pytest.mark.parametrize("evil", ["../evil.ipynb", "class/../../evil.ipynb", "/tmp/cgan-zip-slip-test.ipynb",
                                  "C:/evil.ipynb", "..\\evil.ipynb"])
def test_zip_entry_pointing_outside_is_refused_and_the_class_still_graded(tmp_path, evil):
    archive = make_zip(tmp_path / "evil.zip", {"jane/cgan.ipynb": NOTEBOOK, evil: b"owned",
                                               "john/cgan.ipynb": NOTEBOOK})
    unpack = tmp_path / "work" / "unpack"
    found = find_submissions(archive, "cgan", unpack)
    assert isinstance(found, Submissions)
    assert [(s.student, s.problems) for s in found] == [("jane", []), ("john", [])], "the others are still graded"
    assert all(s.notebook.read_bytes() == NOTEBOOK for s in found)
    assert [kind for kind, _ in found.problems] == ["unsafe zip entry"], "the entry is noted for the instructor"
    assert repr(evil) in found.problems[0][1], "the problem names the offending entry"
    assert not (tmp_path / "work" / "evil.ipynb").exists(), "nothing is written outside unpack_to"
    assert not (tmp_path / "evil.ipynb").exists()
    assert sorted(p.name for p in unpack.iterdir()) == ["jane", "john"]
    if os.path.isabs(evil):
        assert not os.path.exists(evil), "an absolute entry is not written where it points"


def test_unsafe_zip_entry_in_a_students_folder_is_noted_for_that_student(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"class/alice/cgan.ipynb": NOTEBOOK,
                                               "class/alice/../../../evil.ipynb": b"owned",
                                               "class/bob/cgan.ipynb": NOTEBOOK})
    students = by_student(find_submissions(archive, "cgan", tmp_path / "unpack"))
    assert set(students) == {"alice", "bob"}, "the class folder is still recognised"
    assert kinds(students["alice"]) == ["unsafe zip entry"] and "evil.ipynb" in students["alice"].problems[0][1]
    assert students["alice"].notebook.read_bytes() == NOTEBOOK, "that entry only is refused"
    assert students["bob"].problems == []


def test_a_zip_holding_only_unsafe_entries_says_so(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"../evil.ipynb": b"owned"})
    with pytest.raises(ValueError, match="no submissions found.*unsafe zip entry.*evil.ipynb"):
        find_submissions(archive, "cgan", tmp_path / "unpack")


def test_zip_symlink_entries_are_refused_never_extracted(tmp_path):
    solution = "../../solutions/cgan/cgan.ipynb"
    archive = make_zip_entries(tmp_path / "class.zip", [
        zip_entry("class/alice/cgan.ipynb", solution.encode(), mode=stat.S_IFLNK),
        zip_entry("class/bob/cgan.ipynb", NOTEBOOK, mode=stat.S_IFREG),
        zip_entry("class/carol", b"/home", mode=stat.S_IFLNK),  # a linked student folder
        zip_entry("class/dan/cgan.ipynb", b"", mode=stat.S_IFIFO),
    ])
    unpack = tmp_path / "unpack"
    students = by_student(find_submissions(archive, "cgan", unpack))
    assert set(students) == {"alice", "bob", "carol", "dan"}
    assert students["alice"].notebook is None and kinds(students["alice"]) == ["symlink refused"]
    assert "class/alice/cgan.ipynb" in students["alice"].problems[0][1] and solution in students["alice"].problems[0][1]
    assert students["carol"].notebook is None and kinds(students["carol"]) == ["symlink refused"]
    assert students["dan"].notebook is None and kinds(students["dan"]) == ["special file refused"]
    assert students["bob"].notebook.read_bytes() == NOTEBOOK and students["bob"].problems == []
    assert links_under(unpack) == [] and not (unpack / "class" / "alice" / "cgan.ipynb").exists()


def test_zip_with_too_many_entries_or_too_big_is_refused_whole(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "class.zip", {f"s{i}/cgan.ipynb": NOTEBOOK for i in range(4)})
    monkeypatch.setattr(listing, "MAX_ZIP_ENTRIES", 3)
    with pytest.raises(ValueError, match="4 entries, more than the 3"):
        find_submissions(archive, "cgan", tmp_path / "unpack")
    monkeypatch.setattr(listing, "MAX_ZIP_ENTRIES", 100)
    monkeypatch.setattr(listing, "MAX_UNZIPPED_BYTES", 3 * len(NOTEBOOK))
    with pytest.raises(ValueError, match="uncompressed, more than"):
        find_submissions(archive, "cgan", tmp_path / "unpack")


def test_zip_entry_over_the_notebook_size_is_refused_for_that_student(tmp_path, monkeypatch):
    monkeypatch.setattr(listing, "MAX_NOTEBOOK_BYTES", 1000)
    archive = make_zip(tmp_path / "class.zip", {"jane/cgan.ipynb": NOTEBOOK, "john/cgan.ipynb": b" " * 5000})
    students = by_student(find_submissions(archive, "cgan", tmp_path / "unpack"))
    assert students["jane"].problems == [] and students["jane"].notebook is not None
    assert students["john"].notebook is None and kinds(students["john"]) == ["notebook too large"]
    assert not (tmp_path / "unpack" / "john" / "cgan.ipynb").exists()


def test_corrupt_zip_entry_is_refused_for_that_student(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("jane/cgan.ipynb", NOTEBOOK)
        zipped.writestr("john/cgan.ipynb", b"JOHN-NOTEBOOK-CONTENT")
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b"JOHN-NOTEBOOK-CONTENT", b"JOHN-NOTEBOOK-CONTENX"))  # CRC no longer matches
    students = by_student(find_submissions(archive, "cgan", tmp_path / "unpack"))
    assert students["jane"].notebook.read_bytes() == NOTEBOOK
    assert students["john"].notebook is None and kinds(students["john"]) == ["unreadable zip entry"]
    assert "john/cgan.ipynb" in students["john"].problems[0][1]


def test_a_name_twice_in_a_zip_extracts_the_first_and_says_so(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped, pytest.warns(UserWarning, match="Duplicate name"):
        zipped.writestr("jane/cgan.ipynb", b"first")
        zipped.writestr("jane/cgan.ipynb", b"second")
    jane = find_submissions(archive, "cgan", tmp_path / "unpack")[0]
    assert jane.notebook.read_bytes() == b"first" and kinds(jane) == ["duplicate zip entry"]


def test_a_zip_whose_directory_is_broken_is_a_clear_error(tmp_path):
    archive = make_zip(tmp_path / "class.zip", {"jane/cgan.ipynb": NOTEBOOK})
    archive.write_bytes(archive.read_bytes().replace(b"PK\x01\x02", b"XX\x01\x02"))
    with pytest.raises(ValueError, match="not a readable zip file"):
        find_submissions(archive, "cgan", tmp_path / "unpack")


def test_grading_the_same_zip_twice_gives_the_same_answer(tmp_path):
    archive = make_zip_entries(tmp_path / "moodle.zip", [
        zip_entry("Jörg_1_assignsubmission_file_/cgan.ipynb", b"a"),
        zip_entry("J rg_2_assignsubmission_file_/cgan.ipynb", b"b"),
        zip_entry("J_rg/cgan.ipynb", b"c"),
        zip_entry("J?rg/cgan.ipynb", b"d"),
        zip_entry("Ann_3_assignsubmission_file_/x.ipynb", b"e", date=(2024, 1, 1, 0, 0, 0)),
        zip_entry("Ann_3_assignsubmission_file_/y.ipynb", b"f", date=(2024, 1, 2, 0, 0, 0)),
        zip_entry("Bob_4_assignsubmission_file_/cgan.ipynb", b"../x", mode=stat.S_IFLNK),
    ])
    runs = [[(s.student, s.notebook, s.origin, s.problems) for s in find_submissions(archive, "cgan", tmp_path / "u")]
            for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 6 and len({student for student, *_ in runs[0]}) == 6


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
