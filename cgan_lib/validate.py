"""Check a notebook before handing it in, the way it will be graded.

    python -m cgan_lib.validate                   # cgan.ipynb in this folder
    python -m cgan_lib.validate path/to/cgan.ipynb
    python -m cgan_lib.validate cgan.ipynb --json # the same report as JSON (the Validate button uses it)

The notebook runs from top to bottom in a fresh kernel, under nbgrader's validator: on the
grading schedule (nbgrader sets NBGRADER_EXECUTION), with checkpoints in a temporary run
folder (your checkpoints/ folder is left alone). Then every problem is listed:

- an answer cell that is still the template (`raise NotImplementedError("Not done yet...`
  or `YOUR ANSWER HERE` still in it);
- a test cell that fails, with the test's message;
- a test or other locked cell whose code was changed, a cell whose type was changed.

As when grading, only an exception fails a test: what your code writes to stderr (a
PyTorch warning, say) is not a failure. Exit status: 0 ready to hand in, 1 problems
listed, 2 the notebook could not be validated (missing, not a notebook, kernel died).
"""
import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
import zmq
from nbgrader.nbgraderformat import SchemaTooNewError, SchemaTooOldError
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from nbgrader.validator import Validator
from traitlets import List
from traitlets.config import Config

# Where the assignment notebook is looked for when none is named, relative to the current folder.
ASSIGNMENT_NOTEBOOKS = ("cgan.ipynb", "cgan/cgan.ipynb", "assignments/cgan/cgan.ipynb")
# Text that only the released template has: an answer cell holding one is not done yet.
TEMPLATE_MARKERS = ('raise NotImplementedError("Not done yet', "YOUR ANSWER HERE")
CELL_TIMEOUT = 300  # seconds a cell may run (a laptop CPU is slower than the grader's)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # IPython colours tracebacks
EXIT_READY, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2


class NotValidated(Exception):
    """The notebook could not be validated; the message says why and what to do."""


@dataclass
class Problem:
    kind: str     # "template", "failed", "changed" or "type_changed"
    cell: str     # the cell's nbgrader name (grade id), e.g. "generator", "test_generator"
    index: int    # its position in the notebook, counting from 1
    message: str  # what is wrong, and for a failed test its message
    source: str   # the cell's source

    def describe(self):
        first_line = self.source.strip().splitlines()[0] if self.source.strip() else ""
        if len(first_line) > 60:
            first_line = first_line[:57] + "..."
        return f'cell "{self.cell}" (cell {self.index}: {first_line}): {self.message}'


class _StderrIsShown(NbGraderPreprocessor):
    """As when grading, stderr in a test cell (a warning, a progress bar) is shown, never a failure."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class _Validator(Validator):
    """nbgrader's Validator, keeping the executed notebook so that every problem can be listed."""

    preprocessors = List([CheckCellMetadata, ClearOutput, Execute, _StderrIsShown])
    executed = None

    def _preprocess(self, nb):
        self.executed = super()._preprocess(nb)
        return self.executed


def find_notebook(name=None, folder=".", command="python -m cgan_lib.validate"):
    """The notebook to work on: `name`, or the assignment notebook in `folder`; NotValidated if none."""
    if name:
        path = Path(folder, name)
        if not path.is_file():
            raise NotValidated(f"no notebook at {path.resolve()}")
        return path.resolve()
    for candidate in ASSIGNMENT_NOTEBOOKS:
        if Path(folder, candidate).is_file():
            return Path(folder, candidate).resolve()
    raise NotValidated(f"no assignment notebook in {Path(folder).resolve()} (looked for "
                       f"{', '.join(ASSIGNMENT_NOTEBOOKS)}): run this in the folder that holds "
                       f"cgan.ipynb, or name the notebook: `{command} path/to/cgan.ipynb`")


def template_cells(notebook):
    """Answer cells that still hold the template's text."""
    return [Problem("template", _name(cell, i), i + 1, _template_message(cell), cell.source)
            for i, cell in enumerate(notebook.cells)
            if is_solution(cell) and any(marker in cell.source for marker in TEMPLATE_MARKERS)]


def validate(path):
    """Every problem of the notebook at `path` (an empty list: ready to hand in)."""
    path = Path(path).resolve()
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # invalid JSON, not a notebook, unreadable
        raise NotValidated(f"cannot read {path} as a notebook ({error}); "
                           "download it again or restore it from .ipynb_checkpoints/") from error
    validator = _Validator(config=_config())
    try:
        with _scratch_checkpoints():
            results = validator.validate(str(path))
    except (SchemaTooOldError, SchemaTooNewError) as error:
        raise NotValidated(f"{path} has nbgrader metadata of another version ({error}); "
                           "ask your instructor for the current notebook") from error
    except Exception as error:  # the kernel died or could not start
        raise NotValidated(f"could not run {path}: {type(error).__name__}: {error}") from error
    if "type_changed" in results:  # nbgrader stops before running the notebook
        changed = {item["source"] for item in results["type_changed"]}
        return [Problem("type_changed", _name(cell, i), i + 1,
                        f"this cell must be a {cell.metadata.nbgrader['cell_type']} cell, not {cell.cell_type}: "
                        "change its type back", cell.source)
                for i, cell in enumerate(notebook.cells) if cell.source.strip() in changed]
    executed = validator.executed
    changed = {id(cell) for cell in validator._get_changed_cells(executed)}
    failed = {id(cell) for cell in validator._get_failed_cells(executed)}
    problems = template_cells(notebook)
    unanswered = {problem.index for problem in problems}  # nbgrader also fails unchanged written answers
    for i, cell in enumerate(executed.cells):
        if i + 1 in unanswered:
            continue
        if id(cell) in changed:
            problems.append(Problem("changed", _name(cell, i), i + 1, "this cell was changed, but it must stay as "
                                    "it was released (it is graded as released): undo your edits", cell.source))
        elif id(cell) in failed:
            problems.append(Problem("failed", _name(cell, i), i + 1,
                                    "the test failed:\n" + _error_message(cell, validator), cell.source))
    return sorted(problems, key=lambda problem: problem.index)


def report(path, problems):
    """The text a student reads."""
    if not problems:
        return f"{path.name}: every test passes and every answer is filled in. Ready to hand in."
    lines = [f"{path.name}: {len(problems)} problem(s); fix them before you hand it in:"]
    for problem in problems:
        first, *rest = problem.describe().splitlines()
        lines += ["", "- " + first] + ["    " + line for line in rest]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cgan_lib.validate", description=__doc__.split("\n")[0])
    parser.add_argument("notebook", nargs="?", help="the notebook (default: cgan.ipynb in this folder)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        path = find_notebook(args.notebook)
        if not args.json:
            print(f"Running {path.name} from top to bottom on the grading schedule (about a minute)...", flush=True)
        problems = validate(path)
    except NotValidated as error:
        if args.json:
            print(json.dumps({"error": str(error)}))
        else:
            print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"notebook": str(path), "problems": [asdict(problem) for problem in problems]}))
    else:
        print(report(path, problems))
    return EXIT_PROBLEMS if problems else EXIT_READY


def _config():
    config = Config()
    config.Execute.timeout = CELL_TIMEOUT
    if zmq.has("curve"):  # kernels then start without ipykernel's "running over TCP without encryption"
        config.KernelManager.transport_encryption = "auto"
    return config


@contextlib.contextmanager
def _scratch_checkpoints():
    """CGAN_CHECKPOINT_DIR pointing into a temporary run folder while the kernel starts and runs."""
    before = os.environ.get("CGAN_CHECKPOINT_DIR")
    with tempfile.TemporaryDirectory(prefix="cgan-validate-") as run_folder:
        os.environ["CGAN_CHECKPOINT_DIR"] = str(Path(run_folder, "checkpoints"))
        try:
            yield
        finally:
            if before is None:
                del os.environ["CGAN_CHECKPOINT_DIR"]
            else:
                os.environ["CGAN_CHECKPOINT_DIR"] = before


def _name(cell, index):
    return cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"


def _template_message(cell):
    if cell.cell_type == "markdown":
        return "not answered yet: replace YOUR ANSWER HERE with your answer"
    return "still the template: replace its `raise NotImplementedError(\"Not done yet...\")` line(s) with your code"


def _error_message(cell, validator):
    messages = []
    for output in cell.get("outputs", []):
        if output.output_type != "error":
            continue
        if output.ename == "TestFailed" or not output.evalue:  # the lab's tests render a readable traceback
            messages.append(ANSI.sub("", "\n".join(output.traceback)))
        else:
            messages.append(f"{output.ename}: {output.evalue}")
    return "\n".join(messages) or ANSI.sub("", validator._extract_error(cell))


if __name__ == "__main__":
    sys.exit(main())
