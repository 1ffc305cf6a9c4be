"""Grading speed on the Dask engine: seconds per submission, throughput, and a course-size projection.

    python benchmarks/autograde.py [--assignment cgan] [--skip-scheduler]

Grades the sample class's ordinary submissions (the correct and buggy ones, which run every
cell) side by side in one run, each time in a fresh workspace:

    LocalCluster, 1 worker            seconds per submission (median), submissions per minute
    LocalCluster, 2 workers           the same, and the speed-up
    scheduler + 2 workers (loopback)  `dask scheduler` and two `dask worker` processes on 127.0.0.1
    LocalCluster, 1 worker, no sandbox   the sandbox's overhead

then the engine's own cost per task (no-op tasks per second, benchmarks/engine_overhead.py),
the median cost of each step of a submission (the notebook's cells, each test's verdict), and
a projection of 5,000 submissions on 64 and on 512 cores from those figures.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # nbgrader's alembic

from autograder.assignment import Assignment  # noqa: E402
from autograder.isolation import launch  # noqa: E402
from autograder.run.engine import EngineConfig  # noqa: E402
from autograder.run.pipeline import GradingRun, grade  # noqa: E402
from autograder.testdata import sample_class  # noqa: E402

WRITE_SECONDS = []  # the client's time per result, over every run
STEPS = {"imports": "imports", "data": "data cell", "models": "models cell", "training_loop": "training loop",
         "metrics": "metrics", "test_generator": "test_generator (starts the probe)",
         "test_training_run": "hidden training run (verdict)", "test_train_step_hidden": "hidden train_step tests"}


def graded(folder, workspace, engine, limits, assignment):
    shutil.rmtree(workspace, ignore_errors=True)
    start = time.perf_counter()
    report = grade(GradingRun(assignment, folder, workspace, limits, engine, quiet=True))
    total = time.perf_counter() - start
    WRITE_SECONDS.extend(report.write_seconds)
    return total, [r for r in report.records.values() if r.seconds]


def cell_labels(assignment):
    """{grade_id: "cell N"} for the release's cells: the label the worker's timings use when a graded notebook's
    cell has lost its nbgrader id (nbgrader keeps ids only on the cells it grades or locks)."""
    import nbformat
    release = nbformat.read(assignment.release, as_version=4).cells
    return {cell.metadata["nbgrader"]["grade_id"]: f"cell {index + 1}"
            for index, cell in enumerate(release) if "grade_id" in cell.metadata.get("nbgrader", {})}


def start_scheduler_and_workers(tmp, workers=2):
    """`dask scheduler` and `dask worker`s on 127.0.0.1; (address, processes)."""
    dask = str(Path(sys.executable).parent / "dask")
    scheduler_file = tmp / "scheduler.json"
    environment = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(scheduler_file)], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not scheduler_file.exists():
        time.sleep(0.2)
    time.sleep(0.5)
    import json
    address = json.loads(scheduler_file.read_text())["address"]
    for _ in range(workers):
        processes.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--preload", "autograder.run.worker_setup", "--host", "127.0.0.1"],
                                          env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return address, processes


def stop(processes):
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="cgan")
    parser.add_argument("--skip-scheduler", action="store_true", help="leave out the real scheduler's run")
    args = parser.parse_args()
    if reason := launch.unavailable_reason():
        sys.exit(f"the sandbox is unavailable, so grading cannot be measured as it runs: {reason}")
    assignment = Assignment.load(args.assignment)
    tmp = Path(tempfile.mkdtemp(prefix="cgan-bench-"))
    cases = sample_class.write(tmp / "all")
    chosen = [s for s in cases if s.startswith(("correct_", "bug_", "untouched", "warnings"))]
    for student in chosen:
        shutil.copytree(tmp / "all" / student, tmp / "class" / student)
    limits = replace(sample_class.LIMITS, threads=1)
    cores = len(os.sched_getaffinity(0))
    print(f"{len(chosen)} submissions of {args.assignment}, {cores} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start\n", flush=True)
    configurations = [("LocalCluster, 1 worker", EngineConfig(n_workers=1), limits),
                      ("LocalCluster, 2 workers", EngineConfig(n_workers=2), limits)]
    processes = []
    if not args.skip_scheduler:
        address, processes = start_scheduler_and_workers(tmp)
        configurations.append(("scheduler + 2 workers", EngineConfig(scheduler_address=address), limits))
    configurations.append(("LocalCluster, 1 worker, no sandbox", EngineConfig(n_workers=1, require_sandbox=False),
                           replace(limits, sandbox=False)))
    runs = {}
    try:
        for name, engine, run_limits in configurations:
            total, records = graded(tmp / "class", tmp / "ws", engine, run_limits, assignment)
            runs[name] = (total, records)
            seconds = [r.seconds for r in records]
            print(f"{name:<36} total {total:7.1f} s   {60 * len(records) / total:5.1f} submissions/min   "
                  f"per submission: median {statistics.median(seconds):5.1f} s, max {max(seconds):5.1f} s", flush=True)
    finally:
        stop(processes)

    one, two = runs["LocalCluster, 1 worker"], runs["LocalCluster, 2 workers"]
    median = statistics.median(r.seconds for r in one[1])
    bare = runs["LocalCluster, 1 worker, no sandbox"]
    print(f"\nmedian per submission (1 worker, sandbox): {median:.1f} s (target <= 10 s)")
    print(f"2 workers: {one[0] / two[0]:.2f}x the throughput of 1")
    print(f"sandbox overhead: {(one[0] - bare[0]) / len(chosen):+.2f} s per submission, {(one[0] - bare[0]) / bare[0]:+.1%}")

    print("\nmedian seconds per step (1 worker):")
    labels = cell_labels(assignment)
    for key, label in STEPS.items():
        # a test's time is its verdict's (its cell in the notebook is blanked); a cell without an nbgrader id in the
        # release (the training loop, the metrics) is labelled by its position, as the worker records it
        values = [r.timings.get("tests", {}).get(key) or r.timings.get("cells", {}).get(key)
                  or r.timings.get("cells", {}).get(labels.get(key)) for r in one[1]]
        values = [v for v in values if v is not None]
        if values:
            print(f"  {label:<32} {statistics.median(values):6.2f}")

    from engine_overhead import jobs, noop  # noqa: E402  (the engine's own cost, on a LocalCluster)
    from autograder.run.engine import Engine
    with Engine(EngineConfig(n_workers=2, require_sandbox=False)) as engine:
        start = time.perf_counter()
        engine.run(noop, jobs(400, 16), lambda record: None)
        per_task = (time.perf_counter() - start) / 400
    print(f"\nengine overhead: {1 / per_task:.0f} no-op tasks/s ({1000 * per_task:.1f} ms per task)")

    writing = statistics.mean(WRITE_SECONDS)  # the client's serial part: gradebook, files, CSV lines
    print(f"the client writes each result in {1000 * writing:.0f} ms (gradebook, files, CSV lines)")
    per_worker = len(two[1]) / two[0] / 2  # submissions per second per single-threaded worker, 2-worker run
    print("\nprojection, 5,000 submissions, one single-threaded worker per core, at the 2-worker run's rate:")
    for n_cores in (64, 512):
        parallel = 5000 / (per_worker * n_cores)
        serial = 5000 * (per_task + writing)  # the client records one result at a time
        print(f"  {n_cores:>4} cores: {max(parallel, serial) / 60:6.1f} minutes "
              f"(workers {parallel / 60:.1f} min, client {serial / 60:.1f} min)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
