"""The README's main job (for now): load Fashion-MNIST, count it, draw it.

    python -m cgan_lib.demo [--out out/]
"""
import argparse
import sys
import time
from pathlib import Path

from .data import CLASS_NAMES, FashionMNISTError, class_counts, load_tensors, subset_per_class
from .viz import plot_class_grid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the PNG (default: out/)")
    parser.add_argument("--root", default=None, help="folder holding the four Fashion-MNIST files")
    args = parser.parse_args(argv)

    try:
        t0 = time.perf_counter()
        train_images, train_labels = load_tensors("train", root=args.root)
        test_images, test_labels = load_tensors("test", root=args.root)
        seconds = time.perf_counter() - t0
    except FashionMNISTError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    print(f"Fashion-MNIST loaded in {seconds:.1f} s: {len(train_labels)} train and {len(test_labels)} test "
          f"images of {tuple(train_images.shape[1:])}, values in [{train_images.min():.0f}, {train_images.max():.0f}]")
    print(f"\n{'class':>3}  {'name':<12} {'train':>6} {'test':>6}")
    for c, (n_train, n_test) in enumerate(zip(class_counts(train_labels), class_counts(test_labels))):
        print(f"{c:>3}  {CLASS_NAMES[c]:<12} {n_train:>6} {n_test:>6}")
    print(f"{'':>3}  {'total':<12} {len(train_labels):>6} {len(test_labels):>6}")

    images, _ = subset_per_class(train_images, train_labels, k=10, seed=0)
    path = args.out / "real_samples.png"
    plot_class_grid(images, n_per_class=10, title="Fashion-MNIST: 10 real training images per class", path=path)
    print(f"\nwrote {path}: one row per class")
    return 0


if __name__ == "__main__":
    sys.exit(main())
