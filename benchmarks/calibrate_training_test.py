"""Calibrate the hidden training-run test of the CGAN notebook.

    .venv/bin/python benchmarks/calibrate_training_test.py [--seeds 8] [--variant-seeds 2]

Runs the test's own `training_run_report` (from solutions/cgan/cgan.ipynb, not a copy):
a verified training run of train_step on the reference networks, then the reference
classifier's conditional accuracy and Fréchet distance of the generator. It does so for
the solution over several seeds, for every other correct train_step of
autograder/testdata/variants.py, and for the bugs whose single updates are right but
whose draws are not (the others fail the run's verification). The thresholds in
TRAINING_RUN must sit well below every correct run; results: autograder/CALIBRATION.md.
"""
import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.notebook_code import cell_sources, load_cells  # noqa: E402
from autograder.testdata.variants import BUGS, CORRECT, sources  # noqa: E402

DRAW_BUGS = ("uniform noise in train_step (torch.rand)", "train_step: the same noise and labels on every call (re-seeded inside)",
             "train_step: the last class is never generated", "train_step: noise with standard deviation 0.1")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds for the solution's train_step")
    parser.add_argument("--variant-seeds", type=int, default=2, help="seeds for every other variant")
    args = parser.parse_args()
    os.environ.setdefault("CGAN_SCHEDULE", "short")
    torch.set_num_threads(1)
    cells = ["imports", "settings", "device", "train_step", "test_training_run"]
    with contextlib.redirect_stdout(io.StringIO()):
        base = load_cells(cells, definitions_only=("test_training_run",))
    config = base["TRAINING_RUN"]
    print(f"training run: {config}, torch threads {torch.get_num_threads()}\n")
    print(f"{'train_step':<72} {'accuracy / Fréchet distance per seed':<56} {'s/run':>6}")
    runs = {"correct: the solution": ({}, args.seeds)}
    runs.update({name: (edits, args.variant_seeds) for name, edits in CORRECT.items() if set(edits) == {"train_step"}})
    runs.update({name: (BUGS[name][0], args.variant_seeds) for name in DRAW_BUGS})
    lowest = [1.0, 0.0]
    for name, (edits, n_seeds) in runs.items():
        with contextlib.redirect_stdout(io.StringIO()):
            ns = load_cells(cells, definitions_only=("test_training_run",), replace=sources(edits, cell_sources()))
        shown, start = [], time.perf_counter()
        for seed in range(n_seeds):
            report = ns["training_run_report"](ns["train_step"], seed=seed)
            shown.append(f"{report.accuracy:.2f}/{report.fd:.0f}")
            if name.startswith("correct"):
                lowest = [min(lowest[0], report.accuracy), max(lowest[1], report.fd)]
        seconds = (time.perf_counter() - start) / n_seeds
        print(f"{name[:72]:<72} {' '.join(shown):<56} {seconds:>6.1f}", flush=True)
    print(f"\ncorrect runs: lowest accuracy {lowest[0]:.2f}, highest Fréchet distance {lowest[1]:.1f}; "
          f"thresholds: accuracy >= {config['min_accuracy']}, Fréchet distance <= {config['max_fd']}")


if __name__ == "__main__":
    main()
