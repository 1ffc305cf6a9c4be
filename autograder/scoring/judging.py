"""The two nbgrader preprocessors around the verdict (autograder/scoring/verdict.py).

    JudgeTests    before the notebook runs: the test cells are blanked, so the notebook's own
                  run (for feedback) never holds a test, hidden or not; every test cell's
                  verdict is decided in the grader, against the sandboxed probe process, in a
                  thread that runs beside the notebook's run (the two share nothing)
    ShowVerdicts  after it runs: waits for the verdicts; each test cell gets its trusted source
                  back and, as its only output, the verdict: the check's lines when it passed,
                  an error with the message when it failed. nbgrader scores that output as usual
                  (an error: 0).
    wait_for_verdicts()  the verdicts of a notebook whose own run failed (the report is written
                  all the same: the pipeline scores a notebook that timed out from it)

Nothing the student's notebook printed or did in its kernel reaches a test cell's output,
so nothing in the kernel can change a score.
"""
import json
import threading
from dataclasses import asdict

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked, is_solution
from traitlets import Integer, Unicode

from autograder.assignment import Assignment
from autograder.isolation.probe import probe_launcher
from autograder.scoring.verdict import judge


def is_test(cell):
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class _Verdicts(threading.Thread):
    """judge() in a thread; its report written to `report_path` as soon as it is done."""

    def __init__(self, arguments, report_path):
        super().__init__(name="verdicts", daemon=True)
        self.arguments, self.report_path = arguments, report_path
        self.judgement, self.error = None, None

    def run(self):
        try:
            self.judgement = judge(*self.arguments)
        except BaseException as error:  # GraderError above all: raised again where the verdicts are read
            self.error = error
            return
        if self.report_path:
            with open(self.report_path, "w") as report:
                json.dump({"verdicts": {k: asdict(v) for k, v in self.judgement.verdicts.items()},
                           "problems": self.judgement.problems, "log": "\n".join(self.judgement.log)[-200_000:]}, report)

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.judgement


_running = []  # this process's verdict threads not yet waited for


def wait_for_verdicts():
    """Wait for every verdict thread this process started (their reports are then written)."""
    while _running:
        _running.pop().join()


class JudgeTests(NbGraderPreprocessor):
    cell_timeout = Integer(120, help="seconds for each test's requests to the probe process").tag(config=True)
    placeholder = Unicode("# This test runs in the grader, outside your notebook; its result is shown below.").tag(config=True)
    report_path = Unicode("", help="where to write the verdicts and problems as JSON, for the pipeline").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        spec = Assignment.load(info["assignment"])
        with Gradebook(info["db_url"]) as gradebook:
            def trusted(grade_id):
                return gradebook.find_source_cell(grade_id, info["notebook"], info["assignment"]).source
            prelude = [(grade_id, trusted(grade_id)) for grade_id in spec.prelude]
            tests = [(cell.metadata.nbgrader["grade_id"], trusted(cell.metadata.nbgrader["grade_id"]))
                     for cell in nb.cells if is_test(cell)]
        student = [(cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}", cell.source,
                    is_solution(cell)) for index, cell in enumerate(nb.cells)
                   if cell.cell_type == "code" and not is_locked(cell) and not is_test(cell)]
        for cell in nb.cells:
            if is_test(cell):
                cell.source = self.placeholder
        verdicts = _Verdicts((tests, prelude, student, spec.answers, probe_launcher(), self.cell_timeout),
                             self.report_path)
        _running.append(verdicts)
        verdicts.start()  # the notebook runs meanwhile: the tests need its source, never its kernel
        resources["verdicts"], resources["trusted_tests"] = verdicts, dict(tests)
        return nb, resources


class ShowVerdicts(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        resources["judgement"] = resources["verdicts"].result()
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if not is_test(cell):
            return cell, resources
        grade_id = cell.metadata.nbgrader["grade_id"]
        verdict = resources["judgement"].verdicts[grade_id]
        cell.source = resources["trusted_tests"][grade_id]
        if verdict.passed:
            text = verdict.output or "\u2714 Passed.\n"
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        else:
            lines = verdict.message.splitlines() or ["failed"]
            cell.outputs = [nbformat.v4.new_output("error", ename="TestFailed", evalue=verdict.message,
                                                   traceback=[f"TestFailed: {lines[0]}", *lines[1:]])]
        cell.execution_count = None
        return cell, resources
