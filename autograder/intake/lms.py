"""Find each student's notebook in what the instructor downloaded.

Accepted layouts (`<assignment>` is e.g. `cgan`):

    class/<student>/<assignment>.ipynb               a folder per student
    class/<student>/<assignment>/<assignment>.ipynb  nbgrader's own submitted/ layout
    class.zip                                        either of the above, zipped
    class.zip: <student>_<ids>_<original name>.ipynb an LMS download (Canvas: doejane_LATE_123_456_cgan.ipynb)
    class.zip: <Full Name>_<id>_assignsubmission_file_/<file>.ipynb   (Moodle)

Nothing here modifies the input: zips are extracted into the grading workspace.
"""
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_UNZIPPED_BYTES = 2 * 1024**3  # a class's notebooks are a few MB; refuse zip bombs


@dataclass
class Submission:
    student: str            # nbgrader student id
    notebook: Path | None   # the file to grade; None when there is none
    origin: str             # where it came from, as the instructor will recognise it
    problems: list = field(default_factory=list)  # (kind, detail) found while collecting


def student_id(name):
    """A student id nbgrader and every file system accept: letters, digits, '_', '-', '.'."""
    moodle = re.match(r"(.+?)_\d+_assignsubmission_\w*$", name)
    if moodle:
        name = moodle.group(1)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
    return slug.lower() or "unnamed"


def extract(zip_path, destination):
    """Extract an LMS zip into `destination`, refusing absolute paths, '..' and zip bombs."""
    destination = Path(destination)
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
                raise ValueError(f"{zip_path}: more than {MAX_UNZIPPED_BYTES / 1024**3:.0f} GB uncompressed; "
                                 "unzip it yourself and pass the folder")
            for member in members:
                target = (destination / member.filename).resolve()
                if not target.is_relative_to(destination.resolve()):
                    raise ValueError(f"{zip_path}: entry {member.filename!r} points outside the archive; not extracted")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                stamp = time.mktime(member.date_time + (0, 0, -1))  # "newest" means newest in the zip
                os.utime(target, (stamp, stamp))
    except zipfile.BadZipFile as error:
        raise ValueError(f"{zip_path}: not a readable zip file ({error})") from None
    return destination


def _pick_notebook(folder, assignment):
    """The notebook to grade in one student's folder, and a problem if the choice was not obvious."""
    notebooks = sorted(p for p in folder.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("."))
    if not notebooks:
        others = sorted(p.name for p in folder.rglob("*") if p.is_file())
        return None, ("no notebook", f"no .ipynb file in {folder.name}/ (found: {', '.join(others) or 'nothing'})")
    named = [p for p in notebooks if p.name == f"{assignment}.ipynb"]
    if len(named) == 1:
        return named[0], None
    chosen = max(named or notebooks, key=lambda p: p.stat().st_mtime)
    if len(notebooks) == 1:
        return chosen, None
    return chosen, ("several notebooks", f"graded {chosen.relative_to(folder)}, the newest of "
                                         f"{', '.join(str(p.relative_to(folder)) for p in notebooks)}")


def find_submissions(path, assignment, unpack_to):
    """[Submission] for a folder or zip of submissions, one per student, sorted by student id."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder or zip of submissions")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path}: expected a folder of submissions or an LMS zip download")
        path = extract(path, unpack_to)
        inner = [p for p in path.iterdir() if not p.name.startswith(".")]
        if len(inner) == 1 and inner[0].is_dir() and not any(inner[0].glob("*.ipynb")) \
                and not (inner[0] / assignment / f"{assignment}.ipynb").exists():
            path = inner[0]  # a zip of the class folder itself (not of one student's nbgrader folder)

    found = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith((".", "__MACOSX")):
            continue
        if entry.is_dir():
            notebook, problem = _pick_notebook(entry, assignment)
            submission = Submission(student_id(entry.name), notebook, str(entry))
        elif entry.suffix == ".ipynb":  # a flat LMS download: <student>_<ids>_<original name>
            submission = Submission(student_id(entry.stem.split("_")[0]), entry, str(entry))
            problem = None
        else:
            continue
        if problem:
            submission.problems.append(problem)
        if submission.student in found:  # two entries for one student: keep the newer file
            other = found[submission.student]
            newer, older = sorted([submission, other], key=lambda s: s.notebook.stat().st_mtime if s.notebook else 0,
                                  reverse=True)
            newer.problems.append(("several submissions", f"graded {newer.origin}, not {older.origin}"))
            submission = newer
        found[submission.student] = submission
    if not found:
        raise ValueError(f"{path}: no submissions found; expected <student>/{assignment}.ipynb, "
                         f"<student>/{assignment}/{assignment}.ipynb or an LMS zip")
    return [found[s] for s in sorted(found)]
