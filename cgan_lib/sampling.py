"""Fixed-noise samples of every class: the one sampler that the plots and the metrics share.

    images, labels = fixed_samples(generator, latent_dim, n_per_class=8, seed=0)

``labels`` are class-major: all images of class 0, then all of class 1, and so on
(the order of a class grid, one row per class). The noise comes from a private
``torch.Generator`` seeded with `seed`, so the same seed gives the same noise and
labels on any device, and two generators (or two checkpoints of one) are compared on
the same inputs. Randomness the generator draws itself (e.g. Dropout left in eval
mode by a custom layer) is seeded too, and the global random state is restored after.

The generator runs in ``eval()`` mode under ``torch.no_grad()`` on the device of its
parameters; each submodule's train/eval mode is restored after. It must return
images of shape (N, 1, 28, 28); they come back as float32 on the CPU.
"""
import torch

from .data import IMG_SIZE, N_CLASSES
from .device import evaluating, module_device
from .seed import seeded_global_rng

BATCH_SIZE = 500  # images per generator call: bounds the memory of a large evaluation


def class_major_labels(n_per_class, n_classes=N_CLASSES):
    """(n_classes * n_per_class,) int64: 0 repeated n_per_class times, then 1, ..."""
    return torch.arange(n_classes).repeat_interleave(int(n_per_class))


def _check_images(out, n):
    expected = (n, 1, IMG_SIZE, IMG_SIZE)
    shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
    if shape != expected:
        raise ValueError(f"the generator returned images of shape {shape} for a batch of {n}, expected {expected}: "
                         f"reshape its output with img.view(img.size(0), *img_shape)")


def fixed_samples(generator, latent_dim, n_per_class=10, seed=0, device=None, batch_size=BATCH_SIZE):
    """(images (10 * n_per_class, 1, 28, 28) float32 on the CPU, labels (10 * n_per_class,) int64), class-major.

    `device`: where the generator runs when it has no parameters (default: the CPU).
    Raises ValueError when the generator's output has the wrong shape or holds NaN or infinite pixels.
    """
    if int(n_per_class) < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    labels = class_major_labels(n_per_class)
    noise = torch.randn(len(labels), int(latent_dim), generator=torch.Generator().manual_seed(int(seed)))
    run_on = module_device(generator, default=device)
    cuda_devices = [run_on.index if run_on.index is not None else torch.cuda.current_device()] \
        if run_on.type == "cuda" else []
    images = []
    with seeded_global_rng(seed, cuda_devices), evaluating(generator):  # the generator's own draws, if any
        for start in range(0, len(labels), batch_size):
            z, y = noise[start:start + batch_size].to(run_on), labels[start:start + batch_size].to(run_on)
            out = generator(z, y)
            _check_images(out, len(y))
            images.append(out.detach().float().cpu())
    images = torch.cat(images)
    if not torch.isfinite(images).all():
        raise ValueError("the generator returned NaN or infinite pixels (did training diverge?)")
    return images, labels
