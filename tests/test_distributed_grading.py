"""Grading a class on a real Dask scheduler and workers: same grades, nothing lost, nothing twice.

`dask scheduler` and two `dask worker` processes (with the real sandbox check) run on
127.0.0.1; `python -m autograder grade` runs as a client process, as an instructor runs it.
A worker is killed mid-run; a client is killed mid-run and run again. Every process is
started in a session of its own and stopped by its PID (its group), failure or not.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from nbgrader.api import Gradebook

from autograder.isolation import launch
from autograder.testdata import sample_class

REPO = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"
STUDENTS = ["correct_solution", "bug_no_zero_grad", "untouched_release"]
ENVIRONMENT = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
LIMITS = ["--cell-timeout", "120", "--notebook-timeout", "300"]


class Started:
    """Processes started in sessions of their own; stop() kills each whole group by its PID."""

    def __init__(self, folder):
        self.folder, self.processes = folder, []

    def start(self, name, argv):
        with open(self.folder / f"{name}.log", "wb") as log:
            process = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, env=ENVIRONMENT,
                                       cwd=REPO, start_new_session=True)
        self.processes.append(process)
        return process

    def stop(self):
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def sandboxed():
    reason = launch.unavailable_reason()
    if reason:
        if os.environ.get("CGAN_REQUIRE_SANDBOX"):
            pytest.fail(f"the sandbox is required here (CGAN_REQUIRE_SANDBOX) but unavailable: {reason}")
        pytest.skip(f"no sandbox here: {reason}")


@pytest.fixture(scope="module")
def small_class(tmp_path_factory, real_data_dir, sandboxed):
    everyone, folder = tmp_path_factory.mktemp("everyone"), tmp_path_factory.mktemp("class")
    cases = sample_class.write(everyone)
    for student in STUDENTS:
        (everyone / student).rename(folder / student)
    return folder, cases


@pytest.fixture
def cluster(tmp_path):
    """A `dask scheduler` and two `dask worker`s on 127.0.0.1; (address, the worker processes, Started)."""
    started = Started(tmp_path)
    try:
        scheduler_file = tmp_path / "scheduler.json"
        started.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                    "--scheduler-file", scheduler_file])
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [started.start(f"worker{i}", [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                                "--no-dashboard", "--preload", "autograder.run.worker_setup"])
                   for i in range(2)]
        yield address, workers, started
    finally:
        started.stop()


def grade(folder, workspace, *options, started=None):
    argv = [sys.executable, "-m", "autograder", "grade", "cgan", folder, "--workspace", workspace, "--quiet",
            *LIMITS, *options]
    if started is not None:
        return started.start("client", argv)
    return subprocess.run([str(a) for a in argv], cwd=REPO, env=ENVIRONMENT, capture_output=True, text=True)


def scores(workspace):
    with open(workspace / "grades-cgan.csv", newline="") as f:
        return {row["student"]: row["score"] for row in csv.DictReader(f)}


def journal_keys(workspace):
    path = workspace / "journal-cgan.jsonl"
    return Counter(json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip()) \
        if path.exists() else Counter()


def whole(workspace):
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gradebook:
        assert sorted(s.id for s in gradebook.students) == sorted(STUDENTS)
        assert len(gradebook.find_assignment("cgan").submissions) == len(STUDENTS)


def test_a_class_graded_on_a_scheduler_gets_the_grades_of_a_local_cluster(small_class, cluster, tmp_path):
    folder, _ = small_class
    address, _, _ = cluster
    remote = grade(folder, tmp_path / "remote", "--scheduler", address)
    local = grade(folder, tmp_path / "local", "--workers", "2")
    # 0: graded, and none of the three needs attention (a 0 for an untouched notebook is a grade, not a problem)
    assert remote.returncode == local.returncode == 0, remote.stderr[-2000:] + local.stderr[-2000:]
    assert scores(tmp_path / "remote") == scores(tmp_path / "local")
    assert scores(tmp_path / "remote") == {"correct_solution": "28.0", "bug_no_zero_grad": "15.0",
                                           "untouched_release": "0.0"}


def test_a_worker_killed_mid_run_loses_nothing_and_grades_nothing_twice(small_class, cluster, tmp_path):
    folder, _ = small_class
    address, workers, started = cluster
    client = grade(folder, tmp_path / "ws", "--scheduler", address, started=started)
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:  # a worker that is grading: it has a kernel below it
        for worker in workers:
            family = psutil.Process(worker.pid).children(recursive=True)
            if any("autograder.run.worker" in " ".join(p.cmdline()) for p in family):
                victim = worker
                break
        time.sleep(0.5)
    assert victim is not None, "no worker started grading within 2 minutes"
    os.killpg(victim.pid, signal.SIGKILL)  # the dask worker, its nanny's process and the grading under it
    assert client.wait(timeout=900) == 0, (tmp_path / "client.log").read_text()[-3000:]
    assert journal_keys(tmp_path / "ws") == Counter({student: 1 for student in STUDENTS})
    assert scores(tmp_path / "ws")["correct_solution"] == "28.0"
    whole(tmp_path / "ws")


def test_a_client_killed_mid_run_resumes_without_grading_anything_twice(small_class, tmp_path):
    folder, _ = small_class
    started = Started(tmp_path)
    try:
        client = grade(folder, tmp_path / "ws", "--workers", "1", started=started)
        deadline = time.monotonic() + 600
        while not journal_keys(tmp_path / "ws") and time.monotonic() < deadline:
            time.sleep(0.5)
        first = journal_keys(tmp_path / "ws")
        assert first, "nothing was graded within 10 minutes"
        os.killpg(client.pid, signal.SIGKILL)  # the client and its LocalCluster
        client.wait(timeout=30)
    finally:
        started.stop()
    again = grade(folder, tmp_path / "ws", "--workers", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    keys = journal_keys(tmp_path / "ws")
    assert set(keys) == set(STUDENTS) and all(count == 1 for count in keys.values()), keys
    whole(tmp_path / "ws")
    assert len(scores(tmp_path / "ws")) == len(STUDENTS)
