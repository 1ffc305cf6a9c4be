"""The models the Network Visualization checks hand to the student's functions, and what correct code computes with them.

    build("classifier")        the lab's classifier, a fresh copy (eval mode, frozen)
    build("classifier_rgb")    the same classifier reading 3-channel images: its first convolution
                               weighs the channels by CHANNEL_WEIGHTS (they sum to 1, so a grey image
                               repeated in 3 channels is classified as the grey image is). The gradient
                               in channel c is CHANNEL_WEIGHTS[c] times the grey image's: max over
                               channels, sum, mean, one channel and max-before-abs all differ.
    build("generator")         the bundled CGAN generator (eval mode, frozen)

The probe builds them where the student's code runs; the judge builds its own copies to compute
the reference results (saliency_of, logits_of, interpolation_of) it compares with.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from cgan_lib.netviz import load_model
from cgan_lib.netviz_generator import bundled_generator

CHANNEL_WEIGHTS = (0.6, 1.2, -0.8)
KINDS = ("classifier", "classifier_rgb", "generator")


def build(kind):
    """A fresh model of `kind` (one of KINDS), on the CPU, in eval mode, its weights frozen."""
    if kind == "classifier":
        return load_model()
    if kind == "classifier_rgb":
        model = load_model()
        grey = model.conv[0]
        rgb = nn.Conv2d(3, grey.out_channels, grey.kernel_size, padding=grey.padding, bias=False)
        weights = torch.tensor(CHANNEL_WEIGHTS).view(1, 3, 1, 1)
        rgb.weight.data.copy_(grey.weight.data * weights)
        model.conv[0] = rgb.requires_grad_(False)
        return model.eval()
    if kind == "generator":
        return bundled_generator()
    raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")


def to_rgb(X):
    """Grey images (N, 1, H, W) as 3-channel ones (N, 3, H, W), the grey repeated."""
    return X.repeat(1, 3, 1, 1)


def logits_of(model, X):
    """The model's scores (N, 10) for X, in eval mode, without gradients."""
    with torch.no_grad():
        return model.eval()(X.float())


def saliency_of(model, X, y, objective="score", reduce="max"):
    """What a saliency map computes, and what known mistakes compute instead: (N, H, W), or (N, C, H, W) for reduce=None.

    objective: "score" (the correct class's score: the lab's definition), "predicted" (the
    predicted class's), "columns" (scores[:, y].sum(): every listed class's score), "all"
    (every class's), "probability" (softmax), "log_probability" (as a cross-entropy loss);
    reduce: "max" of the absolute values over channels (correct), "sum", "mean", "first"
    (channel 0), "max_signed" (max before abs), None (no reduction).
    """
    X = X.detach().float().clone().requires_grad_(True)
    scores = model.eval()(X)
    rows = torch.arange(len(X))
    chosen = {"score": lambda: scores[rows, y],
              "predicted": lambda: scores[rows, scores.argmax(1)],
              "columns": lambda: scores[:, y],
              "all": lambda: scores,
              "probability": lambda: F.softmax(scores, 1)[rows, y],
              "log_probability": lambda: F.log_softmax(scores, 1)[rows, y]}[objective]()
    grad, = torch.autograd.grad(chosen.sum(), X)
    if reduce is None:
        return grad
    return {"max": lambda: grad.abs().amax(1), "sum": lambda: grad.abs().sum(1), "mean": lambda: grad.abs().mean(1),
            "first": lambda: grad[:, 0].abs(), "max_signed": lambda: grad.amax(1).abs()}[reduce]()


def score_gradients(model, x):
    """The gradient of each class's score with respect to one image x (1, C, H, W): (10, C, H, W)."""
    x = x.detach().float().clone().requires_grad_(True)
    scores = model.eval()(x)[0]
    return torch.stack([torch.autograd.grad(score, x, retain_graph=True)[0][0] for score in scores])


def interpolation_of(generator, model, z0, z1, label, steps):
    """What confidence_along_interpolation must return: (images (steps, 1, 28, 28), probabilities (steps,))."""
    t = torch.linspace(0, 1, steps).view(-1, 1)
    z = (1 - t) * z0.view(1, -1) + t * z1.view(1, -1)
    with torch.no_grad():
        images = generator.eval()(z, torch.full((steps,), int(label)))
        return images, F.softmax(model.eval()(images), 1)[:, int(label)]
