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
- code that tampers with what the tests rely on (monkeypatching torch/numpy/cgan_lib,
  redefining test helpers, objects that compare equal to anything, frame/GC/ctypes tricks)
                                            -> noted, automatic points withheld for review
"""
import ast
import copy
import functools
import json
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

REPO = Path(__file__).resolve().parent.parent


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
        if meta.get("points") != want_meta.get("points") or bool(meta.get("locked")) != bool(want_meta.get("locked")):
            result.note("metadata edited", f"cell {grade_id!r}'s points or lock were changed: reset")
            meta.update({k: want_meta[k] for k in ("points", "locked", "grade", "solution") if k in want_meta})
    return notebook


# --------------------------------------------------------------------------- tampering
MODULE_ROOTS = {"torch", "numpy", "cgan_lib", "builtins", "sys", "os", "math", "random", "matplotlib",
                "IPython", "scipy", "inspect", "gc", "ctypes", "importlib", "types", "unittest", "nbgrader"}
ALLOWED_ASSIGNMENTS = ("torch.backends.", "os.environ", "rcParams")  # settings, not the tests' tools
SUSPICIOUS_NAMES = {
    "exec": "runs code built at run time", "eval": "runs code built at run time",
    "compile": "runs code built at run time", "__import__": "imports behind the scanner's back",
    "globals": "can rebind the tests' names", "__builtins__": "can replace Python's built-ins",
}
SUSPICIOUS_ATTRIBUTES = {
    "modules": "sys.modules can swap the modules the tests import", "settrace": "traces the tests",
    "setprofile": "traces the tests", "_getframe": "reaches into the tests' frames",
    "currentframe": "reaches into the tests' frames", "get_referrers": "finds the tests' objects",
    "get_objects": "finds the tests' objects", "__code__": "rewrites functions", "__globals__": "reaches the tests' names",
    "__closure__": "rewrites functions", "events": "hooks into how cells are run",
    "input_transformers_post": "rewrites cells before they run", "ast_transformers": "rewrites cells before they run",
    "__class__": "changes an object's type",
}
SUSPICIOUS_MODULES = {"ctypes": "can crash or rewrite the interpreter", "builtins": "can replace Python's built-ins",
                      "importlib": "can swap modules", "gc": "finds the tests' objects"}
DUNDER_COMPARISONS = {"__eq__", "__ne__", "__bool__", "__hash__", "__instancecheck__", "__subclasscheck__",
                      "__getattribute__", "__torch_function__", "__array_ufunc__", "__array_function__"}


def _dotted(node):
    """'torch.Tensor.__eq__' for an attribute chain rooted at a name, else None."""
    parts = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, modules, protected):
        self.modules, self.protected, self.found = modules, protected, []

    def flag(self, node, why):
        self.found.append((node.lineno, why))

    def _target(self, target, node):
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._target(element, node)
        elif isinstance(target, ast.Name) and target.id in self.protected:
            self.flag(node, f"rebinds {target.id}, which the tests use")
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            dotted = _dotted(target)
            if dotted and dotted.split(".")[0] in self.modules and not any(a in dotted for a in ALLOWED_ASSIGNMENTS):
                self.flag(node, f"changes {dotted} (monkeypatching a library the tests rely on)")

    def visit_Assign(self, node):
        for target in node.targets:
            self._target(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target, node)
        self.generic_visit(node)

    visit_AnnAssign = visit_AugAssign

    def visit_Delete(self, node):
        for target in node.targets:
            self._target(target, node)

    def _definition(self, node):
        if node.name in self.protected:
            self.flag(node, f"redefines {node.name}, which the tests use")
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _definition

    def visit_ClassDef(self, node):
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in DUNDER_COMPARISONS:
                self.flag(item, f"class {node.name} defines {item.name} (an object that can fool comparisons)")
        self._definition(node)

    def visit_Import(self, node):
        for alias in node.names:
            root = alias.name.split(".")[0]
            if SUSPICIOUS_MODULES.get(root):
                self.flag(node, f"imports {alias.name}, which {SUSPICIOUS_MODULES[root]}")
            if root in MODULE_ROOTS:
                self.modules.add(alias.asname or root)
            if (alias.asname or alias.name) in self.protected:
                self.flag(node, f"rebinds {alias.asname or alias.name}, which the tests use")

    def visit_ImportFrom(self, node):
        root = (node.module or "").split(".")[0]
        if SUSPICIOUS_MODULES.get(root):
            self.flag(node, f"imports from {node.module}, which {SUSPICIOUS_MODULES[root]}")
        for alias in node.names:
            name = alias.asname or alias.name
            if name in self.protected:
                self.flag(node, f"rebinds {name}, which the tests use")
            elif root in MODULE_ROOTS:
                self.modules.add(name)  # possibly a module (from torch import nn); assigning into it is patching

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args:
            dotted = _dotted(node.args[0])
            if dotted and dotted.split(".")[0] in self.modules | self.protected:
                self.flag(node, f"{node.func.id}() on {dotted} (monkeypatching)")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in SUSPICIOUS_NAMES:
            self.flag(node, f"uses {node.id}, which {SUSPICIOUS_NAMES[node.id]}")

    def visit_Attribute(self, node):
        why = SUSPICIOUS_ATTRIBUTES.get(node.attr)
        if why:
            self.flag(node, f"uses .{node.attr}, which {why}")
        self.generic_visit(node)


def defined_names(source):
    """Top-level names a cell defines (assignments, functions, classes)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


@functools.lru_cache
def release_notebook(release_path):
    """The released notebook, read once per process (triage reads it, never changes it)."""
    return nbformat.read(release_path, as_version=4)


@functools.lru_cache
def names_tests_use(solution_path):
    """Names that one locked cell of the solution defines and another uses: the tests' tools."""
    locked = [c.source for c in nbformat.read(solution_path, as_version=4).cells
              if c.cell_type == "code" and is_locked(c.metadata.get("nbgrader", {}))]
    used = [{n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)} for source in locked]
    return frozenset(name for i, source in enumerate(locked) for name in defined_names(source)
                     if any(name in names for j, names in enumerate(used) if j != i))


def scan(notebook, release, protected):
    """[(cell label, line, code, why)] for the student-editable code cells of `notebook`."""
    locked = {nbgrader_id(c) for c in release.cells if nbgrader_id(c) and is_locked(c.metadata["nbgrader"])}
    modules = {"torch", "nn", "F", "np", "numpy", "cgan_lib", "plt", "os", "sys", "builtins"}
    transform = TransformerManager().transform_cell
    findings = []
    for index, cell in enumerate(notebook.cells):
        grade_id = nbgrader_id(cell)
        if cell.cell_type != "code" or grade_id in locked:
            continue  # nbgrader replaces locked and test cells: what the student wrote there never runs
        try:
            source = transform(cell.source)
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue  # it cannot run either
        scanner = _Scanner(modules, protected)
        scanner.visit(tree)
        lines = source.splitlines()
        label = f"cell {grade_id!r}" if grade_id else f"cell {index + 1}"
        findings += [(label, line, lines[line - 1].strip()[:100], why) for line, why in scanner.found]
    return findings


# --------------------------------------------------------------------------- all together
def triage(path, release_path, solution_path):
    """Triage of the submission at `path` against the assignment's release and source notebooks."""
    result = Triage(notebook=None)
    notebook = read(path, result)
    if notebook is None:
        return result
    release = release_notebook(release_path)
    result.notebook = repair(notebook, release, result)
    for label, line, code, why in scan(result.notebook, release, names_tests_use(solution_path)):
        detail = f"{label}, line {line}: `{code}` {why}"
        result.tampering.append(detail)
        result.note("possible tampering", detail)
    return result


# --------------------------------------------------------------------------- after execution
def after_execution(notebook, limits):
    """[(kind, detail)] for what grading hit in the executed notebook: timeouts, exits, floods, memory."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        label = f"cell {nbgrader_id(cell)!r}" if nbgrader_id(cell) else f"cell {index + 1}"
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                text = f"{output.ename}: {output.evalue}"
                if output.ename == "CellTimeoutError" or "before timeout" in text:
                    problems.append(("cell timeout", f"{label} ran longer than {limits.cell_timeout} s: interrupted"))
                elif output.ename == "SystemExit":
                    problems.append(("exit", f"{label} called sys.exit() or exit(); the grader went on"))
                elif output.ename == "MemoryError" or any(
                        phrase in text.lower() for phrase in ("can't allocate memory", "cannot allocate memory")):
                    problems.append(("out of memory", f"{label} tried to use more than the "
                                                      f"{limits.memory_gb:g} GB allowed: {text[:120]}"))
            elif output.output_type == "stream" and "[output flood:" in output.text:
                problems.append(("output flood", f"{label} printed more than {limits.max_output_chars:,} characters "
                                                 f"to {output.name}: kept the start"))
    return list(dict.fromkeys(problems))
