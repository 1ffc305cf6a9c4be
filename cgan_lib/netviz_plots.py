"""Figures of the Network Visualization lab: every result next to the image it came from.

    show_saliency(X, saliency, titles)              the images, and their saliency maps below them
    show_fooling(X, X_fooling, titles, fooled_as)   originals, fooling images, and the change magnified
    show_images(images, titles, row_label)          a row of images, e.g. one per class made from noise
    show_interpolation(images, probabilities, saliency=None, title=None)
                                                    images along a latent path, their saliency, and the
                                                    classifier's probability of the class along the path

Images are tensors (N, C, H, W) in [-1, 1] (C = 1 or 3; 3 channels are shown as grey, their mean).
Each function returns a matplotlib Figure, closed in pyplot (make it a cell's last expression to
show it once); `path=...` also saves it.
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

TILE_INCHES = 1.1   # width of one image in a figure


def _finish(fig, path):
    try:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return fig


def _grey(image):
    """One image (C, H, W) or (H, W) in [-1, 1] as a 2-D array in [0, 1]."""
    x = image.detach().float().cpu()
    if x.dim() == 3:
        x = x.mean(0)
    return ((x + 1) / 2).clamp(0, 1).numpy()


def _rows(n_rows, n_columns, row_labels):
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(n_columns * TILE_INCHES + 0.8, n_rows * TILE_INCHES + 0.4),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, label in zip(axes[:, 0], row_labels):
        ax.set_ylabel(label)
    return fig, axes


def show_saliency(X, saliency, titles=None, path=None):
    """Images (top row) and their saliency maps (bottom row, brighter: a larger gradient)."""
    fig, axes = _rows(2, len(X), ["image", "saliency"])
    for i, (ax_image, ax_map) in enumerate(zip(axes[0], axes[1])):
        ax_image.imshow(_grey(X[i]), cmap="gray", vmin=0, vmax=1)
        ax_map.imshow(saliency[i].detach().cpu().numpy(), cmap="hot")
        if titles is not None:
            ax_image.set_title(titles[i], fontsize=8)
    return _finish(fig, path)


def show_fooling(X, X_fooling, titles=None, fooled_as=None, magnify=5, path=None):
    """Originals, fooling images (titled with what the model now says), and the change times `magnify`."""
    fig, axes = _rows(3, len(X), ["original", "fooling", f"change x{magnify}"])
    for i in range(len(X)):
        change = (X_fooling[i] - X[i]).detach().float().cpu()
        change = change.mean(0) if change.dim() == 3 else change
        axes[0, i].imshow(_grey(X[i]), cmap="gray", vmin=0, vmax=1)
        axes[1, i].imshow(_grey(X_fooling[i]), cmap="gray", vmin=0, vmax=1)
        axes[2, i].imshow(np.clip(magnify * change.numpy(), -1, 1), cmap="seismic", vmin=-1, vmax=1)
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=8)
        if fooled_as is not None:
            axes[1, i].set_title(fooled_as[i], fontsize=8)
    return _finish(fig, path)


def show_images(images, titles=None, row_label="", path=None):
    """One row of images, each with its title (e.g. its class and the classifier's probability)."""
    fig, axes = _rows(1, len(images), [row_label])
    for i, ax in enumerate(axes[0]):
        ax.imshow(_grey(images[i]), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return _finish(fig, path)


def show_interpolation(images, probabilities, saliency=None, title=None, path=None):
    """The images along a latent path, their saliency maps, and the probability of the class at each step."""
    n = len(images)
    rows = 2 if saliency is None else 3
    fig = plt.figure(figsize=(n * TILE_INCHES + 0.8, rows * TILE_INCHES + 1.2), layout="constrained")
    grid = fig.add_gridspec(rows, n, height_ratios=[1] * (rows - 1) + [1.4])
    t = np.linspace(0, 1, n)
    for i in range(n):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(_grey(images[i]), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"t={t[i]:.2f}", fontsize=8)
        if saliency is not None:
            ax = fig.add_subplot(grid[1, i])
            ax.imshow(saliency[i].detach().cpu().numpy(), cmap="hot")
            ax.set_xticks([])
            ax.set_yticks([])
    curve = fig.add_subplot(grid[rows - 1, :])
    curve.plot(t, probabilities.detach().cpu().numpy(), marker="o")
    curve.set_ylim(0, 1.02)
    curve.set_xlabel("t: from z0 (0) to z1 (1)")
    curve.set_ylabel("probability")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)
