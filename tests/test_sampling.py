"""cgan_lib.sampling: the one fixed-noise sampler of the plots and the metrics."""
import numpy as np
import pytest
import torch
from torch import nn

from cgan_lib.sampling import class_major_labels, fixed_samples

LATENT = 8


class TinyG(nn.Module):
    """One Linear layer on [noise, one-hot label], then tanh; records its calls and draws random numbers."""

    def __init__(self, draws=True):
        super().__init__()
        self.fc = nn.Linear(LATENT + 10, 28 * 28)
        self.draws = draws
        self.calls = []

    def forward(self, noise, labels):
        self.calls.append((noise.clone(), labels.clone(), self.training, torch.is_grad_enabled()))
        jitter = torch.rand(1) if self.draws else 0  # randomness of its own: seeded by the sampler
        x = torch.cat([noise, nn.functional.one_hot(labels, 10).float()], 1)
        return torch.tanh(self.fc(x) + jitter).view(-1, 1, 28, 28)


def test_labels_are_class_major():
    assert class_major_labels(3).tolist() == [c for c in range(10) for _ in range(3)]
    G = TinyG()
    images, labels = fixed_samples(G, LATENT, n_per_class=3, batch_size=7)  # several generator calls
    assert labels.tolist() == class_major_labels(3).tolist()
    assert torch.cat([c[1] for c in G.calls]).tolist() == labels.tolist()
    assert [len(c[1]) for c in G.calls] == [7, 7, 7, 7, 2]
    assert images.shape == (30, 1, 28, 28) and images.dtype == torch.float32 and images.device.type == "cpu"


def test_same_seed_same_samples_and_the_global_state_is_left_alone():
    G = TinyG()
    torch.manual_seed(1)
    state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    a, _ = fixed_samples(G, LATENT, n_per_class=4, seed=3)
    assert torch.equal(torch.get_rng_state(), state) and np.array_equal(np.random.get_state()[1], np_state)
    b, _ = fixed_samples(G, LATENT, n_per_class=4, seed=3)  # the generator's own draws are seeded too
    c, _ = fixed_samples(G, LATENT, n_per_class=4, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(G.calls[0][0], torch.randn(40, LATENT, generator=torch.Generator().manual_seed(3)))
    # without draws of its own, the batch size changes nothing (but the rounding of the matrix products)
    deterministic = TinyG(draws=False)
    torch.testing.assert_close(fixed_samples(deterministic, LATENT, 4, seed=3)[0],
                               fixed_samples(deterministic, LATENT, 4, seed=3, batch_size=5)[0])


def test_the_noise_of_a_smaller_grid_is_a_prefix():
    """n_per_class=8 and 1000 with one seed start with the same noise vectors."""
    G = TinyG()
    fixed_samples(G, LATENT, n_per_class=2, seed=0)
    fixed_samples(G, LATENT, n_per_class=5, seed=0)
    assert torch.equal(G.calls[0][0], G.calls[1][0][:20])


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_without_gradients_and_the_mode_restored(training):
    G = TinyG().train(training)
    fixed_samples(G, LATENT, n_per_class=1)
    assert [(call[2], call[3]) for call in G.calls] == [(False, False)]
    assert G.training is training and G.fc.training is training


def test_wrong_shapes_and_bad_pixels_are_explained():
    with pytest.raises(ValueError, match=r"shape \(10, 784\) for a batch of 10, expected \(10, 1, 28, 28\)"):
        fixed_samples(lambda z, y: torch.zeros(len(y), 784), LATENT, n_per_class=1)
    with pytest.raises(ValueError, match="shape tuple"):
        fixed_samples(lambda z, y: (z, y), LATENT, n_per_class=1)
    with pytest.raises(ValueError, match="NaN"):
        fixed_samples(lambda z, y: torch.full((len(y), 1, 28, 28), float("inf")), LATENT, n_per_class=1)
    with pytest.raises(ValueError, match="at least 1"):
        fixed_samples(TinyG(), LATENT, n_per_class=0)
