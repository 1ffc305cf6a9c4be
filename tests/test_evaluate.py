"""cgan_lib.evaluate: the reference classifier, its checked weights, and the generator metrics.

The "generators" here are look-ups into real images (or noise), not neural networks,
so every expected number is known: real images must score like real data, etc.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

from cgan_lib import data, evaluate
from cgan_lib.data import CLASS_NAMES, N_CLASSES, load_tensors
from cgan_lib.evaluate import ClassifierWeightsError, ReferenceStatsError

N = 100  # images per class in the generator tests: fast, and enough for clear-cut numbers


@pytest.fixture(scope="module")
def test_set():
    return load_tensors("test")


@pytest.fixture(scope="module")
def pool(test_set):
    """The first 1,000 real test images of every class: (10, 1000, 1, 28, 28)."""
    images, labels = test_set
    return torch.stack([images[labels == c][:1000] for c in range(N_CLASSES)])


@pytest.fixture(scope="module")
def classifier():
    return evaluate.load_classifier("cpu")


def _index(z, k):
    """A pseudo-random index in [0, k) from each noise vector (different noise -> different image)."""
    return ((z[:, 0] * 1e4).abs().long() + (z[:, 1] * 1e4).abs().long() * 7919).cpu() % k


def lookup_generator(pool):
    """G(z, y): a real test image of class y, chosen by z."""
    return lambda z, y: pool[y.cpu(), _index(z, pool.shape[1])]


def evaluate_cpu(generator, **kwargs):
    kwargs = {"latent_dim": 8, "n_per_class": N, "seed": 0, "device": "cpu", **kwargs}
    return evaluate.evaluate_generator(generator, **kwargs)


# --- The classifier and its weights -------------------------------------------------------------

def test_committed_weights_reach_the_stated_accuracy(classifier, test_set):
    images, labels = test_set
    accuracy = evaluate.classifier_accuracy(classifier, images, labels)
    assert accuracy >= 0.91
    assert accuracy == pytest.approx(evaluate.CLASSIFIER_TEST_ACCURACY, abs=0.002)
    assert evaluate.sha256_of(evaluate.WEIGHTS_PATH) == evaluate.CLASSIFIER_SHA256
    assert evaluate.WEIGHTS_PATH.stat().st_size < 1_000_000


def test_classifier_shapes_cache_and_mode(classifier, test_set):
    assert evaluate.load_classifier("cpu") is classifier  # cached per device
    assert not classifier.training
    assert not any(p.requires_grad for p in classifier.parameters())
    x = test_set[0][:5]
    features = classifier.features(x)
    assert features.shape == (5, evaluate.FEATURE_DIM) and (features >= 0).all()
    assert classifier(x).shape == (5, N_CLASSES)
    torch.testing.assert_close(classifier.head(features), classifier(x))


def test_classifier_accuracy_restores_train_mode(test_set):
    model = evaluate.FashionClassifier()
    model.load_state_dict(evaluate.load_classifier("cpu").state_dict())
    model.train()
    images, labels = test_set
    accuracy = evaluate.classifier_accuracy(model, images[:500], labels[:500])
    assert model.training and all(m.training for m in model.modules())
    assert accuracy > 0.85  # eval mode was used: Dropout off, BatchNorm running statistics
    assert evaluate.classifier_accuracy(model, images[:500], (labels[:500] + 1) % N_CLASSES) < 0.1


def test_corrupt_weights_file_is_rejected_naming_the_file(tmp_path):
    copy = tmp_path / "fashion_classifier.pt"
    shutil.copy(evaluate.WEIGHTS_PATH, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one damaged byte inside the tensor data
    copy.write_bytes(bytes(data))
    with pytest.raises(ClassifierWeightsError) as err:
        evaluate.load_classifier("cpu", path=copy)
    message = str(err.value)
    assert str(copy) in message and "SHA-256" in message and evaluate.CLASSIFIER_SHA256 in message
    assert "scripts/train_classifier.py" in message and "re-install" in message


def test_intact_copy_loads(tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copy(evaluate.WEIGHTS_PATH, copy)
    model = evaluate.load_classifier("cpu", path=copy)
    for a, b in zip(model.state_dict().values(), evaluate.load_classifier("cpu").state_dict().values()):
        assert torch.equal(a, b)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nowhere" / "fashion_classifier.pt"
    with pytest.raises(ClassifierWeightsError, match="does not exist") as err:
        evaluate.load_classifier("cpu", path=missing)
    assert str(missing) in str(err.value) and "scripts/train_classifier.py" in str(err.value)


def test_weights_of_another_architecture(tmp_path):
    other = tmp_path / "other.pt"
    torch.save(evaluate.FashionClassifier(channels=(8, 16, 32)).state_dict(), other)
    with pytest.raises(ClassifierWeightsError, match="could not be loaded") as err:
        evaluate.load_classifier("cpu", path=other, sha256=evaluate.sha256_of(other))
    assert str(other) in str(err.value) and "size mismatch" in str(err.value)
    # ...and with its checksum expected, it is already refused for being another file
    with pytest.raises(ClassifierWeightsError, match="SHA-256"):
        evaluate.load_classifier("cpu", path=other)


@pytest.mark.parametrize("content", ["not a state_dict", "garbage"])
def test_unloadable_files_give_the_clear_error(tmp_path, content):
    bad = tmp_path / "bad.pt"
    if content == "garbage":
        bad.write_bytes(b"this is not a zip archive")
    else:
        torch.save(torch.zeros(3), bad)
    with pytest.raises(ClassifierWeightsError, match="could not be loaded") as err:
        evaluate.load_classifier("cpu", path=bad, sha256=None)
    assert str(bad) in str(err.value)


# --- Frechet distance ---------------------------------------------------------------------------

def _random_cov(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_identical_statistics_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(64), _random_cov(rng, 64)
    assert evaluate.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-8)
    features = torch.randn(500, 32, generator=torch.Generator().manual_seed(0)).relu()
    stats = evaluate.feature_statistics(features)
    assert evaluate.frechet_distance(*stats, *stats) == pytest.approx(0, abs=1e-8)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    v1, v2 = rng.uniform(0.1, 3, 20), rng.uniform(0.1, 3, 20)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert evaluate.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert evaluate.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # a shift of the mean only
    assert evaluate.frechet_distance(mu1, np.diag(v1), mu1 + 0.5, np.diag(v1)) == pytest.approx(20 * 0.25)


def test_frechet_distance_general_case_positive_symmetric_and_correct():
    rng = np.random.default_rng(2)
    d = 16
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
    fd12 = evaluate.frechet_distance(mu1, s1, mu2, s2)
    fd21 = evaluate.frechet_distance(mu2, s2, mu1, s1)
    assert fd12 > 0 and fd12 == pytest.approx(fd21, rel=1e-9)
    # independent computation: the eigenvalues of S1 S2 are real and >= 0; tr sqrt(S1 S2) = sum sqrt(them)
    eig = np.linalg.eigvals(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(eig))
    assert fd12 == pytest.approx(expected, rel=1e-9)
    # torch inputs (float32) work the same
    assert evaluate.frechet_distance(*(torch.tensor(a, dtype=torch.float32) for a in (mu1, s1, mu2, s2))) \
        == pytest.approx(fd12, rel=1e-4)


def test_feature_statistics_match_numpy():
    x = np.random.default_rng(3).standard_normal((200, 7))
    mu, sigma = evaluate.feature_statistics(torch.from_numpy(x))
    np.testing.assert_allclose(mu.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x, rowvar=False), rtol=1e-10)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        evaluate.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# --- Generators with known answers --------------------------------------------------------------

def test_real_images_score_like_real_data(pool):
    report = evaluate_cpu(lookup_generator(pool))
    assert report.accuracy >= 0.88
    assert min(report.per_class_accuracy) >= 0.6  # Shirt is the hardest class, ~75% for real images
    assert report.fd_floor == pytest.approx(evaluate.fd_floor(N, "cpu"))
    assert 0 < report.fd < 2 * report.fd_floor
    assert report.fd_floor < 1.0
    assert not any(report.collapsed) and report.collapsed_classes == []
    assert all(0.8 < r < 1.25 for r in report.diversity_ratio)
    # the reference numbers: real test images per class, as the classifier's overall accuracy says
    assert np.mean(report.real_accuracy) == pytest.approx(evaluate.CLASSIFIER_TEST_ACCURACY, abs=1e-3)


def test_fd_floor_is_smaller_with_more_samples():
    assert 0 < evaluate.fd_floor(1000, "cpu") < evaluate.fd_floor(100, "cpu") < 1.0
    assert evaluate.fd_floor(5000, "cpu") == evaluate.fd_floor(1000, "cpu")  # at most 10,000 images


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
    assert torch.bincount(labels, minlength=N_CLASSES).tolist() == [20] * N_CLASSES
    assert abs(z.mean().item()) < 0.1 and 0.9 < z.std().item() < 1.1  # N(0, 1) noise

    # same seed -> the same noise and the same report; another seed -> other noise
    G.calls.clear()
    again = evaluate_cpu(G, latent_dim=latent_dim, n_per_class=20, seed=5)
    assert torch.equal(torch.cat([c[0] for c in G.calls]), z)
    assert again.as_dict() == report.as_dict()
    G.calls.clear()
    evaluate_cpu(G, latent_dim=latent_dim, n_per_class=20, seed=6)
    assert not torch.equal(torch.cat([c[0] for c in G.calls]), z)


def test_bad_generator_outputs_are_explained(pool):
    with pytest.raises(ValueError, match="expected"):
        evaluate_cpu(lambda z, y: torch.zeros(len(y), 3, 28, 28))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_cpu(lambda z, y: torch.full((len(y), 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_cpu(lookup_generator(pool), n_per_class=1)
    # flat (N, 784) outputs are accepted
    flat = evaluate_cpu(lambda z, y: lookup_generator(pool)(z, y).reshape(len(y), -1))
    assert flat.as_dict() == evaluate_cpu(lookup_generator(pool)).as_dict()


# --- The report ---------------------------------------------------------------------------------

def test_report_dict_text_and_plot(pool, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def half_collapsed(z, y):
        idx = _index(z, pool.shape[1])
        idx[y.cpu() == 6] = 0
        return pool[y.cpu(), idx]
    report = evaluate_cpu(half_collapsed)

    d = report.as_dict()
    json.dumps(d)  # plain numbers, lists and strings
    assert d["n_per_class"] == N and d["collapsed_classes"] == ["Shirt"]
    assert len(d["per_class_accuracy"]) == len(d["diversity_ratio"]) == len(d["collapsed"]) == N_CLASSES
    assert d["accuracy"] == pytest.approx(np.mean(d["per_class_accuracy"]))
    assert report.fd_ratio == pytest.approx(report.fd / report.fd_floor)

    text = str(report)
    assert all(name in text for name in CLASS_NAMES)
    assert f"{report.accuracy:.1%}" in text and f"{report.fd:.2f}" in text and f"{report.fd_floor:.2f}" in text
    assert "collapsed classes     Shirt" in text
    assert [line.split()[-1] for line in text.splitlines() if "YES" in line] == ["YES"]

    figures_before = plt.get_fignums()
    path = tmp_path / "report.png"
    fig = report.plot(path)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    assert plt.get_fignums() == figures_before  # closed in pyplot: a notebook shows it once
    assert path.stat().st_size > 10_000
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == pytest.approx(report.per_class_accuracy)
    assert any(line.get_ydata()[0] == pytest.approx(0.1) for line in fig.axes[0].lines)  # chance line


# --- The precomputed real-data statistics -------------------------------------------------------

STATS_COMMAND = "scripts/train_classifier.py --stats"


@pytest.fixture(scope="module")
def fresh_stats():
    """The real-data statistics computed now, from Fashion-MNIST and the committed weights (about 10 s)."""
    return evaluate.compute_reference_stats("cpu")


def test_stored_stats_equal_freshly_computed_ones(fresh_stats):
    """Keeps weights/reference_stats.pt honest: it must hold what the dataset and the weights give now."""
    path = evaluate.STATS_PATH
    assert evaluate.sha256_of(path) == evaluate.REFERENCE_STATS_SHA256
    assert path.stat().st_size < 500_000
    raw = torch.load(path, weights_only=True)  # plain tensors, ints and strings
    assert raw["classifier_sha256"] == evaluate.CLASSIFIER_SHA256 == fresh_stats["classifier_sha256"]
    assert raw["format"] == evaluate.STATS_FORMAT
    assert raw["test_cov"].dtype == raw["fd_floor"].dtype == torch.float64
    stored = evaluate.load_reference_stats()
    assert {100, 1000} <= set(stored["floors"]) and stored["floor_n_per_class"].tolist() == \
        sorted(evaluate.FLOOR_N_PER_CLASS)
    # tolerances: float32 features differ in the last bits across CPUs and thread counts;
    # statistics made from other weights, images or subsets are off by far more than this
    torch.testing.assert_close(stored["test_mean"], fresh_stats["test_mean"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(stored["test_cov"], fresh_stats["test_cov"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(stored["test_spread"], fresh_stats["test_spread"], rtol=1e-5, atol=0)
    torch.testing.assert_close(stored["test_accuracy_per_class"], fresh_stats["test_accuracy_per_class"],
                               rtol=0, atol=1.5e-3)  # one test image of a class is 1e-3
    assert torch.equal(stored["floor_n_per_class"], fresh_stats["floor_n_per_class"])
    torch.testing.assert_close(stored["fd_floor"], fresh_stats["fd_floor"], rtol=1e-3, atol=1e-5)
    # and they agree with what the stored statistics are meant to describe
    assert stored["test_accuracy_per_class"].mean().item() == pytest.approx(evaluate.CLASSIFIER_TEST_ACCURACY,
                                                                          abs=1e-3)
    floors = stored["fd_floor"].tolist()
    assert floors == sorted(floors, reverse=True) and 0 < floors[-1] < 0.1  # more images -> lower floor


def test_floors_not_stored_are_computed_from_the_training_set(monkeypatch):
    monkeypatch.setattr(evaluate, "_REFERENCE", {})
    floors = evaluate.load_reference_stats()["floors"]
    assert 37 not in floors
    floor_37 = evaluate.fd_floor(37, "cpu")
    assert floors[50] < floor_37 < floors[20]
    # the same computation as for the stored values
    assert evaluate.fd_floor(37, "cpu") == floor_37  # cached
    stats = evaluate.load_reference_stats()
    recomputed = evaluate._floor_from_features(evaluate._train_floor_features(torch.device("cpu")), 100,
                                               stats["test_mean"], stats["test_cov"])
    assert recomputed == pytest.approx(floors[100], rel=1e-3)


def _forbid_the_dataset(monkeypatch):
    def no_dataset(*args, **kwargs):
        raise AssertionError("the dataset was read")
    for name in ("load_tensors", "load_fashion_mnist", "find_fashion_mnist"):
        monkeypatch.setattr(data, name, no_dataset)
    # nothing cached from earlier tests: as in a fresh process
    monkeypatch.setattr(evaluate, "_REFERENCE", {})
    monkeypatch.setattr(evaluate, "_CLASSIFIERS", {})


def test_evaluation_reads_no_dataset_for_stored_sample_sizes(monkeypatch):
    _forbid_the_dataset(monkeypatch)
    G = TinyGenerator(16)
    floors = evaluate.load_reference_stats()["floors"]
    for n in (100, 20):
        report = evaluate_cpu(G, latent_dim=16, n_per_class=n)
        assert report.fd_floor == floors[n] and report.fd > report.fd_floor
        assert len(report.real_accuracy) == N_CLASSES and all(0.7 < a < 1 for a in report.real_accuracy)
    assert evaluate.fd_floor(1000, "cpu") == evaluate.fd_floor(5000, "cpu") == floors[1000]
    # an n_per_class whose floor is not stored does need the training set
    with pytest.raises(AssertionError, match="the dataset was read"):
        evaluate_cpu(G, latent_dim=16, n_per_class=37)


def test_first_evaluation_in_a_fresh_process_without_the_dataset(tmp_path):
    """What an autograded notebook does: import, evaluate at n_per_class=100 -- with no Fashion-MNIST anywhere."""
    code = textwrap.dedent("""
        import torch, torch.nn as nn
        from cgan_lib.evaluate import evaluate_generator
        class G(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(100, 784)
            def forward(self, z, y):
                return torch.tanh(self.lin(z + y[:, None])).view(-1, 1, 28, 28)
        report = evaluate_generator(G(), 100, n_per_class=100, device="cpu")
        print("OK", report.fd_floor)
    """)
    env = {**os.environ, "CGAN_DATA_DIR": str(tmp_path / "no-data-here"), "CGAN_DOWNLOAD": "0",
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) == evaluate.load_reference_stats()["floors"][100]


def _stats_copy(tmp_path, **changes):
    """A copy of the committed statistics, with `changes` applied (saved the way the script saves them)."""
    stats = torch.load(evaluate.STATS_PATH, weights_only=True)
    stats.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del stats[key]
    path = tmp_path / "reference_stats.pt"
    path.write_bytes(evaluate.reference_stats_bytes(stats))
    return path


def _assert_explains(err, path):
    message = str(err.value)
    assert isinstance(err.value, ClassifierWeightsError)  # caught where the weights' errors are
    assert str(path) in message and STATS_COMMAND in message, message


def test_intact_stats_copy_loads(tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copy(evaluate.STATS_PATH, copy)
    stats = evaluate.load_reference_stats(path=copy)
    assert torch.equal(stats["test_cov"], evaluate.load_reference_stats()["test_cov"])


def test_corrupt_stats_file_is_rejected_naming_the_file(tmp_path, monkeypatch):
    copy = tmp_path / "reference_stats.pt"
    shutil.copy(evaluate.STATS_PATH, copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one damaged byte inside the covariance
    copy.write_bytes(bytes(raw))
    with pytest.raises(ReferenceStatsError, match="damaged or not the expected one") as err:
        evaluate.load_reference_stats(path=copy)
    _assert_explains(err, copy)
    assert "SHA-256" in str(err.value) and evaluate.REFERENCE_STATS_SHA256 in str(err.value)
    assert "re-install" in str(err.value)
    # evaluate_generator refuses too (no silent re-computation from the dataset)
    _forbid_the_dataset(monkeypatch)
    monkeypatch.setattr(evaluate, "STATS_PATH", copy)
    with pytest.raises(ReferenceStatsError) as err:
        evaluate_cpu(TinyGenerator(16), latent_dim=16)
    _assert_explains(err, copy)


def test_missing_stats_file(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "reference_stats.pt"
    _forbid_the_dataset(monkeypatch)
    monkeypatch.setattr(evaluate, "STATS_PATH", missing)
    with pytest.raises(ReferenceStatsError, match="does not exist") as err:
        evaluate_cpu(TinyGenerator(16), latent_dim=16)
    _assert_explains(err, missing)


def test_stats_made_from_other_weights_are_refused_naming_both_files(tmp_path, monkeypatch):
    other = "ab" * 32
    path = _stats_copy(tmp_path, classifier_sha256=other)
    with pytest.raises(ReferenceStatsError, match="made from other classifier weights") as err:
        evaluate.load_reference_stats(path=path, sha256=None)
    _assert_explains(err, path)
    message = str(err.value)
    assert str(evaluate.WEIGHTS_PATH) in message and other in message and evaluate.CLASSIFIER_SHA256 in message
    # also when its own checksum is the recorded one (weights re-trained, statistics not re-created)
    _forbid_the_dataset(monkeypatch)
    monkeypatch.setattr(evaluate, "STATS_PATH", path)
    monkeypatch.setattr(evaluate, "REFERENCE_STATS_SHA256", evaluate.sha256_of(path))
    with pytest.raises(ReferenceStatsError, match="made from other classifier weights"):
        evaluate_cpu(TinyGenerator(16), latent_dim=16)


@pytest.mark.parametrize("content", ["garbage", "tensor", "missing key", "wrong shape", "nan", "old format"])
def test_unreadable_stats_files_give_the_clear_error(tmp_path, content):
    if content == "garbage":
        path = tmp_path / "reference_stats.pt"
        path.write_bytes(b"this is not a zip archive")
    elif content == "tensor":
        path = tmp_path / "reference_stats.pt"
        torch.save(torch.zeros(3), path)
    else:
        cov = torch.full((evaluate.FEATURE_DIM, evaluate.FEATURE_DIM), float("nan"), dtype=torch.float64)
        change = {"missing key": {"test_spread": None}, "wrong shape": {"test_mean": torch.zeros(64)},
                  "nan": {"test_cov": cov}, "old format": {"format": 0}}[content]
        path = _stats_copy(tmp_path, **change)
    with pytest.raises(ReferenceStatsError, match="could not be read") as err:
        evaluate.load_reference_stats(path=path, sha256=None)
    _assert_explains(err, path)
