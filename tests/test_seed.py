import random

import numpy as np
import torch
from torch import nn

from cgan_lib.seed import seed_everything


def draw():
    layer = nn.Linear(10, 5)
    return (random.random(), np.random.randn(3).tolist(), torch.randn(3).tolist(),
            layer.weight.detach().clone(), torch.randperm(100)[:10].tolist())


def test_same_seed_same_numbers_and_weights():
    seed_everything(123)
    a = draw()
    seed_everything(123)
    b = draw()
    assert a[:3] == b[:3] and a[4] == b[4]
    assert torch.equal(a[3], b[3])
    seed_everything(124)
    c = draw()
    assert a[0] != c[0] and not torch.equal(a[3], c[3])


def test_same_seed_same_dataloader_order():
    from torch.utils.data import DataLoader, TensorDataset
    dataset = TensorDataset(torch.arange(200))
    seed_everything(0)
    first = next(iter(DataLoader(dataset, batch_size=16, shuffle=True)))[0].tolist()
    seed_everything(0)
    again = next(iter(DataLoader(dataset, batch_size=16, shuffle=True)))[0].tolist()
    assert first == again


def test_returns_the_seed_and_accepts_deterministic():
    assert seed_everything(7, deterministic=True) == 7
    torch.use_deterministic_algorithms(False)
