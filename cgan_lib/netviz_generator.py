"""A conditional generator for the Network Visualization lab: yours from the CGAN lab, or a small bundled one.

    generator, source = load_generator()      # your newest CGAN checkpoint if it can be rebuilt, else the bundled one
    generator = bundled_generator()           # the committed generator (cgan_lib/weights/netviz_generator.pt)
    generator = generator_from_state(state)   # the CGAN lab's MLP generator, rebuilt from its weights alone
    candidates = rebuilds(state)              # ... in every version the weights fit (which one is settled by accuracy)

Every generator here is called as in the CGAN lab, `generator(noise, labels)` with noise
(N, 100) and labels (N,), and returns images (N, 1, 28, 28) in [-1, 1]. It comes in eval
mode with its weights frozen (requires_grad False).

A CGAN checkpoint holds weights, not code, so `generator_from_state` rebuilds the
architecture the lab suggests from the weights' names and shapes: `label_embedding`, then
`model`, an nn.Sequential of Linear and BatchNorm1d layers, LeakyReLU(0.2) between them
and Tanh at the end. What the weights do not say (does the noise come before the label
embedding, which BatchNorm eps) is settled by asking the lab's classifier which version
makes recognisable clothes. A checkpoint that fits none of them, or whose images the
classifier does not recognise (an untrained generator), gives way to the bundled one.

The bundled generator is that same architecture, small (100+50 -> 128 -> 256 -> 784), trained
by `python scripts/train_netviz_generator.py --update-checksum`, stored as float16
(about 0.5 MB) and checked against BUNDLED_SHA256 before it is loaded.
"""
import os
from pathlib import Path

import torch
import torch.nn as nn

from .data import IMG_SIZE, N_CLASSES
from .checkpoint import run_checkpoints
from .classifier import classifier_accuracy, load_classifier, sha256_of

LATENT_DIM = 100
BUNDLED_PATH = Path(__file__).resolve().parent / "weights" / "netviz_generator.pt"
# SHA-256 of the committed weights; scripts/train_netviz_generator.py --update-checksum rewrites this line.
BUNDLED_SHA256 = "e9f8df8c0ff84d7d1a431eda5793aabcd2e8c3c8df4efe92e29716bc99fc07bf"
TRAIN_COMMAND = "python scripts/train_netviz_generator.py --update-checksum"
# Where the CGAN lab saves checkpoints: $CGAN_CHECKPOINT_DIR, else checkpoints/ next to its notebook.
CHECKPOINT_DIRS = ("../cgan/checkpoints", "checkpoints")
MIN_ACCURACY = 0.3     # a rebuilt generator whose classes the classifier recognises less often is not used
CHECK_PER_CLASS = 20   # images per class for that check
BATCH_NORM_EPS = (1e-5, 0.8)  # PyTorch's default, and PyTorch-GAN's BatchNorm1d(features, 0.8)


class MLPGenerator(nn.Module):
    """The CGAN lab's generator: [noise | embedding(label)] -> model -> (N, 1, 28, 28)."""

    def __init__(self, layers, n_classes=N_CLASSES, label_dim=50, label_first=False):
        super().__init__()
        self.label_first = label_first
        self.label_embedding = nn.Embedding(n_classes, label_dim)
        self.model = nn.Sequential(*layers)

    def forward(self, noise, labels):
        embedded = self.label_embedding(labels)
        parts = (embedded, noise) if self.label_first else (noise, embedded)
        return self.model(torch.cat(parts, dim=1)).view(len(noise), 1, IMG_SIZE, IMG_SIZE)


def bundled_layers(latent_dim=LATENT_DIM, label_dim=50, hidden=(128, 256)):
    """The bundled generator's layers: Linear + LeakyReLU, then Linear + BatchNorm1d + LeakyReLU, then Linear + Tanh."""
    first, second = hidden
    return [nn.Linear(latent_dim + label_dim, first), nn.LeakyReLU(0.2),
            nn.Linear(first, second), nn.BatchNorm1d(second), nn.LeakyReLU(0.2),
            nn.Linear(second, IMG_SIZE * IMG_SIZE), nn.Tanh()]


def _layers_from_state(state, eps):
    """nn.Sequential layers whose parameters have the names and shapes of `state`'s model.* entries."""
    indices = sorted({int(key.split(".")[1]) for key in state if key.startswith("model.")})
    if not indices:
        raise ValueError("no model.* weights: not the CGAN lab's generator")
    layers = []
    for index in range(indices[-1] + 1):
        weight = state.get(f"model.{index}.weight")
        if f"model.{index}.running_mean" in state or (weight is not None and weight.dim() == 1):
            layers.append(nn.BatchNorm1d(len(weight if weight is not None else state[f"model.{index}.running_mean"]),
                                         eps=eps, affine=weight is not None,
                                         track_running_stats=f"model.{index}.running_mean" in state))
        elif weight is not None and weight.dim() == 2:
            layers.append(nn.Linear(weight.shape[1], weight.shape[0], bias=f"model.{index}.bias" in state))
        elif index - 1 in indices:
            layers.append(nn.LeakyReLU(0.2))  # the activation right after a layer with weights
        else:
            layers.append(nn.Identity())      # e.g. a Dropout after it: does nothing in eval mode
    return layers + [nn.Tanh()]


def generator_from_state(state, label_first=False, eps=1e-5):
    """The CGAN lab's MLP generator with the weights `state` (a state_dict), in eval mode, frozen."""
    embedding = state.get("label_embedding.weight")
    if embedding is None or embedding.dim() != 2:
        raise ValueError("no label_embedding.weight: not the CGAN lab's generator")
    with torch.device("meta"):  # no initial weights drawn (from the global RNG) only to be overwritten
        generator = MLPGenerator(_layers_from_state(state, eps), n_classes=embedding.shape[0],
                                 label_dim=embedding.shape[1], label_first=label_first)
    generator.to_empty(device="cpu")
    generator.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return generator.eval().requires_grad_(False)


def rebuilds(state):
    """Every version of the lab's generator that the weights `state` fit: noise or label embedding first, each BatchNorm eps."""
    return [generator_from_state(state, label_first, eps) for label_first in (False, True) for eps in BATCH_NORM_EPS]


def bundled_generator(path=BUNDLED_PATH, sha256=BUNDLED_SHA256):
    """The committed generator (its file checked against `sha256`), in eval mode, frozen."""
    path = Path(path)
    fix = (f"Restore the file that comes with the package (`git checkout -- cgan_lib/weights/{path.name}`) "
           f"or re-create it with `{TRAIN_COMMAND}`.")
    if not path.is_file():
        raise FileNotFoundError(f"The bundled generator {path} does not exist. {fix}")
    if sha256 is not None and sha256_of(path) != sha256:
        raise ValueError(f"The bundled generator {path} is not the committed one (its SHA-256 is {sha256_of(path)}, "
                         f"expected {sha256}). {fix}")
    return generator_from_state(_weights(torch.load(path, map_location="cpu", weights_only=True)))


def _weights(data):
    """The generator's state_dict in a CGAN checkpoint ({"generator": ...}) or a bare state_dict file."""
    if isinstance(data, dict) and isinstance(data.get("generator"), dict):
        return data["generator"]
    if isinstance(data, dict) and all(torch.is_tensor(v) for v in data.values()):
        return data
    raise ValueError("neither a CGAN checkpoint nor a generator's state_dict")


def find_checkpoint(folders=None):
    """The CGAN lab's last checkpoint, or None.

    In each folder, in order: the newest run folder (``<date>_<time>_<schedule>/``, as the CGAN
    notebook writes them; names sort by time) that holds checkpoints, and its last epoch; else
    checkpoints saved directly in the folder (*.pth, by name: cgan_generator_epoch200.pth sorts last).
    """
    if folders is None:
        folders = [os.environ["CGAN_CHECKPOINT_DIR"]] if os.environ.get("CGAN_CHECKPOINT_DIR") else []
        folders += list(CHECKPOINT_DIRS)
    for folder in map(Path, folders):
        runs = [run for run in sorted(folder.glob("*/")) if run_checkpoints(run)]
        if runs:
            return run_checkpoints(runs[-1])[-1]
        found = sorted(folder.glob("*.pth"))
        if found:
            return found[-1]
    return None


def conditional_accuracy(generator, per_class=CHECK_PER_CLASS, seed=0):
    """Share of the generator's images of each class that the lab's classifier assigns to that class."""
    noise = torch.randn(per_class * N_CLASSES, LATENT_DIM, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(N_CLASSES).repeat(per_class)
    with torch.no_grad():
        images = generator(noise, labels)
    return classifier_accuracy(load_classifier("cpu"), images, labels)


def load_generator(checkpoint=None):
    """(generator, a sentence saying which one): `checkpoint` (default: the newest found) rebuilt, else the bundled one."""
    path = Path(checkpoint) if checkpoint is not None else find_checkpoint()
    if path is None:
        return bundled_generator(), "the bundled generator (no CGAN checkpoint found)"
    try:
        candidates = rebuilds(_weights(torch.load(path, map_location="cpu", weights_only=True)))
    except Exception as error:  # not the lab's architecture, or not a checkpoint at all
        return bundled_generator(), f"the bundled generator ({path} could not be rebuilt: {str(error)[:200]})"
    scored = [(conditional_accuracy(g), g) for g in candidates]
    accuracy, best = max(scored, key=lambda pair: pair[0])
    if accuracy < MIN_ACCURACY:
        return bundled_generator(), (f"the bundled generator (the classifier recognises only {accuracy:.0%} of the "
                                     f"images of {path}: train longer, or it is not the lab's architecture)")
    return best, f"your generator from {path} (the classifier recognises {accuracy:.0%} of its images)"
