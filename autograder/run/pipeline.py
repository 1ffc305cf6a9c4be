"""The instructor's grading run: submissions in, gradebook, feedback, grades.csv and problems.csv out.

    find submissions -> triage each (autograder.intake) -> N workers autograde in parallel,
    each against a private gradebook copy (autograder.run.worker) -> the main process copies
    scores into the gradebook, one writer -> grades.csv, problems.csv, a summary table.

The workspace (default out/grading, or $CGAN_GRADING_DIR, or --workspace) holds:

    gradebook.db                             nbgrader's gradebook (it holds the hidden tests)
    originals/<student>/<file>               byte-for-byte copies of what each student submitted
    submitted/<student>/<assignment>/        the notebook that was graded (after triage's repairs)
    autograded/<student>/<assignment>/       the executed notebook, for the instructor
    feedback/<student>/<assignment>/*.html   what the student gets back
    logs/<assignment>/<student>.log          nbgrader's log of that student's grading
    results/<assignment>/<student>.json      status and problems, which `report` reads
    grades.csv, problems.csv
"""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import nbformat
from tqdm import tqdm

from cgan_lib.data import FashionMNISTError, find_fashion_mnist

from autograder.config import REPO, Limits, db_url, workspace_path
from autograder.intake import lms, triage
from autograder.isolation import sandbox
from autograder.reports import feedback
from autograder.run.worker import Job
from autograder.scoring import gradebook
from autograder.scoring.findings import after_execution
from autograder.scoring.output_limits import output_cut_problems
from autograder.scoring.nbgrader_setup import install_kernelspec, notebook_name, record_assignment

def dataset_folder():
    """The folder with Fashion-MNIST that grading kernels read; the grader cannot run without it."""
    try:
        images, _ = find_fashion_mnist("train")
        test_images, _ = find_fashion_mnist("test")
    except FashionMNISTError as error:
        raise RuntimeError(f"grading needs Fashion-MNIST, and it was not found:\n{error}") from None
    if images.parent != test_images.parent:
        raise RuntimeError(f"the training and test files of Fashion-MNIST are in different folders "
                           f"({images.parent}, {test_images.parent}): put them in one and set CGAN_DATA_DIR")
    return images.parent


def prepare(workspace, assignment):
    """Create the workspace on demand and record the assignment in its gradebook and a template."""
    workspace.mkdir(parents=True, exist_ok=True)
    install_kernelspec(workspace / "jupyter")
    template = workspace / f"template-{assignment}.db"
    template.unlink(missing_ok=True)
    record_assignment(db_url(template), assignment, workspace / "work" / ".template")
    main = workspace / "gradebook.db"
    if main.exists():
        record_assignment(db_url(main), assignment, workspace / "work" / ".main")  # picks up edits of the source
    else:
        shutil.copy(template, main)
    return template, main


def _run_worker(job, job_dir, environment, limits):
    """Run one worker process; (result dict, seconds). Kills it, kernel included, past the time limit."""
    job_file = job_dir / "job.json"
    job_file.write_text(json.dumps(job.__dict__))
    start = time.monotonic()
    with open(job_dir / "worker.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "autograder.run.worker", str(job_file)], cwd=REPO,
                                   env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout=limits.notebook_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the worker, its kernel and anything they started
            process.wait()
            return {"timeout": True}, time.monotonic() - start
    result_file = job_dir / "result.json"
    if not result_file.exists():
        tail = (job_dir / "worker.log").read_text(errors="replace")[-2000:]
        return {"autograded": False, "log": f"the grading process exited with status {process.returncode}:\n{tail}"}, \
            time.monotonic() - start
    return json.loads(result_file.read_text()), time.monotonic() - start


def _why_not_graded(result, limits, log_path):
    if result.get("timeout"):
        return "too slow", (f"grading took longer than {limits.notebook_timeout} s in all: stopped; 0. "
                            "Check the notebook for long loops, or re-grade it with a larger --notebook-timeout")
    log = result.get("log", "")
    if "kernel died" in log.lower() or "DeadKernelError" in log:
        return "kernel died", ("the notebook's Python process died while running (os._exit(), a crash such as a "
                               "segfault, the CPU-time limit or a file over the size limit): nothing could be "
                               "graded; 0")
    if "CellTimeoutError" in log:
        return "too slow", (f"a cell ran longer than {limits.cell_timeout} s and did not stop when interrupted: "
                            "grading stopped; 0")
    last = [line for line in log.strip().splitlines() if line.strip()][-3:]
    return "grading failed", (f"nbgrader could not grade it: {' | '.join(last)}. The whole log is {log_path}; "
                              "fix the cause there, then grade again")


def _replace_tree(source, target):
    if target.exists():
        shutil.rmtree(target)
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))


def _prepare_job(submission, record, workspace, assignment, notebook, release, source, template, limits):
    """Copy, triage and lay out one submission for its worker; None when there is nothing to grade."""
    student = submission.student
    if submission.notebook is None:
        return None
    original = workspace / "originals" / student / assignment / submission.notebook.name
    original.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = submission.read_bytes()  # never through a link, nor from a file with other names
    except lms.Refused as refusal:
        record["problems"].append((refusal.kind, refusal.detail))
        return None
    original.write_bytes(data)
    checked = triage(original, release, source)
    record["problems"] += checked.problems
    if checked.notebook is None:
        return None
    private = workspace / "work" / student
    shutil.rmtree(private, ignore_errors=True)
    for folder in (workspace, private):
        target = folder / "submitted" / student / assignment / f"{notebook}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(checked.notebook, target)
    shutil.copy(template, private / "gradebook.db")
    (private / "scratch").mkdir()
    (private / "runtime").mkdir(mode=0o700)  # the kernel's connection file and sockets (TMPDIR)
    return Job(root=str(private), db_url=db_url(private / "gradebook.db"), assignment=assignment,
               student=student, limits=asdict(limits))


def _collect(student, future, record, job, workspace, assignment, notebook, main, limits, watch):
    """Take a worker's result into the gradebook and the workspace."""
    private = Path(job.root)
    result, record["seconds"] = future.result()
    log = workspace / "logs" / assignment / f"{student}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(result.get("log", "") + (private / "worker.log").read_text(errors="replace"))
    if result.get("autograded"):
        gradebook.copy_scores(job.db_url, db_url(main), assignment, student)
        for folder in ("autograded", "feedback"):
            _replace_tree(private / folder / student / assignment, workspace / folder / student / assignment)
        executed = workspace / "autograded" / student / assignment / f"{notebook}.ipynb"
        record["problems"] += [tuple(p) for p in result.get("problems", [])]
        executed_notebook = nbformat.read(executed, as_version=4)
        record["problems"] += after_execution(executed_notebook, limits) + output_cut_problems(executed_notebook)
        record["graded"] = True
    elif student in watch.tripped:
        record["problems"].append(("fork bomb", f"its processes and threads reached the limit of "
                                                f"{limits.processes}: all stopped; 0"))
    else:
        record["problems"].append(_why_not_graded(result, limits, log))


def grade(assignment, submissions_path, workspace=None, workers=None, limits=None, quiet=False):
    """Grade every submission; returns {student: record}. Never stops on a bad submission."""
    workspace = workspace_path(workspace)
    workers = workers or len(os.sched_getaffinity(0))
    limits = limits or Limits(threads=max(1, len(os.sched_getaffinity(0)) // workers))
    notebook = notebook_name(assignment)
    release = REPO / "assignments" / assignment / f"{notebook}.ipynb"
    source = REPO / "solutions" / assignment / f"{notebook}.ipynb"

    if limits.sandbox and (reason := sandbox.unavailable_reason()):
        raise RuntimeError(f"cannot sandbox the students' code: {reason}")
    found = lms.find_submissions(submissions_path, assignment, workspace / "incoming" / Path(submissions_path).stem)
    template, main = prepare(workspace, assignment)
    environment = {k: v for k, v in os.environ.items() if k != "CGAN_SCHEDULE"}  # grading sets its own schedule
    environment.update(limits.kernel_environment(), JUPYTER_PATH=str(workspace / "jupyter"), MPLBACKEND="Agg",
                       CGAN_DATA_DIR=str(dataset_folder()))  # the sandbox shows the kernel this folder only
    max_score = gradebook.max_score(db_url(main), assignment)

    records, jobs = {}, {}

    def finish(student):
        """Record a student's outcome as soon as it is known: 0 and a page of explanation if not graded."""
        record = records[student]
        if not record["graded"]:
            gradebook.record_not_graded(db_url(main), assignment, student)
            feedback.not_graded_page(workspace / "feedback" / student / assignment / f"{notebook}.html", student, assignment,
                           record["problems"], max_score)
        path = workspace / "results" / assignment / f"{student}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))

    for submission in found:
        student = submission.student
        record = records[student] = {"student": student, "origin": submission.origin,
                                     "problems": list(submission.problems), "graded": False, "seconds": 0.0}
        for folder in ("originals", "submitted", "autograded", "feedback"):
            shutil.rmtree(workspace / folder / student / assignment, ignore_errors=True)
        try:
            job = _prepare_job(submission, record, workspace, assignment, notebook, release, source, template, limits)
        except Exception as error:  # a bug of the grader must cost this student's grade, not the class's
            record["problems"].append(("grader error", f"{type(error).__name__}: {error}; re-grade this student"))
            job = None
        if job is None:
            finish(student)
        else:
            jobs[student] = job

    slots = queue.SimpleQueue()  # sandbox user ids: one per worker, never two kernels with one id
    for slot in range(workers):
        slots.put(sandbox.SANDBOX_UID_BASE + slot)

    def grade_one(student):
        private = Path(jobs[student].root)
        env = dict(environment, CGAN_CHECKPOINT_DIR=str(private / "scratch"), HOME=str(private / "scratch"),
                   TMPDIR=str(private / "runtime"))
        uid = slots.get()
        try:
            if limits.sandbox:
                env.update(CGAN_SANDBOX_UID=str(uid), CGAN_SANDBOX_SCRATCH=str(private / "scratch"),
                           CGAN_PROBE_SCRATCH=str(private / "probe-scratch"))
                watch.watched[uid] = student
            return _run_worker(jobs[student], private, env, limits)
        finally:
            watch.watched.pop(uid, None)
            if limits.sandbox:
                sandbox.kill_user(uid)  # nothing of this student's outlives its grading
            slots.put(uid)

    watch = sandbox.ForkBombWatch(limits.processes)
    if limits.sandbox:
        watch.start()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(grade_one, student): student for student in jobs}
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"grading {assignment}", unit="student",
                           disable=quiet or None, file=sys.stderr):
            student = futures[future]
            try:
                _collect(student, future, records[student], jobs[student], workspace, assignment, notebook, main,
                         limits, watch)
            except Exception as error:  # as above: one student's problem, never the class's
                records[student]["graded"] = False
                records[student]["problems"].append(("grader error", f"{type(error).__name__}: {error}"))
            finish(student)
            shutil.rmtree(jobs[student].root, ignore_errors=True)

    watch.stopped.set()
    shutil.rmtree(workspace / "work", ignore_errors=True)
    return records
