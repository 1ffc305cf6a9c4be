"""cgan_lib.evaluate: the generator metrics and the report a student reads.

The "generators" here are look-ups into real images (or noise), not neural networks,
so every expected number is known: real images must score like real data, etc.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cgan_lib import classifier, evaluate, reference_stats
from cgan_lib.data import CLASS_NAMES, N_CLASSES

N = 100  # images per class in the generator tests: fast, and enough for clear-cut numbers


@pytest.fixture(scope="module")
def pool(test_tensors):
    """The first 1,000 real test images of every class: (10, 1000, 1, 28, 28)."""
    images, labels = test_tensors
    return torch.stack([images[labels == c][:1000] for c in range(N_CLASSES)])


def _index(z, k):
    """A pseudo-random index in [0, k) from each noise vector (different noise -> different image)."""
    return ((z[:, 0] * 1e4).abs().long() + (z[:, 1] * 1e4).abs().long() * 7919).cpu() % k


def lookup_generator(pool):
    """G(z, y): a real test image of class y, chosen by z."""
    return lambda z, y: pool[y.cpu(), _index(z, pool.shape[1])]


def blurred(images, sd):
    """A Gaussian blur of `sd` pixels."""
    k = torch.arange(-4, 5, dtype=torch.float32)
    g = torch.exp(-k ** 2 / (2 * sd * sd))
    g = g / g.sum()
    x = F.conv2d(F.pad(images, (4, 4, 0, 0), mode="replicate"), g.view(1, 1, 1, 9))
    return F.conv2d(F.pad(x, (0, 0, 4, 4), mode="replicate"), g.view(1, 1, 9, 1))


def evaluate_cpu(generator, **kwargs):
    kwargs = {"latent_dim": 8, "n_per_class": N, "seed": 0, "device": "cpu", **kwargs}
    return evaluate.evaluate_generator(generator, **kwargs)


# --- Generators with known answers --------------------------------------------------------------

def test_real_images_score_like_real_data(pool):
    report = evaluate_cpu(lookup_generator(pool))
    assert report.accuracy >= 0.88
    assert min(report.per_class_accuracy) >= 0.6  # Shirt is the hardest class, ~75% for real images
    assert report.fd_floor == pytest.approx(reference_stats.fd_floor(N, "cpu"))
    assert 0 < report.fd < 2 * report.fd_floor
    assert report.fd_floor < 1.0
    assert not any(report.collapsed) and report.collapsed_classes == []
    assert all(0.8 < r < 1.25 for r in report.diversity_ratio)
    # the reference numbers: real test images per class, as the classifier's overall accuracy says
    assert np.mean(report.real_accuracy) == pytest.approx(classifier.CLASSIFIER_TEST_ACCURACY, abs=1e-3)


def test_noise_gets_chance_accuracy_and_a_large_fd():
    def noise_generator(z, y):
        g = torch.Generator().manual_seed(int(z[0, 0].abs() * 1e6))
        return torch.rand(len(y), 1, 28, 28, generator=g) * 2 - 1
    report = evaluate_cpu(noise_generator)
    assert report.accuracy < 0.25
    assert report.fd > 50 * report.fd_floor and report.fd > 5


def test_a_generator_that_ignores_its_noise_is_flagged_collapsed(pool):
    report = evaluate_cpu(lambda z, y: pool[y.cpu(), 0])
    assert report.accuracy > 0.9  # every image is a real, recognisable one...
    assert all(report.collapsed)  # ...but always the same one
    assert max(report.diversity_ratio) < 0.05
    assert report.collapsed_classes == list(CLASS_NAMES)
    assert report.fd > 10 * report.fd_floor


def test_collapse_of_some_classes_only(pool):
    def half_collapsed(z, y):
        idx = _index(z, pool.shape[1])
        idx[y.cpu() < 3] = 0  # classes 0, 1, 2 always show the same item
        return pool[y.cpu(), idx]
    report = evaluate_cpu(half_collapsed)
    assert report.collapsed == [True] * 3 + [False] * 7


@pytest.mark.parametrize("sd", [1.0, 2.0])
def test_blurred_but_varied_images_are_not_called_collapsed(pool, sd):
    """What a generator early in training makes: fuzzy images. Poor, but not a collapse."""
    report = evaluate_cpu(lambda z, y: blurred(lookup_generator(pool)(z, y), sd))
    assert not any(report.collapsed), report.diversity_ratio
    assert report.accuracy < 0.85 and report.fd > 10 * report.fd_floor  # the other two numbers see the blur


@pytest.mark.parametrize("n_per_class", [20, 100, 1000])
def test_the_diversity_ratio_does_not_drift_with_the_sample_size(pool, n_per_class):
    """Real images score about 1 and two items per class about 0.5 at every sample size the lab uses."""
    real = evaluate_cpu(lookup_generator(pool), n_per_class=n_per_class).diversity_ratio
    two_items = evaluate_cpu(lambda z, y: pool[y.cpu(), _index(z, 2)], n_per_class=n_per_class).diversity_ratio
    spread = 0.3 if n_per_class == 20 else 0.12
    assert all(abs(r - 1) < spread for r in real), real
    assert abs(np.mean(two_items) - 0.5) < 0.1 and max(two_items) < 1, two_items


def test_a_generator_that_ignores_labels_gets_low_accuracy(pool):
    def ignores_labels(z, y):
        flat = pool.reshape(-1, 1, 28, 28)
        return flat[_index(z, len(flat))]
    report = evaluate_cpu(ignores_labels)
    assert report.accuracy < 0.25
    assert report.fd < 3 * report.fd_floor  # real images: the FD alone cannot see the missing conditioning


# --- Calling convention, modes, random state ----------------------------------------------------

class TinyGenerator(nn.Module):
    """An untrained stand-in with BatchNorm and Dropout that records how it was called."""

    def __init__(self, latent_dim):
        super().__init__()
        self.embed = nn.Embedding(N_CLASSES, latent_dim)
        self.net = nn.Sequential(nn.Linear(latent_dim, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(64, 784), nn.Tanh())
        self.calls = []

    def forward(self, z, labels):
        self.calls.append((z.clone(), labels.clone(), self.training, self.net[3].training,
                           torch.is_grad_enabled()))
        torch.randn(3)  # draws from the global generator, which evaluate must leave as it was
        return self.net(z * self.embed(labels)).view(-1, 1, 28, 28)


def test_evaluate_runs_in_eval_mode_and_restores_modes_and_rng():
    latent_dim = 16
    G = TinyGenerator(latent_dim).train()
    G.embed.eval()  # a submodule in another mode keeps it
    running_mean = G.net[1].running_mean.clone()
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    np_before = np.random.get_state()[1].copy()

    report = evaluate_cpu(G, latent_dim=latent_dim, n_per_class=20, seed=5)

    assert torch.equal(torch.get_rng_state(), rng_before)
    assert np.array_equal(np.random.get_state()[1], np_before)
    assert G.training and G.net.training and G.net[3].training and not G.embed.training
    assert torch.equal(G.net[1].running_mean, running_mean)  # BatchNorm did not update its statistics
    assert all(not training and not dropout and not grad for _, _, training, dropout, grad in G.calls)
    z = torch.cat([c[0] for c in G.calls])
    labels = torch.cat([c[1] for c in G.calls])
    assert z.shape == (20 * N_CLASSES, latent_dim) and labels.dtype == torch.int64
    assert labels.tolist() == [c for c in range(N_CLASSES) for _ in range(20)]  # the class-major order of a grid
    assert abs(z.mean().item()) < 0.1 and 0.9 < z.std().item() < 1.1  # N(0, 1) noise

    # same seed -> the same noise and the same report; another seed -> other noise
    G.calls.clear()
    again = evaluate_cpu(G, latent_dim=latent_dim, n_per_class=20, seed=5)
    assert torch.equal(torch.cat([c[0] for c in G.calls]), z)
    assert again.as_dict() == report.as_dict()
    G.calls.clear()
    evaluate_cpu(G, latent_dim=latent_dim, n_per_class=20, seed=6)
    assert not torch.equal(torch.cat([c[0] for c in G.calls]), z)


def test_evaluation_sees_the_images_of_the_grid_with_the_same_seed():
    """One sampler for plots and metrics: the images in a grid are the first ones the evaluation scores."""
    from cgan_lib.viz import sample_class_grid

    G = TinyGenerator(16)
    evaluate_cpu(G, latent_dim=16, n_per_class=12, seed=3)
    z_evaluated = torch.cat([c[0] for c in G.calls])
    G.calls.clear()
    sample_class_grid(G, 16, n_per_class=12, seed=3)
    assert torch.equal(torch.cat([c[0] for c in G.calls]), z_evaluated)


def test_bad_generator_outputs_are_explained(pool):
    with pytest.raises(ValueError, match=r"shape \(500, 3, 28, 28\) for a batch of 500, expected \(500, 1, 28, 28\)"):
        evaluate_cpu(lambda z, y: torch.zeros(len(y), 3, 28, 28), n_per_class=N)
    with pytest.raises(ValueError, match="img.view"):
        evaluate_cpu(lambda z, y: lookup_generator(pool)(z, y).reshape(len(y), -1))  # flat (N, 784)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_cpu(lambda z, y: torch.full((len(y), 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="at least 10"):
        evaluate_cpu(lookup_generator(pool), n_per_class=5)


# --- The report ---------------------------------------------------------------------------------

def test_report_dict_and_text(pool):
    def shirts_collapsed(z, y):
        idx = _index(z, pool.shape[1])
        idx[y.cpu() == 6] = 0
        return pool[y.cpu(), idx]
    report = evaluate_cpu(shirts_collapsed)

    d = report.as_dict()
    json.dumps(d)  # plain numbers, lists and strings
    assert d["n_per_class"] == N and d["collapsed_classes"] == ["Shirt"]
    assert len(d["per_class_accuracy"]) == len(d["diversity_ratio"]) == len(d["collapsed"]) == N_CLASSES
    assert d["accuracy"] == pytest.approx(np.mean(d["per_class_accuracy"]))
    assert report.fd_ratio == pytest.approx(report.fd / report.fd_floor)

    text = str(report)
    assert all(name in text for name in CLASS_NAMES)
    assert "Frechet" not in text and "Fréchet distance" in text
    assert 0.01 < report.accuracy_margin < 0.02  # 1,000 images at 95%: a 95% interval of about +-1.4 points
    assert f"{report.accuracy:.0%} ±1" in text and "real test images get 93%" in text and "chance is 10%" in text
    assert f"{report.fd:.1f}" in text and f"real images get {report.fd_floor:.2f} with as many images" in text
    assert "higher is better" in text and "lower is better" in text
    assert "collapsed classes     Shirt" in text
    assert [line.split()[1] for line in text.splitlines() if line.endswith("collapsed")] == ["Shirt"]
    assert "±10 points per class at 100 images" in text  # the per-class accuracies' precision is stated
    # numbers are printed only to the precision the sample size supports: whole percents, one decimal for
    # the diversity ratio at 100 images per class
    shirt_line = next(line for line in text.splitlines() if line.startswith("  6 Shirt"))
    assert shirt_line.split()[2].endswith("%") and "." not in shirt_line.split()[2]
    assert len(shirt_line.split()[4].split(".")[1]) == 1


def test_report_text_at_1000_per_class_is_more_precise(pool):
    text = str(evaluate_cpu(lookup_generator(pool), n_per_class=1000))
    assert "±3 points per class at 1,000 images" in text
    assert "collapsed classes     none" in text
    trouser_line = next(line for line in text.splitlines() if line.startswith("  1 Trouser"))
    assert len(trouser_line.split()[4].split(".")[1]) == 2


def test_report_plot_is_drawn_by_viz(pool, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = evaluate_cpu(lookup_generator(pool))
    figures_before = plt.get_fignums()
    fig = report.plot(tmp_path / "report.png")
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    assert plt.get_fignums() == figures_before  # closed in pyplot: a notebook shows it once
    assert (tmp_path / "report.png").stat().st_size > 10_000
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == pytest.approx(report.per_class_accuracy)
    assert any(line.get_ydata()[0] == pytest.approx(0.1) for line in fig.axes[0].lines)  # chance line
    assert [bar.get_height() for bar in fig.axes[1].patches] == pytest.approx(report.diversity_ratio)
