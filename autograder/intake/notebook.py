"""Read a submitted notebook, repair what nbgrader would choke on, and note everything unusual.

Run before nbgrader sees a submission, in the grader's own process (student code never
runs here). Compared with the released notebook, cell by cell (nbgrader grade_id, then
the cell's id):

- unreadable (empty, binary, invalid JSON, not a notebook, no cells)  -> not graded: 0
- nbformat 3                                -> converted to 4
- duplicated nbgrader cell                  -> first copy keeps the metadata (stock nbgrader
                                               aborts the run of every later student)
- nbgrader metadata removed                 -> put back (matched by cell id, else by source)
- deleted cell                              -> re-inserted from the release where it was
- changed cell type / edited locked or test cell / changed points -> noted; nbgrader restores them
"""
import copy
import functools
import json
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass
class Triage:
    notebook: nbformat.NotebookNode | None          # what nbgrader grades; None: nothing gradable
    problems: list = field(default_factory=list)    # (kind, detail)
    tampering: list = field(default_factory=list)   # details of code that tampers with the tests

    def note(self, kind, detail):
        self.problems.append((kind, detail))


def nbgrader_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_locked(meta):
    """Cells whose content nbgrader restores from the gradebook: tests and locked cells."""
    return meta.get("locked") or (meta.get("grade") and not meta.get("solution"))


# --------------------------------------------------------------------------- reading
def read(path, result):
    """The notebook at `path` as nbformat 4, or None with the reason noted in `result`."""
    data = Path(path).read_bytes()
    if not data.strip():
        result.note("empty file", f"{Path(path).name} is empty ({len(data)} bytes): ask the student to re-submit")
        return None
    try:
        text = data.decode("utf-8")
        raw = json.loads(text)
    except UnicodeDecodeError:
        result.note("not a notebook", f"{Path(path).name} is a binary file, not a notebook "
                                      f"(starts with {data[:8]!r}): ask the student for the .ipynb")
        return None
    except json.JSONDecodeError as error:
        result.note("invalid JSON", f"{Path(path).name} is not valid JSON (line {error.lineno}, column "
                                    f"{error.colno}: {error.msg}); was it cut short or edited by hand? "
                                    "Ask the student to re-download it from Jupyter")
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        result.note("not a notebook", f"{Path(path).name} is JSON but not a Jupyter notebook (no nbformat field)")
        return None
    if raw["nbformat"] != 4:
        if raw["nbformat"] > 4:
            result.note("not a notebook", f"nbformat {raw['nbformat']} is newer than this grader reads")
            return None
        result.note("old notebook format", f"nbformat {raw['nbformat']}: converted to nbformat 4 and graded")
    try:
        with warnings.catch_warnings():  # nbformat warns (and repairs) on duplicate or missing cell ids
            warnings.simplefilter("ignore")
            notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises several types for malformed notebooks
        result.note("not a notebook", f"nbformat cannot read {Path(path).name}: {str(error).splitlines()[0]}")
        return None
    if not notebook.cells:
        result.note("empty notebook", "the notebook has no cells: nothing to grade")
        return None
    return notebook


# --------------------------------------------------------------------------- repairing
def repair(notebook, release, result):
    """Make `notebook`'s nbgrader cells match the release's, noting each change in `result`."""
    expected = {nbgrader_id(c): c for c in release.cells if nbgrader_id(c)}
    order = list(expected)

    # one cell per grade_id; metadata of unknown cells removed
    seen, ids = set(), set()
    for index, cell in enumerate(notebook.cells):
        grade_id = nbgrader_id(cell)
        if grade_id and (grade_id in seen or grade_id not in expected):
            why = "a copy of" if grade_id in seen else "unknown nbgrader cell"
            result.note("duplicated cell" if grade_id in seen else "unknown cell",
                        f"cell {index + 1} is {why} {grade_id!r}: graded the first one, ran this one as ordinary code")
            del cell.metadata["nbgrader"]
        elif grade_id:
            seen.add(grade_id)
        if cell.get("id") in ids or not cell.get("id"):
            cell["id"] = uuid.uuid4().hex[:8]
        ids.add(cell["id"])

    # metadata removed: find the cell by its id, then by its unchanged source
    for grade_id in order:
        if grade_id in seen:
            continue
        want = expected[grade_id]
        match = next((c for c in notebook.cells if not nbgrader_id(c) and c.get("id") == want.get("id")), None) or \
            next((c for c in notebook.cells if not nbgrader_id(c) and c.source.strip() == want.source.strip()), None)
        if match is not None:
            match.metadata["nbgrader"] = copy.deepcopy(want.metadata["nbgrader"])
            seen.add(grade_id)
            result.note("metadata removed", f"cell {grade_id!r} had lost its nbgrader metadata: put back")

    # deleted: insert the released cell after the cell that precedes it in the release (by nbgrader id, else cell id)
    def position_after(cell):
        return next((i + 1 for i, c in enumerate(notebook.cells)
                     if (nbgrader_id(cell) and nbgrader_id(c) == nbgrader_id(cell)) or
                     (not nbgrader_id(cell) and cell.get("id") and c.get("id") == cell.get("id"))), None)

    for grade_id in order:
        if grade_id in seen:
            continue
        index = release.cells.index(expected[grade_id])
        at = next((p for p in map(position_after, reversed(release.cells[:index])) if p is not None), 0)
        restored = copy.deepcopy(expected[grade_id])
        restored["id"] = restored.get("id") if restored.get("id") not in ids else uuid.uuid4().hex[:8]
        notebook.cells.insert(at, restored)
        seen.add(grade_id)
        what = "its test" if expected[grade_id].metadata["nbgrader"].get("grade") else "it"
        result.note("deleted cell", f"cell {grade_id!r} was deleted: put back from the assignment and {what} graded")

    # changes nbgrader undoes by itself (from the gradebook); noted so the instructor knows
    for cell in notebook.cells:
        grade_id = nbgrader_id(cell)
        if not grade_id:
            continue
        want = expected[grade_id]
        meta, want_meta = cell.metadata["nbgrader"], want.metadata["nbgrader"]
        if cell.cell_type != want.cell_type:
            result.note("cell type changed", f"cell {grade_id!r} was made {cell.cell_type}: changed back to {want.cell_type}")
        if is_locked(want_meta) and cell.source != want.source:
            kind = "edited test" if want_meta.get("grade") else "edited locked cell"
            result.note(kind, f"cell {grade_id!r} was edited: graded with the original from the gradebook")
        flags = ("points", "locked", "grade", "solution", "task")
        changed = [k for k in flags if (meta.get(k) != want_meta.get(k) if k == "points"
                                        else bool(meta.get(k)) != bool(want_meta.get(k)))]
        if changed:  # e.g. a test re-flagged as an answer: nbgrader itself would stop with NbGraderException
            result.note("metadata edited", f"cell {grade_id!r}'s {', '.join(changed)} were changed: reset")
            for key in flags:
                if key in want_meta:
                    meta[key] = want_meta[key]
                else:
                    meta.pop(key, None)
    return notebook


@functools.lru_cache
def release_notebook(release_path):
    """The released notebook, read once per process (triage reads it, never changes it)."""
    return nbformat.read(release_path, as_version=4)
