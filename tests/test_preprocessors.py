"""The lab's nbgrader preprocessors (autograder.scoring.preprocessors) and the post-execution check
(autograder.scoring.findings.after_execution), on small notebooks built in memory: no kernel runs here.

What they must guarantee: stderr alone never costs a test its points, an exception always does,
a test cell's result is never read as partial credit, floods of output are cut without hiding
stderr or the grader's flood marker, and feedback never shows hidden test code.
"""
import collections
import copy
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from autograder.config import Limits
from autograder.scoring.preprocessors import (FLOOD, BoundedExecute, HideHiddenTests, LimitOutput, NoPartialCredit,
                                      StderrIsNotScored)
from autograder.scoring.findings import after_execution

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def grade_cell(source="assert True", outputs=(), grade_id="test_x", points=2):
    """A locked nbgrader test cell worth `points`, with the given outputs."""
    cell = new_code_cell(source, outputs=list(outputs))
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                                 "solution": False, "schema_version": 3}
    return cell


def stream(name, text):
    return new_output("stream", name=name, text=text)


def error(ename="AssertionError", evalue="wrong", traceback=None):
    return new_output("error", ename=ename, evalue=evalue,
                      traceback=traceback if traceback is not None else [f"{ename}: {evalue}"])


def run(preprocessor, *cells):
    nb = new_notebook(cells=list(cells))
    nb, resources = preprocessor.preprocess(nb, {})
    nbformat.validate(nb)  # what nbgrader writes back must still be a valid notebook
    return nb


USER_WARNING = ("/home/student/cgan_lib/train.py:12: UserWarning: Using a target size that is different "
                "to the input size.\n  return F.mse_loss(a, b)\n")


# --------------------------------------------------------------------------- StderrIsNotScored
def test_stderr_of_a_test_cell_is_shown_as_stdout_with_its_text_kept():
    nb = run(StderrIsNotScored(), grade_cell(outputs=[stream("stdout", "ok\n"), stream("stderr", USER_WARNING)]))
    outputs = nb.cells[0].outputs
    assert [o.name for o in outputs] == ["stdout", "stdout"], "a test cell's stderr becomes stdout"
    assert outputs[1].text == USER_WARNING, "the warning's text is kept, for the student to read"


def test_stderr_of_an_ordinary_cell_is_left_alone():
    nb = run(StderrIsNotScored(), new_code_cell("train()", outputs=[stream("stderr", USER_WARNING)]))
    assert nb.cells[0].outputs[0].name == "stderr", "only test cells are changed"
    assert nb.cells[0].outputs[0].text == USER_WARNING


def test_a_warning_alone_no_longer_costs_the_test_its_points():
    cell = grade_cell(outputs=[stream("stderr", USER_WARNING)], points=2)
    assert determine_grade(copy.deepcopy(cell)) == (0, 2.0), "stock nbgrader scores any stderr 0"
    nb = run(StderrIsNotScored(), cell)
    assert determine_grade(nb.cells[0]) == (2.0, 2.0), "after StderrIsNotScored a warning alone gets full points"


def test_an_exception_still_scores_zero_after_stderr_is_unscored():
    cell = grade_cell(outputs=[stream("stderr", USER_WARNING), error("AssertionError", "the loss did not decrease")])
    nb = run(StderrIsNotScored(), cell)
    assert determine_grade(nb.cells[0]) == (0, 2.0), "an error output still fails the test"


# --------------------------------------------------------------------------- NoPartialCredit
def test_a_number_shown_as_the_test_result_is_not_partial_credit():
    result = new_output("execute_result", data={"text/plain": "3.0"}, execution_count=7)
    cell = grade_cell(outputs=[result, error()], points=5)
    assert determine_grade(copy.deepcopy(cell)) == (3.0, 5.0), \
        "stock nbgrader reads the execute_result 3.0 as partial credit, even before an error"
    nb = run(NoPartialCredit(), cell)
    shown = nb.cells[0].outputs[0]
    assert shown.output_type == "display_data" and "execution_count" not in shown, \
        "the result is kept as a plain display"
    assert shown.data["text/plain"] == "3.0"
    assert determine_grade(nb.cells[0]) == (0, 5.0), "after NoPartialCredit the error scores the test 0"


def test_a_result_without_an_error_gets_full_points_not_its_value():
    cell = grade_cell(outputs=[new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1)], points=5)
    nb = run(NoPartialCredit(), cell)
    assert determine_grade(nb.cells[0]) == (5.0, 5.0), "a passing test gets all its points whatever it shows"


def test_results_of_ordinary_cells_are_left_alone():
    result = new_output("execute_result", data={"text/plain": "3.0"}, execution_count=1)
    nb = run(NoPartialCredit(), new_code_cell("x", outputs=[result]))
    assert nb.cells[0].outputs[0].output_type == "execute_result"


# --------------------------------------------------------------------------- LimitOutput
FLOODED_STDOUT = "".join(f"epoch {i}: loss 0.5\n" for i in range(5000))


def test_a_flood_of_stdout_is_cut_and_stderr_after_it_survives():
    cell = grade_cell(outputs=[stream("stdout", FLOODED_STDOUT), stream("stderr", "Traceback? no, a warning\n")])
    nb = run(LimitOutput(), cell)
    stdout, stderr = nb.cells[0].outputs
    lines = stdout.text.split("\n")
    assert 1000 <= len(lines) <= 1002, f"stdout is cut to about max_lines (1000) lines, got {len(lines)}"
    assert lines[0] == "epoch 0: loss 0.5", "the start of the output is kept"
    assert lines[-1] == "... [output truncated by the grader] ...", "the cut is marked"
    assert stderr.name == "stderr" and stderr.text == "Traceback? no, a warning\n", \
        "stderr has its own budget: a stdout flood never removes it (so it can still score the cell)"
    assert determine_grade(nb.cells[0])[0] == 0, "the surviving stderr still scores as stock nbgrader would"


def test_max_lines_is_shared_by_the_outputs_of_one_stream():
    chunk = "".join(f"line {i}\n" for i in range(600))
    nb = run(LimitOutput(), new_code_cell("x", outputs=[stream("stdout", chunk), stream("stderr", "w\n"),
                                                       stream("stdout", chunk)]))
    first, _, second = nb.cells[0].outputs
    assert first.text == chunk, "the first 600 lines fit"
    assert second.text.endswith("\n... [output truncated by the grader] ..."), "the second output is cut"
    kept = [line for line in second.text.split("\n")[:-1] if line]
    assert kept == [f"line {i}" for i in range(len(kept))], "the second output keeps its first lines"
    assert 398 <= len(kept) <= 400, f"only the ~400 lines left of the 1000 are kept, got {len(kept)}"


def test_the_flood_marker_of_bounded_execute_survives_truncation():
    flood = FLOOD.format(name="stdout", limit=1_000_000)
    text = FLOODED_STDOUT[:50_000] + "\n" + flood  # as BoundedExecute leaves it: the marker is the last line
    nb = run(LimitOutput(), new_code_cell("x", outputs=[stream("stdout", text)]))
    kept = nb.cells[0].outputs[0].text
    assert kept.split("\n")[-1] == flood, "the '[output flood: ...' line is kept after the truncation mark"
    assert "... [output truncated by the grader] ..." in kept
    assert after_execution(nb, Limits())[0][0] == "output flood", "so after_execution can still report the flood"


def test_short_outputs_are_left_alone():
    outputs = [stream("stdout", "a\nb\n"), stream("stderr", "c\n"), error(traceback=["t"] * 10)]
    nb = run(LimitOutput(), new_code_cell("x", outputs=copy.deepcopy(outputs)))
    assert nb.cells[0].outputs == outputs


def test_a_long_traceback_is_cut_in_the_middle():
    frames = [f"frame {i}" for i in range(500)]
    nb = run(LimitOutput(), grade_cell(outputs=[error("RecursionError", "maximum recursion depth exceeded",
                                                      traceback=frames)]))
    traceback = nb.cells[0].outputs[0].traceback
    assert len(traceback) == 101, "max_traceback (100) entries and the mark"
    assert traceback[:50] == frames[:50] and traceback[-50:] == frames[-50:], "both ends of the traceback are kept"
    assert traceback[50] == "... [traceback truncated] ..."
    assert determine_grade(nb.cells[0])[0] == 0, "a truncated error still fails the test"


# --------------------------------------------------------------------------- HideHiddenTests
HIDDEN_1 = "secret_value = hidden_reference_check(g, seed=1234)"
HIDDEN_2 = 'assert secret_value < 0.5, "the generated images are not varied enough"'
SHARED = "g = make_generator(latent_dim=64)"  # in the hidden region and in a visible cell
MESSAGE = "the generated images are not varied enough"


def hidden_test_cell(outputs=()):
    source = "\n".join([
        "# visible part of the test",
        "assert generate(g).shape == (4, 1, 28, 28)",
        "### BEGIN HIDDEN TESTS",
        SHARED,
        HIDDEN_1,
        "ok = True",  # shorter than 16 characters: too common to redact
        HIDDEN_2,
        "### END HIDDEN TESTS",
        "print('done')",
    ])
    return grade_cell(source, outputs=list(outputs), grade_id="test_variety", points=3)


def quoting_traceback():
    """The traceback IPython would show: it quotes the failing hidden line."""
    return ["---------------------------------------------------------------------------",
            "AssertionError                            Traceback (most recent call last)",
            f"Cell In[12], line 7\n      5 {HIDDEN_1}\n      6 ok = True\n----> 7 {HIDDEN_2}",
            f"AssertionError: {MESSAGE}"]


def test_hidden_test_source_is_replaced_by_the_placeholder():
    nb = run(HideHiddenTests(), new_code_cell(SHARED), hidden_test_cell())
    source = nb.cells[1].source
    for hidden in (HIDDEN_1, HIDDEN_2, "ok = True", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"):
        assert hidden not in source, f"feedback must not show the hidden line {hidden!r}"
    assert HideHiddenTests().placeholder in source, "the hidden region is marked by the placeholder"
    assert "assert generate(g).shape == (4, 1, 28, 28)" in source and "print('done')" in source, \
        "the visible part of the test is kept"


def test_a_failing_hidden_test_shows_only_its_message():
    failure = error("AssertionError", MESSAGE, traceback=quoting_traceback())
    nb = run(HideHiddenTests(), new_code_cell(SHARED), hidden_test_cell(outputs=[failure]))
    assert nb.cells[1].outputs[0].traceback == [f"AssertionError: {MESSAGE}"], \
        "the traceback, which quotes hidden code, is reduced to 'AssertionError: <message>'"
    assert nb.cells[1].outputs[0].evalue == MESSAGE, "the assertion's message stays readable"
    assert determine_grade(nb.cells[1])[0] == 0, "the test still scores 0"


def test_hidden_lines_printed_by_other_cells_are_redacted():
    printed = f"calling the tests:\n    {HIDDEN_1}\n{SHARED}\nok = True\n"
    display = new_output("display_data", data={"text/plain": f"'{HIDDEN_2}'", "text/html": f"<pre>{HIDDEN_2}</pre>"})
    nb = run(HideHiddenTests(), new_code_cell(SHARED), hidden_test_cell(),
             new_code_cell("spy()", outputs=[stream("stdout", printed), display]))
    text = nb.cells[2].outputs[0].text
    assert text.split("\n") == ["calling the tests:", "[redacted: hidden test code]", SHARED, "ok = True", ""], \
        "a printed hidden line (>= 16 chars) is redacted; a line also in a visible cell, and short lines, are kept"
    data = nb.cells[2].outputs[1].data
    assert HIDDEN_2 not in data["text/plain"] and HIDDEN_2 not in data["text/html"], \
        "rich displays are redacted too"


def test_hidden_lines_in_another_cells_plain_traceback_are_redacted():
    leak = error("NameError", "name 'x' is not defined", traceback=[f"----> 5 {HIDDEN_1}", "NameError: x"])
    nb = run(HideHiddenTests(), hidden_test_cell(), new_code_cell("later()", outputs=[leak]))
    assert nb.cells[1].outputs[0].traceback == ["[redacted: hidden test code]", "NameError: x"]


def test_hidden_lines_in_another_cells_coloured_traceback_are_redacted():
    # As IPython 9 formats a frame of hidden test code in a later cell's traceback
    # (e.g. after `raise sys.last_value`): the quoted line is split by colour codes.
    coloured = ("\x1b[92m----> \x1b[39m\x1b[92m5\x1b[39m \x1b[38;5;255msecret_value\x1b[39m \x1b[38;5;204m=\x1b[39m "
                "\x1b[38;5;255mhidden_reference_check\x1b[39m\x1b[38;5;204m(\x1b[39m\x1b[38;5;255mg\x1b[39m"
                "\x1b[38;5;204m,\x1b[39m \x1b[38;5;255mseed\x1b[39m\x1b[38;5;204m=\x1b[39m\x1b[38;5;141m1234"
                "\x1b[39m\x1b[38;5;204m)\x1b[39m\n")
    assert HIDDEN_1 in ANSI.sub("", coloured), "the fixture really quotes the hidden line"
    leak = error("AssertionError", MESSAGE, traceback=[coloured, f"AssertionError: {MESSAGE}"])
    nb = run(HideHiddenTests(), hidden_test_cell(), new_code_cell("raise sys.last_value", outputs=[leak]))
    shown = ANSI.sub("", "\n".join(nb.cells[1].outputs[0].traceback))
    assert HIDDEN_1 not in shown, "a coloured traceback must not show hidden test code either"


def test_notebooks_without_hidden_tests_are_unchanged():
    cells = [new_markdown_cell("# CGAN"), grade_cell("assert True", outputs=[stream("stdout", "a long line printed here\n")]),
             new_code_cell("print(1)", outputs=[error(traceback=["t1", "t2"])])]
    nb = run(HideHiddenTests(), *copy.deepcopy(cells))
    assert nb.cells == cells


# --------------------------------------------------------------------------- BoundedExecute.output
def stream_msg(name, text):
    return {"msg_type": "stream", "header": {"msg_type": "stream"}, "parent_header": {"msg_id": "x"},
            "content": {"name": name, "text": text}, "metadata": {}}


@pytest.fixture
def bounded():
    ex = BoundedExecute(max_stream_chars=100)
    ex.reset_execution_trackers()  # nbclient's per-run state: output hooks, display ids
    ex.clear_before_next_output = False  # set by nbclient before each cell
    ex._stream_chars = collections.defaultdict(int)  # set by BoundedExecute.preprocess
    return ex


def texts(outs, name):
    return "".join(o.text for o in outs if o.output_type == "stream" and o.name == name)


def test_stdout_is_kept_up_to_max_stream_chars_then_marked_and_dropped(bounded):
    outs = []
    for text in ["a" * 60, "b" * 60, "c" * 10, "d" * 500]:
        bounded.output(outs, stream_msg("stdout", text), None, 0)
    flood = FLOOD.format(name="stdout", limit=100)
    assert texts(outs, "stdout") == "a" * 60 + "b" * 40 + "\n" + flood, \
        "the first 100 characters are kept, then the flood marker"
    assert len(outs) == 2, "messages after the flood are dropped, not kept"


def test_stderr_has_its_own_budget(bounded):
    outs = []
    bounded.output(outs, stream_msg("stdout", "o" * 150), None, 0)
    bounded.output(outs, stream_msg("stderr", "e" * 90), None, 0)
    bounded.output(outs, stream_msg("stderr", "f" * 20), None, 0)
    bounded.output(outs, stream_msg("stdout", "more"), None, 0)
    assert texts(outs, "stdout") == "o" * 100 + "\n" + FLOOD.format(name="stdout", limit=100)
    assert texts(outs, "stderr") == "e" * 90 + "f" * 10 + "\n" + FLOOD.format(name="stderr", limit=100), \
        "a stdout flood does not use up stderr's 100 characters"


def test_each_cell_has_its_own_budget_and_other_outputs_pass(bounded):
    first, second = [], []
    bounded.output(first, stream_msg("stdout", "x" * 150), None, 0)
    bounded.output(second, stream_msg("stdout", "y" * 100), None, 1)
    result = {**stream_msg("stdout", ""), "msg_type": "execute_result", "header": {"msg_type": "execute_result"},
              "content": {"data": {"text/plain": "'z'"}, "metadata": {}, "execution_count": 1}}
    bounded.output(first, result, None, 0)
    assert texts(second, "stdout") == "y" * 100, "exactly max_stream_chars in another cell is kept whole"
    assert first[-1].output_type == "execute_result", "outputs other than streams are not bounded"


def test_output_exactly_at_the_limit_then_more_is_marked(bounded):
    outs = []
    bounded.output(outs, stream_msg("stdout", "a" * 100), None, 0)
    bounded.output(outs, stream_msg("stdout", "b"), None, 0)
    bounded.output(outs, stream_msg("stdout", "c"), None, 0)
    assert texts(outs, "stdout") == "a" * 100 + "\n" + FLOOD.format(name="stdout", limit=100)


# --------------------------------------------------------------------------- after_execution
def executed(*cells):
    return new_notebook(cells=[new_markdown_cell("# CGAN"), *cells])


@pytest.mark.parametrize("output, kind", [
    (error("CellTimeoutError", "No reply from kernel before timeout",
           ["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"]), "cell timeout"),
    (error("SystemExit", "0"), "exit"),
    (error("RuntimeError", "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                           "can't allocate memory: you tried to allocate 8589934592 bytes."), "out of memory"),
    (error("MemoryError", ""), "out of memory"),
    (stream("stdout", "epoch 1\n" + FLOOD.format(name="stdout", limit=1_000_000)), "output flood"),
])
def test_after_execution_names_what_grading_hit(output, kind):
    problems = after_execution(executed(new_code_cell("train()", outputs=[output])), Limits())
    assert [k for k, _ in problems] == [kind], f"{output} should be reported as {kind!r}"
    assert problems[0][1].startswith("cell 2 "), "the detail names the cell (by position for ordinary cells)"


def test_after_execution_labels_test_cells_by_grade_id_and_gives_limits():
    limits = Limits()
    problems = after_execution(executed(grade_cell(outputs=[error("CellTimeoutError", "x")], grade_id="test_train"),
                                        new_code_cell("x", outputs=[stream("stderr", FLOOD.format(name="stderr",
                                                                                                  limit=10))])),
                               limits)
    assert problems == [
        ("cell timeout", f"cell 'test_train' ran longer than {limits.cell_timeout} s: interrupted"),
        ("output flood", f"cell 3 printed more than {limits.max_output_chars:,} characters to stderr: kept the start"),
    ]


def test_after_execution_reports_each_problem_once():
    outputs = [error("SystemExit", "1"), error("SystemExit", "1")]
    assert after_execution(executed(new_code_cell("x", outputs=outputs)), Limits()) == \
        [("exit", "cell 2 called sys.exit() or exit(); the grader went on")]


def test_a_clean_notebook_has_no_problems():
    nb = executed(new_code_cell("print(1)", outputs=[stream("stdout", "1\n"), stream("stderr", USER_WARNING)]),
                  grade_cell(outputs=[error("AssertionError", "the loss did not decrease")]),
                  new_code_cell("x = 1"))
    assert after_execution(nb, Limits()) == [], "ordinary errors and warnings are the tests' business, not problems"
