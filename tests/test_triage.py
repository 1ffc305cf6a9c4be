"""Triage, before any code runs: what is repaired, what is reported, what counts as tampering."""
import nbformat
import pytest

from autograder.testdata.sample_class import CASES, RELEASE, SOLUTION, solved
from autograder.intake import names_tests_use, scan, triage
from autograder.intake.notebook import nbgrader_id
from autograder.testdata.variants import BUGS, CORRECT

# problems only grading itself can find (the kernel or the tests have to run for them), or intake (links)
AT_RUN_TIME = {"cell timeout", "exit", "kernel died", "output flood", "output cut", "out of memory", "too slow",
               "process cap", "cgroup kill", "grading failed", "not loaded for the tests", "error in a definition",
               "symlink refused", "test process died", "test timeout", "test reply spoiled"}


@pytest.mark.parametrize("case", [c for c in CASES if c.layout != "symlink"],
                         ids=[c.student for c in CASES if c.layout != "symlink"])
def test_each_sample_submission_gets_the_problems_triage_can_see(case, tmp_path):
    built = case.build()
    path = tmp_path / "cgan.ipynb"
    path.write_bytes(built if isinstance(built, bytes) else nbformat.writes(built).encode())
    result = triage(path, RELEASE, SOLUTION)
    found = {kind for kind, _ in result.problems}
    assert case.problems - AT_RUN_TIME <= found <= (case.problems | case.also) - AT_RUN_TIME
    if result.notebook is not None:  # what nbgrader gets: every released nbgrader cell, once, of its type
        release = nbformat.read(RELEASE, as_version=4)
        expected = [(nbgrader_id(c), c.cell_type) for c in release.cells if nbgrader_id(c)]
        assert [(nbgrader_id(c), c.cell_type) for c in result.notebook.cells if nbgrader_id(c)] == \
            [(g, t) for g, t in expected] or case.student == "changed_cell_type"
        nbformat.validate(result.notebook)
    assert path.read_bytes() == (built if isinstance(built, bytes) else nbformat.writes(built).encode())


def test_deleted_cells_are_put_back_where_they_were(tmp_path):
    notebook = solved()
    order = [nbgrader_id(c) for c in notebook.cells]
    notebook.cells = [c for c in notebook.cells if nbgrader_id(c) not in ("test_generator", "models", "question_losses")]
    path = tmp_path / "cgan.ipynb"
    nbformat.write(notebook, path)
    result = triage(path, RELEASE, SOLUTION)
    assert [nbgrader_id(c) for c in result.notebook.cells] == order


@pytest.mark.parametrize("name", [*CORRECT, *BUGS])
def test_ordinary_code_is_never_taken_for_tampering(name):
    edits = CORRECT[name] if name in CORRECT else BUGS[name][0]
    assert scan(solved(edits), nbformat.read(RELEASE, as_version=4), names_tests_use(SOLUTION)) == []


@pytest.mark.parametrize("code, why", [
    ("import torch as T\nT.allclose = lambda *a, **k: True", "changes T.allclose"),
    ("from torch import nn\nnn.Module.__call__ = None", "changes nn.Module.__call__"),
    ("setattr(np, 'isclose', print)", "setattr() on np"),
    ("globals()['check_train_step'] = print", "uses globals"),
    ("def check_train_step(*args):\n    pass", "redefines check_train_step"),
    ("import builtins\nbuiltins.isinstance = lambda *a: True", "imports builtins"),
    ("class T(torch.Tensor):\n    def __bool__(self):\n        return True", "defines __bool__"),
    ("import sys\nsys.modules['torch'] = None", "sys.modules"),
    ("f = train_step.__code__", "uses .__code__"),
    ("get_ipython().events.register('pre_run_cell', print)", "hooks into how cells are run"),
])
def test_tampering_is_found_whatever_the_spelling(code, why):
    notebook = solved()
    notebook.cells.insert(3, nbformat.v4.new_code_cell(code))
    findings = scan(notebook, nbformat.read(RELEASE, as_version=4), names_tests_use(SOLUTION))
    assert any(why in finding[3] for finding in findings), findings


@pytest.mark.parametrize("code", [
    "torch.backends.cudnn.benchmark = True",
    "os.environ['CGAN_SCHEDULE'] = 'short'",
    "opt.n_epochs = 5",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 120",
    "x = np.random.randn(3)\nx[0] = 1.0",
    "!pip list",
])
def test_settings_and_ordinary_assignments_are_not_tampering(code):
    notebook = solved()
    notebook.cells.insert(3, nbformat.v4.new_code_cell(code))
    assert scan(notebook, nbformat.read(RELEASE, as_version=4), names_tests_use(SOLUTION)) == []


def test_code_in_test_cells_is_not_scanned_because_nbgrader_replaces_it():
    notebook = solved()
    cell = next(c for c in notebook.cells if nbgrader_id(c) == "test_generator")
    cell.source = "torch.allclose = len"
    assert scan(notebook, nbformat.read(RELEASE, as_version=4), names_tests_use(SOLUTION)) == []
