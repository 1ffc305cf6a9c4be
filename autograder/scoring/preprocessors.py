"""The lab's nbgrader preprocessors: what grading executes, how it scores output, what feedback shows.

Stock nbgrader's choices that these replace (see ../shared/NBGRADER_NOTES.md):
- any stderr in a test cell scores 0, so a PyTorch UserWarning alone would cost a test;
- LimitOutput drops whole stream outputs past 1,000 lines, stderr included, which can turn
  a failing cell into full credit;
- an `execute_result` in a test cell is read as partial credit, and student code can make
  one appear (sys.displayhook(3.0));
- every output is held in the grader's memory while a notebook runs, however much a
  student prints;
- feedback shows hidden tests' source, and their tracebacks quote it.
"""
import re
from collections import defaultdict

from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Integer, Unicode

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # IPython colours each token of a traceback
FLOOD = "[output flood: {name} passed {limit:,} characters; the rest was dropped by the grader]"


class BoundedExecute(Execute):
    """nbgrader's Execute, keeping at most `max_stream_chars` of stdout and of stderr per cell."""

    max_stream_chars = Integer(1_000_000, help="characters of stdout (and of stderr) kept per cell").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stream_chars = defaultdict(int)
        return super().preprocess(nb, resources, km)

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream":
            name, text = msg["content"]["name"], msg["content"]["text"]
            used = self._stream_chars[cell_index, name]
            if used > self.max_stream_chars:
                return None  # already truncated: drop without keeping anything
            self._stream_chars[cell_index, name] = used + len(text)
            if used + len(text) > self.max_stream_chars:
                kept = text[: self.max_stream_chars - used] + "\n" + FLOOD.format(name=name, limit=self.max_stream_chars)
                msg = {**msg, "content": {**msg["content"], "text": kept}}
                self._stream_chars[cell_index, name] = self.max_stream_chars + 1
        return super().output(outs, msg, display_id, cell_index)


class StderrIsNotScored(NbGraderPreprocessor):
    """Only an exception fails a test: stderr in a test cell is shown, as stdout, and never scored.

    nbgrader scores any stderr in a test cell 0, so one PyTorch UserWarning, a tqdm bar or a
    debug print to sys.stderr in a student's function would cost the points of every test
    that calls it. This lab's tests fail by raising, with a message; what the student's code
    writes to stderr stays in the feedback, where the student can read it.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class LimitOutput(NbGraderPreprocessor):
    """Keep the first `max_lines` lines of stdout and of stderr of each cell, each counted apart.

    Unlike nbgrader's LimitOutput it never removes a stream entirely, so stderr still
    scores a cell 0 after a flood of stdout. Tracebacks are cut in the middle.
    """

    max_lines = Integer(1000).tag(config=True)
    max_traceback = Integer(100).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        lines = defaultdict(int)
        for output in cell.outputs:
            if output.output_type == "stream":
                text = output.text.removesuffix("\n").split("\n")  # a final newline ends a line, starts none
                room = max(self.max_lines - lines[output.name], 1)
                if len(text) > room:
                    flood = [line for line in text[-2:] if line.startswith("[output flood:")]  # keep the marker
                    output.text = "\n".join(text[:room] + ["... [output truncated by the grader] ..."] + flood)
                lines[output.name] += min(len(text), room)
            elif output.output_type == "error" and len(output.traceback) > self.max_traceback:
                half = self.max_traceback // 2
                output.traceback = output.traceback[:half] + ["... [traceback truncated] ..."] + output.traceback[-half:]
        return cell, resources


class NoPartialCredit(NbGraderPreprocessor):
    """Turn `execute_result`s of test cells into plain displays: this lab's tests pass or fail.

    nbgrader reads a number shown as a test cell's result as partial credit; the lab's tests
    never show one, so any that appears was put there by the code under test.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.output_type = "display_data"
                    output.pop("execution_count", None)
        return cell, resources


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: hidden tests show pass/fail, points and the assertion's message, never their code.

    A hidden region's source is replaced by a comment, the cell's tracebacks by their last
    line (`AssertionError: <message>`), and any line of hidden test code that appears in
    any output of the notebook (a student's code could print the cells it is run with)
    is redacted.
    """

    begin = Unicode("### BEGIN HIDDEN TESTS").tag(config=True)
    end = Unicode("### END HIDDEN TESTS").tag(config=True)
    placeholder = Unicode("# Hidden tests: their code is not shown; the result and message are below.").tag(config=True)

    def preprocess(self, nb, resources):
        self._hidden_lines = set()
        for cell in nb.cells:
            if cell.cell_type == "code" and self.begin in cell.source:
                cell.source, hidden = self._split(cell.source)
                self._hidden_lines.update(line.strip() for line in hidden if len(line.strip()) >= 16)
                for output in cell.outputs:
                    if output.output_type == "error":
                        output.traceback = [f"{output.ename}: {output.evalue}"]
        shown = {line.strip() for cell in nb.cells for line in cell.source.split("\n")}
        self._hidden_lines -= shown  # a line the student can read elsewhere gives nothing away
        return super().preprocess(nb, resources)

    def _split(self, source):
        shown, hidden, inside = [], [], False
        for line in source.split("\n"):
            if self.begin in line:
                inside = True
                shown.append(line[: len(line) - len(line.lstrip())] + self.placeholder)
            elif self.end in line:
                inside = False
            elif inside:
                hidden.append(line)
            else:
                shown.append(line)
        return "\n".join(shown), hidden

    def _redact(self, text):
        if not self._hidden_lines:
            return text
        return "\n".join("[redacted: hidden test code]" if any(h in ANSI.sub("", line) for h in self._hidden_lines) else line
                         for line in text.split("\n"))

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "stream":
                    output.text = self._redact(output.text)
                elif output.output_type == "error":
                    output.evalue = self._redact(output.evalue)
                    output.traceback = [self._redact(line) for line in output.traceback]
                elif "data" in output and "text/plain" in output.data:
                    output.data["text/plain"] = self._redact(output.data["text/plain"])
                    for mime in ("text/html", "text/markdown", "text/latex"):
                        if mime in output.data:  # rich copies could quote the code too
                            output.data[mime] = self._redact(output.data[mime])
        return cell, resources
