"""cgan_lib.reference_stats: the precomputed real-data statistics are honest, checked, and need no dataset."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from cgan_lib import classifier, reference_stats
from cgan_lib.classifier import ClassifierWeightsError
from cgan_lib.evaluate import evaluate_generator
from cgan_lib.reference_stats import ReferenceStatsError

STATS_COMMAND = "scripts/train_classifier.py --stats"


def tiny_generator(z, y):
    """A stand-in generator without parameters: the same image for a label, shifted by the noise."""
    return torch.tanh(z[:, :1, None, None] + y[:, None, None, None] / 5 - 1).expand(-1, 1, 28, 28)


def evaluate_cpu(n_per_class=100):
    return evaluate_generator(tiny_generator, 16, n_per_class=n_per_class, device="cpu")


@pytest.fixture(scope="module")
def fresh_stats(real_data_dir):
    """The real-data statistics computed now, from Fashion-MNIST and the committed weights (about 10 s)."""
    return reference_stats.compute_reference_stats("cpu")


def test_stored_stats_equal_freshly_computed_ones(fresh_stats):
    """Keeps weights/reference_stats.pt honest: it must hold what the dataset and the weights give now."""
    path = reference_stats.STATS_PATH
    assert classifier.sha256_of(path) == reference_stats.REFERENCE_STATS_SHA256
    assert path.stat().st_size < 500_000
    raw = torch.load(path, weights_only=True)  # plain tensors, ints and strings
    assert raw["classifier_sha256"] == classifier.CLASSIFIER_SHA256 == fresh_stats["classifier_sha256"]
    assert raw["format"] == reference_stats.STATS_FORMAT
    assert raw["test_cov"].dtype == raw["fd_floor"].dtype == torch.float64
    stored = reference_stats.load_reference_stats()
    assert {100, 1000} <= set(stored["floors"]) and stored["floor_n_per_class"].tolist() == \
        sorted(reference_stats.FLOOR_N_PER_CLASS)
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
    assert stored["test_accuracy_per_class"].mean().item() == pytest.approx(classifier.CLASSIFIER_TEST_ACCURACY,
                                                                          abs=1e-3)
    floors = stored["fd_floor"].tolist()
    assert floors == sorted(floors, reverse=True) and 0 < floors[-1] < 0.1  # more images -> lower floor


def test_fd_floor_is_smaller_with_more_samples():
    assert 0 < reference_stats.fd_floor(1000, "cpu") < reference_stats.fd_floor(100, "cpu") < 1.0
    assert reference_stats.fd_floor(5000, "cpu") == reference_stats.fd_floor(1000, "cpu")  # at most 10,000 images


def test_floors_not_stored_are_computed_from_the_training_set(monkeypatch, real_data_dir):
    monkeypatch.setattr(reference_stats, "_CACHE", {})
    floors = reference_stats.load_reference_stats()["floors"]
    assert 37 not in floors
    floor_37 = reference_stats.fd_floor(37, "cpu")
    assert floors[50] < floor_37 < floors[20]
    assert reference_stats.fd_floor(37, "cpu") == floor_37  # cached
    # the same computation as for the stored values
    stats = reference_stats.load_reference_stats()
    recomputed = reference_stats.floor_from_features(reference_stats.train_floor_features(torch.device("cpu")), 100,
                                                     stats["test_mean"], stats["test_cov"])
    assert recomputed == pytest.approx(floors[100], rel=1e-3)


def _forbid_the_dataset(monkeypatch):
    def no_dataset(*args, **kwargs):
        raise AssertionError("the dataset was read")
    monkeypatch.setattr(reference_stats, "load_tensors", no_dataset)
    # nothing cached from earlier tests: as in a fresh process
    monkeypatch.setattr(reference_stats, "_CACHE", {})
    monkeypatch.setattr(classifier, "_CLASSIFIERS", {})


def test_evaluation_reads_no_dataset_for_stored_sample_sizes(monkeypatch):
    _forbid_the_dataset(monkeypatch)
    floors = reference_stats.load_reference_stats()["floors"]
    for n in (100, 20):
        report = evaluate_cpu(n)
        assert report.fd_floor == floors[n] and report.fd > report.fd_floor
        assert len(report.real_accuracy) == 10 and all(0.7 < a < 1 for a in report.real_accuracy)
    assert reference_stats.fd_floor(1000, "cpu") == reference_stats.fd_floor(5000, "cpu") == floors[1000]
    # an n_per_class whose floor is not stored does need the training set
    with pytest.raises(AssertionError, match="the dataset was read"):
        evaluate_cpu(37)


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
    assert float(result.stdout.split()[-1]) == reference_stats.load_reference_stats()["floors"][100]


def _stats_copy(tmp_path, **changes):
    """A copy of the committed statistics, with `changes` applied (saved the way the script saves them)."""
    stats = torch.load(reference_stats.STATS_PATH, weights_only=True)
    stats.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del stats[key]
    path = tmp_path / "reference_stats.pt"
    path.write_bytes(reference_stats.reference_stats_bytes(stats))
    return path


def _assert_explains(err, path):
    message = str(err.value)
    assert isinstance(err.value, ClassifierWeightsError)  # caught where the weights' errors are
    assert str(path) in message and STATS_COMMAND in message, message


def test_intact_stats_copy_loads(tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copy(reference_stats.STATS_PATH, copy)
    stats = reference_stats.load_reference_stats(path=copy, sha256=reference_stats.REFERENCE_STATS_SHA256)
    assert torch.equal(stats["test_cov"], reference_stats.load_reference_stats()["test_cov"])


def test_corrupt_stats_file_is_rejected_naming_the_file(tmp_path, monkeypatch):
    copy = tmp_path / "reference_stats.pt"
    shutil.copy(reference_stats.STATS_PATH, copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one damaged byte inside the covariance
    copy.write_bytes(bytes(raw))
    with pytest.raises(ReferenceStatsError, match="damaged or not the expected one") as err:
        reference_stats.load_reference_stats(path=copy, sha256=reference_stats.REFERENCE_STATS_SHA256)
    _assert_explains(err, copy)
    assert "SHA-256" in str(err.value) and reference_stats.REFERENCE_STATS_SHA256 in str(err.value)
    assert "re-install" in str(err.value)
    # evaluate_generator refuses too (no silent re-computation from the dataset)
    _forbid_the_dataset(monkeypatch)
    monkeypatch.setattr(reference_stats, "STATS_PATH", copy)
    with pytest.raises(ReferenceStatsError) as err:
        evaluate_cpu()
    _assert_explains(err, copy)


def test_missing_stats_file(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "reference_stats.pt"
    _forbid_the_dataset(monkeypatch)
    monkeypatch.setattr(reference_stats, "STATS_PATH", missing)
    with pytest.raises(ReferenceStatsError, match="does not exist") as err:
        evaluate_cpu()
    _assert_explains(err, missing)


def test_stats_made_from_other_weights_are_refused_naming_both_files(tmp_path, monkeypatch):
    other = "ab" * 32
    path = _stats_copy(tmp_path, classifier_sha256=other)
    with pytest.raises(ReferenceStatsError, match="made from other classifier weights") as err:
        reference_stats.load_reference_stats(path=path)
    _assert_explains(err, path)
    message = str(err.value)
    assert str(classifier.WEIGHTS_PATH) in message and other in message and classifier.CLASSIFIER_SHA256 in message
    # also when its own checksum is the recorded one (weights re-trained, statistics not re-created)
    _forbid_the_dataset(monkeypatch)
    monkeypatch.setattr(reference_stats, "STATS_PATH", path)
    monkeypatch.setattr(reference_stats, "REFERENCE_STATS_SHA256", classifier.sha256_of(path))
    with pytest.raises(ReferenceStatsError, match="made from other classifier weights"):
        evaluate_cpu()


@pytest.mark.parametrize("content", ["garbage", "tensor", "missing key", "wrong shape", "nan", "old format"])
def test_unreadable_stats_files_give_the_clear_error(tmp_path, content):
    if content == "garbage":
        path = tmp_path / "reference_stats.pt"
        path.write_bytes(b"this is not a zip archive")
    elif content == "tensor":
        path = tmp_path / "reference_stats.pt"
        torch.save(torch.zeros(3), path)
    else:
        cov = torch.full((classifier.FEATURE_DIM, classifier.FEATURE_DIM), float("nan"), dtype=torch.float64)
        change = {"missing key": {"test_spread": None}, "wrong shape": {"test_mean": torch.zeros(64)},
                  "nan": {"test_cov": cov}, "old format": {"format": 0}}[content]
        path = _stats_copy(tmp_path, **change)
    with pytest.raises(ReferenceStatsError, match="could not be read") as err:
        reference_stats.load_reference_stats(path=path)
    _assert_explains(err, path)
