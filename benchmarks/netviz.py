"""The Network Visualization lab, measured: the notebook's run time, how often fooling works, how sure class visualisation gets.

    .venv/bin/python benchmarks/netviz.py [--images-per-class 10] [--seeds 5] [--skip-notebook]

1. Runs solutions/netviz/netviz.ipynb top to bottom (nbclient, a fresh kernel, no CGAN checkpoint:
   the bundled generator) and prints its wall time and its slowest cells.
2. Fooling: the solution's make_fooling_image (executed from the notebook, not copied) with its
   defaults (at most 100 steps of length 1.0) on `--images-per-class` test images of every class,
   each turned into each of the 9 other classes: the success rate per target class, the model runs it took,
   and the size of the change (L2 and largest pixel change, images in [-1, 1]).
3. Class visualisation: the solution's class_visualization with its defaults from `--seeds` noise
   images per class: the softmax probability of the target class it reaches.
One CPU thread for 2 and 3 (the notebook's setting); the notebook as it runs.
"""
import argparse
import contextlib
import datetime
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.notebook_code import load_cells  # noqa: E402
from cgan_lib.data import CLASS_NAMES  # noqa: E402
from cgan_lib.netviz import load_model, predict, sample_images  # noqa: E402
from cgan_lib.seed import seed_everything  # noqa: E402

NOTEBOOK = ROOT / "solutions" / "netviz" / "netviz.ipynb"


def notebook_time():
    """(seconds, [(seconds, cell label)] of the slowest cells) of one run of the notebook."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["CGAN_CHECKPOINT_DIR"] = scratch   # no checkpoint: the bundled generator
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": scratch}}).execute()
        total = time.perf_counter() - start
    cells = []
    for index, cell in enumerate(nb.cells):
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            begin, end = (datetime.datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index}"
            cells.append(((end - begin).total_seconds(), label))
    return total, sorted(cells, reverse=True)


def fooling(namespace, per_class):
    model = load_model()
    X, y = sample_images(per_class, seed=1)
    predicted, _ = predict(model, X)
    runs = []   # (target, fooled, steps, l2, linf)
    start = time.perf_counter()
    for image, label, guess in zip(X, y, predicted):
        if guess != label:
            continue  # only images the classifier gets right
        for target in range(len(CLASS_NAMES)):
            if target == label:
                continue
            steps = []
            counting = _CountingModel(model, steps)
            fooled_image = namespace["make_fooling_image"](image[None], target, counting)
            change = (fooled_image - image[None]).flatten()
            runs.append((target, int(predict(model, fooled_image)[0]) == target, len(steps),
                         float(change.norm()), float(change.abs().max())))
    seconds = time.perf_counter() - start
    print(f"\nFooling: {len(runs)} runs ({per_class} test images per class, the ones classified right, "
          f"x 9 targets), {seconds / len(runs) * 1000:.0f} ms per run")
    print(f"{'target':12s} {'fooled':>7s} {'model runs (median, max)':>25s} {'L2 (median, max)':>18s} {'Linf (median, max)':>20s}")
    for target in range(len(CLASS_NAMES)):
        mine = [r for r in runs if r[0] == target]
        print(f"{CLASS_NAMES[target]:12s} {sum(r[1] for r in mine) / len(mine):7.1%} "
              f"{statistics.median(r[2] for r in mine):16.0f} {max(r[2] for r in mine):8d} "
              f"{statistics.median(r[3] for r in mine):9.2f} {max(r[3] for r in mine):8.2f} "
              f"{statistics.median(r[4] for r in mine):10.2f} {max(r[4] for r in mine):9.2f}")
    print(f"{'all':12s} {sum(r[1] for r in runs) / len(runs):7.1%} {statistics.median(r[2] for r in runs):16.0f} "
          f"{max(r[2] for r in runs):8d} {statistics.median(r[3] for r in runs):9.2f} {max(r[3] for r in runs):8.2f} "
          f"{statistics.median(r[4] for r in runs):10.2f} {max(r[4] for r in runs):9.2f}")


class _CountingModel(torch.nn.Module):
    """The classifier, counting its calls (each step of make_fooling_image runs it once)."""

    def __init__(self, model, calls):
        super().__init__()
        self.model, self.calls = model, calls

    def forward(self, x):
        self.calls.append(1)
        return self.model(x)


def visualization(namespace, seeds):
    model = load_model()
    probabilities = torch.zeros(len(CLASS_NAMES), seeds)
    start = time.perf_counter()
    for target in range(len(CLASS_NAMES)):
        for seed in range(seeds):
            seed_everything(seed)
            image = namespace["class_visualization"](target, model)
            probabilities[target, seed] = predict(model, image)[1][0, target]
    seconds = time.perf_counter() - start
    print(f"\nClass visualisation: {seeds} seeds per class, defaults (200 steps), "
          f"{seconds / probabilities.numel():.2f} s per image")
    print(f"{'class':12s} {'probability of the class (mean, min)':>38s}")
    for name, row in zip(CLASS_NAMES, probabilities):
        print(f"{name:12s} {row.mean():19.3f} {row.min():18.3f}")
    print(f"{'all':12s} {probabilities.mean():19.3f} {probabilities.min():18.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-class", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-notebook", action="store_true")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    if not args.skip_notebook:
        total, cells = notebook_time()
        print(f"\nThe notebook, top to bottom: {total:.1f} s (kernel start included). Slowest cells: "
              + ", ".join(f"{label} {seconds:.1f} s" for seconds, label in cells[:6]))
    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()):
        namespace = load_cells(["imports", "settings", "fooling", "class_visualization"], notebook=NOTEBOOK)
    fooling(namespace, args.images_per_class)
    visualization(namespace, args.seeds)


if __name__ == "__main__":
    main()
