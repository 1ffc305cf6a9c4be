"""What real Fashion-MNIST looks like to the reference classifier: statistics precomputed once.

    stats = load_reference_stats()     # checked, cached; reads no dataset
    floor = fd_floor(n_per_class)      # the Fréchet distance real images get at that sample size

``weights/reference_stats.pt`` holds, computed with the committed classifier on the CPU:
the test set's feature mean and covariance (for the Fréchet distance), the mean pairwise
feature distance of the real test images of each class (for the diversity ratio), the
classifier's per-class accuracy on real test images, and the FD floor for the usual
sample sizes ``FLOOR_N_PER_CLASS``. The floor is the Fréchet distance between that many
real *training* images per class and the test set: FD estimated from fewer samples comes
out higher, so a generator is compared with real data measured the same way.

The file is checked against ``REFERENCE_STATS_SHA256`` and holds the SHA-256 of the
classifier weights it was made from, so it cannot be used with other weights. Only an FD
floor for an unusual sample size is computed from the training set (once per process and
device). ``python scripts/train_classifier.py --stats`` re-creates the file; on a GPU the
generated images' features differ from the CPU's only in the last float32 bits.
"""
import io
from pathlib import Path

import torch

from . import classifier
from .classifier import FEATURE_DIM, check_file, classifier_predictions, device_key, load_classifier
from .data import N_CLASSES, load_tensors, subset_per_class
from .metrics import feature_statistics, frechet_distance, mean_pairwise_distance

STATS_PATH = classifier.WEIGHTS_PATH.parent / "reference_stats.pt"
# SHA-256 of the committed real-data statistics; scripts/train_classifier.py --stats rewrites this line.
REFERENCE_STATS_SHA256 = "13f86c4454284c226ee86eee0dfaf99ba44314d33cfbee9ab51c12c67134251a"
STATS_COMMAND = "python scripts/train_classifier.py --stats"
STATS_FORMAT = 1
# The n_per_class values whose FD floor is stored (the lab uses 100 and 1000); others are computed when asked for.
FLOOR_N_PER_CLASS = (10, 20, 50, 100, 200, 500, 1000)
N_REAL_FLOOR_MAX = 1000  # per class: the floor uses at most 10,000 training images (as many as the test set)
STATS_KEYS = {  # name -> (dtype, shape); shape None: 1-d (the two floor tensors of one length)
    "test_mean": (torch.float64, (FEATURE_DIM,)),
    "test_cov": (torch.float64, (FEATURE_DIM, FEATURE_DIM)),
    "test_spread": (torch.float64, (N_CLASSES,)),
    "test_accuracy_per_class": (torch.float64, (N_CLASSES,)),
    "floor_n_per_class": (torch.int64, None),
    "fd_floor": (torch.float64, None),
}


class ReferenceStatsError(classifier.ClassifierWeightsError):
    """The real-data statistics file is missing, damaged or made from other classifier weights."""


_CACHE = {}  # loaded statistics, training-set features and computed floors


def clear_cache():
    """Forget the loaded statistics and computed floors (they are loaded again when next asked for)."""
    _CACHE.clear()


# --- Computing them from the dataset ------------------------------------------------------------

def train_floor_features(device):
    """Classifier features of a balanced training subset: (10, N_REAL_FLOOR_MAX, 128) on the CPU, cached per device.

    In class order; the first k of each class are a balanced subset of k per class.
    """
    key = ("train_features", str(device), classifier.CLASSIFIER_SHA256)
    if key not in _CACHE:
        images, labels = load_tensors("train")
        images, _ = subset_per_class(images, labels, N_REAL_FLOOR_MAX, seed=0)
        features, _ = classifier_predictions(load_classifier(device, sha256=classifier.CLASSIFIER_SHA256), images)
        _CACHE[key] = features.cpu().view(N_CLASSES, N_REAL_FLOOR_MAX, -1)
    return _CACHE[key]


def floor_from_features(train_features, k, test_mean, test_cov):
    """FD between the first k training images of every class and the test set's (mean, covariance)."""
    subset = train_features[:, :k].reshape(-1, train_features.shape[-1])
    return frechet_distance(*feature_statistics(subset), test_mean, test_cov)


def compute_reference_stats(device="cpu", floor_n_per_class=FLOOR_N_PER_CLASS):
    """The real-data statistics, computed from Fashion-MNIST with the committed classifier (what STATS_PATH holds).

    A dict of plain tensors, ints and strings. Takes about 10 s on a CPU (the classifier over 20,000 real images).
    """
    device = device_key(device)
    model = load_classifier(device, sha256=classifier.CLASSIFIER_SHA256)
    test_images, test_labels = load_tensors("test")
    test_features, test_predicted = classifier_predictions(model, test_images)
    test_features, test_predicted, test_labels = test_features.cpu(), test_predicted.cpu(), test_labels.cpu()
    test_mean, test_cov = feature_statistics(test_features)
    correct = test_predicted == test_labels
    floor_n = sorted({min(int(n), N_REAL_FLOOR_MAX) for n in floor_n_per_class})
    train_features = train_floor_features(device)
    return {
        "format": STATS_FORMAT,
        "classifier_sha256": classifier.CLASSIFIER_SHA256,
        "made_with": f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads",
        "test_mean": test_mean,
        "test_cov": test_cov,
        "test_spread": torch.tensor([mean_pairwise_distance(test_features[test_labels == c])
                                     for c in range(N_CLASSES)], dtype=torch.float64),
        "test_accuracy_per_class": torch.stack([correct[test_labels == c].double().mean()
                                                for c in range(N_CLASSES)]),
        "floor_n_per_class": torch.tensor(floor_n, dtype=torch.int64),
        "fd_floor": torch.tensor([floor_from_features(train_features, k, test_mean, test_cov) for k in floor_n],
                                 dtype=torch.float64),
    }


def reference_stats_bytes(stats):
    """The bytes of ``torch.save(stats)``, independent of the file name (same stats -> same bytes)."""
    buffer = io.BytesIO()
    torch.save(stats, buffer)
    return buffer.getvalue()


# --- Loading the stored ones --------------------------------------------------------------------

def _fix():
    return (f"To fix it, restore the file that comes with the package (re-install cgan_lib, or "
            f"`git checkout -- cgan_lib/weights/{STATS_PATH.name}` in the repository), or re-create it from "
            f"the classifier weights {classifier.WEIGHTS_PATH} with `{STATS_COMMAND}` (about 15 s on a CPU; it "
            f"reads Fashion-MNIST).")


def _validated(stats):
    """`stats` as read from the file, or ValueError/TypeError saying what is wrong with it."""
    if not isinstance(stats, dict):
        raise TypeError(f"it holds a {type(stats).__name__}, not a dict")
    if stats.get("format") != STATS_FORMAT:
        raise ValueError(f"format {stats.get('format')!r}, this version of cgan_lib reads {STATS_FORMAT}")
    for name, (dtype, shape) in STATS_KEYS.items():
        value = stats.get(name)
        if not torch.is_tensor(value) or value.dtype != dtype or (shape and tuple(value.shape) != shape):
            found = f"{value.dtype} {tuple(value.shape)}" if torch.is_tensor(value) else type(value).__name__
            raise ValueError(f"{name!r} is {found}, expected {dtype} {shape or '1-d'}")
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{name!r} holds NaN or infinite values")
    if stats["floor_n_per_class"].ndim != 1 or stats["fd_floor"].shape != stats["floor_n_per_class"].shape:
        raise ValueError("'floor_n_per_class' and 'fd_floor' are not 1-d tensors of one length")
    if not isinstance(stats.get("classifier_sha256"), str):
        raise ValueError("it does not say which classifier weights it was made from ('classifier_sha256')")
    return stats


def load_reference_stats(path=None, sha256=None):
    """The stored real-data statistics (a dict, see compute_reference_stats), checked and cached.

    Without `path`: the committed STATS_PATH, whose SHA-256 must be REFERENCE_STATS_SHA256.
    With `path`: that file, checked against `sha256` when given (None: not checked, e.g. a file
    just written). The file must have been made from the classifier weights CLASSIFIER_SHA256
    names. Raises ReferenceStatsError, naming the file and the command that re-creates it,
    when it is missing, damaged or made from other weights. The dataset is never read here.
    """
    if path is None:
        path, sha256 = STATS_PATH, REFERENCE_STATS_SHA256
    path = Path(path)
    key = ("stats", str(path.resolve()), sha256, classifier.CLASSIFIER_SHA256)
    if key in _CACHE:
        return _CACHE[key]
    check_file(path, sha256, "real-data statistics file", ReferenceStatsError, _fix(),
               recorded_in=f" (REFERENCE_STATS_SHA256 in {Path(__file__).name})")
    try:
        stats = _validated(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:  # unpickling errors, missing keys, wrong shapes
        detail = str(err).strip().splitlines()
        raise ReferenceStatsError(f"The real-data statistics file {path} could not be read: {type(err).__name__}: "
                                  f"{' '.join(detail[:3])[:500]}\n{_fix()}") from None
    if stats["classifier_sha256"] != classifier.CLASSIFIER_SHA256:
        raise ReferenceStatsError(
            f"The real-data statistics file {path} was made from other classifier weights (SHA-256 "
            f"{stats['classifier_sha256']}) than the reference classifier's {classifier.WEIGHTS_PATH} (SHA-256 "
            f"{classifier.CLASSIFIER_SHA256}), so its numbers do not fit. Re-create it from the current weights "
            f"with `{STATS_COMMAND}` (about 15 s on a CPU), or restore the two files from one version of cgan_lib.")
    stats["floors"] = dict(zip(stats["floor_n_per_class"].tolist(), stats["fd_floor"].tolist()))
    _CACHE[key] = stats
    return stats


def fd_floor(n_per_class=N_REAL_FLOOR_MAX, device=None):
    """FD between `n_per_class` real training images per class (at most 1,000) and the real test set.

    Stored for FLOOR_N_PER_CLASS; other values are computed from the training set with the
    classifier on `device` (default ``cgan_lib.device``), once per process and device.
    """
    stats = load_reference_stats()
    k = min(int(n_per_class), N_REAL_FLOOR_MAX)
    if k in stats["floors"]:
        return stats["floors"][k]
    device = device_key(device)
    key = ("floor", str(device), k, classifier.CLASSIFIER_SHA256)
    if key not in _CACHE:
        _CACHE[key] = floor_from_features(train_floor_features(device), k, stats["test_mean"], stats["test_cov"])
    return _CACHE[key]
