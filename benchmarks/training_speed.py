"""Training speed of the CGAN on this machine: the seeds' loop vs the lab's fast path, and the roofline.

    .venv/bin/python benchmarks/training_speed.py [--steps 150] [--repeats 3]

Both loops run the solution notebook's own Generator, Discriminator and train_step
(solutions/cgan/cgan.ipynb, executed here, not copied), measured side by side in this
one run:

  (a) the seeds' loop: torchvision DataLoader with ToTensor()/Normalize, noise and
      labels drawn with NumPy every batch (FloatTensor(np.random.randn(...))), plain Adam;
  (b) the lab's fast path: InMemoryLoader batches, torch.randn on the device, and the
      notebook's optimizers (fused Adam).

The roofline is the epoch's counted FLOPs (torch's FlopCounterMode over one training
step, times the steps of an epoch) divided by the FLOP/s of a large float32 matrix
product measured in the same run. Targets: (b) >= 1.5x (a), and (b) within 2x of the roofline.
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
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from autograder.notebook_code import cell_sources, load_cells  # noqa: E402
from autograder.testdata.variants import apply  # noqa: E402

CELLS = ["imports", "settings", "device", "generator", "discriminator", "train_step"]
NUMPY_NOISE = [  # the seeds' per-batch NumPy noise, as an edit of the solution's train_step
    ("    z = torch.randn(batch_size, opt.latent_dim, device=real_imgs.device)\n",
     "    z = FloatTensor(np.random.randn(batch_size, opt.latent_dim))\n"),
    ("    gen_labels = torch.randint(0, opt.n_classes, (batch_size,), device=real_imgs.device)\n",
     "    gen_labels = LongTensor(np.random.randint(0, opt.n_classes, batch_size))\n"),
]


def notebook(train_step_edits=None):
    with contextlib.redirect_stdout(io.StringIO()):
        replace = {"train_step": apply(cell_sources()["train_step"], train_step_edits)} if train_step_edits else None
        return load_cells(CELLS, replace=replace)


def models(ns, seeds_optimizers=False):
    """Generator, discriminator, optimizers and loss as the notebook's `models` cell makes them
    (or with the seeds' plain torch.optim.Adam)."""
    if seeds_optimizers:
        ns["seed_everything"](0)
        G, D, opt = ns["Generator"]().to(ns["device"]), ns["Discriminator"]().to(ns["device"]), ns["opt"]
        return (G, D, torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2)),
                torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2)), torch.nn.MSELoss())
    with contextlib.redirect_stdout(io.StringIO()):
        load_cells(["models"], namespace=ns)
    return ns["generator"], ns["discriminator"], ns["optimizer_G"], ns["optimizer_D"], ns["adversarial_loss"]


def samples_per_second(ns, loader, state, steps):
    """Train for `steps` batches from `loader` (restarting it as needed); return samples/s."""
    FloatTensor, LongTensor, device = ns["FloatTensor"], ns["LongTensor"], ns["device"]
    done = seen = 0
    start = time.perf_counter()
    while done < steps:
        for imgs, labels in loader:
            real_imgs, labels = imgs.type(FloatTensor), labels.type(LongTensor)  # the seeds' "Configure input"
            ns["train_step"](*state, real_imgs, labels)
            done, seen = done + 1, seen + len(labels)
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def step_flops(ns, state, batch_size=64):
    imgs = torch.zeros(batch_size, 1, 28, 28, device=ns["device"])
    labels = torch.zeros(batch_size, dtype=torch.long, device=ns["device"])
    with FlopCounterMode(display=False) as counter:
        ns["train_step"](*state, imgs, labels)
    return counter.get_total_flops()


def matmul_flops_per_second(n=2048, repeats=10):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each loop; the best counts")
    args = parser.parse_args()

    seeds_ns, fast_ns = notebook(NUMPY_NOISE), notebook()
    batch_size = fast_ns["opt"].batch_size
    seeds_loader = fast_ns["make_dataloader"]("train", batch_size=batch_size, shuffle=True)
    fast_loader = fast_ns["InMemoryLoader"].from_split("train", batch_size=batch_size, device=fast_ns["device"])
    seeds_state, fast_state = models(seeds_ns, seeds_optimizers=True), models(fast_ns)

    samples_per_second(seeds_ns, seeds_loader, seeds_state, 10)  # warm-up
    samples_per_second(fast_ns, fast_loader, fast_state, 10)
    seeds, fast = [], []
    for _ in range(args.repeats):
        seeds.append(samples_per_second(seeds_ns, seeds_loader, seeds_state, args.steps))
        fast.append(samples_per_second(fast_ns, fast_loader, fast_state, args.steps))
    matmul = max(matmul_flops_per_second() for _ in range(3))
    flops_per_step = step_flops(fast_ns, fast_state, batch_size)

    n_train, steps_per_epoch = 60000, len(fast_loader)
    epoch_flops = flops_per_step * n_train / batch_size
    roofline_s = epoch_flops / matmul
    a, b = max(seeds), max(fast)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {fast_ns['device']}")
    print(f"solution notebook's models, batch {batch_size}, {steps_per_epoch} steps per epoch, "
          f"{args.steps} steps per measurement, best of {args.repeats}\n")
    print(f"{'loop':<52} {'samples/s':>10} {'epoch s':>8}")
    print(f"{'(a) seeds: DataLoader, NumPy noise, Adam':<52} {a:>10,.0f} {n_train / a:>8.1f}")
    print(f"{'(b) lab: InMemoryLoader, torch.randn, fused Adam':<52} {b:>10,.0f} {n_train / b:>8.1f}")
    print(f"{'roofline: counted FLOPs / matmul FLOP/s':<52} {n_train / roofline_s:>10,.0f} {roofline_s:>8.1f}")
    print(f"\nFLOPs per step {flops_per_step / 1e9:.2f} G, per epoch {epoch_flops / 1e12:.2f} T; "
          f"large matmul {matmul / 1e9:.0f} GFLOP/s")
    print(f"(b)/(a): {b / a:.2f}x (target >= 1.5x: {'met' if b / a >= 1.5 else 'NOT MET'})")
    print(f"(b) epoch / roofline epoch: {(n_train / b) / roofline_s:.2f}x "
          f"(target <= 2x: {'met' if (n_train / b) / roofline_s <= 2 else 'NOT MET'})")


if __name__ == "__main__":
    main()
