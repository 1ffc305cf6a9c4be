"""Grading speed: seconds per submission, 1 worker vs N, and the sandbox's overhead.

    python benchmarks/autograde.py [--workers N] [--all]

Grades the sample class's ordinary submissions (correct and buggy ones, which run every
cell; --all adds the broken and hostile ones, three of which sit out their time limits)
four times, side by side in one run:

    1 worker, sandbox      seconds per submission (median) and total; the kernel uses every core's thread
    1 worker, 1 thread     the same work with one thread: what N workers divide between them
    N workers, sandbox     total, and the speed-up over each of the two above
    1 worker, no sandbox   total, and the sandbox's overhead
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # nbgrader's alembic

from autograder.isolation import sandbox  # noqa: E402
from autograder.run.pipeline import grade  # noqa: E402
from autograder.testdata import sample_class  # noqa: E402


def timed_run(folder, workspace, workers, limits):
    shutil.rmtree(workspace, ignore_errors=True)
    start = time.perf_counter()
    records = grade("cgan", folder, workspace, workers, limits, quiet=True)
    total = time.perf_counter() - start
    seconds = [r["seconds"] for r in records.values() if r["seconds"]]
    return total, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--all", action="store_true", help="the whole sample class, slow cases included")
    args = parser.parse_args()
    reason = sandbox.unavailable_reason()
    if reason:
        sys.exit(f"the sandbox is unavailable, so its overhead cannot be measured: {reason}")

    tmp = Path(tempfile.mkdtemp(prefix="cgan-bench-"))
    cases = sample_class.write(tmp / "all")
    chosen = [s for s, c in cases.items() if args.all or s.startswith(("correct_", "bug_", "untouched", "warnings"))]
    for student in chosen:
        shutil.copytree(tmp / "all" / student, tmp / "class" / student)
    cores = len(os.sched_getaffinity(0))
    one = replace(sample_class.LIMITS, threads=cores)
    many = replace(sample_class.LIMITS, threads=max(1, cores // args.workers))
    print(f"{len(chosen)} submissions, {cores} cores; kernels get {one.threads} thread(s) alone, "
          f"{many.threads} with {args.workers} workers", flush=True)

    configurations = [("1 worker, sandbox", 1, one),
                      ("1 worker, 1 thread", 1, replace(one, threads=1)),
                      (f"{args.workers} workers, sandbox", args.workers, many),
                      ("1 worker, no sandbox", 1, replace(one, sandbox=False))]
    runs = {}
    for name, workers, limits in configurations:
        runs[name] = timed_run(tmp / "class", tmp / "ws", workers, limits)
        total, seconds = runs[name]
        print(f"{name:<22} total {total:7.1f} s   per submission: median {statistics.median(seconds):5.1f} s, "
              f"max {max(seconds):5.1f} s", flush=True)

    base, one_thread, parallel, bare = (runs[name][0] for name, _, _ in configurations)
    print(f"\nspeed-up with {args.workers} workers: {base / parallel:.2f}x over 1 worker using all {cores} cores' threads, "
          f"{one_thread / parallel:.2f}x over 1 worker with 1 thread (target >= 1.7x on 2 cores)")
    print(f"sandbox overhead: {base - bare:+.1f} s in all, {(base - bare) / len(chosen):+.2f} s per submission, "
          f"{(base - bare) / bare:+.1%} of grading time (target <= 10%)")
    print(f"median per submission, 1 worker with sandbox: {statistics.median(runs['1 worker, sandbox'][1]):.1f} s "
          "(target <= 20 s)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
