"""What a student gets from each training schedule: training time and quality of the reference solution.

    .venv/bin/python benchmarks/quality.py --schedule quick --seeds 0,1,2 --json out/quality_quick.json
    .venv/bin/python benchmarks/quality.py --schedule quick,standard --seeds 0,1,2 --json out/quality.json

For each schedule and seed this runs the solution notebook's own cells (solutions/cgan/cgan.ipynb,
executed with autograder.notebook_code.load_cells, not copied): the setup with the schedule chosen
through $CGAN_SCHEDULE, the data, the models, the training loop and the metrics cell, as a student
runs them. Only the seed differs between runs: the notebook seeds with 0, here with --seed's value
(its calls of seed_everything and the shuffling seed of its InMemoryLoader are given the run's seed).

train_s is the wall time of the training loop cell (training, the sample grids it draws and the
checkpoints it saves: what the student waits for); the evaluation is the notebook's metrics cell
(1,000 images per class). The JSON file holds
{"quick": [{"seed", "train_s", "cond_acc", "fd", "collapsed"}, ...], ...}, with `collapsed` the
names of the collapsed classes. The machine, its thread count and its load average before and after
are printed: timings on a busy machine are longer (see benchmarks/RESULTS.md).
"""
import argparse
import contextlib
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.notebook_code import load_cells  # noqa: E402

SETUP = ["imports", "settings", "schedule", "device", "data", "generator", "discriminator", "train_step", "models"]


def seeded(namespace, seed):
    """Make the notebook's seed_everything(0) and InMemoryLoader(..., seed=0) use `seed` instead."""
    seed_everything, loader = namespace["seed_everything"], namespace["InMemoryLoader"]
    namespace["seed_everything"] = lambda _notebook_seed=0, **kwargs: seed_everything(seed, **kwargs)
    namespace["InMemoryLoader"] = lambda *args, **kwargs: loader(*args, **{**kwargs, "seed": seed})


def run(schedule, seed, checkpoints):
    """Train and evaluate the notebook once; the row of the JSON file."""
    os.environ.update(CGAN_SCHEDULE=schedule, CGAN_CHECKPOINT_DIR=checkpoints)
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar and the notebook's prints
        namespace = load_cells(["imports"])
        seeded(namespace, seed)
        load_cells(SETUP[1:], namespace=namespace)
        if namespace["device"].type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        load_cells(["training_loop"], namespace=namespace)
        if namespace["device"].type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - start
        load_cells(["metrics"], namespace=namespace)
    report = namespace["report"]
    return {"seed": seed, "train_s": round(train_s, 1), "cond_acc": round(report.accuracy, 4),
            "fd": round(report.fd, 2), "collapsed": report.collapsed_classes}


def machine():
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": str(load_cells(["imports"])["device"]), "load_average_1_5_15": os.getloadavg()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", default="quick", help="comma-separated schedules (quick, standard, full)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core); on a busy "
                        "machine 1 avoids threads waiting for each other")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    schedules, seeds = args.schedule.split(","), [int(s) for s in args.seeds.split(",")]

    before = machine()
    print(f"machine: {before['cpu']}, {before['cores']} cores, torch {before['torch']}, {before['threads']} threads, "
          f"device {before['device']}; load average before: {before['load_average_1_5_15'][0]:.2f}\n")
    print(f"{'schedule':<10}{'seed':>5}{'train s':>9}{'cond. acc':>11}{'FD':>8}  collapsed classes", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as checkpoints:
        for schedule in schedules:
            for seed in seeds:
                row = run(schedule, seed, checkpoints)
                results.setdefault(schedule, []).append(row)
                print(f"{schedule:<10}{seed:>5}{row['train_s']:>9.1f}{row['cond_acc']:>11.1%}{row['fd']:>8.2f}  "
                      f"{', '.join(row['collapsed']) or '-'}", flush=True)
    after = os.getloadavg()
    print(f"\nload average after: {after[0]:.2f} (1 min), {after[1]:.2f} (5 min), {after[2]:.2f} (15 min)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
