"""The grading engine (autograder/run/engine.py) with real processes: a `dask scheduler` and
`dask worker`s on 127.0.0.1, LocalClusters, and clients killed midway.

The task is tests/engine_tasks.py's stand-in (sleeps, dies on a "poison" input, returns a value
derived from its input). Every process a test starts is stopped by its PID, failure or not,
and the tests check that none of them (nor a LocalCluster's workers) is left behind.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import dask
import psutil
import pytest
from distributed import Client

import engine_tasks
from autograder.run import worker_setup
from autograder.run.engine import (Engine, EngineConfig, EngineError, Job, NoCapableWorker, SandboxRefused,
                                   SchedulerUnreachable, _execute, run)
from autograder.run.journal import Journal, JournalError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DASK = Path(sys.executable).parent / "dask"
FAKE_CHECK = {worker_setup.CHECK_VARIABLE: "engine_tasks:fake_sandbox_check"}  # no bwrap or root needed
ENVIRONMENT = {**os.environ, **FAKE_CHECK, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
NO_SANDBOX = "bubblewrap is not installed (simulated by the test)"
WORKER = [DASK, "worker", "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard", "--death-timeout", "30",
          "--preload", "autograder.run.worker_setup"]
START_TIMEOUT = 60  # seconds for processes to start on a busy 2-core machine; never reached when all is well


class Processes:
    """The processes a test starts; stop() ends each, and what it started, by PID."""

    def __init__(self, logs):
        self.logs, self.started = logs, []

    def start(self, name, argv, **options):
        log = open(self.logs / f"{name}.log", "wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=options.pop("env", ENVIRONMENT),
                                   cwd=REPO, **options)
        log.close()
        self.started.append(process)
        return process

    def stop(self):
        family = []
        for started in self.started:
            try:
                if started.poll() is None:
                    parent = psutil.Process(started.pid)
                    family += [parent, *_children(parent)]
            except psutil.NoSuchProcess:
                continue  # it ended meanwhile
        for process in family:
            if process.is_running():
                _signal(process.pid, signal.SIGTERM)  # dask workers and schedulers close cleanly on SIGTERM
        _, alive = psutil.wait_procs(family, timeout=10)
        for process in alive:
            _signal(process.pid, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=10)
        for p in self.started:
            p.wait(timeout=10)
        left = [p.pid for p in family if _alive(p.pid)]
        assert not left, f"processes left running: {left}"


def _children(process):
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _signal(pid, number):
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _worker_like(process):
    """Not multiprocessing's resource tracker (one per process that spawns, there until it exits)."""
    try:
        return "multiprocessing.resource_tracker" not in " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return False


def _new_children(before, timeout=15):
    """Children of this process started since `before` that are still running after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        new = [c.pid for c in _children(psutil.Process())
               if c.pid not in before and _alive(c.pid) and _worker_like(c)]
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def fake_sandbox_check(monkeypatch):
    """LocalClusters' workers, which inherit this environment, check the sandbox as the test says."""
    for name, value in FAKE_CHECK.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def processes(tmp_path):
    registry = Processes(tmp_path)
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and three workers: "cpu", "gpu" (--resources GPU=1) and "nosandbox" (cannot sandbox)."""
    folder = tmp_path_factory.mktemp("cluster")
    registry = Processes(folder)
    try:
        scheduler_file = folder / "scheduler.json"
        registry.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", scheduler_file])
        worker = [*WORKER, "--scheduler-file", scheduler_file]
        registry.start("cpu", [*worker, "--name", "cpu"])
        registry.start("gpu", [*worker, "--name", "gpu", "--resources", "GPU=1"])
        registry.start("nosandbox", [*worker, "--name", "nosandbox"],
                       env={**ENVIRONMENT, engine_tasks.NO_SANDBOX_VARIABLE: NO_SANDBOX})
        address = _scheduler_address(scheduler_file)
        with Client(address, timeout=START_TIMEOUT) as client:
            client.wait_for_workers(3, timeout=START_TIMEOUT)
        yield address, registry
    finally:
        registry.stop()


def _scheduler_address(scheduler_file):
    """The address a `dask scheduler --scheduler-file` wrote, once it has."""
    deadline = time.monotonic() + START_TIMEOUT
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return json.loads(scheduler_file.read_text())["address"]


def _worker_addresses(address):
    """{worker name: address} on the scheduler at `address`."""
    with Client(address, timeout=10) as client:
        return {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}


def _config(**options):
    return EngineConfig(**{"worker_wait": 20, **options})


def _collect(task, jobs, config):
    records = []
    summary = run(task, jobs, records.append, config)
    return summary, records


def _expected(jobs):
    return {job.key: engine_tasks.expected_value(job.payload["name"], job.payload["number"]) for job in jobs}


def _values(records):
    assert all(record.ok for record in records), [r for r in records if not r.ok]
    return {r.key: {k: v for k, v in r.value.items() if k != "pid"} for r in records}


def test_scheduler_run_equals_local_run_and_skips_a_worker_without_sandbox(cluster):
    address, _ = cluster
    jobs = engine_tasks.make_jobs(8, sleep=0.05)
    before = {c.pid for c in _children(psutil.Process())}
    _, local = _collect(engine_tasks.stand_in, jobs, _config(n_workers=2))
    assert not _new_children(before), "the LocalCluster's workers outlived the run"

    summary, remote = _collect(engine_tasks.stand_in, jobs, _config(scheduler_address=address))
    assert _values(local) == _values(remote) == _expected(jobs)
    assert sorted(r.key for r in remote) == sorted(job.key for job in jobs)  # each exactly once
    workers = _worker_addresses(address)
    assert {r.worker for r in remote} <= {workers["cpu"], workers["gpu"]}
    assert summary.refusals == {workers["nosandbox"]: NO_SANDBOX}


def test_gpu_tasks_run_on_the_gpu_worker_only(cluster):
    address, _ = cluster
    summary, records = _collect(engine_tasks.stand_in, engine_tasks.make_jobs(4),
                                _config(scheduler_address=address, resources={"GPU": 1}))
    assert summary.results == 4
    assert {r.worker for r in records} == {_worker_addresses(address)["gpu"]}


def test_a_worker_killed_mid_task_loses_nothing(cluster, tmp_path):
    address, _ = cluster
    jobs = engine_tasks.make_jobs(10, sleep=1.0, markers=tmp_path)
    records, killed = [], {}

    def on_record(record):
        records.append(record)
        if not killed:  # kill the worker of a task that has just started (it has a second to go)
            recorded, deadline = {r.key for r in records}, time.monotonic() + START_TIMEOUT
            while not killed and time.monotonic() < deadline:
                fresh = [(times[-1], name) for name, times in engine_tasks.starts(tmp_path).items()
                         if name not in recorded and time.time_ns() - times[-1][0] < 300_000_000]
                if fresh:
                    (_, pid), name = max(fresh)
                    os.kill(pid, signal.SIGKILL)
                    killed.update(name=name, pid=pid)

    summary = run(engine_tasks.stand_in, jobs, on_record, _config(scheduler_address=address))
    assert summary.results == 10 and summary.failures == 0
    assert Counter(r.key for r in records) == Counter(job.key for job in jobs)  # each recorded exactly once
    assert _values(records) == _expected(jobs)
    again = next(r for r in records if r.key == killed["name"])
    assert again.value["pid"] != killed["pid"], "the killed task's result came from the killed process"
    assert len(engine_tasks.starts(tmp_path)[killed["name"]]) == 2  # started, killed, run again elsewhere


def test_a_killed_client_resumes_without_recording_twice(cluster, processes, tmp_path):
    address, _ = cluster
    journal, store = tmp_path / "journal.jsonl", tmp_path / "store"
    client = [sys.executable, "-m", "engine_tasks", "--scheduler", address, "--journal", journal, "--store", store,
              "--count", "10", "--sleep", "0.5"]
    first = processes.start("client-1", client)
    deadline = time.monotonic() + START_TIMEOUT
    while (not journal.exists() or journal.read_text().count("\n") < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    journaled = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert 3 <= len(journaled) < 10, "the client was not killed midway"
    calls_before = Counter((store / "calls.log").read_text().split())

    second = subprocess.run(client, env=ENVIRONMENT, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout.splitlines()[-1])
    assert summary == {"results": 10 - len(journaled), "failures": 0, "skipped": len(journaled)}

    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    assert Counter(e["key"] for e in entries) == Counter(f"student{i:02d}" for i in range(10))
    stored = {path.stem: json.loads(path.read_text()) for path in store.glob("*.json")}
    assert {key: {k: v for k, v in entry["value"].items() if k != "pid"} for key, entry in stored.items()} \
        == _expected(engine_tasks.make_jobs(10))
    calls = Counter((store / "calls.log").read_text().split())
    assert all(calls[key] == 1 for key in journaled)  # what was journaled was not graded again
    twice = [key for key, count in calls.items() if count > 1]
    # at most the one task whose record the kill interrupted between the callback and the journal
    assert len(twice) <= 1 and all(calls_before[key] == 1 for key in twice), calls


def test_ctrl_c_on_the_client_leaves_no_worker_behind(processes, tmp_path):
    journal = tmp_path / "journal.jsonl"
    client = processes.start("client", [sys.executable, "-m", "engine_tasks", "--journal", journal,
                                        "--store", tmp_path / "store", "--count", "20", "--sleep", "0.5"],
                             start_new_session=True)  # its own process group, as a terminal's foreground job
    deadline = time.monotonic() + START_TIMEOUT
    while (not journal.exists() or not journal.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    family = _children(psutil.Process(client.pid))
    assert len(family) >= 2, "the client's LocalCluster has no worker processes"
    os.killpg(client.pid, signal.SIGINT)  # what Ctrl-C does: SIGINT to every process of the group
    assert client.wait(timeout=60) == 130
    _, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, f"worker processes left behind: {[p.pid for p in alive]}"


def test_a_task_that_kills_its_worker_fails_after_bounded_tries(tmp_path):
    jobs = engine_tasks.make_jobs(4, sleep=0.05, markers=tmp_path, poison={2})
    before = {c.pid for c in _children(psutil.Process())}
    summary, records = _collect(engine_tasks.stand_in, jobs, _config(n_workers=2, max_tries=2))
    assert not _new_children(before), "the LocalCluster's workers outlived the run"
    assert (summary.results, summary.failures) == (3, 1)
    failure = next(r for r in records if not r.ok)
    assert failure.key == "student02" and failure.kind == "worker died" and "died 2 times" in failure.reason
    assert len(engine_tasks.starts(tmp_path)["student02"]) == 2
    assert _values([r for r in records if r.ok]) == {k: v for k, v in _expected(jobs).items() if k != "student02"}


def test_an_unreachable_scheduler_is_a_clear_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(SchedulerUnreachable, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        with Engine(_config(scheduler_address=f"tcp://127.0.0.1:{port}", connect_timeout=1)):
            pass
    assert time.monotonic() - start < 30  # bounded by connect_timeout, not Dask's default of 30 s and retries
    assert issubclass(SchedulerUnreachable, EngineError) and issubclass(EngineError, RuntimeError)  # CLI: exit 2


def test_a_scheduler_lost_mid_run_is_a_clear_error_and_keeps_what_was_recorded(processes, tmp_path):
    scheduler_file, journal = tmp_path / "scheduler.json", tmp_path / "journal.jsonl"
    scheduler = processes.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                              "--no-dashboard", "--scheduler-file", scheduler_file])
    processes.start("worker", [*WORKER, "--scheduler-file", scheduler_file])
    address = _scheduler_address(scheduler_file)
    records = []

    def on_record(record):
        records.append(record)
        if len(records) == 2:
            scheduler.kill()

    with pytest.raises(SchedulerUnreachable, match=f"lost the Dask scheduler at {address}: run again"):
        run(engine_tasks.stand_in, engine_tasks.make_jobs(10, sleep=0.2), on_record,
            _config(scheduler_address=address, journal=journal))
    assert 2 <= len(records) < 10
    assert len(journal.read_text().splitlines()) == len(records)


def test_the_scheduler_address_may_come_from_dask_config():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with dask.config.set({"scheduler-address": f"tcp://127.0.0.1:{port}"}):  # what $DASK_SCHEDULER_ADDRESS sets
        with pytest.raises(SchedulerUnreachable, match=f"tcp://127.0.0.1:{port}"):
            with Engine(_config(connect_timeout=1)):
                pass


def test_a_machine_that_cannot_sandbox_says_why_at_once(monkeypatch):
    monkeypatch.setenv(engine_tasks.NO_SANDBOX_VARIABLE, NO_SANDBOX)
    before = {c.pid for c in _children(psutil.Process())}
    with pytest.raises(NoCapableWorker, match="cannot sandbox students' code on this machine: bubblewrap is not"):
        _collect(engine_tasks.stand_in, engine_tasks.make_jobs(2), _config(n_workers=1))
    assert not _new_children(before), "a LocalCluster was started"


def test_a_cluster_that_cannot_sandbox_ends_with_the_reason(processes, tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    processes.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", scheduler_file])
    processes.start("nosandbox", [*WORKER, "--scheduler-file", scheduler_file],
                    env={**ENVIRONMENT, engine_tasks.NO_SANDBOX_VARIABLE: NO_SANDBOX})
    address = _scheduler_address(scheduler_file)
    with Client(address, timeout=START_TIMEOUT) as client:
        client.wait_for_workers(1, timeout=START_TIMEOUT)
    with pytest.raises(NoCapableWorker, match="cannot sandbox: bubblewrap is not installed") as raised:
        _collect(engine_tasks.stand_in, engine_tasks.make_jobs(2), _config(scheduler_address=address, worker_wait=2))
    assert "each needs sandbox=1" in str(raised.value)


def test_a_worker_without_sandbox_refuses_a_task_sent_to_it(cluster):
    address, _ = cluster
    with Client(address, timeout=10) as client:
        payload = engine_tasks.make_jobs(1)[0].payload
        future = client.submit(_execute, engine_tasks.stand_in, payload, True,
                               workers=[_worker_addresses(address)["nosandbox"]], pure=False)
        with pytest.raises(SandboxRefused, match="cannot sandbox students' code: bubblewrap is not installed"):
            future.result(timeout=START_TIMEOUT)


def test_the_journal_skips_what_is_recorded_and_regrade_redoes_it(cluster, tmp_path):
    address, _ = cluster
    config = _config(scheduler_address=address, journal=tmp_path / "journal.jsonl")
    jobs = engine_tasks.make_jobs(4)
    assert _collect(engine_tasks.stand_in, jobs, config)[0].results == 4
    summary, records = _collect(engine_tasks.stand_in, jobs, config)
    assert (summary.results, summary.skipped, records) == (0, 4, [])
    nothing_to_do = replace(config, resources={"TPU": 1}, worker_wait=1)  # no worker could: none is needed
    assert _collect(engine_tasks.stand_in, jobs, nothing_to_do)[0].skipped == 4
    changed = [*jobs[:3], Job(jobs[3].key, {**jobs[3].payload, "number": 99})]  # a submission handed in again
    summary, records = _collect(engine_tasks.stand_in, changed, config)
    assert (summary.skipped, [r.key for r in records]) == (3, [jobs[3].key])
    assert records[0].value["square"] == 99 * 99
    summary, _ = _collect(engine_tasks.stand_in, jobs, _config(scheduler_address=address, regrade=True,
                                                               journal=tmp_path / "journal.jsonl"))
    assert (summary.results, summary.skipped) == (4, 0)


def test_two_jobs_with_one_key_are_refused(cluster):
    address, _ = cluster
    jobs = engine_tasks.make_jobs(2)
    with pytest.raises(ValueError, match="two submissions have the key 'student00'"):
        _collect(engine_tasks.stand_in, [*jobs, jobs[0]], _config(scheduler_address=address))


def test_the_journal_forgets_a_line_cut_short_and_locks_its_workspace(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.append("alice", "aaa", ok=True)
        journal.append("bob", "bbb", ok=False)
    with open(path, "a") as file:
        file.write('{"key": "carol", "dig')  # the client died while writing
    with Journal(path) as journal:
        assert journal.done == {("alice", "aaa")}  # bob failed: graded again; carol never counted
        with pytest.raises(JournalError, match="in use by another grading run"):
            Journal(path)
        journal.append("carol", "ccc", ok=True)
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["alice", "bob", "carol"]
    path.write_text('{"key": "alice"}\n')
    with pytest.raises(JournalError, match="line 1, is damaged"):
        Journal(path)
