"""The notebook's own tests judge what code does: every correct answer passes, every bug fails
the test that names it, with the message that names it.

Every variant of autograder/testdata/variants.py (23 correct answers written the ways
students write them, 45 bugs) is applied to the solution's cells, and the test cells of
solutions/cgan/cgan.ipynb (visible and hidden) are run on it in-process, as nbval and
the notebook run them; the grader runs the same code against its sandboxed probe
process (tests/test_verdict.py proves that both give the same verdicts).
"""
import contextlib
import io

import pytest

from autograder.notebook_code import cell_sources, load_cells
from autograder.testdata.variants import BUGS, CORRECT, sources

GRADED = ["generator", "discriminator", "train_step", "generate_latent_points"]
TESTS = ["test_generator", "test_generator_hidden", "test_discriminator", "test_discriminator_hidden",
         "test_train_step", "test_train_step_hidden", "test_generate_latent_points", "test_generate_latent_points_hidden"]
TRAIN_STEP_VARIANTS = [name for name, edits in CORRECT.items() if "train_step" in edits]


@pytest.fixture(scope="module")
def setup_namespace():
    """The notebook's setup cells (imports, settings, device), run once."""
    with contextlib.redirect_stdout(io.StringIO()):
        return load_cells(["imports", "settings", "device"])


def notebook_with(setup_namespace, edits):
    namespace = dict(setup_namespace)
    with contextlib.redirect_stdout(io.StringIO()):
        return load_cells(GRADED, namespace=namespace, replace=sources(edits, cell_sources()))


def run_test_cell(namespace, grade_id):
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(cell_sources()[grade_id], f"<cgan.ipynb:{grade_id}>", "exec"), namespace)


@pytest.mark.parametrize("variant", ["solution", *CORRECT])
def test_correct_code_passes_every_test_cell(setup_namespace, variant):
    namespace = notebook_with(setup_namespace, CORRECT.get(variant, {}))
    for grade_id in TESTS:
        run_test_cell(namespace, grade_id)


@pytest.mark.parametrize("bug", list(BUGS))
def test_bug_fails_its_test_with_a_message_naming_it(setup_namespace, bug):
    edits, test_cell, phrase = BUGS[bug]
    namespace = notebook_with(setup_namespace, edits)
    with pytest.raises(AssertionError) as failure:
        run_test_cell(namespace, test_cell)
    assert phrase in str(failure.value), f"{bug}: failed with an unexpected message:\n{failure.value}"


@pytest.mark.parametrize("variant", ["solution", *TRAIN_STEP_VARIANTS[::3]])
def test_correct_train_step_passes_the_training_run(setup_namespace, variant, real_data_dir):
    """The hidden training run (600 verified steps) on every third correct train_step: about 6 s each."""
    namespace = notebook_with(setup_namespace, CORRECT.get(variant, {}))
    run_test_cell(namespace, "test_training_run")
