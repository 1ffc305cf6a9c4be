"""The Network Visualization assignment (solutions/netviz/netviz.ipynb): its tests judge what code does.

- Every correct variant of autograder/testdata/netviz_variants.py passes the test cells of the
  function it writes, every bug fails the test cell it names with the message that names it:
  the test cells run in-process, as nbval and the notebook run them.
- The grader gives the same verdicts: autograder.scoring.verdict.judge with a real (unsandboxed)
  probe process, for the solution, the untouched release and a sample of the variants.
- The probe reports what code did to the models it was given (modes, gradients, weights) and
  the gradients it took, the bundled generator and the image helpers behave, and the committed
  release is what nbgrader generates.
"""
import contextlib
import io
import os

import nbformat
import pytest
import torch

from autograder.assignment import Assignment
from autograder.isolation.probe import probe_launcher
from autograder.notebook_code import cell_sources, load_cells
from autograder.scoring.judging import is_test
from autograder.scoring.verdict import judge
from autograder.testdata import netviz_class
from autograder.testdata.netviz_variants import BUGS, CORRECT, sources
from cgan_lib.checks import probe
from cgan_lib.netviz import blur_image, jitter
from cgan_lib.netviz_generator import (bundled_generator, conditional_accuracy, find_checkpoint, generator_from_state,
                                       load_generator, rebuilds)

SPEC = Assignment.load("netviz")
NOTEBOOK = SPEC.source
GRADED = ["saliency", "fooling", "class_visualization", "interpolation"]
TESTS_OF = {"saliency": ["test_saliency", "test_saliency_hidden"], "fooling": ["test_fooling", "test_fooling_hidden"],
            "class_visualization": ["test_class_visualization", "test_class_visualization_hidden"],
            "interpolation": ["test_interpolation", "test_interpolation_hidden"]}
TESTS = [test for tests in TESTS_OF.values() for test in tests]


@pytest.fixture(scope="module", autouse=True)
def one_thread(real_data_dir):
    """The lab's small model runs fastest on one thread (the notebook does the same); put the setting back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup_namespace():
    """The notebook's prelude cells (imports, settings), run once."""
    with contextlib.redirect_stdout(io.StringIO()):
        return load_cells(list(SPEC.prelude), notebook=NOTEBOOK)


def notebook_with(setup_namespace, edits):
    namespace = dict(setup_namespace)
    with contextlib.redirect_stdout(io.StringIO()):
        return load_cells(GRADED, notebook=NOTEBOOK, namespace=namespace, replace=sources(edits, cell_sources(NOTEBOOK)))


def run_test_cell(namespace, grade_id):
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(cell_sources(NOTEBOOK)[grade_id], f"<netviz.ipynb:{grade_id}>", "exec"), namespace)


# --------------------------------------------------------------------------- the variant catalogue, in-process
@pytest.mark.parametrize("variant", ["solution", *CORRECT])
def test_correct_code_passes_its_test_cells(setup_namespace, variant):
    edits = CORRECT.get(variant, {})
    namespace = notebook_with(setup_namespace, edits)
    for cell in edits or GRADED:
        for grade_id in TESTS_OF[cell]:
            run_test_cell(namespace, grade_id)


@pytest.mark.parametrize("bug", list(BUGS))
def test_bug_fails_its_test_with_a_message_naming_it(setup_namespace, bug):
    edits, test_cell, phrase = BUGS[bug]
    namespace = notebook_with(setup_namespace, edits)
    with pytest.raises(AssertionError) as failure:
        run_test_cell(namespace, test_cell)
    assert phrase in str(failure.value), f"{bug}: failed with an unexpected message:\n{failure.value}"


def test_every_function_has_several_correct_and_buggy_variants():
    for cell in GRADED:
        assert sum(cell in edits for edits in CORRECT.values()) >= 3, cell
        assert sum(cell in edits and test == TESTS_OF[cell][0] for edits, test, _ in BUGS.values()) >= 4, cell


@pytest.mark.parametrize("case", [c for c in netviz_class.CASES if c.fails != {"all"} and not c.problems],
                         ids=lambda case: case.student)
def test_the_sample_class_fails_exactly_the_test_cells_it_names(setup_namespace, case):
    notebook = case.build()
    answers = {grade_id(c): c.source for c in notebook.cells if grade_id(c) in GRADED}
    namespace = dict(setup_namespace)
    with contextlib.redirect_stdout(io.StringIO()):
        load_cells(GRADED, notebook=NOTEBOOK, namespace=namespace, replace=answers)
    failed = set()
    for test in TESTS:
        try:
            run_test_cell(namespace, test)
        except AssertionError:
            failed.add(test)
    assert failed == case.fails, case.why


# --------------------------------------------------------------------------- the same verdicts from the grader
def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def trusted():
    source = nbformat.read(NOTEBOOK, as_version=4)
    cells = {grade_id(c): c.source for c in source.cells if grade_id(c)}
    return [(g, cells[g]) for g in SPEC.prelude], [(grade_id(c), c.source) for c in source.cells if is_test(c)]


def verdicts(trusted, notebook, tests=TESTS, timeout=60):
    prelude, all_tests = trusted
    environment = dict(os.environ, NBGRADER_EXECUTION="autograde", OMP_NUM_THREADS="1")
    judgement = judge([(g, s) for g, s in all_tests if g in tests], prelude, netviz_class.student_cells(notebook),
                      SPEC.answers, probe_launcher(environment), timeout)
    return judgement, {g: v.passed for g, v in judgement.verdicts.items()}


def test_the_solution_passes_everything_and_the_release_nothing_in_the_grader(trusted):
    judgement, passed = verdicts(trusted, netviz_class.solved())
    assert set(passed) == set(TESTS) and all(passed.values()), \
        {g: v.message for g, v in judgement.verdicts.items() if not v.passed}
    assert not judgement.problems, judgement.problems
    judgement, passed = verdicts(trusted, nbformat.read(SPEC.release, as_version=4))
    assert not any(passed.values()), passed
    assert "Not done yet" in judgement.verdicts["test_saliency"].message


@pytest.mark.parametrize("variant", list(CORRECT)[::4])
def test_correct_variants_pass_in_the_probe_process(trusted, variant):
    tests = [t for cell in CORRECT[variant] for t in TESTS_OF[cell]]
    judgement, passed = verdicts(trusted, netviz_class.solved(CORRECT[variant]), tests)
    assert all(passed.values()), {g: v.message for g, v in judgement.verdicts.items() if not v.passed}


@pytest.mark.parametrize("bug", list(BUGS)[::3])
def test_bugs_fail_their_test_in_the_probe_process_with_the_same_message(trusted, bug):
    edits, test, phrase = BUGS[bug]
    judgement, passed = verdicts(trusted, netviz_class.solved(edits), [test])
    assert not passed[test] and phrase in judgement.verdicts[test].message, judgement.verdicts[test].message


# --------------------------------------------------------------------------- the probe: what code did to the model
def leaky_ascent(X, target_y, model):
    """Ten steps of ascent that never reset the image's gradient, the model switched to training mode."""
    model.train()
    image = X.clone().requires_grad_()
    for _ in range(10):
        model(image)[0, target_y].backward()
        with torch.no_grad():
            image += 0.1 * image.grad
    return image.detach()


def clean_ascent(X, target_y, model):
    image = X.clone().requires_grad_()
    for _ in range(10):
        grad, = torch.autograd.grad(model(torch.roll(image, 1, -1))[0, target_y], image)
        image = (image + 0.1 * grad).detach().requires_grad_()
    return image


def test_the_probe_reports_modes_leaks_and_gradient_steps():
    X = torch.zeros(1, 1, 28, 28) - 1
    leaky, clean = (probe("netviz_run", f, calls=[{"args": [X, 3, {"model": "classifier"}]}])["results"][0]
                    for f in (leaky_ascent, clean_ascent))
    report = leaky["models"][0]
    assert report["gradient_steps"] == 10 and report["leaks"] == 9 and report["train_forwards"] == 10
    assert report["mode_after"] == "train" and any("running_mean" in name for name in report["changed"])
    report = clean["models"][0]
    assert report["gradient_steps"] == 10 and report["leaks"] == 0, "torch.roll of the image: found through its graph"
    assert report["train_forwards"] == 0 and report["mode_after"] == "eval" and not report["changed"]
    assert clean["value_requires_grad"] == [True] and len(report["inputs"]) == 10 and report["events"] == "FG" * 10


def test_the_probe_hands_out_copies_of_its_arguments():
    X = torch.zeros(1, 1, 28, 28)

    def in_place(images, model):
        images.requires_grad_()
        return images

    result = probe("netviz_run", in_place, calls=[{"args": [X, {"model": "classifier"}]}])["results"][0]
    assert not X.requires_grad and result["changed_arguments"] == []


# --------------------------------------------------------------------------- helpers the notebook uses
def test_jitter_is_undone_and_blur_keeps_constants_and_the_mean():
    X = torch.rand(2, 3, 28, 28)
    assert torch.equal(jitter(jitter(X, 2, -1), -2, 1), X)
    constant = torch.full((1, 1, 28, 28), 0.3)
    assert torch.allclose(blur_image(constant.clone()), constant)
    blurred = blur_image(X.clone(), sigma=1.0)
    assert blurred.std() < X.std() and abs(float(blurred.mean() - X.mean())) < 0.01


def test_the_bundled_generator_draws_recognisable_clothes():
    assert conditional_accuracy(bundled_generator(), per_class=50) >= 0.6


def test_a_checkpoint_of_the_lab_architecture_is_rebuilt_from_its_weights(tmp_path):
    reference = bundled_generator()
    state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in reference.state_dict().items()}
    rebuilt = generator_from_state(state)
    z, labels = torch.randn(8, 100), torch.arange(8)
    reference.load_state_dict(state)
    with torch.no_grad():
        assert torch.allclose(rebuilt(z, labels), reference(z, labels), atol=1e-6)
    torch.save({"format": "cgan_lib-checkpoint-v1", "generator": state}, tmp_path / "cgan_generator_epoch001.pth")
    generator, source = load_generator(tmp_path / "cgan_generator_epoch001.pth")
    assert "your generator" in source, source

    untrained = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(untrained, tmp_path / "cgan_generator_epoch002.pth")
    generator, source = load_generator(tmp_path / "cgan_generator_epoch002.pth")
    assert "the bundled generator" in source and "recognises only" in source, source
    (tmp_path / "cgan_generator_epoch003.pth").write_bytes(b"not a checkpoint")
    generator, source = load_generator(tmp_path / "cgan_generator_epoch003.pth")
    assert "could not be rebuilt" in source, source


def test_the_newest_run_folder_of_the_cgan_lab_is_found(tmp_path):
    """The CGAN notebook saves into checkpoints/<date>_<time>_<schedule>/: its newest run's last epoch is used."""
    from cgan_lib.checkpoint import checkpoint_path, new_run_folder

    assert find_checkpoint([tmp_path]) is None
    (tmp_path / "cgan_generator_epoch007.pth").write_bytes(b"")  # the flat layout of earlier versions of the lab
    assert find_checkpoint([tmp_path]) == tmp_path / "cgan_generator_epoch007.pth"
    older = new_run_folder(tmp_path, label="quick")
    for epoch in (1, 2, 10):
        checkpoint_path(older, epoch).write_bytes(b"")
    (tmp_path / "2099-01-01_000000_empty").mkdir()  # a run stopped before its first checkpoint
    assert find_checkpoint([tmp_path]) == checkpoint_path(older, 10)
    newer = new_run_folder(tmp_path, label="quick")  # the same second: ..._quick_2
    checkpoint_path(newer, 1).write_bytes(b"")
    assert find_checkpoint([tmp_path / "missing", tmp_path]) == checkpoint_path(newer, 1)


@pytest.mark.parametrize("variant", ["solution", "correct: seed 1's architecture, its two shape bugs fixed",
                                     "correct: label embedding first in both concatenations"])
def test_the_cgan_labs_generators_are_rebuilt_from_their_checkpoints(tmp_path, variant):
    """One of the versions load_generator chooses from (by accuracy) computes exactly what the student's generator does."""
    from autograder.testdata import variants
    from cgan_lib.checkpoint import save_checkpoint

    edits = {cell: e for cell, e in variants.CORRECT.get(variant, {}).items() if cell == "generator"}
    with contextlib.redirect_stdout(io.StringIO()):
        cgan = load_cells(["imports", "settings", "device", "generator"], replace=variants.sources(edits, cell_sources()))
    torch.manual_seed(0)
    original = cgan["Generator"]().cpu().eval()
    save_checkpoint(tmp_path / "cgan_generator_epoch001.pth", original)
    state = torch.load(tmp_path / "cgan_generator_epoch001.pth", weights_only=True)["generator"]
    z, labels = torch.randn(16, 100), torch.arange(16) % 10
    with torch.no_grad():
        expected = original(z, labels).view(16, 1, 28, 28)
        assert any(torch.allclose(rebuilt(z, labels), expected, atol=1e-6) for rebuilt in rebuilds(state))


# --------------------------------------------------------------------------- the release
def test_the_release_is_what_nbgrader_generates_and_hides_the_answers(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "netviz", "--force",
                           f"--CourseDirectory.release_directory={tmp_path / 'release'}",
                           f"--CourseDirectory.db_url=sqlite:///{tmp_path / 'gradebook.db'}"],
                          cwd=SPEC.source.parent.parent.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    generated = nbformat.read(tmp_path / "release" / "netviz" / "netviz.ipynb", as_version=4)
    committed = nbformat.read(SPEC.release, as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in generated.cells], \
        "assignments/netviz is out of date: run `python -m autograder release netviz`"
    text = SPEC.release.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "correct_scores.sum().backward()" not in text
