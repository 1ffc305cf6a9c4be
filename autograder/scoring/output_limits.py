"""Bounds on what an executed notebook keeps: every kind of output, per cell and per notebook.

While a notebook runs, BoundedExecute bounds only stdout and stderr. After it ran, these
preprocessors bound everything a student's code or answers can make large: the rich
outputs of displays and results (each representation, each cell, the notebook), printed
streams, tracebacks, written answers (markdown sources and their attachments) and the
code of the student's own cells. What is cut leaves a marker where it was,

    [output cut by the grader: this cell's display output passed 4 MB]

and the cell records it in its metadata (CUT_KEY), which `output_cut_problems` reads back
for problems.csv. The graded notebook then has a hard size, CapNotebookSize, and the
feedback page another (autograder.reports.feedback_exporter), both by cutting the
largest cells first.

What scoring reads is never removed: an error output stays (its traceback shortened),
and every stream keeps at least one output of its name (so stderr still scores as before),
as does the "[output flood:" marker that BoundedExecute leaves.
"""
import json
from collections import defaultdict
from dataclasses import dataclass

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Instance
from traitlets.config import Config

from autograder.intake.notebook import is_locked, nbgrader_id

MB = 1_000_000
CUT_KEY = "autograder_output_cut"  # cell metadata: what the grader cut from the cell, as sentences
FLOOD_PREFIX = "[output flood:"    # BoundedExecute's marker, kept whatever is cut around it
ERROR_HEAD_CHARS = 1_000           # of `ename: evalue`, kept even when the notebook's text budget is spent
RICH = ("display_data", "execute_result")


@dataclass(frozen=True)
class OutputLimits:
    """How much of each kind of output a graded notebook keeps, and the hard sizes of what grading writes.

    A matplotlib figure is 50-200 kB of base64 PNG (a 10 x 10 grid of noise, the worst case,
    360 kB), so a cell keeps about ten and a notebook about fifty.
    """
    output_bytes: int = 1 * MB                   # one representation (a PNG, an HTML table) of one display
    display_bytes_per_cell: int = 4 * MB         # all displays, results and attachments of one cell
    display_bytes_per_notebook: int = 16 * MB    # ... of the whole notebook
    stream_chars_per_cell: int = 200_000         # of stdout, and of stderr, of one cell
    traceback_chars: int = 40_000                # of one error's traceback (its first and last frames)
    printed_chars_per_notebook: int = 4_000_000  # streams and tracebacks of the whole notebook
    answer_chars: int = 100_000                  # of one written answer (markdown cell)
    answer_chars_per_notebook: int = 1_000_000   # of all written answers
    code_chars: int = 200_000                    # of one code cell the student wrote (locked cells are never cut)
    rendered_markup_chars: int = 200_000         # of one HTML/markdown output sanitised for feedback (else as text)
    rendered_markup_chars_per_notebook: int = 2_000_000  # ... of the notebook (bleach sanitises ~100 kB a second)
    notebook_bytes: int = 32 * MB                # the graded notebook file, hard
    page_bytes: int = 40 * MB                    # the feedback page, hard


def marker(what, kind="output"):
    return f"[{kind} cut by the grader: {what}]"


def megabytes(size):
    return f"{size / MB:.3g} MB"


def text_size(value):
    """Bytes of a representation as stored: UTF-8 of a string, JSON of anything else."""
    return len((value if isinstance(value, str) else json.dumps(value)).encode())


def record_cut(cell, what):
    cuts = cell.metadata.setdefault(CUT_KEY, [])
    if what not in cuts:
        cuts.append(what)


class Budget:
    """What is left of one per-notebook allowance."""

    def __init__(self, left):
        self.left = left

    def take(self, amount):
        self.left -= amount


# ------------------------------------------------------------------------------------------ rich outputs
def cap_rich_outputs(cell, limits, display_budget):
    """Replace displays and results that do not fit by one marker per reason."""
    cell_left, kept, shown = limits.display_bytes_per_cell, [], set()
    for output in cell.outputs:
        if output.output_type not in RICH:
            kept.append(output)
            continue
        sizes = [text_size(value) for value in output.get("data", {}).values()]
        size = sum(sizes) + text_size(output.get("metadata", {}))
        if max(sizes, default=0) > limits.output_bytes:
            what = f"a display output passed the {megabytes(limits.output_bytes)} allowed for one output"
        elif size > cell_left:
            what = f"this cell's display output passed {megabytes(limits.display_bytes_per_cell)}"
        elif size > display_budget.left:
            what = f"the notebook's display output passed {megabytes(limits.display_bytes_per_notebook)}"
        else:
            cell_left -= size
            display_budget.take(size)
            kept.append(output)
            continue
        if what not in shown:  # one marker per reason: a thousand cut displays are one line
            shown.add(what)
            output.data, output.metadata = {"text/plain": marker(what)}, {}
            kept.append(output)
            record_cut(cell, what)
    cell.outputs = kept


# ------------------------------------------------------------------------------------------ streams
def cap_streams(cell, limits, printed_budget):
    """Keep the start of each stream of the cell; a stream's later outputs go, but its flood marker stays."""
    used, cut = defaultdict(int), {}
    kept = []
    for output in cell.outputs:
        if output.output_type != "stream":
            kept.append(output)
            continue
        name, text = output.name, output.text
        if name in cut:  # this stream was already cut: keep only BoundedExecute's marker, on the cut output
            cut[name].text += "".join(f"\n{line}" for line in text.split("\n") if line.startswith(FLOOD_PREFIX))
            continue
        room = max(0, min(limits.stream_chars_per_cell - used[name], printed_budget.left))
        if len(text) > room:
            if room < limits.stream_chars_per_cell - used[name]:
                what = f"the notebook's printed output passed {limits.printed_chars_per_notebook:,} characters"
            else:
                what = f"this cell's {name} passed {limits.stream_chars_per_cell:,} characters"
            floods = [line for line in text[room:].split("\n") if line.startswith(FLOOD_PREFIX)]
            output.text = "\n".join([text[:room].removesuffix("\n"), marker(what), *floods])
            cut[name] = output
            record_cut(cell, what)
        used[name] += len(output.text)
        printed_budget.take(len(output.text))
        kept.append(output)
    cell.outputs = kept


# ------------------------------------------------------------------------------------------ errors
def cap_error(cell, output, limits, printed_budget):
    """Shorten an error's name, value and traceback: its first and last frames stay, the error itself too."""
    room = max(ERROR_HEAD_CHARS, min(limits.traceback_chars, printed_budget.left))
    output.ename = str(output.ename)[:200]
    if len(output.evalue) > room:
        what = f"this error's message passed {room:,} characters"
        output.evalue = output.evalue[:room] + " " + marker(what)
        record_cut(cell, what)
    lines, size = output.traceback, sum(len(line) for line in output.traceback)
    if size > room:
        half = room // 2
        head, tail, head_size, tail_size = [], [], 0, 0
        for line in lines:  # first frames, each shortened to what is left of the half
            if head_size >= half:
                break
            head.append(line[: half - head_size])
            head_size += len(head[-1])
        for line in reversed(lines[len(head):]):  # the last frames: where it was raised, and the message
            if tail_size >= half:
                break
            tail.insert(0, line[-(half - tail_size):])
            tail_size += len(tail[0])
        what = f"this error's traceback passed {room:,} characters"
        output.traceback = head + [marker(what)] + tail
        record_cut(cell, what)
    printed_budget.take(len(output.evalue) + sum(len(line) for line in output.traceback))


# ------------------------------------------------------------------------------------------ sources
def cap_source(cell, limits, display_budget, answer_budget):
    """Cut a written answer or a student's code cell, and attachments that do not fit."""
    if is_locked(cell.metadata.get("nbgrader", {})):
        return  # the instructor's cells, restored from the gradebook
    if cell.cell_type == "markdown":
        room, kind = max(0, min(limits.answer_chars, answer_budget.left)), "answer"
        what = (f"this written answer passed {limits.answer_chars:,} characters" if room == limits.answer_chars
                else f"the notebook's written answers passed {limits.answer_chars_per_notebook:,} characters")
        note = "\n\n" + marker(what, kind)
    else:  # code: bounded per cell; the notebook's hard size bounds the rest
        room, kind = limits.code_chars, "code"
        what = f"this cell's code passed {limits.code_chars:,} characters"
        note = "\n# " + marker(what, kind)
    if len(cell.source) > room:
        cell.source = cell.source[:room] + note
        record_cut(cell, what)
    if kind == "answer":
        answer_budget.take(len(cell.source))
    cell_left = limits.display_bytes_per_cell
    for name, bundle in list(cell.get("attachments", {}).items()):
        size = text_size(bundle)
        if size > min(limits.output_bytes, cell_left, display_budget.left):
            del cell.attachments[name]
            what = f"the attachment {name[:80]!r} passed the display output allowed"
            cell.source += "\n\n" + marker(what, kind)
            record_cut(cell, what)
        else:
            cell_left -= size
            display_budget.take(size)


class CapOutputs(NbGraderPreprocessor):
    """Bound every output and written answer of a notebook, per cell and per notebook (see OutputLimits)."""

    limits = Instance(OutputLimits, args=()).tag(config=True)

    def preprocess(self, nb, resources):
        self._display = Budget(self.limits.display_bytes_per_notebook)
        self._printed = Budget(self.limits.printed_chars_per_notebook)
        self._answers = Budget(self.limits.answer_chars_per_notebook)
        for cell in nb.cells:
            cell.metadata.pop(CUT_KEY, None)  # only this preprocessor says what was cut, not the submission
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        cap_source(cell, self.limits, self._display, self._answers)
        if cell.cell_type == "code":
            cap_rich_outputs(cell, self.limits, self._display)
            cap_streams(cell, self.limits, self._printed)
            for output in cell.outputs:
                if output.output_type == "error":
                    cap_error(cell, output, self.limits, self._printed)
        if cell.metadata.get(CUT_KEY):
            self.log.warning("Cut output of %s: %s", cell_label(cell, cell_index), "; ".join(cell.metadata[CUT_KEY]))
        return cell, resources


# ------------------------------------------------------------------------------------------ hard sizes
def notebook_size(nb):
    """Bytes of the notebook as nbformat writes it."""
    return len(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False).encode())


def output_weight(cell):
    attachments = 0 if is_locked(cell.metadata.get("nbgrader", {})) else text_size(cell.get("attachments", {}))
    return text_size(cell.get("outputs", [])) + attachments


def source_weight(cell):
    return 0 if is_locked(cell.metadata.get("nbgrader", {})) else len(cell.source)


def empty_outputs(cell, what):
    """Reduce a cell's outputs to one marker, keeping what scoring reads: errors (shortened), one output per stream."""
    if cell.cell_type == "code":
        outputs, streams = [new_output("display_data", data={"text/plain": marker(what)})], set()
        for output in cell.outputs:
            if output.output_type == "error":
                evalue = output.evalue[:ERROR_HEAD_CHARS]
                outputs.append(new_output("error", ename=str(output.ename)[:200], evalue=evalue,
                                          traceback=[f"{output.ename}: {evalue}"[:ERROR_HEAD_CHARS]]))
            elif output.output_type == "stream" and output.name not in streams:
                streams.add(output.name)
                floods = [line for line in output.text.split("\n") if line.startswith(FLOOD_PREFIX)]
                outputs.append(new_output("stream", name=output.name, text="\n".join(floods[:1])))
        cell.outputs = outputs
    if cell.get("attachments") and not is_locked(cell.metadata.get("nbgrader", {})):
        del cell["attachments"]
        cell.source += "\n\n" + marker(what, "answer")
    record_cut(cell, what)


def empty_source(cell, what):
    kind = "answer" if cell.cell_type == "markdown" else "code"
    cell.source = ("# " if kind == "code" else "") + marker(what, kind)
    record_cut(cell, what)


def cut_largest_cells(nb, excess, what):
    """Free about `excess` bytes: outputs of the heaviest cells first, then their sources; the cells cut, as indexes."""
    cut = []
    for weight, empty in ((output_weight, empty_outputs), (source_weight, empty_source)):
        for index in sorted(range(len(nb.cells)), key=lambda i: weight(nb.cells[i]), reverse=True):
            before = weight(nb.cells[index])
            if excess <= 0 or before < 500:
                break  # freed enough, or only markers are left to cut
            empty(nb.cells[index], what)
            excess -= before - weight(nb.cells[index])
            cut.append(index)
    return sorted(set(cut))


class CapNotebookSize(NbGraderPreprocessor):
    """The graded notebook's hard size: past it, the heaviest cells are reduced to markers."""

    limits = Instance(OutputLimits, args=()).tag(config=True)

    def preprocess(self, nb, resources):
        what = f"the graded notebook passed {megabytes(self.limits.notebook_bytes)}"
        for _ in range(5):  # each round frees about the excess; markers are small, so one round is usual
            excess = notebook_size(nb) - self.limits.notebook_bytes
            if excess <= 0:
                return nb, resources
            emptied = cut_largest_cells(nb, excess, what)
            self.log.warning("The graded notebook passed %s: emptied cells %s", megabytes(self.limits.notebook_bytes),
                             ", ".join(cell_label(nb.cells[i], i) for i in emptied))
            if not emptied:
                break
        raise ValueError(f"the graded notebook is still larger than {megabytes(self.limits.notebook_bytes)} with every "
                         f"output cut ({len(nb.cells)} cells): the submission needs a look by hand")


OUTPUT_LIMIT_PREPROCESSORS = [CapOutputs, CapNotebookSize]


def output_limits_config(limits=OutputLimits()):
    """The traitlets Config fragment that gives both preprocessors `limits`."""
    return Config({"CapOutputs": {"limits": limits}, "CapNotebookSize": {"limits": limits}})


# ------------------------------------------------------------------------------------------ reading it back
def cell_label(cell, index):
    return f"cell {nbgrader_id(cell)!r}" if nbgrader_id(cell) else f"cell {index + 1}"


def output_cut_problems(nb):
    """[("output cut", "<cell>: <what was cut>")] for each cell the grader cut, for problems.csv."""
    return [("output cut", f"{cell_label(cell, index)}: {'; '.join(cell.metadata[CUT_KEY])}")
            for index, cell in enumerate(nb.cells) if cell.get("metadata", {}).get(CUT_KEY)]
