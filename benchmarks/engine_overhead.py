"""The grading engine's own cost per task: no-op tasks per second through Dask.

    python benchmarks/engine_overhead.py [--tasks 2000] [--payload-kb 1024]

Runs tasks that do nothing (they return their input's length) through
autograder.run.engine, on two clusters, each with 2 single-threaded workers:

    LocalCluster            what `python -m autograder grade` starts by default
    scheduler + 2 workers   `dask scheduler` and two `dask worker` processes on 127.0.0.1

and, on each, three ways:

    engine, journal         Engine.run with its resume journal (one fsync per task)
    engine, no journal      Engine.run alone: one task per worker thread at a time
    dask, all at once       client.map of every task, then as_completed: Dask's own floor
    engine, N KB payload    Engine.run with a notebook-sized input per task (--payload-kb)

The table gives tasks per second and milliseconds per task; a grading task takes ~20 s
(benchmarks/RESULTS.md), so the engine's share is the ms per task over 20,000.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from distributed import Client, as_completed  # noqa: E402

from autograder.run import worker_setup  # noqa: E402
from autograder.run.engine import Engine, EngineConfig, Job  # noqa: E402

DASK = Path(sys.executable).parent / "dask"
WORKERS = 2


def noop(payload):
    return len(payload)


def jobs(count, size, prefix="s"):
    return [Job(f"{prefix}{i:05d}", b"x" * size + str(i).encode(), digest=f"{i:064x}") for i in range(count)]


def timed_engine(config, count, size):
    records = []
    with Engine(config) as engine:
        engine.run(noop, jobs(8, size, prefix="warm"), records.append)  # the workers import what they run
        start = time.perf_counter()
        engine.run(noop, jobs(count, size), records.append)
        return time.perf_counter() - start


def timed_dask(config, count):
    with Engine(config) as engine:
        client, resources = engine.client, engine.required
        client.gather(client.map(noop, [b"warm"] * 8, resources=resources, pure=False))
        start = time.perf_counter()
        futures = client.map(noop, [b"%d" % i for i in range(count)], resources=resources, pure=False)
        for future in as_completed(futures):
            future.result()
        return time.perf_counter() - start


def measure(name, config, args, folder):
    rows = []
    for mode, run in [("engine, journal", lambda: timed_engine(
                          replace(config, journal=folder / f"{name}.jsonl"), args.tasks, 8)),
                      ("engine, no journal", lambda: timed_engine(config, args.tasks, 8)),
                      ("dask, all at once", lambda: timed_dask(config, args.tasks)),
                      (f"engine, {args.payload_kb} KB payload",
                       lambda: timed_engine(config, args.tasks // 10, args.payload_kb * 1024))]:
        count = args.tasks // 10 if "payload" in mode else args.tasks
        seconds = run()
        rows.append((name, mode, count, seconds))
        print(f"  {name:22} {mode:26} {count:6d} tasks {seconds:7.2f} s", file=sys.stderr, flush=True)
    return rows


def start_cluster(folder):
    """A scheduler and WORKERS workers on 127.0.0.1; (address, processes)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    scheduler_file = folder / "scheduler.json"
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", scheduler_file], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for _ in range(WORKERS):
        processes.append(subprocess.Popen([DASK, "worker", "--scheduler-file", scheduler_file, "--host", "127.0.0.1",
                                           "--nthreads", "1", "--no-dashboard", "--preload", worker_setup.__name__],
                                          env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    while not scheduler_file.exists():
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout=60) as client:
        client.wait_for_workers(WORKERS, timeout=60)
    return address, processes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--payload-kb", type=int, default=1024)
    args = parser.parse_args()
    sandboxed = worker_setup.sandbox_check() is None
    if not sandboxed:
        print("this machine cannot sandbox: tasks run without the sandbox resource", file=sys.stderr)
    folder = Path(tempfile.mkdtemp(prefix="engine-bench-"))

    start = time.perf_counter()
    with Engine(EngineConfig(n_workers=WORKERS, require_sandbox=sandboxed)):
        pass
    local_start = time.perf_counter() - start
    rows = measure("LocalCluster", EngineConfig(n_workers=WORKERS, require_sandbox=sandboxed), args, folder)

    address, processes = start_cluster(folder)
    try:
        rows += measure("scheduler + 2 workers", EngineConfig(scheduler_address=address, require_sandbox=sandboxed),
                        args, folder)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)

    print(f"\n{os.cpu_count()} cores; {WORKERS} workers x 1 thread; sandbox resource required: {sandboxed}; "
          f"LocalCluster start + stop: {local_start:.1f} s\n")
    print("| cluster | how | tasks | seconds | tasks/s | ms per task |")
    print("|---|---|---|---|---|---|")
    for name, mode, count, seconds in rows:
        print(f"| {name} | {mode} | {count} | {seconds:.2f} | {count / seconds:,.0f} | {1000 * seconds / count:.2f} |")


if __name__ == "__main__":
    main()
