"""Samples per second of the seeds' DataLoader path vs the lab's in-memory iterator.

    .venv/bin/python benchmarks/data_pipeline.py [--batches 300] [--repeats 3]

Both are timed in this one run, interleaved, over the same number of batches of 64
(each batch moved to the training device, as a training loop does). Target: the
in-memory path is at least 50x the seeds' path.
"""
import argparse
import os
import platform
import time

import torch

from cgan_lib.data import InMemoryLoader, load_tensors, make_dataloader
from cgan_lib.device import device


def samples_per_second(loader, n_batches):
    """Iterate `n_batches` batches (restarting the loader if needed) and return samples/s."""
    seen, start = 0, time.perf_counter()
    while True:
        for i, (imgs, labels) in enumerate(loader):
            imgs, labels = imgs.to(device), labels.to(device)
            seen += len(labels)
            if i + 1 == n_batches:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                return seen / (time.perf_counter() - start)
        n_batches -= i + 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300, help="batches per measurement (default 300)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each path; the best counts")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    t0 = time.perf_counter()
    seeds_loader = make_dataloader("train", batch_size=args.batch_size, shuffle=True)
    t_seeds_setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    images, labels = load_tensors("train", device=device)
    fast_loader = InMemoryLoader(images, labels, batch_size=args.batch_size, seed=0)
    t_fast_setup = time.perf_counter() - t0

    samples_per_second(seeds_loader, 20)  # warm up both
    samples_per_second(fast_loader, 20)
    seeds, fast = [], []
    for _ in range(args.repeats):
        seeds.append(samples_per_second(seeds_loader, args.batches))
        fast.append(samples_per_second(fast_loader, args.batches))
    seeds_best, fast_best = max(seeds), max(fast)
    n = len(labels)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"batch size {args.batch_size}, {args.batches} batches per measurement, best of {args.repeats}\n")
    print(f"{'path':<44} {'setup s':>8} {'samples/s':>12} {'epoch s':>9}")
    print(f"{'seeds: Dataset + DataLoader (PIL, ToTensor)':<44} {t_seeds_setup:>8.2f} {seeds_best:>12,.0f} "
          f"{n / seeds_best:>9.2f}")
    print(f"{'lab: InMemoryLoader (whole split in memory)':<44} {t_fast_setup:>8.2f} {fast_best:>12,.0f} "
          f"{n / fast_best:>9.3f}")
    ratio = fast_best / seeds_best
    print(f"\nratio in-memory / seeds: {ratio:,.0f}x (target >= 50x: {'met' if ratio >= 50 else 'NOT MET'})")


if __name__ == "__main__":
    main()
