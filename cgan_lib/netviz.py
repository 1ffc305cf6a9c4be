"""Helpers for the Network Visualization lab: the classifier to look into, images to look at,
and the two image operations the class-visualisation loop uses.

    model = load_model()                    # a fresh copy of the lab's Fashion-MNIST classifier (eval mode, frozen)
    X, y = sample_images(per_class=1)       # real test images (N, 1, 28, 28) in [-1, 1] and their labels
    classes, probabilities = predict(model, X)
    X2 = jitter(X, ox, oy)                  # X shifted ox pixels right and oy down, wrapping around
    blur_image(X, sigma=0.5)                # X blurred in place with a Gaussian of `sigma` pixels

Everything runs on the CPU: the classifier is small (164k weights), one gradient step on one
image takes about a millisecond there, less than moving it to a GPU would.
"""
import copy

import torch
import torch.nn.functional as F

from .data import load_tensors, subset_per_class
from .classifier import load_classifier

IMAGE_RANGE = (-1.0, 1.0)   # pixel values of the lab's images: black background -1, white 1
BLUR_TRUNCATE = 4.0         # the blur kernel reaches this many sigmas (as scipy.ndimage.gaussian_filter)


def load_model():
    """A private copy of the lab's classifier (92.6% on the test set): eval mode, weights frozen, on the CPU.

    It is yours to experiment with: changing it does not change the copy the tests use.
    """
    return copy.deepcopy(load_classifier("cpu")).eval().requires_grad_(False)


def sample_images(per_class=1, seed=0, split="test"):
    """`per_class` real images of every class, in class order: (images (N, 1, 28, 28), labels (N,))."""
    images, labels = load_tensors(split)
    return subset_per_class(images, labels, per_class, seed=seed)


def predict(model, X):
    """(predicted classes (N,), softmax probabilities (N, 10)) of `model` on X, without gradients."""
    with torch.no_grad():
        probabilities = F.softmax(model(X), dim=1)
    return probabilities.argmax(dim=1), probabilities


def jitter(X, ox, oy):
    """X (N, C, H, W) shifted by `ox` pixels to the right and `oy` down; what leaves one side comes back on the other.

    jitter(jitter(X, ox, oy), -ox, -oy) is X again.
    """
    return torch.roll(X, shifts=(oy, ox), dims=(-2, -1))


def blur_image(X, sigma=0.5):
    """Blur X (N, C, H, W) in place with a Gaussian of `sigma` pixels (each channel on its own); returns X."""
    radius = int(BLUR_TRUNCATE * sigma + 0.5)
    if radius < 1:
        return X
    offsets = torch.arange(-radius, radius + 1, dtype=X.dtype, device=X.device)
    kernel = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    channels = X.shape[1]
    with torch.no_grad():
        rows = F.conv2d(F.pad(X, (radius, radius, 0, 0), mode="reflect"),
                        kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
        blurred = F.conv2d(F.pad(rows, (0, 0, radius, radius), mode="reflect"),
                           kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)
        X.copy_(blurred)
    return X

