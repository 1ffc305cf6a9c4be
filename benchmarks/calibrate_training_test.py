"""Calibrate the hidden short-training-run test of the CGAN notebook.

    .venv/bin/python benchmarks/calibrate_training_test.py [--seeds 5] [--bug-seeds 2]

Runs the test's own `short_training_run` (from solutions/cgan/cgan.ipynb, not a copy)
with the solution's train_step over several seeds and with common buggy variants of
it, and prints the conditional accuracy of each run. The threshold in the notebook
must sit well below every correct run and well above every buggy one; the results
are recorded in autograder/CALIBRATION.md.
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.notebook_code import cell_sources, load_cells  # noqa: E402
from autograder.testdata.variants import BUGS, CORRECT, sources  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds for the correct train_step")
    parser.add_argument("--bug-seeds", type=int, default=2, help="seeds for each buggy variant")
    parser.add_argument("--only", default=None, help="run only the variants whose name contains this")
    args = parser.parse_args()
    os.environ.setdefault("CGAN_SCHEDULE", "short")

    cells = ["imports", "settings", "device", "train_step", "test_train_step_hidden", "test_training_run"]
    hidden = ("test_train_step_hidden", "test_training_run")
    with contextlib.redirect_stdout(io.StringIO()):  # the settings cell prints the schedule
        base = load_cells(cells, definitions_only=hidden)
    config = base["TRAINING_RUN"]
    print(f"short training run: {config}, torch threads {torch.get_num_threads()}\n")
    print(f"{'train_step':<68} {'accuracy per seed':<42} {'min':>5} {'mean':>5} {'s/run':>6}")

    # the test judges train_step with its own reference models: only train_step variants apply
    runs = {"correct: the solution": ({}, args.seeds)}
    runs.update({name: (edits, args.seeds) for name, edits in CORRECT.items() if set(edits) == {"train_step"}})
    runs.update({name: (edits, args.bug_seeds) for name, (edits, _, _) in BUGS.items() if set(edits) == {"train_step"}})
    solution = cell_sources()
    for name, (edits, n_seeds) in runs.items():
        if args.only and args.only not in name:
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            ns = load_cells(cells, definitions_only=hidden, replace=sources(edits, solution))
        accuracies, start = [], time.perf_counter()
        for seed in range(n_seeds):
            accuracies.append(ns["short_training_run"](ns["train_step"], seed=seed).accuracy)
        seconds = (time.perf_counter() - start) / n_seeds
        shown = " ".join(f"{a:.2f}" for a in accuracies)
        print(f"{name:<68} {shown:<42} {min(accuracies):>5.2f} {statistics.mean(accuracies):>5.2f} {seconds:>6.1f}",
              flush=True)
    print(f"\nthreshold in the notebook: {config['threshold']}")


if __name__ == "__main__":
    main()
