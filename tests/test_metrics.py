"""cgan_lib.metrics: the Fréchet distance, the pairwise spread and the accuracy margin, against closed forms."""
import math

import numpy as np
import pytest
import torch

from cgan_lib import metrics


def _random_cov(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_identical_statistics_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(64), _random_cov(rng, 64)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-8)
    features = torch.randn(500, 32, generator=torch.Generator().manual_seed(0)).relu()
    stats = metrics.feature_statistics(features)
    assert metrics.frechet_distance(*stats, *stats) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    v1, v2 = rng.uniform(0.1, 3, 20), rng.uniform(0.1, 3, 20)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert metrics.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # a shift of the mean only
    assert metrics.frechet_distance(mu1, np.diag(v1), mu1 + 0.5, np.diag(v1)) == pytest.approx(20 * 0.25)


def test_frechet_distance_general_case_positive_symmetric_and_correct():
    rng = np.random.default_rng(2)
    d = 16
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    fd12 = metrics.frechet_distance(mu1, s1, mu2, s2)
    fd21 = metrics.frechet_distance(mu2, s2, mu1, s1)
    assert fd12 > 0 and fd12 == pytest.approx(fd21, rel=1e-9)
    # independent computation: the eigenvalues of S1 S2 are real and >= 0; tr sqrt(S1 S2) = sum sqrt(them)
    eig = np.linalg.eigvals(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(eig))
    assert fd12 == pytest.approx(expected, rel=1e-9)
    # torch inputs (float32) work the same
    assert metrics.frechet_distance(*(torch.tensor(a, dtype=torch.float32) for a in (mu1, s1, mu2, s2))) \
        == pytest.approx(fd12, rel=1e-4)


def test_feature_statistics_match_numpy():
    x = np.random.default_rng(3).standard_normal((200, 7))
    mu, sigma = metrics.feature_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(mu.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x, rowvar=False), rtol=1e-10)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shapes do not fit"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.feature_statistics(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.mean_pairwise_distance(torch.zeros(1, 5))


def test_mean_pairwise_distance_by_hand():
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert metrics.mean_pairwise_distance(points) == pytest.approx((5 + 4 + 3) / 3)
    assert metrics.mean_pairwise_distance(torch.ones(10, 3)) == 0


def test_mean_pairwise_distance_does_not_drift_with_the_sample_size():
    """Unbiased: small and large samples of one distribution give the same value on average."""
    draw = torch.Generator().manual_seed(4)
    population = torch.randn(20_000, 16, generator=draw)
    large = metrics.mean_pairwise_distance(population[:4000])
    small = np.mean([metrics.mean_pairwise_distance(population[i:i + 20]) for i in range(0, 20_000, 20)])
    assert small == pytest.approx(large, rel=0.01)
    assert large == pytest.approx(math.sqrt(2 * 16), rel=0.03)  # E|x - y| for N(0, 2 I), 16-d: about sqrt(32)


def test_accuracy_margin_covers_the_true_share_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    for p, n in ((0.5, 100), (0.9, 1000), (0.1, 10_000)):
        shares = rng.binomial(n, p, size=4000) / n
        covered = np.mean([abs(s - p) <= metrics.accuracy_margin(s, n) for s in shares])
        assert 0.92 <= covered <= 0.98, (p, n, covered)
    assert metrics.accuracy_margin(0.5, 100) == pytest.approx(0.098)
    assert metrics.accuracy_margin(0.5, 1000) == pytest.approx(0.031, abs=1e-3)
    assert metrics.accuracy_margin(1.0, 1000) > 0  # never a false "exactly"
