import os

import pytest

from cgan_lib import data


def _dataset_available():
    try:
        data.find_fashion_mnist("train")
        data.find_fashion_mnist("test")
        return True
    except data.FashionMNISTError:
        return False


@pytest.fixture(scope="session")
def real_data_dir():
    """The folder holding the real Fashion-MNIST files. Skips without it, except in CI
    (CGAN_REQUIRE_DATASET=1), where a missing dataset is a failure."""
    if not _dataset_available():
        if os.environ.get("CGAN_REQUIRE_DATASET"):
            pytest.fail("CGAN_REQUIRE_DATASET is set but Fashion-MNIST was not found: "
                        "apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")
    return data.find_fashion_mnist("train")[0].parent


@pytest.fixture(scope="session")
def train_tensors(real_data_dir):
    return data.load_tensors("train")


@pytest.fixture(scope="session")
def test_tensors(real_data_dir):
    return data.load_tensors("test")
