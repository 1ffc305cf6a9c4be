"""Quality against compute: how good the solution's generator is after 1, 2, 5, 10, 20 epochs.

    .venv/bin/python benchmarks/quality.py [--epochs 1,2,5,10,20] [--seed 0]
    .venv/bin/python benchmarks/quality.py --epochs 20,50,100,200      # the seeds' schedule, on a GPU

Trains the solution notebook's own Generator/Discriminator/train_step (executed from
solutions/cgan/cgan.ipynb, not copied) on all 60,000 training images with the lab's
in-memory batches, and at each listed epoch measures conditional accuracy, Fréchet
distance (with its floor) and collapsed classes with cgan_lib.evaluate
(1,000 images per class). Wall-clock excludes the evaluations.
"""
import argparse
import contextlib
import io
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.notebook_code import load_cells  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="1,2,5,10,20", help="comma-separated epochs to evaluate at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-per-class", type=int, default=1000)
    args = parser.parse_args()
    checkpoints = sorted(int(e) for e in args.epochs.split(","))

    os.environ["CGAN_SCHEDULE"] = "full"
    with contextlib.redirect_stdout(io.StringIO()):
        ns = load_cells(["imports", "settings", "device", "generator", "discriminator", "train_step"])
    opt, device = ns["opt"], ns["device"]
    ns["seed_everything"](args.seed)
    loader = ns["InMemoryLoader"].from_split("train", batch_size=opt.batch_size, device=device, seed=args.seed)
    G, D = ns["Generator"]().to(device), ns["Discriminator"]().to(device)
    optim_G = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2))
    optim_D = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2))
    loss = torch.nn.MSELoss()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {device}; seed {args.seed}, "
          f"{args.n_per_class} images per class evaluated\n")
    print(f"{'epoch':>5} {'train s':>8} {'cond. acc':>9} {'FD':>8} {'FD floor':>8}  collapsed classes", flush=True)
    trained_s = 0.0
    for epoch in range(1, checkpoints[-1] + 1):
        start = time.perf_counter()
        for imgs, labels in loader:
            ns["train_step"](G, D, optim_G, optim_D, loss, imgs, labels)
        if device.type == "cuda":
            torch.cuda.synchronize()
        trained_s += time.perf_counter() - start
        if epoch in checkpoints:
            report = ns["evaluate_generator"](G, opt.latent_dim, n_per_class=args.n_per_class, seed=0)
            print(f"{epoch:>5} {trained_s:>8.0f} {report.accuracy:>9.1%} {report.fd:>8.2f} {report.fd_floor:>8.2f}  "
                  f"{', '.join(report.collapsed_classes) or '-'}", flush=True)


if __name__ == "__main__":
    main()
