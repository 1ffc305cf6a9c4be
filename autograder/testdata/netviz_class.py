"""A sample class of the Network Visualization assignment: correct, buggy, empty and misbehaving submissions.

    python -m autograder.testdata.netviz_class out/netviz_class     # write one folder per student

Built like autograder/testdata/sample_class.py (its Case): from the released notebook and the
solution, with the variants of autograder/testdata/netviz_variants.py, so the class follows
the assignment when it changes. CASES records, for each student, the test cells that must
score 0 and the problems.csv kinds the grader must report. tests/test_netviz.py checks the
`fails` of every case built from variants in-process; grading the class through the CLI
checks all of it.
"""
import sys
from pathlib import Path

import nbformat

from autograder.config import REPO
from autograder.testdata.netviz_variants import BUGS, CORRECT, apply
from autograder.testdata.sample_class import Case, grade_id, solved_notebook

RELEASE = REPO / "assignments" / "netviz" / "netviz.ipynb"
SOLUTION = REPO / "solutions" / "netviz" / "netviz.ipynb"
TESTS = ["test_saliency", "test_saliency_hidden", "test_fooling", "test_fooling_hidden", "test_class_visualization",
         "test_class_visualization_hidden", "test_interpolation", "test_interpolation_hidden"]
SALIENCY, FOOLING = {"test_saliency", "test_saliency_hidden"}, {"test_fooling", "test_fooling_hidden"}
VISUALIZATION = {"test_class_visualization", "test_class_visualization_hidden"}
INTERPOLATION = {"test_interpolation", "test_interpolation_hidden"}


def solved(edits=None):
    """The released netviz notebook as a student who solved everything hands it in, `edits` applied to their cells."""
    return solved_notebook(SOLUTION, RELEASE, edits, apply)


def student_cells(notebook):
    """[(label, source, graded)] of the cells a student may change: what the grader's probe process loads."""
    locked = {grade_id(c) for c in nbformat.read(RELEASE, as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("locked")}
    return [(grade_id(c) or f"cell {i + 1}", c.source, bool(c.metadata.get("nbgrader", {}).get("solution")))
            for i, c in enumerate(notebook.cells) if c.cell_type == "code" and grade_id(c) not in locked]


def combined(*names):
    """The edits of several correct variants (of different cells) together: one student's way of writing all of them."""
    edits = {}
    for name in names:
        edits.update(CORRECT[name])
    return edits


def _bug(name):
    return BUGS[name][0]


# the parameter renamed, so that `model` in the body is the notebook's own classifier (of its locked "look" cell)
GLOBAL_MODEL = ("saliency", "def compute_saliency_maps(X, y, model):", "def compute_saliency_maps(X, y, net):")
FOREVER = ("class_visualization", "    for t in range(num_iterations):", "    while True:\n        t = 0")

CASES = [
    # correct work: every automatic point
    Case("correct_solution", solved, why="the instructor's solution, as a student would hand it in"),
    Case("correct_autograd_grad", lambda: solved(combined(
        "saliency: torch.autograd.grad, indexing with arange, max(dim)[0]", "fooling: autograd.grad, out-of-place update",
        "visualization: autograd.grad, out-of-place update, vector_norm",
        "interpolation: one image at a time, torch.lerp, inference_mode")),
         why="torch.autograd.grad everywhere, out-of-place updates, one generator call per image"),
    Case("correct_cs231n_style", lambda: solved(combined(
        "saliency: CS231n style, X.requires_grad_() in place, backward(ones), .data",
        "fooling: CS231n's while loop with .data", "visualization: .data updates, img.norm() ** 2, grad = None",
        "interpolation: numpy's linspace, exp of log_softmax, eval() called again")),
         layout="nested", why="the classic assignment's idioms: .data, in-place requires_grad_, a while loop"),
    Case("correct_other_step_rules", lambda: solved(combined(
        "saliency: a one-hot mask, detach().requires_grad_(), values of max",
        "fooling: Adam on the cross-entropy towards the target", "visualization: the penalty's gradient added by hand",
        "interpolation: outer product, .detach() instead of no_grad")),
         why="Adam on a cross-entropy for the fooling image, the L2 penalty's gradient written by hand"),
    Case("untouched_release", lambda: nbformat.read(RELEASE, as_version=4), fails={"all"},
         why="the notebook as released: 0, and grading finishes"),

    # common bugs (autograder/testdata/netviz_variants.py)
    Case("bug_signed_saliency", lambda: solved(_bug("saliency: signed gradient (no abs)")), fails=SALIENCY,
         why="no .abs(): negative saliency"),
    Case("bug_saliency_of_the_weights", lambda: solved(_bug("saliency: gradient with respect to the weights")),
         fails=SALIENCY, why="the gradient of the first convolution's weights, not of the image"),
    Case("bug_saliency_every_class_in_y", lambda: solved(_bug("saliency: scores[:, y] (every class in y, for every image)")),
         fails=SALIENCY, why="scores[:, y].sum(): an (N, N) matrix of scores"),
    Case("bug_saliency_in_training_mode", lambda: solved(_bug("saliency: the model put in training mode")),
         fails=SALIENCY, why="model.train() 'to get gradients'"),
    Case("bug_saliency_channel_sum", lambda: solved(_bug("saliency: sum over channels")),
         fails={"test_saliency_hidden"}, why="right on grey images, wrong on 3 channels"),
    Case("bug_fooling_descent", lambda: solved(_bug("fooling: descent instead of ascent")), fails=FOOLING,
         why="X_fooling -= ...: the target's score goes down"),
    Case("bug_fooling_no_zero_grad", lambda: solved(_bug("fooling: no zero_grad (the image's gradient accumulates)")),
         fails=FOOLING, why="the image's .grad is never reset"),
    Case("bug_fooling_no_early_stop", lambda: solved(_bug("fooling: no early stop")), fails=FOOLING,
         why="keeps stepping after the model says target_y: a large change"),
    Case("bug_visualization_descent", lambda: solved(_bug("visualization: descent instead of ascent")),
         fails=VISUALIZATION, why="img -= ...: the class's score goes down"),
    Case("bug_visualization_no_zero_grad", lambda: solved(_bug("visualization: no zero_grad")), fails=VISUALIZATION,
         why="the image's .grad is never reset"),
    Case("bug_visualization_l2_sign", lambda: solved(_bug("visualization: the L2 penalty added instead of subtracted")),
         fails={"test_class_visualization_hidden"}, why="+ l2_reg * ||img||^2: the penalty pushes pixels out"),
    Case("bug_generator_left_in_training_mode", lambda: solved(_bug(
        "interpolation: the generator left in training mode (the CGAN lab's sampling pattern)")),
         fails=INTERPOLATION, why="generator.train() at the end, copied from the CGAN lab"),
    Case("bug_logits_not_probabilities", lambda: solved(_bug("interpolation: logits instead of probabilities")),
         fails=INTERPOLATION, why="no softmax"),

    # code that misbehaves
    Case("uses_the_notebooks_model", lambda: solved({GLOBAL_MODEL[0]: [GLOBAL_MODEL[1:]]}), fails=SALIENCY,
         why="compute_saliency_maps uses the notebook's `model`, not the model it is given"),
    Case("class_visualization_never_ends", lambda: solved({FOREVER[0]: [FOREVER[1:]]}), fails=VISUALIZATION,
         problems={"test timeout", "cell timeout"}, why="an endless loop: its tests time out, the others pass"),
]


def write(folder):
    """Write the class into `folder` (<student>/netviz.ipynb, or <student>/netviz/netviz.ipynb); {student: Case}."""
    folder = Path(folder)
    written = {}
    for case in CASES:
        built = case.build()
        data = built if isinstance(built, bytes) else nbformat.writes(built).encode()
        path = folder / case.student / ("netviz/netviz.ipynb" if case.layout == "nested" else "netviz.ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[case.student] = case
    return written


if __name__ == "__main__":  # python -m autograder.testdata.netviz_class FOLDER
    target = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "out" / "netviz_class")
    print(f"{len(write(target))} submissions written to {target}")
