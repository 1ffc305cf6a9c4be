"""cgan_lib.viz: class grids, comparisons and loss plots."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from cgan_lib.checkpoint import save_checkpoint  # noqa: E402
from cgan_lib.data import CLASS_NAMES  # noqa: E402
from cgan_lib.viz import (compare_checkpoints, plot_class_grid, plot_generator_grid,  # noqa: E402
                          plot_grid_comparison, plot_losses, sample_class_grid)

LATENT = 8


class TinyG(nn.Module):
    """A throwaway stand-in for a generator: one Linear layer on [noise, one-hot label], then tanh.

    It records whether it was in training mode when called.
    """

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(LATENT + 10, 28 * 28)
        self.calls_in_training_mode = []

    def forward(self, noise, labels):
        self.calls_in_training_mode.append(self.training)
        x = torch.cat([noise, nn.functional.one_hot(labels, 10).float()], 1)
        return torch.tanh(self.fc(x)).view(-1, 1, 28, 28)


def class_constant_images(n_per_class):
    """Images whose pixels all equal their class index mapped to [-1, 1]: class c -> c / 9 in [0, 1]."""
    values = torch.arange(10).repeat_interleave(n_per_class).float() / 9 * 2 - 1
    return values.view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()


def grid_of(ax):
    return np.asarray(ax.get_images()[0].get_array())


def tile(grid, row, col):
    """Pixels of the image in `row`, `col` of a montage with 2-pixel padding."""
    return grid[2 + row * 30:2 + row * 30 + 28, 2 + col * 30:2 + col * 30 + 28]


@pytest.fixture(autouse=True)
def no_figures_left_open():
    yield
    left_open = plt.get_fignums()
    plt.close("all")
    assert left_open == [], "a plot function left a figure open in pyplot"


def test_class_grid_rows_are_labelled_classes_in_class_major_order():
    images = class_constant_images(3)
    images.requires_grad_(True)
    fig = plot_class_grid(images, 3, title="epoch 1")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASS_NAMES)
    assert ax.get_title() == "epoch 1"
    grid = grid_of(ax)
    assert grid.shape == (2 + 10 * 30, 2 + 3 * 30)
    for c in range(10):
        for j in range(3):
            np.testing.assert_allclose(tile(grid, c, j), c / 9, atol=1e-6)
    # the label sits at the vertical middle of its row
    np.testing.assert_allclose(ax.get_yticks(), 2 + 30 * np.arange(10) + 13.5)


def test_class_grid_wrong_count_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 10 classes x 3 per class = 30 images"):
        plot_class_grid(torch.zeros(29, 1, 28, 28), 3)


def test_class_grid_writes_png(tmp_path):
    path = tmp_path / "out" / "nested" / "grid.png"
    plot_class_grid(class_constant_images(4), 4, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = plt.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 200
    assert pixels[..., :3].std() > 0.1  # not a blank image


def test_sample_is_seeded_and_leaves_global_rng_alone():
    G = TinyG()
    state = torch.get_rng_state()
    a = sample_class_grid(G, LATENT, n_per_class=2, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = sample_class_grid(G, LATENT, n_per_class=2, seed=3)
    c = sample_class_grid(G, LATENT, n_per_class=2, seed=4)
    assert a.shape == (20, 1, 28, 28) and a.device == torch.device("cpu") and not a.requires_grad
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sample_labels_are_class_major():
    G = TinyG()
    seen = []
    G.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    sample_class_grid(G, LATENT, n_per_class=3)
    assert seen[0].tolist() == [c for c in range(10) for _ in range(3)]


@pytest.mark.parametrize("training", [True, False])
def test_sample_runs_in_eval_mode_and_restores_mode(training):
    G = TinyG().train(training)
    sample_class_grid(G, LATENT, n_per_class=1)
    assert G.calls_in_training_mode == [False]
    assert G.training is training and G.fc.training is training


def test_sample_checks_generator_output_shape():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(LATENT, 784)

        def forward(self, noise, labels):
            return self.fc(noise)

    with pytest.raises(ValueError, match=r"shape \(10, 784\) for a batch of 10, expected \(10, 1, 28, 28\)"):
        sample_class_grid(Flat(), LATENT, n_per_class=1)


def test_plot_generator_grid_shows_the_samples(tmp_path):
    G = TinyG()
    fig = plot_generator_grid(G, LATENT, n_per_class=2, seed=5, title="G", path=tmp_path / "g.png")
    expected = (sample_class_grid(G, LATENT, 2, seed=5) + 1) / 2
    grid = grid_of(fig.axes[0])
    np.testing.assert_allclose(tile(grid, 7, 1), expected[7 * 2 + 1, 0].numpy(), atol=1e-6)
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_compare_checkpoints_same_noise_and_weights_restored(tmp_path):
    torch.manual_seed(0)
    G_a, G_b, G = TinyG(), TinyG(), TinyG()
    path_a = save_checkpoint(tmp_path / "a.pth", G_a, epoch=20)
    path_b = tmp_path / "cgan_generator 200.pth"
    torch.save(G_b.state_dict(), path_b)  # a seeds-style bare state_dict
    before = {k: v.clone() for k, v in G.state_dict().items()}

    fig = compare_checkpoints(G, path_a, path_b, LATENT, n_per_class=2, seed=1, path=tmp_path / "cmp.png")

    for key, value in G.state_dict().items():
        assert torch.equal(value, before[key])
    ax_a, ax_b = fig.axes
    assert (ax_a.get_title(), ax_b.get_title()) == ("epoch 20", "cgan_generator 200")
    assert [t.get_text() for t in ax_a.get_yticklabels()] == list(CLASS_NAMES)
    for ax, model in ((ax_a, G_a), (ax_b, G_b)):
        expected = (sample_class_grid(model, LATENT, 2, seed=1) + 1) / 2
        np.testing.assert_allclose(tile(grid_of(ax), 4, 0), expected[8, 0].numpy(), atol=1e-6)
    assert (tmp_path / "cmp.png").stat().st_size > 1000


def test_compare_checkpoints_restores_weights_on_error(tmp_path):
    G = TinyG()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    path_a = save_checkpoint(tmp_path / "a.pth", TinyG())
    with pytest.raises(RuntimeError, match="does not exist"):
        compare_checkpoints(G, path_a, tmp_path / "missing.pth", LATENT, titles=("x", "y"))
    for key, value in G.state_dict().items():
        assert torch.equal(value, before[key])


def test_plot_grid_comparison_titles_and_count_check():
    fig = plot_grid_comparison(class_constant_images(2), -class_constant_images(2), 2, ("before", "after"))
    assert [ax.get_title() for ax in fig.axes] == ["before", "after"]
    np.testing.assert_allclose(tile(grid_of(fig.axes[1]), 9, 0), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="got 19"):
        plot_grid_comparison(class_constant_images(2), torch.zeros(19, 1, 28, 28), 2, ("a", "b"))


def test_plot_losses_raw_and_moving_average(tmp_path):
    history = [(0.0, 1.0), (2.0, 1.0), (4.0, 1.0)]
    fig = plot_losses(history, smooth=2, title="losses", path=tmp_path / "losses.png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "iteration"
    lines = {line.get_label(): line for line in ax.get_lines()}
    d_mean = lines["D loss (mean of last 2)"]
    np.testing.assert_allclose(d_mean.get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(d_mean.get_ydata(), [0.0, 1.0, 3.0])
    np.testing.assert_allclose(lines["G loss (mean of last 2)"].get_ydata(), [1.0, 1.0, 1.0])
    raw = [line for line in ax.get_lines() if line.get_label().startswith("_")]
    assert len(raw) == 2 and all(line.get_alpha() < 1 for line in raw)
    np.testing.assert_allclose(raw[0].get_ydata(), [0.0, 2.0, 4.0])
    assert (tmp_path / "losses.png").stat().st_size > 1000


def test_plot_losses_short_and_empty_history():
    d_loss = torch.tensor(0.5, requires_grad=True) * 1  # a tensor with a graph is accepted too
    fig = plot_losses([(d_loss, 0.25)])  # shorter than the smoothing window
    (d_line, g_line) = fig.axes[0].get_lines()
    assert d_line.get_ydata().tolist() == [0.5] and g_line.get_ydata().tolist() == [0.25]
    with pytest.raises(ValueError, match="history is empty"):
        plot_losses([])
