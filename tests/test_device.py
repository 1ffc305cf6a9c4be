import warnings

import numpy as np
import pytest
import torch

from cgan_lib.device import pick_device
from cgan_lib.device import FloatTensor, LongTensor, device, tensor_types


def test_the_seeds_idioms_work_without_warnings():
    # pytest turns warnings into errors (pyproject.toml); be explicit anyway
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        valid = FloatTensor(64, 1).fill_(1.0)
        z = FloatTensor(np.random.randn(64, 100))
        labels = LongTensor(np.random.randint(0, 10, 64))
        imgs = torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8)
        real_imgs = imgs.type(FloatTensor)
    assert valid.shape == (64, 1) and valid.dtype == torch.float32 and bool((valid == 1).all())
    assert z.shape == (64, 100) and z.dtype == torch.float32  # numpy's float64 becomes float32
    assert labels.shape == (64,) and labels.dtype == torch.int64
    assert real_imgs.dtype == torch.float32 and torch.equal(real_imgs, imgs.float())
    for t in (valid, z, labels, real_imgs):
        assert t.device.type == device.type


def test_factories_copy_their_data():
    array = np.zeros(3)
    tensor = FloatTensor(array)
    tensor += 1
    assert array.tolist() == [0, 0, 0]
    assert LongTensor([1, 2]).tolist() == [1, 2]


def test_isinstance_and_repr():
    assert isinstance(torch.zeros(2), FloatTensor)
    assert not isinstance(torch.zeros(2, dtype=torch.long), FloatTensor)
    assert isinstance(torch.zeros(2, dtype=torch.long), LongTensor)
    assert "float32" in repr(FloatTensor)


def test_factories_place_tensors_on_their_device():
    # the meta device stands in for a GPU on machines without one
    float_type, long_type = tensor_types("meta")
    assert FloatTensor.__name__ in ("torch.FloatTensor", "torch.cuda.FloatTensor")
    assert float_type(np.random.randn(4, 100)).device.type == "meta"
    assert float_type(4, 1).device.type == "meta"
    assert long_type(np.arange(3)).dtype == torch.int64


def test_cuda_factories_are_named_for_tensor_type():
    float_type, long_type = tensor_types("cuda")
    assert float_type.__name__ == "torch.cuda.FloatTensor"
    assert long_type.__name__ == "torch.cuda.LongTensor"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu():
    float_type, long_type = tensor_types("cuda")
    assert float_type(2, 1).fill_(1.0).is_cuda
    assert torch.zeros(3, dtype=torch.uint8).type(float_type).is_cuda
    assert long_type(np.arange(3)).is_cuda


def test_cgan_device_environment_variable(monkeypatch):
    monkeypatch.setenv("CGAN_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    monkeypatch.delenv("CGAN_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected


def test_module_device_and_evaluating():
    from cgan_lib.device import evaluating, module_device
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model[1].eval()  # a mixed state that must come back as it was
    assert module_device(model) == torch.device("cpu")
    assert module_device(torch.nn.ReLU(), default="meta") == torch.device("meta")
    with evaluating(model):
        assert not model.training and not model[0].training and not torch.is_grad_enabled()
    assert model.training and model[0].training and not model[1].training and torch.is_grad_enabled()
