"""cgan_lib.classifier: the reference classifier, its checked weights, and what it predicts."""
import shutil

import pytest
import torch

from cgan_lib import classifier
from cgan_lib.classifier import ClassifierWeightsError
from cgan_lib.data import N_CLASSES


@pytest.fixture(scope="module")
def model():
    return classifier.load_classifier("cpu")


def test_committed_weights_reach_the_stated_accuracy(model, test_tensors):
    images, labels = test_tensors
    accuracy = classifier.classifier_accuracy(model, images, labels)
    assert accuracy >= 0.91
    assert accuracy == pytest.approx(classifier.CLASSIFIER_TEST_ACCURACY, abs=0.002)
    assert classifier.sha256_of(classifier.WEIGHTS_PATH) == classifier.CLASSIFIER_SHA256
    assert classifier.WEIGHTS_PATH.stat().st_size < 1_000_000


def test_classifier_shapes_cache_and_mode(model, test_tensors):
    assert classifier.load_classifier("cpu") is model  # cached per device
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    x = test_tensors[0][:5]
    features = model.features(x)
    assert features.shape == (5, classifier.FEATURE_DIM) and (features >= 0).all()
    assert model(x).shape == (5, N_CLASSES)
    torch.testing.assert_close(model.head(features), model(x))


def test_predictions_are_the_features_and_the_argmax(model, test_tensors):
    x = test_tensors[0][:7]
    features, predicted = classifier.classifier_predictions(model, x, batch_size=3)  # batches are joined in order
    torch.testing.assert_close(features, model.features(x))
    assert torch.equal(predicted, model(x).argmax(1))


def test_classifier_accuracy_restores_train_mode(test_tensors):
    fresh = classifier.FashionClassifier()
    fresh.load_state_dict(classifier.load_classifier("cpu").state_dict())
    fresh.train()
    images, labels = test_tensors
    accuracy = classifier.classifier_accuracy(fresh, images[:500], labels[:500])
    assert fresh.training and all(m.training for m in fresh.modules())
    assert accuracy > 0.85  # eval mode was used: Dropout off, BatchNorm running statistics
    assert classifier.classifier_accuracy(fresh, images[:500], (labels[:500] + 1) % N_CLASSES) < 0.1


def test_corrupt_weights_file_is_rejected_naming_the_file(tmp_path):
    copy = tmp_path / "fashion_classifier.pt"
    shutil.copy(classifier.WEIGHTS_PATH, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one damaged byte inside the tensor data
    copy.write_bytes(bytes(data))
    with pytest.raises(ClassifierWeightsError) as err:
        classifier.load_classifier("cpu", path=copy)
    message = str(err.value)
    assert str(copy) in message and "SHA-256" in message and classifier.CLASSIFIER_SHA256 in message
    assert "scripts/train_classifier.py" in message and "re-install" in message


def test_intact_copy_loads(tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copy(classifier.WEIGHTS_PATH, copy)
    loaded = classifier.load_classifier("cpu", path=copy)
    for a, b in zip(loaded.state_dict().values(), classifier.load_classifier("cpu").state_dict().values()):
        assert torch.equal(a, b)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nowhere" / "fashion_classifier.pt"
    with pytest.raises(ClassifierWeightsError, match="does not exist") as err:
        classifier.load_classifier("cpu", path=missing)
    assert str(missing) in str(err.value) and "scripts/train_classifier.py" in str(err.value)


def test_weights_of_another_architecture(tmp_path):
    other = tmp_path / "other.pt"
    torch.save(classifier.FashionClassifier(channels=(8, 16, 32)).state_dict(), other)
    with pytest.raises(ClassifierWeightsError, match="could not be loaded") as err:
        classifier.load_classifier("cpu", path=other, sha256=classifier.sha256_of(other))
    assert str(other) in str(err.value) and "size mismatch" in str(err.value)
    # ...and with its checksum expected, it is already refused for being another file
    with pytest.raises(ClassifierWeightsError, match="SHA-256"):
        classifier.load_classifier("cpu", path=other)


@pytest.mark.parametrize("content", ["not a state_dict", "garbage"])
def test_unloadable_files_give_the_clear_error(tmp_path, content):
    bad = tmp_path / "bad.pt"
    if content == "garbage":
        bad.write_bytes(b"this is not a zip archive")
    else:
        torch.save(torch.zeros(3), bad)
    with pytest.raises(ClassifierWeightsError, match="could not be loaded") as err:
        classifier.load_classifier("cpu", path=bad, sha256=None)
    assert str(bad) in str(err.value)


def test_state_dict_bytes_do_not_depend_on_the_file_name(model, tmp_path):
    assert classifier.state_dict_bytes(model) == classifier.state_dict_bytes(model)
    (tmp_path / "a.pt").write_bytes(classifier.state_dict_bytes(model))
    assert classifier.sha256_of(tmp_path / "a.pt") == classifier.CLASSIFIER_SHA256  # the committed bytes, exactly
