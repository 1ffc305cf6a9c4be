"""The notebook's own tests catch each common bug with a message that names it.

Every bug of autograder/testdata/variants.py is applied to the solution's cell, and the test cell
it must fail is run on it (in-process, from solutions/cgan/cgan.ipynb): it must raise an
AssertionError whose message contains the phrase that tells the student what to fix.
The same test cells pass on the solution itself."""
import pytest

from autograder.notebook_code import cell_sources, load_cells
from autograder.testdata.variants import BUGS, CORRECT, sources

GRADED = ["generator", "discriminator", "train_step", "train_step_test_tools", "generate_latent_points"]
TESTS = ["test_generator", "test_generator_hidden", "test_discriminator", "test_discriminator_hidden",
         "test_train_step", "test_generate_latent_points", "test_generate_latent_points_hidden"]


@pytest.fixture(scope="module")
def setup_namespace(real_data_dir):
    """The notebook's setup cells (imports, settings, device, data), run once."""
    return load_cells(["imports", "settings", "device", "data"])


def notebook_with(setup_namespace, edits):
    namespace = dict(setup_namespace)
    return load_cells(GRADED, namespace=namespace, replace=sources(edits, cell_sources()))


def run_test_cell(namespace, grade_id):
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
        for grade_id in TESTS[:TESTS.index(test_cell) + 1]:
            run_test_cell(namespace, grade_id)
    assert phrase in str(failure.value), f"{bug}: failed with an unexpected message:\n{failure.value}"
