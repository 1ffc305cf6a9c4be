"""Checks of generate_latent_points, judged from the numbers it returns.

    check_latent_points(generate_latent_points, opt)   shapes, dtypes, N(0, 1) noise, every class

`latent_calls` and `expect_latent` serve the hidden tests too.
"""
import torch

from cgan_lib.checks.core import code_error, fail, ok, probe


def latent_calls(generate_latent_points, argument_sets, seed=0):
    """[(z, labels)] for each (latent_dim, n_samples, n_classes), in one run of the function (TestFailed on errors)."""
    calls = [{"args": list(arguments)} for arguments in argument_sets]
    run = probe("function_run", generate_latent_points, calls=calls, seed=seed)
    pairs = []
    for arguments, result in zip(argument_sets, run["results"]):
        if "error" in result:
            fail(code_error(result["error"], f"generate_latent_points{tuple(arguments)}"), run)
        value = result["value"]
        items = value.get("items") if isinstance(value, dict) else None
        if not items or len(items) != 2 or not all(torch.is_tensor(v) for v in items):
            shown = value.get("repr") or value.get("sequence") if isinstance(value, dict) else type(value).__name__
            fail(f"generate_latent_points must return two tensors (z, labels); generate_latent_points"
                 f"{tuple(arguments)} returned {shown}. Keep the template's `return z, labels`.")
        pairs.append(tuple(items))
    return pairs


def expect_latent(z, labels, latent_dim, n_samples, n_classes):
    """Shapes, dtypes and ranges of one call's result."""
    call = f"generate_latent_points({latent_dim}, {n_samples}, {n_classes})"
    if tuple(z.shape) != (n_samples, latent_dim) or tuple(labels.shape) != (n_samples,):
        fail(f"{call} returned z of shape {tuple(z.shape)} and labels of shape {tuple(labels.shape)}, expected "
             f"{(n_samples, latent_dim)} and {(n_samples,)}: use the arguments latent_dim, n_samples and "
             f"n_classes, not opt.")
    if z.dtype != torch.float32:
        fail(f"{call}: z has dtype {z.dtype}, expected torch.float32.")
    if labels.dtype != torch.int64:
        fail(f"{call}: labels have dtype {labels.dtype}, expected torch.int64 (long), which nn.Embedding needs.")
    if len(labels) and (labels.min() < 0 or labels.max() > n_classes - 1):
        fail(f"{call}: labels range over {labels.min()}..{labels.max()}, expected 0..{n_classes - 1}: "
             f"torch.randint(0, n_classes, ...) (the upper bound is excluded).")


def expect_standard_normal(z, what="z", tolerance=0.02):
    """Mean 0, standard deviation 1, kurtosis 3 (a uniform distribution has 1.8)."""
    if z.min() >= 0:
        fail(f"{what} has no negative values: draw it from the standard normal distribution with torch.randn, "
             f"not the uniform one (torch.rand).")
    mean, std = z.double().mean().item(), z.double().std().item()
    if abs(mean) > tolerance or abs(std - 1) > tolerance:
        fail(f"{what} has mean {mean:.3f} and standard deviation {std:.3f}; N(0, 1) has 0 and 1. Use torch.randn.")
    kurtosis = (((z.double() - mean) / std) ** 4).mean().item()
    if abs(kurtosis - 3) > 10 * tolerance:
        fail(f"{what} has kurtosis {kurtosis:.2f}; a normal distribution has 3 (a uniform one 1.8). Use torch.randn.")


def check_latent_points(generate_latent_points, opt, seed=0):
    """The visible generate_latent_points tests."""
    small, large = latent_calls(generate_latent_points, [(opt.latent_dim, 5, opt.n_classes),
                                                         (opt.latent_dim, 20000, opt.n_classes)], seed=seed)
    expect_latent(*small, opt.latent_dim, 5, opt.n_classes)
    expect_latent(*large, opt.latent_dim, 20000, opt.n_classes)
    z, labels = large
    expect_standard_normal(z)
    missing = sorted(set(range(opt.n_classes)) - set(labels.unique().tolist()))
    if missing:
        fail(f"20,000 labels never contain the classes {missing}; expected every class 0..{opt.n_classes - 1}.")
    ok("All visible generate_latent_points tests passed.")
