"""Train the reference Fashion-MNIST classifier that cgan_lib.evaluate measures generators with,
and precompute the real-data statistics that go with it.

The exact command that made the committed cgan_lib/weights/fashion_classifier.pt
(run from the repository root, CPU, 2 cores, torch 2.14.1):

    .venv/bin/python scripts/train_classifier.py --update-checksum

It trains FashionClassifier (cgan_lib/classifier.py) for 8 epochs on the 60,000 real
training images (cgan_lib.data's in-memory path, seeded shuffling and flips), prints
the test accuracy and the time, writes the weights (a float32 state_dict) and prints
their SHA-256. With --update-checksum it also rewrites the CLASSIFIER_SHA256 and
CLASSIFIER_TEST_ACCURACY lines of cgan_lib/classifier.py, which load_classifier()
checks the file against, and then re-creates the real-data statistics (below);
without it, paste the printed lines there yourself and run --stats.

The real-data statistics, cgan_lib/weights/reference_stats.pt, are re-created from
the committed weights (which must match CLASSIFIER_SHA256) with

    .venv/bin/python scripts/train_classifier.py --stats

(about 15 s: the classifier over the 10,000 test and 10,000 training images). It
writes the file and rewrites the REFERENCE_STATS_SHA256 line of cgan_lib/reference_stats.py.
Run it whenever the weights change; cgan_lib refuses a statistics file made from
other weights. It runs single-threaded, so the same weights, torch version and CPU
type give the same bytes; elsewhere the last bits differ, hence the SHA-256 line.

Same seed, torch version, CPU type and thread count -> the same bytes. On another
machine the numbers differ in the last bits, so the SHA-256 differs (hence the
update step), but the accuracy is the same within a few tenths of a percent.

Other uses:
    .venv/bin/python scripts/train_classifier.py --check       # verify + measure the committed files
    .venv/bin/python scripts/train_classifier.py --calibrate   # diversity ratios behind COLLAPSE_THRESHOLD
"""
import argparse
import re
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cgan_lib import classifier, evaluate, reference_stats  # noqa: E402
from cgan_lib.data import N_CLASSES, InMemoryLoader, load_tensors, subset_per_class  # noqa: E402
from cgan_lib.seed import seed_everything  # noqa: E402

CLASSIFIER_PY = Path(classifier.__file__)  # holds CLASSIFIER_SHA256 and CLASSIFIER_TEST_ACCURACY
STATS_PY = Path(reference_stats.__file__)  # holds REFERENCE_STATS_SHA256


def train(epochs, seed, batch_size, lr, log=print):
    seed_everything(seed)
    train_images, train_labels = load_tensors("train")
    test_images, test_labels = load_tensors("test")
    model = classifier.FashionClassifier()
    loader = InMemoryLoader(train_images, train_labels, batch_size=batch_size, shuffle=True,
                            drop_last=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader),
                                                   pct_start=0.25)
    flips = torch.Generator().manual_seed(seed + 1)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for images, labels in loader:
            flip = torch.rand(len(images), generator=flips) < 0.5  # left-right flips: a cheap augmentation
            images = torch.where(flip[:, None, None, None], images.flip(3), images)
            loss = F.cross_entropy(model(images), labels, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        accuracy = classifier.classifier_accuracy(model, test_images, test_labels)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / len(loader):.4f}, test accuracy {accuracy:.2%}, "
            f"{time.perf_counter() - start:.0f} s")
    return model.eval(), test_images, test_labels, time.perf_counter() - start


def update_classifier_py(sha256, accuracy):
    text = CLASSIFIER_PY.read_text()
    text, n1 = re.subn(r'^CLASSIFIER_SHA256 = "[0-9a-f]*"$', f'CLASSIFIER_SHA256 = "{sha256}"', text, flags=re.M)
    text, n2 = re.subn(r"^CLASSIFIER_TEST_ACCURACY = [0-9.]+$", f"CLASSIFIER_TEST_ACCURACY = {accuracy:.4f}",
                       text, flags=re.M)
    if (n1, n2) != (1, 1):
        raise SystemExit(f"could not find the CLASSIFIER_SHA256 / CLASSIFIER_TEST_ACCURACY lines in {CLASSIFIER_PY}")
    CLASSIFIER_PY.write_text(text)
    # this process goes on with the new weights (write_stats() checks them against this)
    classifier.CLASSIFIER_SHA256, classifier.CLASSIFIER_TEST_ACCURACY = sha256, round(accuracy, 4)


def write_stats():
    """Re-create STATS_PATH from the committed weights and record its SHA-256 in cgan_lib/reference_stats.py."""
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float64 eigen-solvers round differently with more threads: same bytes on any core count
    try:
        stats = reference_stats.compute_reference_stats("cpu")
    finally:
        torch.set_num_threads(threads)
    data = reference_stats.reference_stats_bytes(stats)
    path = reference_stats.STATS_PATH
    path.write_bytes(data)
    sha256 = classifier.sha256_of(path)
    text = STATS_PY.read_text()
    text, n = re.subn(r'^REFERENCE_STATS_SHA256 = "[0-9a-f]*"$', f'REFERENCE_STATS_SHA256 = "{sha256}"', text,
                      flags=re.M)
    if n != 1:
        raise SystemExit(f"could not find the REFERENCE_STATS_SHA256 line in {STATS_PY}")
    STATS_PY.write_text(text)
    reference_stats.REFERENCE_STATS_SHA256 = sha256
    loaded = reference_stats.load_reference_stats()  # it reads back through the checked path, with the new SHA-256
    floors = ", ".join(f"{n}: {fd:.4f}" for n, fd in loaded["floors"].items())
    print(f"wrote {path} ({len(data) / 1e3:.0f} kB) from the weights {classifier.CLASSIFIER_SHA256[:16]}... "
          f"in {time.perf_counter() - start:.0f} s ({stats['made_with']})")
    print(f"  real test accuracy per class: {', '.join(f'{a:.3f}' for a in loaded['test_accuracy_per_class'])}")
    print(f"  FD floors by n_per_class: {floors}")
    print(f'REFERENCE_STATS_SHA256 = "{sha256}" (updated in {STATS_PY})')


def check():
    model = classifier.load_classifier("cpu")
    test_images, test_labels = load_tensors("test")
    accuracy = classifier.classifier_accuracy(model, test_images, test_labels)
    path = classifier.WEIGHTS_PATH
    print(f"{path}: SHA-256 OK ({classifier.CLASSIFIER_SHA256}), {path.stat().st_size / 1e6:.2f} MB, "
          f"test accuracy {accuracy:.2%} (recorded: {classifier.CLASSIFIER_TEST_ACCURACY:.2%})")
    stored = reference_stats.load_reference_stats()
    fresh = reference_stats.compute_reference_stats("cpu")
    worst = max((stored[k] - fresh[k]).abs().max().item() for k in reference_stats.STATS_KEYS if k != "floor_n_per_class")
    print(f"{reference_stats.STATS_PATH}: SHA-256 OK ({reference_stats.REFERENCE_STATS_SHA256}), made from these weights; "
          f"largest difference from freshly computed statistics {worst:.1e}")
    print(f"FD floor (10,000 real training images vs the test set): {reference_stats.fd_floor(1000, 'cpu'):.3f}; "
          f"with 1,000 of them: {reference_stats.fd_floor(100, 'cpu'):.3f}")


def calibrate(n_per_class=1000):
    """Diversity ratios of look-up 'generators' built from real images, to place COLLAPSE_THRESHOLD."""
    train_images, train_labels = load_tensors("train")
    by_class = [train_images[train_labels == c] for c in range(N_CLASSES)]
    held_out, _ = subset_per_class(train_images, train_labels, 5000, seed=1)
    held_out = held_out.view(N_CLASSES, 5000, 1, 28, 28)

    def lookup(pool, noise_sd=0.0):
        """G(z, y): image number f(z) of class y's pool, optionally plus pixel noise driven by z."""
        def G(z, y):
            k = pool.shape[1]
            idx = (z[:, 0].mul(1e4).abs().long() + z[:, 1].mul(1e4).abs().long() * 7919) % k
            out = pool[y, idx]
            if noise_sd:
                g = torch.Generator().manual_seed(int(z[0, 0].mul(1e6).abs()) % 2**31)
                out = (out + noise_sd * torch.randn(out.shape, generator=g)).clamp(-1, 1)
            return out
        return G

    cases = {"real training images": lookup(held_out)}
    for k in (1, 2, 3, 5, 10):
        cases[f"{k} real image(s) per class"] = lookup(torch.stack([b[:k] for b in by_class]))
    for sd in (0.1, 0.3, 0.5):
        cases[f"1 image per class + pixel noise sd {sd}"] = lookup(torch.stack([b[:1] for b in by_class]), sd)
    for name, G in cases.items():
        report = evaluate.evaluate_generator(G, latent_dim=2, n_per_class=n_per_class, device="cpu")
        ratios = report.diversity_ratio
        print(f"{name:<42} diversity min {min(ratios):.2f}  mean {sum(ratios) / len(ratios):.2f}  "
              f"max {max(ratios):.2f}  accuracy {report.accuracy:.1%}  FD {report.fd:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=classifier.WEIGHTS_PATH)
    parser.add_argument("--update-checksum", action="store_true",
                        help="rewrite CLASSIFIER_SHA256 / CLASSIFIER_TEST_ACCURACY in cgan_lib/classifier.py")
    parser.add_argument("--check", action="store_true",
                        help="only verify and measure the committed weights and real-data statistics")
    parser.add_argument("--stats", action="store_true",
                        help=f"only re-create {reference_stats.STATS_PATH.name} from the committed weights "
                             f"(and its REFERENCE_STATS_SHA256 line)")
    parser.add_argument("--calibrate", action="store_true", help="only print the collapse-threshold calibration")
    args = parser.parse_args()
    if args.check:
        return check()
    if args.stats:
        return write_stats()
    if args.calibrate:
        return calibrate()

    print(f"training on the CPU with {torch.get_num_threads()} threads, torch {torch.__version__}")
    model, test_images, test_labels, seconds = train(args.epochs, args.seed, args.batch_size, args.lr)
    accuracy = classifier.classifier_accuracy(model, test_images, test_labels)
    data = classifier.state_dict_bytes(model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    sha256 = classifier.sha256_of(args.out)
    # the file loads back through the checked path and gives the same accuracy
    reloaded = classifier.load_classifier("cpu", path=args.out, sha256=sha256)
    assert classifier.classifier_accuracy(reloaded, test_images, test_labels) == accuracy
    print(f"\ntest accuracy {accuracy:.2%}, training time {seconds:.0f} s ({seconds / 60:.1f} min)")
    print(f"wrote {args.out} ({len(data) / 1e6:.2f} MB)")
    print(f'CLASSIFIER_SHA256 = "{sha256}"')
    print(f"CLASSIFIER_TEST_ACCURACY = {accuracy:.4f}")
    if args.update_checksum:
        if args.out.resolve() != classifier.WEIGHTS_PATH:
            raise SystemExit(f"--update-checksum only makes sense for the committed file {classifier.WEIGHTS_PATH}")
        update_classifier_py(sha256, accuracy)
        print(f"updated those two lines in {CLASSIFIER_PY}\n\nre-creating the real-data statistics:")
        write_stats()
    else:
        print(f"(paste these two lines into {CLASSIFIER_PY}, or re-run with --update-checksum; "
              f"then re-create the real-data statistics with --stats)")


if __name__ == "__main__":
    main()
