"""Stand-ins for tests/test_engine.py: a task function the Dask workers import, and a client.

    stand_in(payload)        sleeps, optionally kills its own worker process (a "poison" input),
                             returns a value derived from the input only (plus the pid that ran it)
    fake_sandbox_check()     the sandbox check, as $ENGINE_TEST_NO_SANDBOX on that worker says
                             (CGAN_SANDBOX_CHECK=engine_tasks:fake_sandbox_check makes workers use it)
    python -m engine_tasks --journal J --store S --count N [--scheduler ADDRESS]
                             a grading client: records each result as a file in S (and a line in
                             S/calls.log per call), prints the run's summary as JSON at the end

Workers import this module by name: they run with tests/ on PYTHONPATH.
"""
import argparse
import json
import os
import signal
import sys
import time
from hashlib import sha256
from pathlib import Path

NO_SANDBOX_VARIABLE = "ENGINE_TEST_NO_SANDBOX"


def expected_value(name, number):
    """What stand_in returns for (name, number), computed without it."""
    return {"digest": sha256(f"{name}:{number}".encode()).hexdigest()[:16], "square": number * number}


def stand_in(payload):
    """The per-submission task's stand-in: marks its start in payload["markers"], then works or dies."""
    if payload.get("markers"):
        marker = Path(payload["markers"]) / f"{payload['name']}.{os.getpid()}.{time.time_ns()}"
        marker.write_text(str(time.time()))
    if payload.get("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(payload.get("sleep", 0))
    return {**expected_value(payload["name"], payload["number"]), "pid": os.getpid()}


def fake_sandbox_check():
    return os.environ.get(NO_SANDBOX_VARIABLE) or None


def make_jobs(count, sleep=0.0, markers=None, poison=()):
    from autograder.run.engine import Job
    return [Job(f"student{i:02d}", {"name": f"student{i:02d}", "number": i, "sleep": sleep,
                                     "markers": str(markers) if markers else None, "poison": i in poison})
            for i in range(count)]


def starts(markers):
    """{name: [(time, pid), ...]} of every start stand_in marked."""
    found = {}
    for marker in Path(markers).iterdir():
        name, pid, when = marker.name.split(".")
        found.setdefault(name, []).append((int(when), int(pid)))
    return {name: sorted(times) for name, times in found.items()}


def main(argv=None):
    import engine_tasks  # the task by its module's name, not __main__, so workers import it
    from autograder.run.engine import EngineConfig, run

    parser = argparse.ArgumentParser()
    parser.add_argument("--scheduler")
    parser.add_argument("--journal", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    store = Path(args.store)
    store.mkdir(parents=True, exist_ok=True)

    def on_record(record):
        """Idempotent per key (a file per key, replaced whole); calls.log counts the calls."""
        with open(store / "calls.log", "a") as calls:
            calls.write(record.key + "\n")
            calls.flush()
            os.fsync(calls.fileno())
        partial = store / f"{record.key}.partial"
        partial.write_text(json.dumps({"ok": record.ok, "value": getattr(record, "value", None)}))
        os.replace(partial, store / f"{record.key}.json")

    config = EngineConfig(scheduler_address=args.scheduler, n_workers=args.workers, journal=Path(args.journal),
                          worker_wait=20)
    try:
        summary = run(engine_tasks.stand_in, make_jobs(args.count, args.sleep), on_record, config)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(json.dumps({"results": summary.results, "failures": summary.failures, "skipped": summary.skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
