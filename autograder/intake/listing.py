"""What the instructor downloaded, listed without ever following a link, and read the same way.

A folder is walked with os.scandir and lstat only; a zip is read from its own directory and
only its notebooks are extracted, into the workspace, never as links. Every file and folder
becomes an Item. A symbolic link, a hard link (a file with more than one name: it may be
another student's or the solution's), a FIFO, socket or device, and a zip entry that points
outside the archive, is too large or cannot be read are Items with `refused` set: nothing
is read from them, and lms.py tells the student's line of problems.csv.

read_submitted_bytes() reads a listed notebook for grading: every folder from the root down
and the file itself are opened with O_NOFOLLOW and checked on the open descriptor, so a file
swapped for a link, a hard link or a FIFO after the listing is refused too.
"""
import errno
import os
import re
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 256 * 1024**2   # a notebook with every plot is a few MB
MAX_UNZIPPED_BYTES = 2 * 1024**3     # a whole class; refuses zip bombs
MAX_ZIP_ENTRIES = 20_000             # a class of 1,000 with a dozen files each, twice over
NOTEBOOK_SUFFIX = ".ipynb"
COPY_CHUNK = 1024**2

# problems.csv kinds of refused entries
SYMLINK = "symlink refused"
HARDLINK = "hardlink refused"
SPECIAL_FILE = "special file refused"
UNSAFE_ZIP_ENTRY = "unsafe zip entry"
TOO_LARGE = "notebook too large"
UNREADABLE_ZIP_ENTRY = "unreadable zip entry"
DUPLICATE_ZIP_ENTRY = "duplicate zip entry"
UNREADABLE_FOLDER = "unreadable folder"

DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
SPECIAL_KINDS = {stat.S_IFIFO: "FIFO (named pipe)", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
                 stat.S_IFBLK: "block device"}
NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(ValueError):
    """A submitted file intake will not read; `kind` and `detail` make a line of problems.csv."""

    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass(frozen=True)
class Item:
    parts: tuple                  # its path in the download, one name per level
    origin: str                   # where it is, as the instructor will recognise it
    path: Path | None = None      # the file to read (extracted, for a zip); None for folders and refused items
    mtime: float = 0.0            # its date: the file's, or the zip entry's
    is_dir: bool = False
    refused: tuple | None = None  # (kind, detail) when intake will not read it


def is_hidden(name):
    return name.startswith(".") or name == "__MACOSX"


def is_notebook(name):
    return name.endswith(NOTEBOOK_SUFFIX) and not is_hidden(name)


# --------------------------------------------------------------------------- what the refusals say
def symlink_problem(origin, target):
    return SYMLINK, (f"{origin} is a symbolic link to {target!r}: not followed, nothing graded from it. If it "
                     "points to the student's own notebook, put a copy of that file in its place and grade again")


def hardlink_problem(origin, names):
    return HARDLINK, (f"{origin} is a hard link ({names} names for one file, which may be another student's or "
                      "the solution): not graded. Put a plain copy in its place (cp, not ln or cp -l) and grade again")


def special_problem(origin, mode):
    what = SPECIAL_KINDS.get(stat.S_IFMT(mode), "special file")
    return SPECIAL_FILE, (f"{origin} is a {what}, not a file: not read, nothing graded from it. Put the student's "
                          "notebook in its place and grade again")


def too_large_problem(origin, size):
    return TOO_LARGE, (f"{origin} is {size / 1024**2:.0f} MB, over the {MAX_NOTEBOOK_BYTES // 1024**2} MB a "
                       "notebook may have: not graded. Clear its outputs (Kernel > Restart & Clear Output) and "
                       "grade again")


# --------------------------------------------------------------------------- a folder
def list_folder(root):
    """Items for everything under the folder `root` but hidden files, sorted; never follows a link."""
    root = Path(root)
    items, pending = [], [()]
    while pending:
        parts = pending.pop()
        folder = root.joinpath(*parts)
        try:
            with os.scandir(folder) as entries:
                found = [(entry.name, entry.stat(follow_symlinks=False))
                         for entry in entries if not is_hidden(entry.name)]
        except OSError as error:
            if not parts:
                raise
            items.append(Item(parts, str(folder), refused=(UNREADABLE_FOLDER, (
                f"{folder} cannot be read ({error.strerror}): nothing graded from it. "
                "Make it readable and grade again"))))
            continue
        for name, info in found:
            item = _folder_item(root, parts + (name,), info)
            items.append(item)
            if item.is_dir:
                pending.append(item.parts)
    return sorted(items, key=lambda item: item.parts)


def _folder_item(root, parts, info):
    path = root.joinpath(*parts)
    origin = str(path)
    if stat.S_ISLNK(info.st_mode):
        return Item(parts, origin, refused=symlink_problem(origin, os.readlink(path)))
    if stat.S_ISDIR(info.st_mode):
        return Item(parts, origin, is_dir=True)
    if not stat.S_ISREG(info.st_mode):
        return Item(parts, origin, refused=special_problem(origin, info.st_mode))
    if info.st_nlink > 1:
        return Item(parts, origin, refused=hardlink_problem(origin, info.st_nlink))
    return Item(parts, origin, path, info.st_mtime)


# --------------------------------------------------------------------------- a zip
def list_zip(zip_path, destination):
    """Items for the entries of the zip at `zip_path`, sorted; its notebooks are extracted under
    `destination` (emptied first). Raises ValueError for a zip that cannot be read at all or is too big."""
    destination = Path(destination)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        raise ValueError(f"{zip_path}: not a readable zip file ({error}); download it again") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_ENTRIES:
            raise ValueError(f"{zip_path}: {len(members)} entries, more than the {MAX_ZIP_ENTRIES} a class "
                             "download may have; unzip it yourself, check it, and pass the folder")
        declared = sum(m.file_size for m in members if not any(is_hidden(p) for p in _parts(m.filename)))
        if declared > MAX_UNZIPPED_BYTES:
            raise ValueError(f"{zip_path}: {declared / 1024**3:.1f} GB uncompressed, more than "
                             f"{MAX_UNZIPPED_BYTES / 1024**3:.0f} GB; unzip it yourself, check it, and pass the folder")
        if destination.exists():
            shutil.rmtree(destination)
        destination.mkdir(parents=True)
        items = {}
        for member in members:
            item = _zip_item(archive, member, zip_path, destination)
            if item is None:
                continue
            for depth in range(1, len(item.parts) if is_safe(item.parts) else 0):  # zips need not list folders
                folder = item.parts[:depth]
                if folder not in items:
                    items[folder] = Item(folder, f"{zip_path}: {'/'.join(folder)}/", is_dir=True)
            refused_file = item.refused is not None and not item.is_dir  # keeps its line, even under a taken name
            items.setdefault(item.parts + (member.filename,) if refused_file else item.parts, item)
    return sorted(items.values(), key=lambda item: item.parts)


def _parts(name):
    return tuple(part for part in name.replace("\\", "/").split("/") if part not in ("", "."))


def is_safe(parts):
    """Whether a path in a zip stays inside it: relative, no drive letter, no '..'."""
    return bool(parts) and ".." not in parts and not DRIVE_LETTER.match(parts[0]) and parts[0] != "/"


def _zip_item(archive, member, zip_path, destination):
    """The Item for one zip entry, its notebook extracted; None for what intake ignores (hidden files)."""
    name = member.filename.replace("\\", "/")
    parts = (("/",) if name.startswith("/") else ()) + _parts(name)
    origin = f"{zip_path}: {member.filename}"
    mode = member.external_attr >> 16
    is_dir = member.is_dir() or stat.S_ISDIR(mode)
    if not is_safe(parts):
        return Item(parts, origin, is_dir=is_dir, refused=(UNSAFE_ZIP_ENTRY, (
            f"{zip_path}: entry {member.filename!r} points outside the archive (an absolute path, a drive letter "
            "or '..'): not extracted, nothing graded from it. Ask for a clean download or unzip it yourself")))
    if any(is_hidden(part) for part in parts):
        return None
    mtime = _zip_date(member)
    if stat.S_ISLNK(mode):
        return Item(parts, origin, mtime=mtime, refused=symlink_problem(origin, _link_target(archive, member)))
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return Item(parts, origin, mtime=mtime, refused=special_problem(origin, mode))
    if is_dir or not is_notebook(parts[-1]):
        return Item(parts, origin, mtime=mtime, is_dir=is_dir)  # listed, never read
    if member.file_size > MAX_NOTEBOOK_BYTES:
        return Item(parts, origin, mtime=mtime, refused=too_large_problem(origin, member.file_size))
    refused = _extract(archive, member, destination.joinpath(*parts), mtime, origin)
    if refused:
        return Item(parts, origin, mtime=mtime, refused=refused)
    return Item(parts, origin, destination.joinpath(*parts), mtime)


def _link_target(archive, member):
    """What a zip's symlink entry points to (its content), for the instructor; never used as a path."""
    try:
        with archive.open(member) as link:
            return link.read(300).decode("utf-8", "replace")
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError, ValueError):
        return "(unreadable)"


def _zip_date(member):
    try:  # "newest" means newest in the zip
        return time.mktime(member.date_time + (0, 0, -1))
    except (OverflowError, ValueError):
        return 0.0


def _extract(archive, member, target, mtime, origin):
    """Write one notebook entry to `target` (never through a link); a (kind, detail) when it cannot be."""
    if os.path.lexists(target):
        return DUPLICATE_ZIP_ENTRY, (f"{origin}: the zip holds this name twice; the first copy was extracted, "
                                     "this one was not. Check which one the student meant")
    written = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o644)
        with os.fdopen(descriptor, "wb") as out, archive.open(member) as source:
            while chunk := source.read(COPY_CHUNK):
                written += len(chunk)
                if written > MAX_NOTEBOOK_BYTES:
                    raise Refused(*too_large_problem(origin, written))
                out.write(chunk)
            out.flush()
            os.utime(out.fileno(), (mtime, mtime))
    except Refused as refusal:
        target.unlink(missing_ok=True)
        return refusal.kind, refusal.detail
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError, ValueError) as error:
        if target.is_file() and not target.is_symlink():
            target.unlink()
        return UNREADABLE_ZIP_ENTRY, (f"{origin} cannot be extracted ({type(error).__name__}: {error}): nothing "
                                      "graded from it. Download the zip again, or ask the student to re-submit")
    return None


# --------------------------------------------------------------------------- reading a listed file
def read_submitted_bytes(path, root=None):
    """The bytes of the submitted file `path`, read without following any link.

    Every folder from `root` (trusted: the class folder or the extraction folder) down to the
    file, and the file itself, is opened with O_NOFOLLOW; the opened file must be a regular
    file with one name and at most MAX_NOTEBOOK_BYTES. Without `root` only the file itself is
    checked. Raises Refused (kind, detail) otherwise, OSError when it is gone.
    """
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    parts = path.relative_to(root).parts
    if not parts or ".." in parts:
        raise ValueError(f"{path} is not a file inside {root}")
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, name in enumerate(parts[:-1], 1):
            inner = _open_below(directory, name, os.O_RDONLY | os.O_DIRECTORY, root.joinpath(*parts[:depth]))
            os.close(directory)
            directory = inner
        descriptor = _open_below(directory, parts[-1], os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, path)
    finally:
        os.close(directory)
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(*special_problem(path, info.st_mode))
        if info.st_nlink > 1:
            raise Refused(*hardlink_problem(path, info.st_nlink))
        data = file.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise Refused(*too_large_problem(path, max(len(data), info.st_size)))
    return data


def _open_below(directory, name, flags, shown):
    """os.open(name) inside the open folder `directory`, refusing a link or special file before opening it."""
    info = os.lstat(name, dir_fd=directory)
    if stat.S_ISLNK(info.st_mode):
        raise Refused(*symlink_problem(shown, os.readlink(name, dir_fd=directory)))
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):  # never open a device or FIFO
        raise Refused(*special_problem(shown, info.st_mode))
    try:
        return os.open(name, flags | NO_FOLLOW, dir_fd=directory)
    except OSError as error:  # swapped for a link between lstat and open
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(*symlink_problem(shown, "(changed while it was read)")) from None
        raise
