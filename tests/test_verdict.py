"""The verdict is decided in the grader from data: honest work gets its points, nothing else does.

These run autograder.scoring.verdict.judge directly (no nbgrader, no kernel, no sandbox: the
probe process runs unsandboxed here; tests/test_pipeline.py grades the same attacks in the
sandbox): the test cells' trusted sources from the solution notebook, the student's cells
from a submission, and a real probe process (python -m cgan_lib.checks.server).
"""
import os

import nbformat
import pytest

from autograder.assignment import Assignment
from autograder.isolation.probe import probe_launcher
from autograder.scoring.judging import is_test
from autograder.scoring.verdict import judge
from autograder.testdata import attacks
from autograder.testdata.sample_class import RELEASE, solved
from autograder.testdata.variants import BUGS, CORRECT

SPEC = Assignment.load("cgan")
FAST_TESTS = ["test_generator", "test_generator_hidden", "test_discriminator", "test_discriminator_hidden",
              "test_train_step", "test_train_step_hidden", "test_generate_latent_points",
              "test_generate_latent_points_hidden"]


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def trusted():
    source = nbformat.read(SPEC.source, as_version=4)
    cells = {grade_id(c): c.source for c in source.cells if grade_id(c)}
    tests = [(grade_id(c), c.source) for c in source.cells if is_test(c)]
    return [(g, cells[g]) for g in SPEC.prelude], tests


def student_cells(notebook):
    locked = {grade_id(c) for c in nbformat.read(RELEASE, as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("locked") or is_test(c)}
    return [(grade_id(c) or f"cell {i + 1}", c.source, bool(c.metadata.get("nbgrader", {}).get("solution")))
            for i, c in enumerate(notebook.cells) if c.cell_type == "code" and grade_id(c) not in locked]


def verdicts(trusted, notebook, tests=FAST_TESTS, timeout=60):
    prelude, all_tests = trusted
    chosen = [(g, s) for g, s in all_tests if g in tests]
    environment = dict(os.environ, NBGRADER_EXECUTION="autograde", OMP_NUM_THREADS="1")
    judgement = judge(chosen, prelude, student_cells(notebook), SPEC.answers, probe_launcher(environment), timeout)
    return judgement, {g: v.passed for g, v in judgement.verdicts.items()}


def with_cells(notebook, *sources, after="imports"):
    at = next(i for i, c in enumerate(notebook.cells) if grade_id(c) == after) + 1
    for source in reversed(sources):
        notebook.cells.insert(at, nbformat.v4.new_code_cell(source))
    return notebook


def edited(notebook, grade, old, new):
    cell = next(c for c in notebook.cells if grade_id(c) == grade)
    assert old in cell.source, f"{old!r} not in {grade}"
    cell.source = cell.source.replace(old, new, 1)
    return notebook


def test_the_solution_passes_everything_the_release_nothing(trusted):
    judgement, passed = verdicts(trusted, solved(), tests=FAST_TESTS + ["test_training_run"], timeout=120)
    assert all(passed.values()), {g: v.message for g, v in judgement.verdicts.items() if not v.passed}
    assert not judgement.problems, judgement.problems
    judgement, passed = verdicts(trusted, nbformat.read(RELEASE, as_version=4))
    assert not any(passed.values()), passed
    message = judgement.verdicts["test_generator"].message
    assert "NotImplementedError" in message and "Not done yet" in message, message


@pytest.mark.parametrize("variant", list(CORRECT)[::4])
def test_correct_variants_pass_in_the_probe_process(trusted, variant):
    judgement, passed = verdicts(trusted, solved(CORRECT[variant]))
    assert all(passed.values()), {g: v.message for g, v in judgement.verdicts.items() if not v.passed}


@pytest.mark.parametrize("bug", list(BUGS)[::5])
def test_bugs_fail_their_test_in_the_probe_process_with_the_same_message(trusted, bug):
    edits, test, phrase = BUGS[bug]
    judgement, passed = verdicts(trusted, solved(edits), tests=[test])
    assert not passed[test] and phrase in judgement.verdicts[test].message, judgement.verdicts[test].message


@pytest.mark.parametrize("attack", ["HOOK_INPUT_TRANSFORMER", "HOOK_SHOWTRACEBACK", "HOOK_RUN_CELL", "HOOK_EVENTS",
                                    "CODE_FROM_A_FILE", "REBIND_IMPORTED", "PATCH_THROUGH_ALIAS", "CAPTURED",
                                    "READ_HISTORY", "FORGED_OUTPUT", "FORGE_FROM_A_CLASS_BODY",
                                    "FORGE_FROM_A_DECORATOR", "FORGE_FROM_A_DEFAULT"])
def test_an_attack_with_empty_answers_gets_nothing(trusted, attack):
    notebook = with_cells(nbformat.read(RELEASE, as_version=4), getattr(attacks, attack))
    judgement, passed = verdicts(trusted, notebook)
    assert not any(passed.values()), {g: v.message for g, v in judgement.verdicts.items() if v.passed}


def test_an_attack_on_a_buggy_answer_gets_exactly_its_honest_score(trusted):
    edits, test, _ = BUGS["generator ignores its labels"]
    honest = verdicts(trusted, solved(edits))[1]
    for attack in ("REBIND_IMPORTED", "PATCH_THROUGH_ALIAS", "CODE_FROM_A_FILE", "FORGE_FROM_A_DECORATOR"):
        attacked = verdicts(trusted, with_cells(solved(edits), getattr(attacks, attack)))[1]
        assert attacked == honest and not honest[test], (attack, attacked, honest)


def test_code_that_runs_while_loading_is_refused_and_reported(trusted):
    judgement, _ = verdicts(trusted, with_cells(solved(), attacks.FORGE_FROM_A_DECORATOR, attacks.FORGE_FROM_A_DEFAULT),
                            tests=["test_generator"])
    reported = " ".join(detail for kind, detail in judgement.problems if kind == "not loaded for the tests")
    assert "def helper" in reported and "decorator" in reported, judgement.problems


def test_one_answer_cannot_forge_another_answers_tests(trusted):
    """Generator.__init__ rewrites the probes; the Discriminator (empty) still gets nothing."""
    notebook = solved()
    empty = next(c for c in nbformat.read(RELEASE, as_version=4).cells if grade_id(c) == "discriminator").source
    next(c for c in notebook.cells if grade_id(c) == "discriminator").source = empty
    edited(notebook, "generator", "        super().__init__()\n", "        super().__init__()\n" + attacks.FORGE_OTHER_TESTS_FROM_GENERATOR)
    _, passed = verdicts(trusted, notebook)
    assert not passed["test_discriminator"] and not passed["test_discriminator_hidden"], passed
    assert passed["test_train_step"] and passed["test_generate_latent_points"], passed


def test_a_crash_or_a_hang_costs_only_its_own_tests(trusted):
    notebook = edited(solved(), "discriminator", "        super().__init__()\n",
                      "        super().__init__()\n" + attacks.KILL_THE_PROBE)
    judgement, passed = verdicts(trusted, notebook)
    assert not passed["test_discriminator"] and "stopped the process" in judgement.verdicts["test_discriminator"].message
    assert passed["test_generator"] and passed["test_train_step"] and passed["test_generate_latent_points"], passed

    notebook = edited(solved(), "discriminator", "        d_in = torch.cat(", attacks.HANG_IN_FORWARD + "        d_in = torch.cat(")
    judgement, passed = verdicts(trusted, notebook, tests=["test_discriminator", "test_generator"], timeout=5)
    assert not passed["test_discriminator"] and "did not finish within 5 s" in judgement.verdicts["test_discriminator"].message
    assert passed["test_generator"], judgement.verdicts["test_generator"].message
    assert ("test timeout", "test 'test_discriminator' ran past 5 s: failed") in judgement.problems


def test_bytes_written_into_every_descriptor_spoil_only_their_own_test(trusted):
    """The Generator writes garbage into every file descriptor it has: its own test's reply pipe
    among them (its tests fail, and say why); the other tests, each with fresh pipes, pass."""
    notebook = edited(solved(), "generator", "        super().__init__()\n",
                      "        super().__init__()\n" + attacks.WRITE_INTO_THE_PIPES)
    judgement, passed = verdicts(trusted, notebook)
    assert not passed["test_generator"] and "spoiled" in judgement.verdicts["test_generator"].message
    others = {g: p for g, p in passed.items() if not g.startswith("test_generator")}
    assert all(others.values()), {g: v.message for g, v in judgement.verdicts.items() if g in others and not v.passed}


def test_a_process_killed_by_one_test_costs_the_test_beside_it_nothing(trusted):
    """Two tests run at once (two lanes). The Discriminator kills the process that serves the tests while
    the generator's test, beside it, is under way (its __init__ sleeps): that test is judged again, alone."""
    every_process_of_the_probe = "        import os, signal\n        os.killpg(0, signal.SIGKILL)\n"
    notebook = edited(solved(), "discriminator", "        super().__init__()\n",
                      "        super().__init__()\n" + every_process_of_the_probe)
    edited(notebook, "generator", "        super().__init__()\n", "        super().__init__()\n        import time\n"
                                                                     "        time.sleep(1)\n")
    judgement, passed = verdicts(trusted, notebook, tests=["test_discriminator", "test_generator"])
    assert passed["test_generator"], judgement.verdicts["test_generator"].message
    assert list(judgement.verdicts) == ["test_generator", "test_discriminator"]  # the notebook's order
