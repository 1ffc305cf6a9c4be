"""The bounds on an executed notebook (autograder.scoring.output_limits) and on its feedback page
(autograder.reports.feedback_exporter), on notebooks built in memory: no kernel runs here.

What they must guarantee: no kind of output (displays, results, streams, tracebacks, written
answers, attachments) makes the graded notebook or the feedback page large; a marker is left
where something was cut and the cell records it for problems.csv; what scoring reads (errors,
stderr, BoundedExecute's flood marker) survives every cut.
"""
import copy
import re
from dataclasses import replace

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from autograder.reports.feedback_exporter import SafeFeedbackExporter
from autograder.scoring.output_limits import (CUT_KEY, MB, CapNotebookSize, CapOutputs, OutputLimits,
                                              notebook_size, output_cut_problems)
from autograder.scoring.preprocessors import FLOOD

LIMITS = OutputLimits()
MARKER = re.compile(r"\[(output|answer|code) cut by the grader: [^\]]+\]")


def display(size, mime="image/png"):
    return new_output("display_data", data={mime: "A" * size, "text/plain": "<Figure>"})


def grade_cell(outputs, grade_id="test_x"):
    cell = new_code_cell("check()", outputs=outputs)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": 2,
                                 "solution": False, "schema_version": 3}
    return cell


def cap(*cells, limits=LIMITS):
    nb = new_notebook(cells=list(cells))
    nb, _ = CapOutputs(limits=limits).preprocess(nb, {})
    nb, _ = CapNotebookSize(limits=limits).preprocess(nb, {})
    nbformat.validate(nb)  # what nbgrader writes back must still be a valid notebook
    return nb


def shown(cell):
    """The texts a cell's outputs show."""
    texts = []
    for output in cell.outputs:
        texts.append(output.get("text") or output.get("data", {}).get("text/plain")
                     or "\n".join(output.get("traceback", [])))
    return texts


# ------------------------------------------------------------------------------------------ displays
def test_ten_displays_of_10_MB_become_one_marker_and_the_cell_is_named():
    nb = cap(new_code_cell("for _ in range(10): display(huge)", outputs=[display(10 * MB) for _ in range(10)]))
    assert notebook_size(nb) < 100_000, "100 MB of displays leave a small notebook"
    assert shown(nb.cells[0]) == ["[output cut by the grader: a display output passed the 1 MB allowed for one output]"]
    assert output_cut_problems(nb) == [
        ("output cut", "cell 1: a display output passed the 1 MB allowed for one output")]


def test_a_cell_keeps_plots_up_to_its_budget_then_one_marker():
    figure = 900_000  # a large matplotlib figure, as base64 PNG
    nb = cap(new_code_cell("train()", outputs=[display(figure) for _ in range(10)]))
    kept = [o for o in nb.cells[0].outputs if "image/png" in o.data]
    assert len(kept) == LIMITS.display_bytes_per_cell // (figure + 200), "the first figures that fit are kept whole"
    assert all(len(o.data["image/png"]) == figure for o in kept)
    assert shown(nb.cells[0])[-1] == "[output cut by the grader: this cell's display output passed 4 MB]"
    assert len(nb.cells[0].outputs) == len(kept) + 1, "the cut figures leave one marker, not one each"


def test_many_small_displays_stop_at_the_notebooks_budget():
    cells = [new_code_cell(f"show({i})", outputs=[display(100_000, "text/html")]) for i in range(300)]
    nb = cap(*cells)
    kept = [i for i, c in enumerate(nb.cells) if "text/html" in c.outputs[0].data]
    assert kept == list(range(len(kept))), "the first displays of the notebook are the ones kept"
    assert len(kept) * 100_000 <= LIMITS.display_bytes_per_notebook < (len(kept) + 1) * 100_200
    cut = nb.cells[len(kept)]
    assert shown(cut) == ["[output cut by the grader: the notebook's display output passed 16 MB]"]
    assert len(output_cut_problems(nb)) == 300 - len(kept), "every cell that lost output is named"
    assert notebook_size(nb) < LIMITS.display_bytes_per_notebook + 1 * MB


def test_a_cut_result_keeps_its_place_and_execution_count():
    result = new_output("execute_result", data={"text/html": "<p>" + "x" * (2 * MB) + "</p>"}, execution_count=7)
    nb = cap(new_code_cell("df", outputs=[result], execution_count=7))
    output = nb.cells[0].outputs[0]
    assert output.output_type == "execute_result" and output.execution_count == 7
    assert MARKER.fullmatch(output.data["text/plain"]) and list(output.data) == ["text/plain"]


def test_huge_output_metadata_counts_too():
    output = new_output("display_data", data={"text/plain": "x"}, metadata={"junk": "y" * (5 * MB)})
    nb = cap(new_code_cell("x", outputs=[output]))
    assert notebook_size(nb) < 10_000


# ------------------------------------------------------------------------------------------ streams and errors
def test_a_stream_is_cut_to_its_start_with_the_flood_marker_kept_and_stderr_still_scores():
    flood = FLOOD.format(name="stdout", limit=1_000_000)
    stdout = new_output("stream", name="stdout", text="epoch 1: loss 0.5\n" * 300_000 + flood)
    later = new_output("stream", name="stdout", text="more\n" * 100_000)
    stderr = new_output("stream", name="stderr", text="UserWarning: something\n")
    nb = cap(grade_cell([stdout, stderr, later]))
    outputs = nb.cells[0].outputs
    assert [o.name for o in outputs] == ["stdout", "stderr"], "the stream's later output goes, stderr stays"
    lines = outputs[0].text.split("\n")
    assert lines[0] == "epoch 1: loss 0.5" and lines[-2:] == [
        "[output cut by the grader: this cell's stdout passed 200,000 characters]", flood]
    assert len(outputs[0].text) < LIMITS.stream_chars_per_cell + 200
    assert determine_grade(nb.cells[0])[0] == 0, "stderr in a test cell still scores it as nbgrader does"


def test_printing_across_the_notebook_stops_at_its_budget_but_every_stream_is_still_there():
    cells = [new_code_cell("p()", outputs=[new_output("stream", name="stdout", text="y" * 150_000)]) for _ in range(40)]
    nb = cap(*cells)
    total = sum(len(c.outputs[0].text) for c in nb.cells)
    assert total < LIMITS.printed_chars_per_notebook + 40 * 200
    assert all(len(c.outputs) == 1 for c in nb.cells), "no stream output disappears"
    assert "the notebook's printed output passed 4,000,000 characters" in nb.cells[-1].outputs[0].text


def test_a_huge_traceback_keeps_the_error_its_first_frames_and_its_message():
    frames = [f"\x1b[0;32mFile frame_{i}.py:1\x1b[0m in f{i}()\n" + "x" * 500 for i in range(20_000)]
    error = new_output("error", ename="RecursionError", evalue="maximum recursion depth exceeded " + "!" * (10 * MB),
                       traceback=frames + ["RecursionError: maximum recursion depth exceeded"])
    nb = cap(grade_cell([error]))
    (output,) = nb.cells[0].outputs
    assert output.ename == "RecursionError" and output.evalue.startswith("maximum recursion depth exceeded")
    size = len(output.evalue) + sum(len(line) for line in output.traceback)
    assert size < 2 * LIMITS.traceback_chars + 1_000
    assert output.traceback[0].startswith("\x1b[0;32mFile frame_0.py"), "the first frame is kept"
    assert output.traceback[-1] == "RecursionError: maximum recursion depth exceeded", "so is the message"
    assert any(MARKER.fullmatch(line) for line in output.traceback), "the cut is marked"
    assert determine_grade(nb.cells[0])[0] == 0, "the error still fails the test"


# ------------------------------------------------------------------------------------------ answers and code
def test_a_huge_written_answer_is_cut_and_the_instructors_text_is_not():
    answer = new_markdown_cell("My answer is " + "very " * (10 * MB // 5))
    answer.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "q1", "points": 1, "schema_version": 3}
    instructions = new_markdown_cell("# Part 1\n" + "Read this. " * 20_000)
    instructions.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True, "grade_id": "intro",
                                         "schema_version": 3}
    nb = cap(instructions, answer)
    assert nb.cells[0].source == instructions.source, "locked cells come from the gradebook: never cut"
    assert nb.cells[1].source.startswith("My answer is very very")
    assert len(nb.cells[1].source) < LIMITS.answer_chars + 200
    assert nb.cells[1].source.endswith("[answer cut by the grader: this written answer passed 100,000 characters]")
    assert output_cut_problems(nb) == [("output cut", "cell 'q1': this written answer passed 100,000 characters")]


def test_answers_share_a_notebook_budget():
    nb = cap(*[new_markdown_cell("z" * 90_000) for _ in range(20)])
    assert sum(len(c.source) for c in nb.cells) < LIMITS.answer_chars_per_notebook + 20 * 200
    assert "the notebook's written answers passed" in nb.cells[-1].source


def test_huge_student_code_is_cut_as_a_comment():
    nb = cap(new_code_cell("data = [" + "1, " * 1_000_000 + "]"))
    assert nb.cells[0].source.endswith("\n# [code cut by the grader: this cell's code passed 200,000 characters]")


def test_attachments_count_as_display_output():
    cell = new_markdown_cell("![plot](attachment:big.png) ![ok](attachment:small.png)")
    cell.attachments = {"big.png": {"image/png": "B" * (3 * MB)}, "small.png": {"image/png": "S" * 1000}}
    nb = cap(cell)
    assert list(nb.cells[0].attachments) == ["small.png"]
    assert "[answer cut by the grader: the attachment 'big.png'" in nb.cells[0].source


# ------------------------------------------------------------------------------------------ records and hard sizes
def test_a_submission_cannot_claim_cuts_and_nothing_is_recorded_when_nothing_is_cut():
    cell = new_code_cell("1 + 1", outputs=[display(10_000)])
    cell.metadata[CUT_KEY] = ["forged"]
    nb = cap(cell)
    assert CUT_KEY not in nb.cells[0].metadata and output_cut_problems(nb) == []
    assert nb.cells[0].outputs[0].data["image/png"] == "A" * 10_000, "an ordinary plot is untouched"


def test_the_graded_notebook_has_a_hard_size():
    small = replace(LIMITS, notebook_bytes=1 * MB)
    cells = [grade_cell([display(300_000), new_output("error", ename="AssertionError", evalue="no", traceback=["tb"]),
                         new_output("stream", name="stderr", text="w" * 100_000)], grade_id=f"t{i}") for i in range(8)]
    nb = cap(*cells, limits=small)
    assert notebook_size(nb) <= small.notebook_bytes
    for cell in nb.cells:
        assert determine_grade(cell)[0] == 0, "every emptied test cell still has its error and its stderr"
    assert any("the graded notebook passed 1 MB" in cell.metadata.get(CUT_KEY, []) for cell in nb.cells)


def test_the_feedback_page_has_a_hard_size():
    cells = [new_code_cell(f"# cell {i}", outputs=[new_output("stream", name="stdout", text="<&>" * 40_000)])
             for i in range(4)]
    nb = new_notebook(cells=cells)
    full, _ = SafeFeedbackExporter(template_name="classic").from_notebook_node(copy.deepcopy(nb))
    assert len(full.encode()) > 1 * MB, "escaping makes this page larger than the limit"
    page, _ = SafeFeedbackExporter(template_name="classic", max_page_bytes=1 * MB).from_notebook_node(nb)
    assert len(page.encode()) <= 1 * MB
    assert "[output cut by the grader: the feedback page passed 1 MB" in page
    assert all(f"# cell {i}" in page for i in range(4)), "every cell's code is still on the page"
    assert nb.cells[0].outputs[0].text == "<&>" * 40_000, "the notebook itself is not changed"
