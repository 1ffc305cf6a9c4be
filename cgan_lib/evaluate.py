"""How good is a conditional generator? Numbers from a fixed reference classifier.

``evaluate_generator(G, latent_dim)`` makes ``n_per_class`` images of every class
from a fixed, seeded set of noise vectors and measures, with a small CNN trained
on the real Fashion-MNIST training set (weights shipped in ``weights/``):

* **conditional accuracy** -- the share of images the classifier puts in the
  class that was asked for, overall and per class (chance: 0.10). For context
  the report also gives the classifier's accuracy on *real* test images of each
  class (Shirt is hard even for real ones).
* **Frechet distance** (FD) between the generated images and the real test set,
  in the classifier's 128-d penultimate feature space (the idea of FID, with a
  Fashion-MNIST network instead of Inception, so the numbers are not comparable
  with published FIDs). Lower is better. The *floor* is the same distance for
  real training images, measured with the same number of images as generated
  (10,000 = 1,000 per class at the default), since FD estimated from fewer
  samples comes out higher: a generator near the floor is as close to the test
  set as real data is.
* **diversity ratio** per class -- the mean pairwise feature distance between
  the generated images of a class divided by the same for the real test images
  of that class. About 1 for real data; near 0 when the generator ignores its
  noise (mode collapse). A class is flagged *collapsed* when the ratio is below
  ``COLLAPSE_THRESHOLD`` (0.5, see its comment for the calibration).

The three need each other: a generator that ignores its labels can still have a
good FD (its images look real), one that ignores its noise a perfect accuracy.

The generator is called as ``G(noise, labels)`` with noise (N, latent_dim) from
N(0, 1) and labels (N,) int64, and must return (N, 1, 28, 28) images in [-1, 1].
It is run in ``eval()`` mode under ``torch.no_grad()`` on the device of its
parameters, and put back in the mode(s) it was in. The global random state is
left untouched.

The classifier's weights are checked against ``CLASSIFIER_SHA256`` before they
are loaded; ``scripts/train_classifier.py`` re-creates them (see its docstring).

Everything about *real* data -- the test set's feature mean and covariance, the
real per-class spread behind the diversity ratio, the classifier's per-class
accuracy on real test images and the FD floors for the usual ``n_per_class``
(``FLOOR_N_PER_CLASS``) -- is precomputed from those weights into
``weights/reference_stats.pt`` (checked against ``REFERENCE_STATS_SHA256``, and
holding the weights' SHA-256 so it cannot be used with other weights). So an
evaluation reads no dataset at all; only an FD floor for an unusual
``n_per_class`` is computed from the training set, once per process and device.
The stored numbers come from the classifier run on the CPU; on a GPU the
generated images' features differ from the CPU's in the last float32 bits,
far below anything the report shows. ``python scripts/train_classifier.py --stats``
re-creates the file.
"""
import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from . import data as _data  # the dataset is read through _data.* at call time (tests replace it)
from .data import CLASS_NAMES, IMG_SIZE, N_CLASSES, subset_per_class
from .device import evaluating, module_device

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "fashion_classifier.pt"
# SHA-256 of the committed weights file; scripts/train_classifier.py --update-checksum rewrites this line.
CLASSIFIER_SHA256 = "b282f226afff434c8d242fde4c5a86e93646bb40569d19704285b6ec1301c1cc"
# Accuracy of those weights on the 10,000 real test images (printed by the training script).
CLASSIFIER_TEST_ACCURACY = 0.9260
TRAIN_COMMAND = "python scripts/train_classifier.py --update-checksum"

STATS_PATH = WEIGHTS_PATH.parent / "reference_stats.pt"
# SHA-256 of the committed real-data statistics; scripts/train_classifier.py --stats rewrites this line.
REFERENCE_STATS_SHA256 = "13f86c4454284c226ee86eee0dfaf99ba44314d33cfbee9ab51c12c67134251a"
STATS_COMMAND = "python scripts/train_classifier.py --stats"
STATS_FORMAT = 1
# The n_per_class values whose FD floor is stored in STATS_PATH (the lab uses 100 and 1000); any other
# value is computed from the training set when first asked for.
FLOOR_N_PER_CLASS = (10, 20, 50, 100, 200, 500, 1000)

# A class is "collapsed" when its diversity ratio is below this. Calibration, n_per_class=1000, seed 0,
# with look-up "generators" that return real images (`python scripts/train_classifier.py --calibrate`):
#   real images (test set or training set), every class ........ 0.94 - 1.07 (also at n_per_class=100)
#   1 image per class (the generator ignores its noise) ......... 0.00
#   2 / 3 / 5 / 10 real images per class ........................ mean 0.52 / 0.70 / 0.76 / 0.88
#   1 image per class + pixel noise, sd 0.1 ..................... 0.22 - 0.34
# so real data passes with a wide margin, a noise-ignoring generator fails, and a class that only
# ever shows two or three distinct items is around the line. Pixel noise on a collapsed output can
# raise the ratio (sd 0.3: 0.40 - 0.90), but then the accuracy falls and the FD explodes.
COLLAPSE_THRESHOLD = 0.5
CHANCE = 1.0 / N_CLASSES
FEATURE_DIM = 128
N_REAL_FLOOR_MAX = 1000  # per class: the floor uses at most 10,000 training images (as many as the test set)


class ClassifierWeightsError(RuntimeError):
    """The reference classifier's weights file is missing, damaged or of another architecture."""


class ReferenceStatsError(ClassifierWeightsError):
    """The real-data statistics file is missing, damaged or made from other classifier weights."""


# --- The reference classifier -------------------------------------------------------------------

def _conv_block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.MaxPool2d(2)]


class FashionClassifier(nn.Module):
    """A small CNN for Fashion-MNIST: images in [-1, 1], (N, 1, 28, 28) -> 10 logits.

    Three conv-BN-ReLU-maxpool blocks (24, 48, 96 channels; 28 -> 14 -> 7 -> 3 pixels),
    then Linear(864, 128) + ReLU -- the features -- and Dropout + Linear(128, 10).
    About 164k parameters (0.7 MB as float32).
    """

    def __init__(self, channels=(24, 48, 96), feature_dim=FEATURE_DIM, dropout=0.3):
        super().__init__()
        c1, c2, c3 = channels
        self.conv = nn.Sequential(*_conv_block(1, c1), *_conv_block(c1, c2), *_conv_block(c2, c3))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c3 * 3 * 3, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, N_CLASSES))

    def features(self, x):
        """The penultimate layer: (N, 128) non-negative features."""
        return self.fc(self.conv(x))

    def forward(self, x):
        return self.head(self.features(x))


def _device_key(device):
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _default_device():
    from .device import device
    return device


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_bytes(model):
    """The bytes of ``torch.save(model.state_dict())``, independent of the file name it is written to."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


_CLASSIFIERS = {}


def load_classifier(device=None, path=None, sha256=CLASSIFIER_SHA256):
    """The reference classifier in eval mode on `device` (default: ``cgan_lib.device``), cached per device.

    `path` defaults to the committed weights; the file's SHA-256 must equal `sha256`
    (pass ``sha256=None`` to skip the check, e.g. for weights you have just trained).
    Raises ClassifierWeightsError, saying what to do, when the file is missing,
    damaged or does not fit the architecture. Do not train the returned model: it is shared.
    """
    device = _device_key(device if device is not None else _default_device())
    path = Path(path) if path is not None else WEIGHTS_PATH
    key = (str(path.resolve()), sha256, str(device))
    if key in _CLASSIFIERS:
        return _CLASSIFIERS[key]

    fix = (f"To fix it, restore the file that comes with the package (re-install cgan_lib, or "
           f"`git checkout -- cgan_lib/weights/{WEIGHTS_PATH.name}` in the repository), or re-create it "
           f"with `{TRAIN_COMMAND}` (about 4 minutes on a CPU).")
    _check_file(path, sha256, "reference classifier's weights file", ClassifierWeightsError, fix)
    model = FashionClassifier()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"it holds a {type(state).__name__}, not a state_dict")
        model.load_state_dict(state, strict=True)
    except Exception as err:  # unpickling errors, missing/unexpected keys, shape mismatches
        detail = str(err).strip().splitlines()
        raise ClassifierWeightsError(
            f"The weights file {path} could not be loaded into the reference classifier "
            f"(FashionClassifier): {type(err).__name__}: {' '.join(detail[:3])[:500]}\n{fix}") from None
    model.to(device).eval().requires_grad_(False)
    _CLASSIFIERS[key] = model
    return model


def _check_file(path, sha256, what, error, fix, recorded_in=""):
    """Raise `error` naming `path` and the fix if the file is missing or its SHA-256 is not `sha256`."""
    if not path.is_file():
        raise error(f"The {what} {path} does not exist.\n{fix}")
    if sha256 is not None:
        found = sha256_of(path)
        if found != sha256:
            raise error(f"The {what} {path} is damaged or not the expected one: its SHA-256 is {found}, "
                        f"expected {sha256}{recorded_in}.\n{fix}")


def clear_caches():
    """Forget the loaded classifiers and the real-data statistics (they are re-loaded when needed)."""
    _CLASSIFIERS.clear()
    _REFERENCE.clear()


# --- Helpers ------------------------------------------------------------------------------------

def _batched(model, fn, images, batch_size=1000):
    """fn(batch) for batches of `images` moved to `model`'s device; a tensor (or tuple of them) concatenated."""
    device = module_device(model)
    outs = [fn(images[i:i + batch_size].to(device, torch.float32)) for i in range(0, len(images), batch_size)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def classifier_predictions(model, images, batch_size=1000):
    """(features (N, 128), predicted classes (N,)) from `model` (default: the reference classifier)."""
    model = load_classifier() if model is None else model
    with evaluating(model):
        def both(x):
            f = model.features(x)
            return f, model.head(f).argmax(1)
        return _batched(model, both, images, batch_size)


def classifier_accuracy(model, images, labels, batch_size=1000):
    """Share of `images` that `model` (default: the reference classifier) assigns to `labels`.

    The model is run in eval mode without gradients and left in the mode it was in.
    """
    model = load_classifier() if model is None else model
    with evaluating(model):
        predicted = _batched(model, lambda x: model(x).argmax(1), images, batch_size)
    return (predicted.cpu() == labels.cpu()).double().mean().item()


def feature_statistics(features):
    """(mean (D,), covariance (D, D)) of (N, D) features, as float64 tensors (unbiased covariance)."""
    features = torch.as_tensor(features).detach().to("cpu", torch.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {tuple(features.shape)}")
    mu = features.mean(0)
    centered = features - mu
    return mu, centered.T @ centered / (len(features) - 1)


def _psd_sqrt(matrix):
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``, where the trace term is
    computed as ``tr((S1^(1/2) S2 S1^(1/2))^(1/2))``: both square roots are of symmetric
    PSD matrices, so they come from eigen-decompositions (negative round-off eigenvalues
    clipped to 0). Accepts tensors or arrays; returns a float >= 0.
    """
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a)
                                .detach().to("cpu", torch.float64) for a in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not fit: mu {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
                         f"sigma {tuple(sigma1.shape)}, {tuple(sigma2.shape)}")
    sqrt1 = _psd_sqrt(sigma1)
    middle = sqrt1 @ sigma2 @ sqrt1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return max(fd.item(), 0.0)


def mean_pairwise_distance(features):
    """Mean Euclidean distance over all pairs of distinct rows of (N, D) features (float64)."""
    features = torch.as_tensor(features).detach().to("cpu", torch.float64)
    if len(features) < 2:
        raise ValueError("need at least 2 samples for a pairwise distance")
    return torch.nn.functional.pdist(features).mean().item()


# --- Real-data reference: precomputed in STATS_PATH, loaded once per process --------------------

_REFERENCE = {}
_STATS_KEYS = {  # name -> (dtype, shape); shape None: 1-d (the two floor tensors of one length)
    "test_mean": (torch.float64, (FEATURE_DIM,)),
    "test_cov": (torch.float64, (FEATURE_DIM, FEATURE_DIM)),
    "test_spread": (torch.float64, (N_CLASSES,)),
    "test_accuracy_per_class": (torch.float64, (N_CLASSES,)),
    "floor_n_per_class": (torch.int64, None),
    "fd_floor": (torch.float64, None),
}


def _train_floor_features(device):
    """Classifier features of the balanced training subset: (10, N_REAL_FLOOR_MAX, 128), CPU, cached per device."""
    key = ("train_features", str(device), CLASSIFIER_SHA256)
    if key not in _REFERENCE:
        train_images, train_labels = _data.load_tensors("train")
        # class order, N_REAL_FLOOR_MAX of each; the first k of each class are a balanced subset of k per class
        train_images, _ = subset_per_class(train_images, train_labels, N_REAL_FLOOR_MAX, seed=0)
        train_features, _ = classifier_predictions(load_classifier(device, sha256=CLASSIFIER_SHA256),
                                                   train_images)
        _REFERENCE[key] = train_features.cpu().view(N_CLASSES, N_REAL_FLOOR_MAX, -1)
    return _REFERENCE[key]


def _floor_from_features(train_features, k, test_mean, test_cov):
    """FD between the first k training images of every class and the test set's (mean, covariance)."""
    subset = train_features[:, :k].reshape(-1, train_features.shape[-1])
    return frechet_distance(*feature_statistics(subset), test_mean, test_cov)


def compute_reference_stats(device="cpu", floor_n_per_class=FLOOR_N_PER_CLASS):
    """The real-data statistics, computed from Fashion-MNIST with the committed classifier (what STATS_PATH holds).

    A dict of plain tensors, ints and strings: the test set's feature mean and
    covariance, per-class mean pairwise feature distance and classifier accuracy
    on the real test images, and the FD floor for each of `floor_n_per_class`,
    plus the classifier weights' SHA-256 they were made from. Takes about 10 s
    on a CPU (the classifier over 20,000 real images).
    """
    device = _device_key(device)
    classifier = load_classifier(device, sha256=CLASSIFIER_SHA256)
    test_images, test_labels = _data.load_tensors("test")
    test_features, test_predicted = classifier_predictions(classifier, test_images)
    test_features, test_predicted, test_labels = test_features.cpu(), test_predicted.cpu(), test_labels.cpu()
    test_mean, test_cov = feature_statistics(test_features)
    correct = test_predicted == test_labels
    floor_n = sorted({min(int(n), N_REAL_FLOOR_MAX) for n in floor_n_per_class})
    train_features = _train_floor_features(device)
    return {
        "format": STATS_FORMAT,
        "classifier_sha256": CLASSIFIER_SHA256,
        "made_with": f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads",
        "test_mean": test_mean,
        "test_cov": test_cov,
        "test_spread": torch.tensor([mean_pairwise_distance(test_features[test_labels == c])
                                     for c in range(N_CLASSES)], dtype=torch.float64),
        "test_accuracy_per_class": torch.stack([correct[test_labels == c].double().mean()
                                                for c in range(N_CLASSES)]),
        "floor_n_per_class": torch.tensor(floor_n, dtype=torch.int64),
        "fd_floor": torch.tensor([_floor_from_features(train_features, k, test_mean, test_cov) for k in floor_n],
                                 dtype=torch.float64),
    }


def reference_stats_bytes(stats):
    """The bytes of ``torch.save(stats)``, independent of the file name (same stats -> same bytes)."""
    buffer = io.BytesIO()
    torch.save(stats, buffer)
    return buffer.getvalue()


def _stats_fix():
    return (f"To fix it, restore the file that comes with the package (re-install cgan_lib, or "
            f"`git checkout -- cgan_lib/weights/{STATS_PATH.name}` in the repository), or re-create it from "
            f"the classifier weights {WEIGHTS_PATH} with `{STATS_COMMAND}` (about 15 s on a CPU; it reads "
            f"Fashion-MNIST).")


_RECORDED = "recorded"  # load_reference_stats(sha256=...) default: REFERENCE_STATS_SHA256 as it is at call time


def load_reference_stats(path=None, sha256=_RECORDED):
    """The stored real-data statistics (a dict, see compute_reference_stats), checked and cached.

    `path` defaults to STATS_PATH and `sha256` to REFERENCE_STATS_SHA256 (pass ``sha256=None``
    to skip the checksum, e.g. for a file just written). The file must also have been made from the
    classifier weights ``CLASSIFIER_SHA256`` names. Raises ReferenceStatsError, naming the file and
    the command that re-creates it, when it is missing, damaged or made from other weights.
    The dataset is never read here.
    """
    path = Path(path) if path is not None else STATS_PATH
    sha256 = REFERENCE_STATS_SHA256 if sha256 == _RECORDED else sha256
    key = ("stats", str(path.resolve()), sha256, CLASSIFIER_SHA256)
    if key in _REFERENCE:
        return _REFERENCE[key]
    _check_file(path, sha256, "real-data statistics file", ReferenceStatsError, _stats_fix(),
                recorded_in=f" (REFERENCE_STATS_SHA256 in {Path(__file__).name})")
    try:
        stats = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(stats, dict):
            raise TypeError(f"it holds a {type(stats).__name__}, not a dict")
        if stats.get("format") != STATS_FORMAT:
            raise ValueError(f"format {stats.get('format')!r}, this version of cgan_lib reads {STATS_FORMAT}")
        for name, (dtype, shape) in _STATS_KEYS.items():
            value = stats.get(name)
            if not torch.is_tensor(value) or value.dtype != dtype or (shape and tuple(value.shape) != shape):
                found = (f"{value.dtype} {tuple(value.shape)}" if torch.is_tensor(value)
                         else type(value).__name__)
                raise ValueError(f"{name!r} is {found}, expected {dtype} {shape or '1-d'}")
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise ValueError(f"{name!r} holds NaN or infinite values")
        if stats["floor_n_per_class"].ndim != 1 or stats["fd_floor"].shape != stats["floor_n_per_class"].shape:
            raise ValueError("'floor_n_per_class' and 'fd_floor' are not 1-d tensors of one length")
        made_from = stats.get("classifier_sha256")
        if not isinstance(made_from, str):
            raise ValueError("it does not say which classifier weights it was made from ('classifier_sha256')")
    except Exception as err:  # unpickling errors, missing keys, wrong shapes
        detail = str(err).strip().splitlines()
        raise ReferenceStatsError(
            f"The real-data statistics file {path} could not be read: {type(err).__name__}: "
            f"{' '.join(detail[:3])[:500]}\n{_stats_fix()}") from None
    if made_from != CLASSIFIER_SHA256:
        raise ReferenceStatsError(
            f"The real-data statistics file {path} was made from other classifier weights (SHA-256 {made_from}) "
            f"than the reference classifier's {WEIGHTS_PATH} (SHA-256 {CLASSIFIER_SHA256}), so its numbers "
            f"do not fit. Re-create it from the current weights with `{STATS_COMMAND}` (about 15 s on a CPU), "
            f"or restore the two files from one version of cgan_lib.")
    stats["floors"] = dict(zip(stats["floor_n_per_class"].tolist(), stats["fd_floor"].tolist()))
    _REFERENCE[key] = stats
    return stats


def fd_floor(n_per_class=N_REAL_FLOOR_MAX, device=None):
    """FD between `n_per_class` real training images per class (at most 1,000) and the real test set.

    Stored in STATS_PATH for FLOOR_N_PER_CLASS; other values are computed from the training set
    with the classifier on `device` (default ``cgan_lib.device``), once per process and device.
    """
    stats = load_reference_stats()
    k = min(int(n_per_class), N_REAL_FLOOR_MAX)
    if k in stats["floors"]:
        return stats["floors"][k]
    device = _device_key(device if device is not None else _default_device())
    key = ("floor", str(device), k, CLASSIFIER_SHA256)
    if key not in _REFERENCE:
        _REFERENCE[key] = _floor_from_features(_train_floor_features(device), k,
                                               stats["test_mean"], stats["test_cov"])
    return _REFERENCE[key]


# --- Generating the evaluation set --------------------------------------------------------------

def generate_images(generator, latent_dim, n_per_class=1000, seed=0, batch_size=500, device=None):
    """`n_per_class` images of every class from a fixed noise set: (images (N, 1, 28, 28) on CPU, labels (N,)).

    Labels cycle 0, 1, ..., 9, 0, 1, ... The noise comes from a private torch.Generator
    seeded with `seed`, so it does not depend on or change the global random state;
    randomness the generator draws itself is seeded too and the global state restored.
    """
    if int(n_per_class) < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    n = int(n_per_class) * N_CLASSES
    gen_device = module_device(generator, default=device)
    noise = torch.randn(n, int(latent_dim), generator=torch.Generator().manual_seed(int(seed)))
    labels = torch.arange(N_CLASSES).repeat(int(n_per_class))
    cuda_devices = [_device_key(gen_device).index] if gen_device.type == "cuda" else []
    images = []
    with torch.random.fork_rng(devices=cuda_devices), evaluating(generator):
        torch.default_generator.manual_seed(int(seed))
        if cuda_devices:
            with torch.cuda.device(gen_device):
                torch.cuda.manual_seed(int(seed))
        for i in range(0, n, batch_size):
            z, y = noise[i:i + batch_size].to(gen_device), labels[i:i + batch_size].to(gen_device)
            out = generator(z, y)
            if not torch.is_tensor(out) or out.numel() != len(y) * IMG_SIZE * IMG_SIZE:
                shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
                raise ValueError(f"the generator returned {shape} for a batch of {len(y)}; expected "
                                 f"({len(y)}, 1, {IMG_SIZE}, {IMG_SIZE}) images in [-1, 1]")
            images.append(out.detach().reshape(len(y), 1, IMG_SIZE, IMG_SIZE).float().cpu())
    images = torch.cat(images)
    if not torch.isfinite(images).all():
        raise ValueError("the generator returned NaN or infinite pixels (did training diverge?)")
    return images, labels


# --- The report ---------------------------------------------------------------------------------

@dataclass
class EvaluationReport:
    """The numbers from ``evaluate_generator``; ``print(report)`` shows a table, ``report.plot()`` a figure."""

    n_per_class: int
    seed: int
    accuracy: float                 # conditional accuracy over all generated images (chance 0.10)
    per_class_accuracy: list        # per class, in CLASS_NAMES order
    fd: float                       # Frechet distance to the real test set, classifier features
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

    def as_dict(self):
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["collapsed_classes"] = self.collapsed_classes
        return d

    def __str__(self):
        lines = [
            f"Generator evaluation: {self.n_per_class} images per class, seed {self.seed}",
            f"  conditional accuracy  {self.accuracy:6.1%}   (chance {CHANCE:.0%}; the classifier gets "
            f"{np.mean(self.real_accuracy):.1%} on real test images)" if self.real_accuracy else
            f"  conditional accuracy  {self.accuracy:6.1%}   (chance {CHANCE:.0%})",
            f"  Frechet distance      {self.fd:8.2f} (real training images: {self.fd_floor:.2f}; lower is better)",
            f"  collapsed classes     {', '.join(self.collapsed_classes) or 'none'}"
            f"   (diversity ratio < {self.collapse_threshold})",
            "",
            f"  {'class':<14}{'accuracy':>9}{'real':>8}{'diversity':>11}  collapsed",
        ]
        for c, name in enumerate(self.class_names):
            real = f"{self.real_accuracy[c]:8.1%}" if self.real_accuracy else f"{'-':>8}"
            lines.append(f"  {c} {name:<12}{self.per_class_accuracy[c]:9.1%}{real}"
                         f"{self.diversity_ratio[c]:11.2f}  {'YES' if self.collapsed[c] else ''}")
        return "\n".join(lines)

    def plot(self, path=None):
        """A figure: per-class accuracy (chance line at 0.10) and diversity ratio (threshold line).

        Saved to `path` when given. The figure is closed in pyplot before it is returned,
        so a notebook shows it once (as the cell's value) and it holds no pyplot state.
        """
        import matplotlib.pyplot as plt

        x = np.arange(len(self.class_names))
        colors = ["tab:red" if flag else "tab:blue" for flag in self.collapsed]
        fig, (ax_acc, ax_div) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
        ax_acc.bar(x, self.per_class_accuracy, color=colors, label="generated")
        if self.real_accuracy:
            ax_acc.scatter(x, self.real_accuracy, marker="_", s=400, color="black", zorder=3,
                           label="real test images")
        ax_acc.axhline(CHANCE, color="gray", linestyle="--", label=f"chance ({CHANCE:.2f})")
        ax_acc.set(ylim=(0, 1.3), ylabel="share classified as the requested class",
                   title=f"Conditional accuracy {self.accuracy:.1%}  |  FD {self.fd:.2f} "
                         f"(real: {self.fd_floor:.2f})")
        ax_acc.legend(loc="upper center", ncol=3, fontsize=8)
        ax_div.bar(x, self.diversity_ratio, color=colors)
        ax_div.axhline(1.0, color="black", linewidth=0.8, label="real data (1.0)")
        ax_div.axhline(self.collapse_threshold, color="tab:red", linestyle="--",
                       label=f"collapse threshold ({self.collapse_threshold})")
        ax_div.set(ylim=(0, max(1.3, max(self.diversity_ratio, default=0) * 1.15)),
                   ylabel="diversity ratio (generated / real)", title="Diversity per class (red: collapsed)")
        ax_div.legend(loc="upper center", ncol=2, fontsize=8)
        for ax in (ax_acc, ax_div):
            ax.set_xticks(x, self.class_names, rotation=45, ha="right")
        if path is not None:
            fig.savefig(path, dpi=120)
        plt.close(fig)
        return fig


def evaluate_generator(generator, latent_dim, n_per_class=1000, seed=0, device=None):
    """Evaluate a conditional generator ``G(noise, labels)``; returns an EvaluationReport.

    `device` is where the classifier runs (default: the device of the generator's
    parameters; for a generator without parameters, ``cgan_lib.device``). The same
    `seed` gives the same noise and labels, so two generators (or two checkpoints)
    are compared on the same inputs. n_per_class=100 takes about a second on a CPU; the
    real-data side comes precomputed from STATS_PATH (an n_per_class outside
    FLOOR_N_PER_CLASS costs about 10 s once per process, for its FD floor).
    """
    n_per_class = int(n_per_class)
    if n_per_class < 2:
        raise ValueError(f"n_per_class must be at least 2 (diversity needs pairs), got {n_per_class}")
    if device is None:
        device = module_device(generator, default=_default_device())
    device = _device_key(device)
    classifier = load_classifier(device, sha256=CLASSIFIER_SHA256)
    ref = load_reference_stats()
    floor = fd_floor(n_per_class, device)  # before generating: a broken install fails fast
    images, labels = generate_images(generator, latent_dim, n_per_class, seed, device=device)
    features, predicted = classifier_predictions(classifier, images)
    features, predicted = features.cpu(), predicted.cpu()

    per_class_accuracy, diversity = [], []
    for c in range(N_CLASSES):
        mask = labels == c
        per_class_accuracy.append((predicted[mask] == c).double().mean().item())
        diversity.append(mean_pairwise_distance(features[mask]) / ref["test_spread"][c].item())
    return EvaluationReport(
        n_per_class=n_per_class, seed=int(seed),
        accuracy=(predicted == labels).double().mean().item(),
        per_class_accuracy=per_class_accuracy,
        fd=frechet_distance(*feature_statistics(features), ref["test_mean"], ref["test_cov"]),
        fd_floor=floor,
        diversity_ratio=diversity,
        collapsed=[ratio < COLLAPSE_THRESHOLD for ratio in diversity],
        real_accuracy=ref["test_accuracy_per_class"].tolist(),
    )
