"""How good is a conditional generator? Three numbers from a fixed reference classifier.

    report = evaluate_generator(generator, latent_dim, n_per_class=1000)
    print(report)          # a table that says what a good value of each number is
    report.plot()          # the same per class, as a figure (cgan_lib.viz.plot_report)

The generator makes ``n_per_class`` images of every class from fixed noise
(``cgan_lib.sampling.fixed_samples``), and a small CNN trained on the real training
set (``cgan_lib.classifier``) measures:

* **conditional accuracy**: the share of images the classifier puts in the class that
  was asked for, overall and per class. Chance is 10%; real test images get about 93%
  (per class: ``real_accuracy``; Shirt is hard even for real ones).
* **Fréchet distance** (FD) between the generated images and the real test set, in the
  classifier's 128-d feature space (the idea of FID, with a Fashion-MNIST network instead
  of Inception, so the numbers are not comparable with published FIDs). Lower is better.
  Its *floor* is what real training images get at the same sample size
  (``cgan_lib.reference_stats.fd_floor``): FD from fewer samples comes out higher.
* **diversity ratio** per class: the mean pairwise feature distance between the generated
  images of a class divided by the same for real test images of that class. About 1 for
  real data, near 0 when the generator ignores its noise (mode collapse); a class is
  flagged *collapsed* below ``COLLAPSE_THRESHOLD``. The mean pairwise distance is an
  unbiased estimate at any sample size, so the ratio does not drift with ``n_per_class``;
  only its scatter grows when there are fewer images (see the calibration below).

The three need each other: a generator that ignores its labels can still have a good FD
(its images look real), one that ignores its noise a perfect accuracy.

The generator is called as ``G(noise, labels)`` with noise (N, latent_dim) from N(0, 1)
and labels (N,) int64, and must return (N, 1, 28, 28) images in [-1, 1]; it runs in
``eval()`` mode without gradients and is put back in the mode(s) it was in. The global
random state is left untouched. The real-data side comes precomputed
(``cgan_lib.reference_stats``), so an evaluation reads no dataset.
"""
from dataclasses import asdict, dataclass, field

import numpy as np

from .classifier import classifier_predictions, device_key, load_classifier
from .data import CLASS_NAMES, N_CLASSES
from .device import module_device
from .metrics import accuracy_margin, feature_statistics, frechet_distance, mean_pairwise_distance
from .reference_stats import fd_floor, load_reference_stats
from .sampling import fixed_samples

# A class is "collapsed" when its diversity ratio is below this. Calibration with look-up "generators" that
# return real images (`python scripts/train_classifier.py --calibrate`, and tests/test_evaluate.py):
#   real images (test set or training set), every class ........ 0.94 - 1.07 at 1,000 per class, 0.92 - 1.09 at 100
#   real images blurred (Gaussian, sd 1 / 2 pixels) ............. 0.69 - 1.18 / 0.55 - 1.06 (blur is not collapse)
#   1 image per class (the generator ignores its noise) ......... 0.00
#   2 / 3 / 5 / 10 real images per class ........................ mean 0.52 / 0.70 / 0.76 / 0.88
#   1 image per class + pixel noise, sd 0.1 ..................... 0.22 - 0.34
# so real data passes with a wide margin, a noise-ignoring generator fails, and a class that only
# ever shows two or three distinct items is around the line.
COLLAPSE_THRESHOLD = 0.5
CHANCE = 1.0 / N_CLASSES
__all__ = ["EvaluationReport", "evaluate_generator"]
MIN_N_PER_CLASS = 10  # below this the per-class numbers say nothing


@dataclass
class EvaluationReport:
    """The numbers from ``evaluate_generator``; ``print(report)`` shows a table, ``report.plot()`` a figure."""

    n_per_class: int
    seed: int
    accuracy: float                 # conditional accuracy over all generated images (chance 0.10)
    per_class_accuracy: list        # per class, in CLASS_NAMES order
    fd: float                       # Fréchet distance to the real test set, classifier features
    fd_floor: float                 # the same for as many real training images (per class, up to 1,000)
    diversity_ratio: list           # per class: generated / real mean pairwise feature distance
    collapsed: list                 # per class: diversity_ratio < collapse_threshold
    real_accuracy: list = field(default_factory=list)  # the classifier on real test images, per class
    collapse_threshold: float = COLLAPSE_THRESHOLD
    class_names: tuple = CLASS_NAMES

    @property
    def collapsed_classes(self):
        return [name for name, flag in zip(self.class_names, self.collapsed) if flag]

    @property
    def fd_ratio(self):
        """fd / fd_floor: 1 is as good as real data."""
        return self.fd / self.fd_floor if self.fd_floor > 0 else float("inf")

    @property
    def accuracy_margin(self):
        """Half-width of the 95% interval of the overall conditional accuracy."""
        return accuracy_margin(self.accuracy, self.n_per_class * len(self.class_names))

    @property
    def class_accuracy_margin(self):
        """The largest half-width of the 95% interval of a per-class accuracy (at 50%)."""
        return accuracy_margin(0.5, self.n_per_class)

    def as_dict(self):
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["collapsed_classes"] = self.collapsed_classes
        return d

    def __str__(self):
        n_all = self.n_per_class * len(self.class_names)
        real = f"{np.mean(self.real_accuracy):.0%}" if self.real_accuracy else "about 93%"
        fd_digits = 1 if self.fd >= 1 else 2  # its scatter over noise seeds: 0.05 at 1,000 per class, 0.2 at 100
        ratio_digits = 2 if self.n_per_class >= 500 else 1  # its scatter: +-0.02 at 1,000 per class, +-0.1 at 100
        accuracy = f"{self.accuracy:.0%} ±{self.accuracy_margin * 100:.0f}"
        lines = [
            f"Generator evaluation: {self.n_per_class:,} images of each class ({n_all:,} in all), "
            f"fixed noise (seed {self.seed})",
            "",
            f"  conditional accuracy  {accuracy:<9} higher is better: chance is {CHANCE:.0%}, real test images "
            f"get {real}",
            f"  Fréchet distance      {self.fd:<9.{fd_digits}f} lower is better: real images get "
            f"{self.fd_floor:.2f} with as many images",
            f"  collapsed classes     {', '.join(self.collapsed_classes) or 'none'}",
            "",
            f"  {'class':<14}{'accuracy':>9}{'real':>7}{'diversity':>11}",
        ]
        for c, name in enumerate(self.class_names):
            real_c = f"{self.real_accuracy[c]:7.0%}" if self.real_accuracy else f"{'-':>7}"
            flag = "  collapsed" if self.collapsed[c] else ""
            lines.append(f"  {c} {name:<12}{self.per_class_accuracy[c]:9.0%}{real_c}"
                         f"{self.diversity_ratio[c]:11.{ratio_digits}f}{flag}")
        lines += ["",
                  f"  accuracy: ±{self.class_accuracy_margin * 100:.0f} points per class at {self.n_per_class:,} "
                  f"images (95% interval); real: the classifier on real test images of the class.",
                  f"  diversity: about 1 is as varied as real images of the class, near 0 the same picture every "
                  f"time; below {self.collapse_threshold} the class has collapsed."]
        return "\n".join(lines)

    def plot(self, path=None):
        """The per-class numbers as a figure (see ``cgan_lib.viz.plot_report``); saved to `path` when given."""
        from .viz import plot_report
        return plot_report(self, path=path)


def evaluate_generator(generator, latent_dim, n_per_class=1000, seed=0, device=None):
    """Evaluate a conditional generator ``G(noise, labels)``; returns an EvaluationReport.

    `device` is where the classifier runs (default: the device of the generator's
    parameters; for a generator without parameters, ``cgan_lib.device``). The same
    `seed` gives the same noise and labels, so two generators (or two checkpoints)
    are compared on the same inputs. n_per_class=1000 takes a few seconds on a CPU;
    an n_per_class whose FD floor is not stored costs about 10 s once per process.
    """
    n_per_class = int(n_per_class)
    if n_per_class < MIN_N_PER_CLASS:
        raise ValueError(f"n_per_class must be at least {MIN_N_PER_CLASS} (fewer images say nothing about a class), "
                         f"got {n_per_class}")
    device = device_key(device if device is not None else module_device(generator, default=device_key()))
    classifier = load_classifier(device)
    reference = load_reference_stats()
    floor = fd_floor(n_per_class, device)  # before generating: a broken install fails fast
    images, labels = fixed_samples(generator, latent_dim, n_per_class, seed, device=device)
    features, predicted = (t.cpu() for t in classifier_predictions(classifier, images))

    per_class_accuracy, diversity = [], []
    for c in range(N_CLASSES):
        of_class = labels == c
        per_class_accuracy.append((predicted[of_class] == c).double().mean().item())
        diversity.append(mean_pairwise_distance(features[of_class]) / reference["test_spread"][c].item())
    return EvaluationReport(
        n_per_class=n_per_class, seed=int(seed),
        accuracy=(predicted == labels).double().mean().item(),
        per_class_accuracy=per_class_accuracy,
        fd=frechet_distance(*feature_statistics(features), reference["test_mean"], reference["test_cov"]),
        fd_floor=floor,
        diversity_ratio=diversity,
        collapsed=[ratio < COLLAPSE_THRESHOLD for ratio in diversity],
        real_accuracy=reference["test_accuracy_per_class"].tolist(),
    )
