"""The numbers behind a generator's evaluation, from classifier features and predictions.

* ``frechet_distance`` between two Gaussians fitted to feature sets (``feature_statistics``):
  the idea of FID, here in the reference classifier's feature space;
* ``mean_pairwise_distance``: how spread out a set of features is (the diversity of a class);
* ``accuracy_margin``: how far a measured share can be from the true one, at a sample size.

Plain functions of tensors or arrays; they compute in float64 on the CPU.
"""
import math

import numpy as np
import torch

Z_95 = 1.96  # a 95% interval is +-1.96 standard errors


def _float64(a):
    return torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a).detach().to("cpu", torch.float64)


def feature_statistics(features):
    """(mean (D,), covariance (D, D)) of (N, D) features, as float64 tensors (unbiased covariance)."""
    features = _float64(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {tuple(features.shape)}")
    mu = features.mean(0)
    centered = features - mu
    return mu, centered.T @ centered / (len(features) - 1)


def _psd_sqrt(matrix):
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``, where the trace term is
    computed as ``tr((S1^(1/2) S2 S1^(1/2))^(1/2))``: both square roots are of symmetric
    PSD matrices, so they come from eigen-decompositions (negative round-off eigenvalues
    clipped to 0). Accepts tensors or arrays; returns a float >= 0.
    """
    mu1, mu2, sigma1, sigma2 = (_float64(a) for a in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shapes do not fit: mu {tuple(mu1.shape)}, {tuple(mu2.shape)}; "
                         f"sigma {tuple(sigma1.shape)}, {tuple(sigma2.shape)}")
    sqrt1 = _psd_sqrt(sigma1)
    middle = sqrt1 @ sigma2 @ sqrt1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    fd = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return max(fd.item(), 0.0)


def mean_pairwise_distance(features):
    """Mean Euclidean distance over all pairs of distinct rows of (N, D) features (float64).

    An unbiased estimate of the expected distance between two independent samples, at any N >= 2.
    """
    features = _float64(features)
    if len(features) < 2:
        raise ValueError("need at least 2 samples for a pairwise distance")
    return torch.nn.functional.pdist(features).mean().item()


def accuracy_margin(share, n):
    """Half-width of the 95% interval of a share measured on `n` independent samples (normal approximation).

    The worst case (share 0.5) bounds it: at most 0.98 / sqrt(n), e.g. 0.10 for 100 samples, 0.03 for 1,000.
    """
    share = min(max(float(share), 0.0), 1.0)
    worst = 0.5 if n < 30 else share  # few samples: the normal approximation is poor, use the bound
    return Z_95 * math.sqrt(max(worst * (1 - worst), 0.25 / n) / n)
