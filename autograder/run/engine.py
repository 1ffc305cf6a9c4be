"""The grading engine: one self-contained task per submission, run by Dask, on a laptop or a cluster.

    with Engine(EngineConfig(journal=workspace / "journal.jsonl")) as engine:
        summary = engine.run(grade_submission, jobs, on_record)

Where: a `LocalCluster` on this machine (one worker process per core, one thread each), or an
existing scheduler (`scheduler_address`, else $DASK_SCHEDULER_ADDRESS) with workers anywhere,
started with `--preload autograder.run.worker_setup`. The task function and its input travel
through the scheduler to a worker (pickled, the function by reference): the scheduler and the
workers need the same environment, with this repository installed.

What the caller is promised:
  - on_record(record) runs in this process, once per task, as soon as the task ends: a `Result`
    (the task's return value) or a `Failure` (why there is none). The caller alone writes.
  - Resumable: after on_record returns, (key, content hash) goes into the journal (journal.py);
    a later run skips what it lists, unless `regrade`. on_record must be idempotent per key: it
    runs twice for one task only if the client died between it and the journal's fsync.
  - A worker killed mid-task: Dask runs its tasks elsewhere. A task that kills its worker again
    and again: a `Failure` after `max_tries` (Dask's allowed-failures), not an endless loop.
  - Tasks require the resource "sandbox", which only workers that can sandbox declare
    (worker_setup.py). When no connected worker can run the tasks for `worker_wait` seconds,
    NoCapableWorker says which workers there are and why each cannot.
  - No more tasks are submitted than the capable workers have threads: the scheduler holds few
    submissions at once, and a worker's death counts against the task it was running only.
"""
import logging
import os
import pickle
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import dask
from distributed import Client, KilledWorker, LocalCluster, get_worker, wait

from autograder.run import worker_setup
from autograder.run.journal import Journal
from autograder.run.worker_setup import SANDBOX_RESOURCE

WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
POLL_SECONDS = 1.0  # how often the client asks the scheduler which workers can run tasks
log = logging.getLogger(__name__)


class EngineError(RuntimeError):
    """The engine cannot grade at all (the CLI exits with status 2)."""


class SchedulerUnreachable(EngineError):
    """No scheduler answers at the address given, or it went away."""


class NoCapableWorker(EngineError):
    """No connected worker can run the tasks (no sandbox, no GPU, or no worker at all)."""


class SandboxRefused(RuntimeError):
    """Raised on a worker asked to run a task that needs the sandbox it does not have."""


@dataclass(frozen=True)
class EngineConfig:
    """Where and how tasks run, and what is recorded; the CLI's options fill it in."""
    scheduler_address: str | None = None   # None: $DASK_SCHEDULER_ADDRESS, else a LocalCluster here
    n_workers: int | None = None           # LocalCluster: worker processes (None: one per core)
    threads_per_worker: int = 1            # LocalCluster: tasks at once per worker process
    max_tries: int = 3                     # LocalCluster: runs of a task whose worker dies (a scheduler
                                           # of your own: its allowed-failures + 1, by default 4)
    resources: Mapping[str, float] = field(default_factory=dict)  # each task's, e.g. {"GPU": 1}
    require_sandbox: bool = True           # run tasks only on workers that can sandbox
    journal: Path | None = None            # the resume journal (None: no resuming)
    regrade: bool = False                  # grade again what the journal lists
    connect_timeout: float = 5.0           # seconds to reach the scheduler
    worker_wait: float = 60.0              # seconds without a capable worker before giving up
    max_in_flight: int | None = None       # at most this many tasks at once (1: each alone), else one per thread


@dataclass(frozen=True)
class Job:
    """One task: a key unique in the run (the student), its input, and that input's content hash."""
    key: str
    payload: Any
    digest: str = ""                       # default: sha256 of the pickled payload

    def __post_init__(self):
        if not self.digest:
            object.__setattr__(self, "digest", sha256(pickle.dumps(self.payload, protocol=5)).hexdigest())


@dataclass(frozen=True)
class Result:
    key: str
    digest: str
    value: Any                             # what the task function returned
    worker: str                            # the address of the worker that ran it
    seconds: float                         # how long the task function ran
    ok = True


@dataclass(frozen=True)
class Failure:
    key: str
    digest: str
    kind: str                              # "worker died", "no sandbox", "task error" or "cancelled"
    reason: str                            # a sentence for problems.csv
    ok = False


@dataclass
class RunSummary:
    results: int = 0
    failures: int = 0
    skipped: int = 0                       # listed in the journal
    refusals: dict = field(default_factory=dict)  # worker address -> why it takes no grading tasks


def _execute(task, payload, needs_sandbox):
    """On a worker: the task function, timed; refused where the sandbox is needed and missing."""
    worker = get_worker()
    if needs_sandbox and (reason := worker_setup.refusal(worker)):
        raise SandboxRefused(f"worker {worker.address} cannot sandbox students' code: {reason}")
    start = time.perf_counter()
    value = task(payload)
    return value, time.perf_counter() - start, worker.address


def _failure(job, future):
    if future.status == "cancelled":
        return Failure(job.key, job.digest, "cancelled", "its task was cancelled on the scheduler; grade again")
    error = future.exception()
    if isinstance(error, KilledWorker):
        return Failure(job.key, job.digest, "worker died",
                       f"the worker grading it died {error.allowed_failures + 1} times (the submission "
                       "crashed it, it ran out of memory, or it was killed): not graded; 0")
    if isinstance(error, SandboxRefused):
        return Failure(job.key, job.digest, "no sandbox", str(error))
    return Failure(job.key, job.digest, "task error", f"{type(error).__name__}: {error}")


class Engine:
    """A connection to a Dask cluster (started here when no scheduler is given) that grades batches."""

    def __init__(self, config=EngineConfig()):
        self.config = config
        self.required = dict(config.resources)
        if config.require_sandbox:
            self.required[SANDBOX_RESOURCE] = 1
        self.cluster = self.client = None

    def __enter__(self):
        address = self.config.scheduler_address or dask.config.get("scheduler-address", None)
        try:
            if address:
                self.client = self._connect(address)
            else:
                self.cluster = self._local_cluster()
                self.client = Client(self.cluster)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Disconnect; stop the LocalCluster's workers if this engine started them."""
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def _connect(self, address):
        try:
            return Client(address, timeout=self.config.connect_timeout)
        except (OSError, ValueError) as error:
            raise SchedulerUnreachable(
                f"cannot reach the Dask scheduler at {address} ({error}): start one there with "
                f"`dask scheduler`, check the address, port and firewall, or leave out --scheduler "
                f"(and $DASK_SCHEDULER_ADDRESS) to grade on this machine") from None

    def _local_cluster(self):
        if self.config.require_sandbox and (reason := worker_setup.sandbox_check()):
            raise NoCapableWorker(f"cannot sandbox students' code on this machine: {reason}")
        environment = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **WORKER_ENVIRONMENT}
        with dask.config.set({"distributed.scheduler.allowed-failures": self.config.max_tries - 1,
                              "distributed.nanny.pre-spawn-environ": environment}):
            return LocalCluster(n_workers=self.config.n_workers or len(os.sched_getaffinity(0)),
                                threads_per_worker=self.config.threads_per_worker, processes=True,
                                preload=[worker_setup.__name__], silence_logs=logging.ERROR,
                                dashboard_address=None,  # no dashboard; its HTTP server on a free loopback port:
                                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})  # 8787 may be taken

    def run(self, task, jobs: Iterable[Job], on_record) -> RunSummary:
        """Run task(job.payload) for each job not yet journaled; on_record(Result | Failure) as each ends."""
        journal = Journal(self.config.journal) if self.config.journal else None
        try:
            return _Run(self, task, journal, on_record).through(jobs)
        finally:
            if journal:
                journal.close()


class _Run:
    """One batch: keep the capable workers' threads busy, record each task as it ends."""

    def __init__(self, engine, task, journal, on_record):
        self.engine, self.client, self.config = engine, engine.client, engine.config
        self.task, self.journal, self.on_record = task, journal, on_record
        self.summary, self.pending, self.keys, self.asked = RunSummary(), {}, set(), set()
        self.capacity, self.refreshed, self.stalled_since = 0, float("-inf"), None

    def through(self, jobs):
        self.jobs = iter(jobs)
        self.next_job = self._advance()
        while self.next_job or self.pending:
            self._refresh()
            self._fill()
            ended = [(future, self.pending.pop(future)) for future in self._completed()]
            self._fill()  # the threads just freed start their next tasks while the ended ones are recorded
            for future, job in ended:
                self._record(job, future)
                future.release()
        return self.summary

    def _advance(self):
        """The next job to grade, past those the journal lists; None when there is none."""
        for job in self.jobs:
            if job.key in self.keys:
                raise ValueError(f"two submissions have the key {job.key!r}: each must have its own")
            self.keys.add(job.key)
            if self.journal and not self.config.regrade and (job.key, job.digest) in self.journal.done:
                self.summary.skipped += 1
                continue
            return job
        return None

    def _fill(self):
        """Submit jobs until every capable thread has one."""
        while self.next_job and len(self.pending) < self.capacity:
            job = self.next_job
            future = self.client.submit(_execute, self.task, job.payload, SANDBOX_RESOURCE in self.engine.required,
                                        key=("grade", job.key, job.digest[:16]), resources=self.engine.required,
                                        retries=0)
            self.pending[future] = job
            self.next_job = self._advance()

    def _completed(self):
        """The futures that have ended, after waiting up to POLL_SECONDS for one."""
        if not self.pending:
            time.sleep(POLL_SECONDS)
            return []
        try:
            with self.client.as_current():
                wait(list(self.pending), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
        except (TimeoutError, CancelledError):  # none ended yet; or one was cancelled: its status says so
            pass
        return [future for future in self.pending if future.done()]

    def _record(self, job, future):
        if future.status == "finished":
            value, seconds, worker = future.result()
            record = Result(job.key, job.digest, value, worker, seconds)
        else:
            record = _failure(job, future)
        self.on_record(record)
        if self.journal:
            self.journal.append(job.key, job.digest, record.ok)
        self.summary.results += record.ok
        self.summary.failures += not record.ok

    def _refresh(self):
        """Every POLL_SECONDS: how many tasks the capable workers run at once; give up after worker_wait."""
        now = time.monotonic()
        if now - self.refreshed < POLL_SECONDS:
            return
        self.refreshed = now
        try:
            workers = self.client.scheduler_info(n_workers=-1).get("workers")
        except OSError:
            workers = None
        if workers is None or self.client.status != "running":
            raise SchedulerUnreachable(f"lost the Dask scheduler at {self.client.scheduler.address}: run again "
                                       "to grade what is missing (what was recorded stays recorded)")
        self.capacity, unable = 0, {}
        for address, worker in workers.items():
            shares = [worker["resources"].get(name, 0) // amount for name, amount in self.engine.required.items()]
            slots = int(min([worker["nthreads"], *shares])) if worker["status"] == "running" else 0
            self.capacity += slots
            if not slots:
                unable[address] = worker
        self._ask_why(unable)
        if self.config.max_in_flight:
            self.capacity = min(self.capacity, self.config.max_in_flight)
        if self.capacity:
            self.stalled_since = None
        elif self.stalled_since is None:
            self.stalled_since = now
        elif now - self.stalled_since > self.config.worker_wait:
            raise NoCapableWorker(self._no_worker_message(workers, unable))

    def _ask_why(self, unable):
        """Ask each worker that takes no tasks, once, why; warn about those that cannot sandbox."""
        new = [address for address in unable if address not in self.asked]
        if not new or not self.config.require_sandbox:
            return
        for address, reason in self.client.run(worker_setup.refusal, workers=new, on_error="return").items():
            if isinstance(reason, Exception):
                continue  # it went away while we asked
            self.asked.add(address)
            if reason:
                self.summary.refusals[address] = reason
                log.warning("worker %s takes no grading tasks: it cannot sandbox students' code: %s",
                            address, reason)

    def _no_worker_message(self, workers, unable):
        needs = ", ".join(f"{name}={amount:g}" for name, amount in self.engine.required.items())
        if not workers:
            return (f"no worker connected to the scheduler in {self.config.worker_wait:g} s: start workers with "
                    f"`dask worker {self.client.scheduler.address} --preload {worker_setup.__name__}`")
        lines = []
        for address, worker in unable.items():
            if address in self.summary.refusals:
                lines.append(f"  {address}: cannot sandbox: {self.summary.refusals[address]}")
            else:
                missing = [name for name, amount in self.engine.required.items()
                           if worker["resources"].get(name, 0) < amount]
                lines.append(f"  {address}: status {worker['status']}, lacks {', '.join(missing) or 'nothing'}"
                             + (" (start it with --resources GPU=1)" if "GPU" in missing else ""))
        return (f"no connected worker can run the grading tasks (each needs {needs}) for "
                f"{self.config.worker_wait:g} s:\n" + "\n".join(lines)
                + "\nfix those workers or start capable ones, then run again to grade what is missing")


def run(task, jobs, on_record, config=EngineConfig()):
    """Grade `jobs` with `task` on the cluster `config` describes; the cluster goes when done."""
    with Engine(config) as engine:
        return engine.run(task, jobs, on_record)
