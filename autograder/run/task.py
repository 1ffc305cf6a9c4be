"""One submission's grading, as a self-contained task: bytes in, an Outcome out.

    outcome = grade_submission(task)        # on a Dask worker (autograder/run/engine.py), or here

The task carries everything grading needs: the notebook (after intake's repairs), the
template gradebook (the assignment, its cells and hidden tests) and the limits. The
worker needs only the same environment (this repository, Python, bubblewrap and
Fashion-MNIST), no shared filesystem: it grades in a temporary course folder of its own,
with two cgroups of the submission's own (its notebook's kernel; its tests' probe process),
and returns the scores, the graded notebook, the feedback page and the problems it found, as data.
"""
import fcntl
import json
import os
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from cgan_lib.data import FashionMNISTError, find_fashion_mnist, load_fashion_mnist

from autograder.config import REPO, Limits, db_url
from autograder.isolation import cgroups, sandbox
from autograder.reports import feedback
from autograder.run.zygote import Zygote, ZygoteDied
from autograder.scoring import gradebook
from autograder.scoring.findings import after_execution
from autograder.scoring.nbgrader_setup import install_kernelspec
from autograder.scoring.output_limits import output_cut_problems

SLOTS = Path(tempfile.gettempdir()) / "cgan-grading-slots"  # one lock file per sandbox user id in use here
DATA_CACHE = Path(tempfile.gettempdir()) / "cgan-grading-data"  # Fashion-MNIST decoded once per machine
MAX_SLOTS = 4096
NOTEBOOK_CPU_WEIGHT, TESTS_CPU_WEIGHT = 100, 200  # cgroup CPU shares of a submission's kernel and of its tests


@dataclass(frozen=True)
class SubmissionTask:
    student: str
    assignment: str
    notebook: str          # the notebook's name, e.g. cgan for cgan.ipynb
    submission: bytes      # the notebook to grade, as intake repaired it
    gradebook: bytes       # the template gradebook: the assignment, its cells, hidden tests, points
    limits: Limits


@dataclass
class Outcome:
    student: str
    graded: bool
    grades: dict = field(default_factory=dict)    # {grade cell: [auto_score, needs_manual_grade]}
    comments: dict = field(default_factory=dict)  # {cell: auto_comment}
    autograded: bytes | None = None               # the executed notebook, for the instructor
    feedback: bytes | None = None                 # the page the student gets
    problems: list = field(default_factory=list)  # [(kind, detail)] for problems.csv
    log: str = ""
    seconds: float = 0.0
    timed_out: bool = False                       # a time limit stopped it: may be graded again alone
    timings: dict = field(default_factory=dict)   # seconds: {"cells": {cell: s}, "tests": {test: s}}


_zygotes = threading.local()  # .zygote: each thread's warm zygote
_slot = {}  # this process's sandbox slot: {"lock": open file (its flock held while the process lives), "uid": int}


def _sandbox_uid():
    """This process's sandbox user id: a slot no other grading process on this machine holds."""
    if not _slot:
        SLOTS.mkdir(mode=0o700, exist_ok=True)
        for slot in range(MAX_SLOTS):
            lock = open(SLOTS / f"slot-{slot}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            _slot.update(lock=lock, uid=sandbox.SANDBOX_UID_BASE + slot)
            break
        else:
            raise RuntimeError(f"all {MAX_SLOTS} sandbox slots of this machine are taken")
    return _slot["uid"]


def _dataset_folder():
    """The folder of Fashion-MNIST on this machine; its decoded copy made in DATA_CACHE (for every kernel to read)."""
    try:
        images, _ = find_fashion_mnist("train")
        test_images, _ = find_fashion_mnist("test")
        os.environ["CGAN_DATA_CACHE"] = str(DATA_CACHE)
        load_fashion_mnist("train")
        load_fashion_mnist("test")
    except FashionMNISTError as error:
        raise RuntimeError(f"grading needs Fashion-MNIST on this machine, and it was not found:\n{error}") from None
    if images.parent != test_images.parent:
        raise RuntimeError(f"Fashion-MNIST's training and test files are in different folders ({images.parent}, "
                           f"{test_images.parent}): put them in one and set CGAN_DATA_DIR")
    return images.parent


def _python_path():
    """$PYTHONPATH for the processes grading starts: this repository first (the autograder package is not installed)."""
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


def _environment(root, limits, groups):
    environment = {k: v for k, v in os.environ.items() if k not in ("CGAN_SCHEDULE", "CGAN_CHECKPOINT_DIR")}
    environment.update(limits.kernel_environment(), JUPYTER_PATH=str(root / "jupyter"), MPLBACKEND="Agg",
                       CGAN_DATA_DIR=str(_dataset_folder()), CGAN_DATA_CACHE=str(DATA_CACHE),
                       CGAN_CHECKPOINT_DIR=str(root / "scratch"),
                       HOME=str(root / "scratch"), TMPDIR=str(root / "runtime"), CGAN_DEVICE="cpu",
                       PYTHONPATH=_python_path())
    if limits.sandbox:  # the notebook's kernel and the tests' probe process: a user and a cgroup each
        notebook, tests = groups
        environment.update(CGAN_SANDBOX_UID=str(_sandbox_uid()), CGAN_SANDBOX_SCRATCH=str(root / "scratch"),
                           CGAN_PROBE_UID=str(_sandbox_uid() + sandbox.TESTS_UID_OFFSET),
                           CGAN_PROBE_SCRATCH=str(root / "probe-scratch"), CGAN_PROBE_CGROUP_PROCS=tests.procs_env(),
                           **{cgroups.PROCS_ENV: notebook.procs_env()})
    return environment


def _zygote():
    """This thread's warm zygote (autograder/run/zygote.py), started on first use or after it died."""
    zygote = getattr(_zygotes, "zygote", None)
    if zygote is None or not zygote.alive:
        if zygote is not None:
            zygote.close()
        environment = dict(os.environ, MPLBACKEND="Agg",
                           PYTHONPATH=_python_path())
        zygote = _zygotes.zygote = Zygote(environment, cwd=REPO)
    return zygote


def _run_worker(root, task, environment):
    """autograder.run.worker on the course folder, in a process forked by the zygote; (its result, timed out?)."""
    job = {"root": str(root), "db_url": db_url(root / "gradebook.db"), "assignment": task.assignment,
           "student": task.student, "limits": asdict(task.limits)}
    (root / "job.json").write_text(json.dumps(job))
    try:
        zygote = _zygote()
        zygote.fork(root / "job.json", environment, root / "worker.log", REPO)
        status = zygote.wait(task.limits.notebook_timeout)
        if status is None:
            zygote.kill_child()  # the worker, its kernel and anything they started
            return {}, True
    except ZygoteDied as death:
        status = f"unknown ({death})"
    result = root / "result.json"
    if not result.exists():
        tail = (root / "worker.log").read_text(errors="replace")[-2000:] if (root / "worker.log").exists() else ""
        return {"autograded": False, "log": f"the grading process exited with status {status}:\n{tail}"}, False
    return json.loads(result.read_text()), False


def _what_stopped_it(result, limits, timed_out, group_problems):
    """(kind, what happened) when the notebook's run did not end normally."""
    if timed_out:
        return "too slow", (f"grading took longer than {limits.notebook_timeout} s in all and was stopped (check the "
                            f"notebook for long loops, or grade it again with a larger --notebook-timeout)")
    if group_problems:
        return "cgroup kill", group_problems[0]
    log = result.get("log", "")
    if "kernel died" in log.lower() or "DeadKernelError" in log:
        return "kernel died", ("the notebook's Python process died while running (os._exit(), a crash such as a "
                               "segfault, the CPU-time limit or a file over the size limit)")
    if "CellTimeoutError" in log:
        return "too slow", f"a cell ran longer than {limits.cell_timeout} s and did not stop when interrupted"
    last = [line for line in log.strip().splitlines() if line.strip()][-3:]
    return "grading failed", f"nbgrader could not grade it: {' | '.join(last)}. Its log is in the workspace's logs/"


def _cell_seconds(notebook):
    """{cell label: seconds it ran} from the timestamps nbclient records in each executed cell."""
    from datetime import datetime

    seconds = {}
    for index, cell in enumerate(notebook.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
            seconds[label] = round((end - start).total_seconds(), 3)
    return seconds


def _verdicts_only(outcome, root, task, judgement, result, limits, timed_out, group_problems):
    """Scores from the verdicts alone, when the notebook's own run did not end (it timed out, its kernel died):
    the tests never ran in it, so what it did there costs no test's points; the problem is reported."""
    points = gradebook.grade_cell_points(db_url(root / "gradebook.db"), task.assignment)
    verdicts = judgement["verdicts"]
    outcome.grades = {name: ([points[name] if verdicts[name]["passed"] else 0.0, False] if name in verdicts
                             else [None, True]) for name in points}
    outcome.graded = True
    kind, detail = _what_stopped_it(result, limits, timed_out, group_problems)
    outcome.problems += [tuple(p) for p in judgement["problems"]]
    outcome.problems.append((kind, f"{detail}; the tests run outside the notebook and were scored all the same"))
    page = root / "verdicts.html"
    feedback.verdicts_page(page, task.student, task.assignment, verdicts, points, outcome.problems)
    outcome.feedback = page.read_bytes()


def _cgroup(name, limits, cpu_weight):
    """A SubmissionCgroup for one sandboxed process tree of a submission (None without the sandbox)."""
    if not limits.sandbox:
        return nullcontext(None)
    return cgroups.SubmissionCgroup.create(name, memory_bytes=int(limits.memory_gb * 1024**3),
                                           pids=limits.processes + 16, cpu_weight=cpu_weight)  # + bwrap's own


def grade_submission(task):
    """Grade one submission in a temporary course folder; its Outcome (never raises for the student's doing)."""
    start = time.monotonic()
    limits = task.limits
    with tempfile.TemporaryDirectory(prefix=f"cgan-grading-{task.student}-") as tmp:
        root = Path(tmp)
        (root / "gradebook.db").write_bytes(task.gradebook)
        submitted = root / "submitted" / task.student / task.assignment / f"{task.notebook}.ipynb"
        submitted.parent.mkdir(parents=True)
        submitted.write_bytes(task.submission)
        for folder in ("scratch", "probe-scratch"):
            (root / folder).mkdir()
        (root / "runtime").mkdir(mode=0o700)  # the kernel's connection file and sockets
        install_kernelspec(root / "jupyter")
        # The notebook's kernel and the tests' probe process run at the same time, each in a cgroup of its own:
        # what the notebook's code does to its memory, processes or CPU cannot starve the tests.
        name = f"{task.student[:60]}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        # The tests get two shares of the CPU to the notebook's one: they are what a submission waits for (the
        # notebook's run ends seconds earlier). Every submission has the same three shares in all.
        with _cgroup(f"{name}-notebook", limits, NOTEBOOK_CPU_WEIGHT) as notebook, \
                _cgroup(f"{name}-tests", limits, TESTS_CPU_WEIGHT) as tests:
            result, timed_out = _run_worker(root, task, _environment(root, limits, (notebook, tests)))
            group_problems = notebook.events().problems() if notebook else []  # what stopped the notebook, if any
            tests_problems = [f"the tests' process: {line}" for line in (tests.events().problems() if tests else [])]
        outcome = Outcome(task.student, graded=bool(result.get("autograded")), timed_out=timed_out,
                          log=result.get("log", "") + (root / "worker.log").read_text(errors="replace")[-100_000:])
        outcome.problems += [tuple(p) for p in result.get("problems", [])]
        outcome.problems += [("cgroup kill" if "kill" in line else "process cap", line)
                             for line in group_problems + tests_problems]
        judgement = root / "judgement.json"
        if judgement.exists():
            outcome.timings["tests"] = {g: v["seconds"] for g, v in json.loads(judgement.read_text())["verdicts"].items()}
        if not outcome.graded and judgement.exists():  # the tests were judged; only the notebook's own run failed
            _verdicts_only(outcome, root, task, json.loads(judgement.read_text()), result, limits, timed_out,
                           group_problems)
        elif outcome.graded:
            outcome.grades, outcome.comments = gradebook.read_scores(db_url(root / "gradebook.db"), task.assignment,
                                                                     task.student)
            executed = root / "autograded" / task.student / task.assignment / f"{task.notebook}.ipynb"
            page = root / "feedback" / task.student / task.assignment / f"{task.notebook}.html"
            outcome.autograded = executed.read_bytes()
            outcome.feedback = page.read_bytes() if page.exists() else None
            executed_notebook = nbformat.reads(outcome.autograded.decode(), as_version=4)
            outcome.problems += after_execution(executed_notebook, limits) + output_cut_problems(executed_notebook)
            outcome.timings["cells"] = _cell_seconds(executed_notebook)
        else:
            kind, detail = _what_stopped_it(result, limits, timed_out, group_problems)
            outcome.problems.append((kind, f"{detail}: nothing could be graded; 0"))
    outcome.problems = list(dict.fromkeys(outcome.problems))
    outcome.seconds = round(time.monotonic() - start, 2)
    return outcome
