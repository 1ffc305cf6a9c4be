"""The instructor's grading run: submissions in; gradebook, feedback, grades.csv and problems.csv out.

    intake (autograder.intake): find each student's notebook, read it without following
        links, repair it, scan it -> one SubmissionTask per student (bytes and settings)
    the engine (autograder.run.engine): Dask grades the tasks (autograder.run.task), on a
        LocalCluster here or on any scheduler; a killed client resumes from its journal
    this process alone writes, as each result arrives: the gradebook, the student's files,
        a line in grades.csv and problems.csv; a submission that ran out of time while
        others ran beside it is graded again alone before it can lose points
    report (autograder.reports.tables): grades.csv and problems.csv again, complete and sorted

The workspace (default out/grading, or $CGAN_GRADING_DIR, or --workspace) holds:

    gradebook.db                             nbgrader's gradebook (it holds the hidden tests)
    originals/<student>/<assignment>/<file>  byte-for-byte copies of what each student submitted
    submitted/<student>/<assignment>/        the notebook that was graded (after intake's repairs)
    autograded/<student>/<assignment>/       the executed notebook, for the instructor
    feedback/<student>/<assignment>/*.html   what the student gets back
    logs/<assignment>/<student>.log          that student's grading log
    results/<assignment>/<student>.json      status and problems, which `report` reads
    journal-<assignment>.jsonl               what has been graded, by content hash (resuming)
    grades.csv, problems.csv
"""
import hashlib
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat
from tqdm import tqdm

from autograder.assignment import Assignment
from autograder.config import Limits, db_url
from autograder.intake import lms, triage
from autograder.isolation import launch
from autograder.reports import feedback, tables
from autograder.run.engine import Engine, EngineConfig, Job
from autograder.run.task import SubmissionTask, grade_submission
from autograder.scoring import gradebook
from autograder.scoring.nbgrader_setup import record_assignment

CLASS = "(class)"  # problems.csv's student column for what belongs to no student (a refused zip entry)


@dataclass(frozen=True)
class GradingRun:
    """One `python -m autograder grade`: what to grade, where, and how. Passed down whole."""
    assignment: Assignment
    submissions: Path
    workspace: Path
    limits: Limits = field(default_factory=Limits)
    engine: EngineConfig = field(default_factory=EngineConfig)
    quiet: bool = False


@dataclass
class StudentRecord:
    """What the run found for one student: written to results/ and read back by `report`."""
    student: str
    origin: str
    problems: list = field(default_factory=list)  # (kind, detail)
    graded: bool = False
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)  # seconds per cell of the notebook's run and per test


@dataclass
class RunReport:
    records: dict        # {student: StudentRecord}
    write_seconds: list  # this process's time per result: the part of a run that no cluster spreads out


def prepare(run):
    """Create the workspace on demand; record the assignment in a fresh template and in the gradebook."""
    workspace, name = run.workspace, run.assignment.name
    workspace.mkdir(parents=True, exist_ok=True)
    template = workspace / f"template-{name}.db"
    template.unlink(missing_ok=True)
    record_assignment(db_url(template), name, workspace / "work" / ".template")
    main = workspace / "gradebook.db"
    if main.exists():
        record_assignment(db_url(main), name, workspace / "work" / ".main")  # picks up edits of the source
    else:
        shutil.copy(template, main)
    shutil.rmtree(workspace / "work", ignore_errors=True)
    return template, main


def _intake(run, submission, record, template_bytes):
    """Copy, read and triage one submission; its SubmissionTask, or None when there is nothing to grade."""
    name = run.assignment
    if submission.notebook is None:
        return None
    try:
        data = submission.read_bytes()  # never through a link, nor from a file with other names
    except lms.Refused as refusal:
        record.problems.append((refusal.kind, refusal.detail))
        return None
    original = run.workspace / "originals" / record.student / name.name / submission.notebook.name
    original.parent.mkdir(parents=True, exist_ok=True)
    original.write_bytes(data)
    checked = triage(original, name.release, name.source)
    record.problems += checked.problems
    if checked.notebook is None:
        return None
    submitted = run.workspace / "submitted" / record.student / name.name / f"{name.notebook}.ipynb"
    submitted.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(checked.notebook, submitted)
    return SubmissionTask(record.student, name.name, name.notebook, submitted.read_bytes(), template_bytes, run.limits)


def _digest(task, run):
    """What decides a grade: the submission, the assignment's source, the limits (not the template's bytes)."""
    hasher = hashlib.sha256(task.submission)
    hasher.update(run.assignment.source.read_bytes())
    hasher.update(repr(replace(run.limits)).encode())
    return hasher.hexdigest()


class _Recorder:
    """Writes each result as it arrives: gradebook, files, results/, a line in the CSVs."""

    def __init__(self, run, records, main, max_score, progress):
        self.run, self.records, self.main, self.max_score, self.progress = run, records, main, max_score, progress
        self.again = []  # timed out while others ran beside it: graded again alone
        self.write_seconds = []  # this process's time per result: the part of a run that does not spread out

    def __call__(self, record, alone=False):
        start = time.perf_counter()
        student = record.key
        entry = self.records[student]
        if record.ok:
            outcome = record.value
            if outcome.timed_out and not alone and self.run.engine.max_in_flight != 1:
                self.again.append(student)
            self._take(entry, outcome)
        else:
            entry.graded = False
            entry.problems.append(_failure_problem(record))
        self.finish(entry)
        self.progress.update()
        self.write_seconds.append(time.perf_counter() - start)

    def _take(self, entry, outcome):
        workspace, name = self.run.workspace, self.run.assignment
        entry.problems += [tuple(p) for p in outcome.problems]
        entry.graded, entry.seconds, entry.timings = outcome.graded, outcome.seconds, outcome.timings
        log = workspace / "logs" / name.name / f"{entry.student}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(outcome.log)
        for folder, data, suffix in (("autograded", outcome.autograded, "ipynb"), ("feedback", outcome.feedback, "html")):
            target = workspace / folder / entry.student / name.name
            shutil.rmtree(target, ignore_errors=True)
            if data is not None:
                target.mkdir(parents=True)
                (target / f"{name.notebook}.{suffix}").write_bytes(data)
        if outcome.graded:
            gradebook.write_scores(db_url(self.main), name.name, entry.student, outcome.grades, outcome.comments)

    def finish(self, entry):
        """Record a student's outcome: 0 and a page of explanation when nothing could be graded."""
        workspace, name = self.run.workspace, self.run.assignment
        entry.problems = list(dict.fromkeys(tuple(p) for p in entry.problems))
        if not entry.graded and entry.student != CLASS:  # CLASS: no student, only problem lines
            gradebook.record_not_graded(db_url(self.main), name.name, entry.student)
            feedback.not_graded_page(workspace / "feedback" / entry.student / name.name / f"{name.notebook}.html",
                                     entry.student, name.name, entry.problems, self.max_score)
        path = workspace / "results" / name.name / f"{entry.student}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(entry), indent=1))
        tables.append_student(workspace, name.name, entry)


def _failure_problem(failure):
    if failure.kind == "worker died":
        return "grading crashed", (f"{failure.reason}: the submission may crash its grader (or a machine died "
                                   f"each time); 0. Grade it again with --regrade to retry")
    if failure.kind == "no sandbox":
        return "grader error", f"{failure.reason}; fix the worker and grade again"
    return "grader error", f"{failure.reason}; grade again (its log may say more)"


def grade(run):
    """Grade every submission; a RunReport. One bad submission never stops the class."""
    if run.limits.sandbox and (reason := launch.unavailable_reason()):
        raise RuntimeError(f"cannot sandbox the students' code: {reason}")
    name = run.assignment
    found = lms.find_submissions(run.submissions, name.name, run.workspace / "incoming" / Path(run.submissions).stem)
    template, main = prepare(run)
    template_bytes, max_score = template.read_bytes(), gradebook.max_score(db_url(main), name.name)
    tables.start(run.workspace, name.name, db_url(main))
    records, jobs = {}, []
    progress = tqdm(total=len(found), desc=f"grading {name.name}", unit="student", disable=run.quiet or None,
                    file=sys.stderr)
    recorder = _Recorder(run, records, main, max_score, progress)
    if found.problems:
        records[CLASS] = StudentRecord(CLASS, str(run.submissions), list(found.problems))
        recorder.finish(records[CLASS])
    for submission in found:
        record = records[submission.student] = StudentRecord(submission.student, submission.origin,
                                                             list(submission.problems))
        try:
            task = _intake(run, submission, record, template_bytes)
        except Exception as error:  # a bug of the grader's must cost this student's grade, not the class's
            record.problems.append(("grader error", f"{type(error).__name__}: {error}; grade this student again"))
            task = None
        if task is None:
            recorder.finish(record)
            progress.update()
        else:
            jobs.append(Job(submission.student, task, _digest(task, run)))
    config = replace(run.engine, journal=run.workspace / f"journal-{name.name}.jsonl")
    with Engine(config) as engine:
        summary = engine.run(grade_submission, jobs, recorder)
    progress.update(summary.skipped)
    if recorder.again:  # a time limit hit while others ran beside it: the student's code, alone this time
        progress.reset(total=len(recorder.again))
        progress.set_description(f"grading {name.name} again, alone")
        for student in recorder.again:
            records[student].problems = [p for p in records[student].problems if p[0] not in ("too slow", "cell timeout")]
        with Engine(replace(config, regrade=True, max_in_flight=1, n_workers=1)) as alone:
            alone.run(grade_submission, [job for job in jobs if job.key in recorder.again],
                      lambda record: recorder(record, alone=True))
    progress.close()
    for address, reason in summary.refusals.items():
        print(f"warning: worker {address} takes no grading tasks: {reason}", file=sys.stderr)
    return RunReport(records, recorder.write_seconds)
