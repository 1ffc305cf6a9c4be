"""The reference classifier that judges generated images: a small Fashion-MNIST CNN with checked weights.

    model = load_classifier()                      # eval mode, on cgan_lib.device, cached
    features, predicted = classifier_predictions(model, images)
    accuracy = classifier_accuracy(model, images, labels)

The weights (``weights/fashion_classifier.pt``, trained on the 60,000 real training
images by ``scripts/train_classifier.py``) are checked against ``CLASSIFIER_SHA256``
before they are loaded, so a damaged or swapped file is refused with a message that
says how to restore it.
"""
import hashlib
import io
from pathlib import Path

import torch
import torch.nn as nn

from .data import N_CLASSES
from .device import evaluating, module_device

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "fashion_classifier.pt"
# SHA-256 of the committed weights file; scripts/train_classifier.py --update-checksum rewrites this line.
CLASSIFIER_SHA256 = "b282f226afff434c8d242fde4c5a86e93646bb40569d19704285b6ec1301c1cc"
# Accuracy of those weights on the 10,000 real test images (printed by the training script).
CLASSIFIER_TEST_ACCURACY = 0.9260
TRAIN_COMMAND = "python scripts/train_classifier.py --update-checksum"
FEATURE_DIM = 128
BATCH_SIZE = 1000  # images per classifier call


class ClassifierWeightsError(RuntimeError):
    """The reference classifier's weights file is missing, damaged or of another architecture."""


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


# --- Checked files ------------------------------------------------------------------------------

def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path, sha256, what, error, fix, recorded_in=""):
    """Raise `error` naming `path` and the `fix` if the file is missing or its SHA-256 is not `sha256` (None: any)."""
    if not path.is_file():
        raise error(f"The {what} {path} does not exist.\n{fix}")
    if sha256 is not None:
        found = sha256_of(path)
        if found != sha256:
            raise error(f"The {what} {path} is damaged or not the expected one: its SHA-256 is {found}, "
                        f"expected {sha256}{recorded_in}.\n{fix}")


def state_dict_bytes(model):
    """The bytes of ``torch.save(model.state_dict())``, independent of the file name it is written to."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def device_key(device=None):
    """`device` (default ``cgan_lib.device``) as a torch.device with its CUDA index filled in."""
    if device is None:
        from .device import device
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


# --- Loading ------------------------------------------------------------------------------------

_CLASSIFIERS = {}  # (path, sha256, device) -> the loaded model


def clear_cache():
    """Forget the loaded classifiers (they are loaded again when next asked for)."""
    _CLASSIFIERS.clear()


def load_classifier(device=None, path=None, sha256=CLASSIFIER_SHA256):
    """The reference classifier in eval mode on `device` (default: ``cgan_lib.device``), cached per device.

    `path` defaults to the committed weights; the file's SHA-256 must equal `sha256`
    (pass ``sha256=None`` to skip the check, e.g. for weights you have just trained).
    Raises ClassifierWeightsError, saying what to do, when the file is missing,
    damaged or does not fit the architecture. Do not train the returned model: it is shared.
    """
    device = device_key(device)
    path = Path(path) if path is not None else WEIGHTS_PATH
    key = (str(path.resolve()), sha256, str(device))
    if key in _CLASSIFIERS:
        return _CLASSIFIERS[key]

    fix = (f"To fix it, restore the file that comes with the package (re-install cgan_lib, or "
           f"`git checkout -- cgan_lib/weights/{WEIGHTS_PATH.name}` in the repository), or re-create it "
           f"with `{TRAIN_COMMAND}` (about 4 minutes on a CPU).")
    check_file(path, sha256, "reference classifier's weights file", ClassifierWeightsError, fix)
    with torch.device("meta"):  # no initial weights drawn (from the global RNG) only to be overwritten
        model = FashionClassifier()
    model.to_empty(device="cpu")
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


# --- Using it -----------------------------------------------------------------------------------

def _batched(model, fn, images, batch_size):
    """fn(batch) for batches of `images` moved to `model`'s device; a tensor (or tuple of them) concatenated."""
    device = module_device(model)
    outs = [fn(images[i:i + batch_size].to(device, torch.float32)) for i in range(0, len(images), batch_size)]
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs))
    return torch.cat(outs)


def classifier_predictions(model, images, batch_size=BATCH_SIZE):
    """(features (N, 128), predicted classes (N,)) from `model` (None: the reference classifier)."""
    model = load_classifier() if model is None else model
    with evaluating(model):
        def both(x):
            f = model.features(x)
            return f, model.head(f).argmax(1)
        return _batched(model, both, images, batch_size)


def classifier_accuracy(model, images, labels, batch_size=BATCH_SIZE):
    """Share of `images` that `model` (None: the reference classifier) assigns to `labels`.

    The model is run in eval mode without gradients and left in the mode it was in.
    """
    model = load_classifier() if model is None else model
    with evaluating(model):
        predicted = _batched(model, lambda x: model(x).argmax(1), images, batch_size)
    return (predicted.cpu() == labels.cpu()).double().mean().item()
