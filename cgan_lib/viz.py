"""Pictures of a conditional generator: class grids, side-by-side comparisons, loss curves, evaluations.

Every ``plot_*`` function returns a matplotlib Figure and, with ``path=...``,
also saves it (PNG by the file's extension, parent folders created).

* In a notebook, make the call the cell's last expression and the figure is
  shown once. Inside a loop, ``display(plot_generator_grid(...))`` shows it.
  The figure is closed in pyplot before it is returned, so pyplot does not
  show it a second time and 200 epochs of plots do not pile up in memory.
* In a terminal, pass ``path="out/epoch_020.png"`` and open the file.

Images are tensors (N, 1, 28, 28) in [-1, 1], as the generator makes them,
ordered class-major: all images of class 0, then all of class 1, and so on.
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint
from .data import CLASS_NAMES
from .sampling import fixed_samples

TILE_INCHES = 0.5  # size of one 28x28 image in the figure
PAD = 2  # pixels of white between images


def _finish(fig, path):
    """Save `fig` to `path` if given, then take it out of pyplot and return it."""
    try:
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return fig


def _montage(images, n_rows, n_per_class):
    """One 2-D array in [0, 1] holding the images as n_rows x n_per_class tiles."""
    x = images.detach().float().cpu()
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"expected images of shape (N, 1, H, W), got {tuple(images.shape)}")
    if len(x) != n_rows * n_per_class:
        raise ValueError(f"expected {n_rows} classes x {n_per_class} per class = {n_rows * n_per_class} "
                         f"images (all of class 0, then class 1, ...), got {len(x)}")
    h, w = x.shape[1:]
    x = ((x + 1) / 2).clamp(0, 1).reshape(n_rows, n_per_class, h, w)
    x = F.pad(x, (0, PAD, 0, PAD), value=1.0)  # white right and bottom of every tile
    grid = x.permute(0, 2, 1, 3).reshape(n_rows * (h + PAD), n_per_class * (w + PAD))
    return F.pad(grid, (PAD, 0, PAD, 0), value=1.0).numpy()  # and along the top and left edges


def _draw_class_grid(ax, grid, class_names, label_rows=True):
    """Draw a montage on `ax`, each row labelled with its class name on the left."""
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    row_height = (grid.shape[0] - PAD) / len(class_names)
    ax.set_yticks(PAD + row_height * np.arange(len(class_names)) + (row_height - PAD) / 2 - 0.5,
                  labels=list(class_names) if label_rows else [])
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_class_grid(images, n_per_class, class_names=CLASS_NAMES, title=None, path=None):
    """One row per class, labelled with its name; `images` (10*n_per_class, 1, 28, 28) class-major."""
    grid = _montage(images, len(class_names), n_per_class)  # before the figure: a bad count leaves none open
    fig, ax = plt.subplots(figsize=(n_per_class * TILE_INCHES + 1.5, len(class_names) * TILE_INCHES + 0.6))
    _draw_class_grid(ax, grid, class_names)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_grid_comparison(images_a, images_b, n_per_class, titles=("A", "B"), path=None,
                         class_names=CLASS_NAMES):
    """Two class grids side by side, e.g. the same noise through the generator at two epochs."""
    grids = [_montage(images, len(class_names), n_per_class) for images in (images_a, images_b)]
    size = (2 * n_per_class * TILE_INCHES + 2, len(class_names) * TILE_INCHES + 0.6)
    fig, axes = plt.subplots(1, 2, figsize=size, layout="constrained")
    for ax, grid, title, label_rows in zip(axes, grids, titles, (True, False)):
        _draw_class_grid(ax, grid, class_names, label_rows)
        ax.set_title(title)
    return _finish(fig, path)


def sample_class_grid(generator, latent_dim, n_per_class=10, seed=0, device=None):
    """`n_per_class` images of every class from fixed noise, class-major, on the CPU.

    ``cgan_lib.sampling.fixed_samples`` without the labels: the same seed gives the same
    noise on any device (the same images the evaluation of that seed sees), the global
    random state is not touched, and the generator runs in eval() mode (modes restored after).
    """
    return fixed_samples(generator, latent_dim, n_per_class, seed, device=device)[0]


def plot_generator_grid(generator, latent_dim, n_per_class=10, seed=0, title=None, path=None):
    """``sample_class_grid`` then ``plot_class_grid``: what the generator makes of every class."""
    images = sample_class_grid(generator, latent_dim, n_per_class, seed)
    return plot_class_grid(images, n_per_class, title=title, path=path)


def compare_checkpoints(generator, checkpoint_a, checkpoint_b, latent_dim, n_per_class=8, titles=None,
                        seed=0, path=None):
    """The same noise and labels through two checkpoints of `generator`, side by side.

    `generator` is the model to load them into; its own weights are put back
    afterwards. Titles default to "epoch N" from the checkpoints, or the file names.
    """
    original = {key: value.clone() for key, value in generator.state_dict().items()}
    images, default_titles = [], []
    try:
        for checkpoint in (checkpoint_a, checkpoint_b):
            saved = load_checkpoint(checkpoint, generator)
            images.append(sample_class_grid(generator, latent_dim, n_per_class, seed))
            epoch = saved.get("epoch")
            default_titles.append(f"epoch {epoch}" if epoch is not None else Path(checkpoint).stem)
    finally:
        generator.load_state_dict(original)
    return plot_grid_comparison(*images, n_per_class, titles or default_titles, path=path)


def _as_float(loss):
    return loss.item() if isinstance(loss, torch.Tensor) else float(loss)


def _trailing_mean(values, window):
    """Mean of the last `window` values at every position (fewer at the start)."""
    sums = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_losses(history, smooth=100, title=None, path=None):
    """D and G loss per iteration: raw values faint, their moving average over `smooth` iterations bold.

    `history` is a list of (d_loss, g_loss) pairs, one per batch.
    """
    losses = np.asarray([(_as_float(d), _as_float(g)) for d, g in history], dtype=float).reshape(-1, 2)
    if len(losses) == 0:
        raise ValueError("history is empty: append (d_loss, g_loss) after every batch, then plot it")
    window = max(1, min(int(smooth or 1), len(losses)))
    steps = np.arange(len(losses))
    marker = "o" if len(losses) == 1 else None  # a single point draws no line

    fig, ax = plt.subplots(figsize=(8, 4))
    for column, name, colour in ((0, "D loss", "tab:blue"), (1, "G loss", "tab:orange")):
        if window > 1:
            ax.plot(steps, losses[:, column], color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(steps, _trailing_mean(losses[:, column], window), color=colour,
                    label=f"{name} (mean of last {window})")
        else:
            ax.plot(steps, losses[:, column], color=colour, marker=marker, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


def plot_report(report, path=None):
    """An EvaluationReport (cgan_lib.evaluate) as a figure: per-class accuracy and diversity ratio.

    Left: the share of each class's images the classifier recognises, with the classifier's
    accuracy on real test images (black marks) and chance (dashed). Right: the diversity
    ratio, with real data's 1.0 and the collapse threshold. Collapsed classes are red.
    """
    x = np.arange(len(report.class_names))
    colors = ["tab:red" if flag else "tab:blue" for flag in report.collapsed]
    chance = 1 / len(report.class_names)
    fig, (ax_acc, ax_div) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    ax_acc.bar(x, report.per_class_accuracy, color=colors, label="generated")
    if report.real_accuracy:
        ax_acc.scatter(x, report.real_accuracy, marker="_", s=400, color="black", zorder=3, label="real test images")
    ax_acc.axhline(chance, color="gray", linestyle="--", label=f"chance ({chance:.0%})")
    ax_acc.set(ylim=(0, 1.3), ylabel="share recognised as the requested class",
               title=f"Conditional accuracy {report.accuracy:.0%}  |  Fréchet distance {report.fd:.1f} "
                     f"(real images: {report.fd_floor:.2f})")
    ax_acc.legend(loc="upper center", ncol=3, fontsize=8)
    ax_div.bar(x, report.diversity_ratio, color=colors)
    ax_div.axhline(1.0, color="black", linewidth=0.8, label="real images (1.0)")
    ax_div.axhline(report.collapse_threshold, color="tab:red", linestyle="--",
                   label=f"collapsed below {report.collapse_threshold}")
    ax_div.set(ylim=(0, max(1.3, max(report.diversity_ratio, default=0) * 1.15)),
               ylabel="diversity (generated / real)", title="Diversity per class (red: collapsed)")
    ax_div.legend(loc="upper center", ncol=2, fontsize=8)
    for ax in (ax_acc, ax_div):
        ax.set_xticks(x, report.class_names, rotation=45, ha="right")
    return _finish(fig, path)
