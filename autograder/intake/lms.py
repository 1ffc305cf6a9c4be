"""Find each student's notebook in what the instructor downloaded: one student per person, never two in one.

Accepted layouts (`<assignment>` is e.g. `cgan`), in a folder or a zip (with or without the class folder on top):

    <student>/<assignment>.ipynb                            a folder per student        id: the folder name
    <student>/<assignment>/<assignment>.ipynb               nbgrader's submitted/ layout    (slugged)
    <Full Name>_<id>_assignsubmission_file[_]/<file>        Moodle, in folders           id: name and participant
    <Full Name>_<id>_assignsubmission_file_<file>           Moodle, flat                     id: jane_doe_12345
    <sortable name>_[LATE_]<user id>_<upload id>_<file>     Canvas (re-uploads: cgan-1)  id: doejane_123
    <anything else>.ipynb                                   a loose notebook             id: its whole name
                                                                                         ("student id guessed")

Entries with the same participant or user id are one person: the newest upload is graded ("several
submissions"). In a student's own folder, <assignment>.ipynb is graded, else the newest ("several
notebooks"). Two names that would make one id (Jörg, J_rg) are two students: each id gets a suffix
from a hash of its name ("student id disambiguated"), so re-grading gives the same ids. Links, hard
links, special files and unsafe zip entries are refused per entry (listing.py) and noted for the
student they belong to (only the path the instructor passes may itself be a link). Nothing here modifies
the input: a zip's notebooks are extracted into the workspace. Read a found notebook with
Submission.read_bytes(), never by its path: that read, too, follows no link.
"""
import dataclasses
import hashlib
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from autograder.intake.listing import (HARDLINK, SYMLINK, UNREADABLE_FOLDER, Refused, is_hidden, is_notebook,
                                       is_safe, list_folder, list_zip, read_submitted_bytes)

__all__ = ["Submission", "Submissions", "Refused", "find_submissions", "read_submitted_bytes", "student_id"]

MAX_ID_LENGTH = 64
MAX_REFUSALS_LISTED = 5  # per student and kind; the others are counted in one more line
MOODLE_FOLDER = re.compile(r"(?P<name>.*?)(?:_(?P<id>\d+))?_assignsubmission_[A-Za-z0-9]+_?")
MOODLE_FILE = re.compile(r"(?P<name>.*?)(?:_(?P<id>\d+))?_assignsubmission_file_(?P<file>.+)")
CANVAS_FILE = re.compile(r"(?:(?P<name>.+?)_)??(?:LATE_)?(?P<id>\d+|anon_[A-Za-z0-9]+)_(?P<upload>\d+)_(?P<file>.+)")

# problems.csv kinds found while collecting (the refusals' kinds are in listing.py)
NO_NOTEBOOK = "no notebook"
SEVERAL_NOTEBOOKS = "several notebooks"
SEVERAL_SUBMISSIONS = "several submissions"
ID_DISAMBIGUATED = "student id disambiguated"
ID_GUESSED = "student id guessed"


@dataclass
class Submission:
    student: str            # nbgrader student id
    notebook: Path | None   # the file to grade; None when there is none
    origin: str             # where it came from, as the instructor will recognise it
    problems: list = field(default_factory=list)  # (kind, detail) found while collecting
    root: Path | None = None  # the class or extraction folder above `notebook`: no link below it is followed
    entry_name: str = ""    # the folder or file name the download gave this student

    def read_bytes(self):
        """The notebook's bytes, read without following any link; raises Refused (kind, detail)."""
        return read_submitted_bytes(self.notebook, self.root)


class Submissions(list):
    """find_submissions' answer: the Submissions, and `problems` (kind, detail) that belong to no student,
    such as a zip entry outside every student's folder."""

    def __init__(self, submissions=(), problems=()):
        super().__init__(submissions)
        self.problems = list(problems)


@dataclass(frozen=True)
class Identity:
    """Who an entry belongs to: two entries are one person only when their identities are equal."""
    layout: str  # "moodle", "canvas", "folder" or "file"
    label: str   # what the student id is made from: "Jane Doe_12345", "doejane_123", "jane"


@dataclass
class Entry:
    """One name at the top of the class: a student's folder, or a flat file."""
    name: str
    identity: Identity
    origin: str
    items: list     # the Items it holds (for a file: the file)
    uploads: bool   # its notebooks are LMS uploads (the newest wins), not a student's working folder


# --------------------------------------------------------------------------- identity
def slug(label):
    """A student id nbgrader and every file system accept: letters, digits, '_', '-', '.'."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", label.strip()).lower()
    return text[:MAX_ID_LENGTH].strip("._-") or "unnamed"


def folder_identity(name):
    moodle = MOODLE_FOLDER.fullmatch(name)
    return Identity("moodle", _label(moodle)) if moodle else Identity("folder", name)


def file_identity(name):
    for layout, pattern in (("moodle", MOODLE_FILE), ("canvas", CANVAS_FILE)):
        if match := pattern.fullmatch(name):
            return Identity(layout, _label(match))
    return Identity("file", name.removesuffix(".ipynb"))


def _label(match):
    return "_".join(part for part in (match["name"], match["id"]) if part)


def student_id(name):
    """The student id of a student's folder name (before telling apart two names that make one id)."""
    return slug(folder_identity(name).label)


def assign_ids(names):
    """{identity: (student id, problem or None)} for {identity: [entry names]}: one distinct id each."""
    by_slug = defaultdict(list)
    for identity in sorted(names, key=lambda i: (i.layout, i.label)):
        by_slug[slug(identity.label)].append(identity)
    taken = {base for base, group in by_slug.items() if len(group) == 1}
    ids = {}
    for base, group in sorted(by_slug.items()):
        if len(group) == 1:
            ids[group[0]] = (base, None)
            continue
        shown = ", ".join(repr(name) for identity in group for name in names[identity])
        for identity in group:
            digest, size = hashlib.sha256(f"{identity.layout}:{identity.label}".encode()).hexdigest(), 8
            while (student := f"{base[:MAX_ID_LENGTH - size - 1]}-{digest[:size]}") in taken:
                size += 4
            taken.add(student)
            ids[identity] = (student, (ID_DISAMBIGUATED, (
                f"{shown} would all be student id {base!r}; {', '.join(map(repr, names[identity]))} is {student!r} "
                "(from a hash of the name: the same every time you grade). Check that they are different "
                "students; rename a folder to choose another id")))
    return ids


# --------------------------------------------------------------------------- layout
def _owner(item):
    """The top-level name an item belongs to; None for an entry outside every student's folder."""
    first = item.parts[0]
    return first if is_safe(item.parts[:1]) and not is_hidden(first) else None


def _strip_class_folder(items, assignment):
    """A zip of the class folder itself: its items one level up; any other zip as it is."""
    owners = {_owner(item) for item in items} - {None}
    if len(owners) != 1:
        return items
    top = owners.pop()
    notebooks = [item.parts for item in items if not item.is_dir and item.refused is None and is_notebook(item.parts[-1])]
    one_student = (MOODLE_FOLDER.fullmatch(top)
                   or not any(item.parts == (top,) and item.is_dir for item in items)
                   or any(len(parts) == 2 for parts in notebooks)
                   or (top, assignment, f"{assignment}.ipynb") in notebooks)
    if one_student:
        return items
    return [dataclasses.replace(item, parts=item.parts[1:]) if item.parts[0] == top else item
            for item in items if item.parts != (top,)]


def _entries(items, outside):
    """[Entry] by top-level name, sorted; refusals outside every student's folder go to `outside`."""
    groups = defaultdict(list)
    for item in items:
        if (owner := _owner(item)) is not None:
            groups[owner].append(item)
        elif item.refused:
            outside.append(item.refused)
    entries = []
    for name, group in sorted(groups.items()):
        if not any(is_safe(item.parts) for item in group):  # "x/../../y" makes no student "x"
            outside += [item.refused for item in group]
            continue
        tops = [item for item in group if item.parts == (name,)]
        origin = (tops or group)[0].origin
        if len(tops) < len(group) or any(item.is_dir for item in tops):
            identity = folder_identity(name)
            entries.append(Entry(name, identity, origin, group, uploads=identity.layout == "moodle"))
        elif is_notebook(name):
            entries.append(Entry(name, file_identity(name), origin, group, uploads=True))
        elif any(item.refused and item.refused[0] != HARDLINK for item in tops):
            entries.append(Entry(name, folder_identity(name), origin, group, uploads=False))  # perhaps a folder
    return entries


def _notebooks(entry):
    return [item for item in entry.items if not item.is_dir and item.refused is None and is_notebook(item.parts[-1])]


def _inside(item):
    return "/".join(item.parts[1:])


def _pick_in_folder(notebooks, assignment, folder):
    """The notebook to grade in a student's own folder, and a problem if the choice was not obvious."""
    named = [item for item in notebooks if item.parts[-1] == f"{assignment}.ipynb"]
    if len(named) == 1:
        return named[0], None
    chosen = max(named or notebooks, key=lambda item: (item.mtime, item.parts))
    return chosen, (SEVERAL_NOTEBOOKS, f"graded {_inside(chosen)} in {folder}/, the newest of "
                                       f"{', '.join(_inside(item) for item in notebooks)}")


def _may_hold_notebook(item):
    """Whether a refused item may be, or hold, the student's notebook (a link may be to a folder)."""
    return item.refused is not None and (is_notebook(item.parts[-1]) or len(item.parts) == 1
                                         or item.refused[0] in (SYMLINK, UNREADABLE_FOLDER))


def _refusals(entries):
    """The refused items' problems, at most MAX_REFUSALS_LISTED of each kind, then a count."""
    by_kind = defaultdict(list)
    for entry in entries:
        for item in entry.items:
            if item.refused:
                by_kind[item.refused[0]].append(item)
    problems = []
    for kind, refused in by_kind.items():
        problems += [item.refused for item in refused[:MAX_REFUSALS_LISTED]]
        if len(refused) > MAX_REFUSALS_LISTED:
            problems.append((kind, f"and {len(refused) - MAX_REFUSALS_LISTED} more: "
                                   f"{', '.join(item.origin for item in refused[MAX_REFUSALS_LISTED:])}"))
    return problems


def _collect(entries, assignment, student, root):
    """The Submission of one person from all their entries."""
    problems, candidates = _refusals(entries), []
    for entry in entries:
        notebooks = _notebooks(entry)
        if entry.uploads or len(notebooks) <= 1:
            candidates += [(item, entry) for item in notebooks]
        else:
            chosen, problem = _pick_in_folder(notebooks, assignment, entry.name)
            candidates.append((chosen, entry))
            problems += [problem] if problem else []
    if not candidates:
        first = entries[0]
        if not any(_may_hold_notebook(item) for entry in entries for item in entry.items):  # else said already
            found = sorted(item.parts[-1] for entry in entries for item in entry.items
                           if len(item.parts) > 1 and not item.is_dir and item.refused is None)
            problems.append((NO_NOTEBOOK, f"no .ipynb file in {', '.join(e.name + '/' for e in entries)} "
                                          f"(found: {', '.join(found) or 'nothing'})"))
        return Submission(student, None, first.origin, problems, root, first.name)
    named = f"{assignment}.ipynb"
    ranked = sorted(candidates, key=lambda c: (c[0].mtime, c[0].parts[-1] == named, c[0].origin), reverse=True)
    chosen, entry = ranked[0]
    if len(ranked) > 1:
        problems.append((SEVERAL_SUBMISSIONS, f"graded {chosen.origin} (the newest), not "
                                              f"{', '.join(item.origin for item, _ in ranked[1:])}"))
    if entry.identity.layout == "file":
        problems.append((ID_GUESSED, f"{entry.origin} is not named like a Canvas or Moodle download "
                                     "(<name>_<user id>_<upload id>_<file>): graded as student "
                                     f"{student!r}. To choose the id, put it in a folder named after the student"))
    return Submission(student, chosen.path, entry.origin, problems, root, entry.name)


def find_submissions(path, assignment, unpack_to):
    """Submissions for a folder or zip of submissions, one per student, sorted by student id.

    Raises FileNotFoundError or ValueError only when nothing can be graded (no such path, not a
    folder or zip, an unreadable or oversized zip, no submission at all)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder or zip of submissions")
    if path.is_dir():
        root, items = path, list_folder(path)
    elif path.is_file() and zipfile.is_zipfile(path):
        root = Path(unpack_to)
        items = _strip_class_folder(list_zip(path, root), assignment)
    else:
        raise ValueError(f"{path}: expected a folder of submissions or an LMS zip download")

    outside, people = [], defaultdict(list)
    for entry in _entries(items, outside):
        people[entry.identity].append(entry)
    ids = assign_ids({identity: [entry.name for entry in entries] for identity, entries in people.items()})
    submissions = []
    for identity, entries in people.items():
        student, renamed = ids[identity]
        submission = _collect(entries, assignment, student, root)
        submission.problems += [renamed] if renamed else []
        submissions.append(submission)
    if not submissions:
        refused = "".join(f"; {kind}: {detail}" for kind, detail in outside)
        raise ValueError(f"{path}: no submissions found; expected <student>/{assignment}.ipynb, "
                         f"<student>/{assignment}/{assignment}.ipynb or an LMS zip{refused}")
    return Submissions(sorted(submissions, key=lambda s: s.student), outside)
