"""cgan_lib.checkpoint: round trips, atomic saves, and the error messages."""
import os

import numpy as np
import pytest
import torch
from torch import nn

from cgan_lib.checkpoint import (FORMAT, CheckpointError, checkpoint_path, load_checkpoint, new_run_folder,
                                 run_checkpoints, save_checkpoint)

LATENT = 8


class TinyG(nn.Module):
    """A throwaway stand-in for a generator: one Linear layer on [noise, one-hot label], then tanh."""

    def __init__(self, hidden=16):
        super().__init__()
        self.fc = nn.Linear(LATENT + 10, hidden)
        self.out = nn.Linear(hidden, 28 * 28)

    def forward(self, noise, labels):
        x = torch.cat([noise, nn.functional.one_hot(labels, 10).float()], 1)
        return torch.tanh(self.out(self.fc(x))).view(-1, 1, 28, 28)


def inputs(n=6):
    rng = torch.Generator().manual_seed(1)
    return torch.randn(n, LATENT, generator=rng), torch.arange(n) % 10


def trained_setup(seed):
    """G, D and their Adam optimizers after one step, so the optimizers have state."""
    torch.manual_seed(seed)
    G, D = TinyG(), nn.Linear(28 * 28, 1)
    opt_G, opt_D = torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=1e-3)
    loss = D(G(*inputs()).flatten(1)).mean()
    loss.backward()
    opt_G.step()
    opt_D.step()
    return G, D, opt_G, opt_D


def same_state(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b


def test_round_trip_restores_everything(tmp_path):
    G, D, opt_G, opt_D = trained_setup(0)
    history = [(0.69, 0.70), (0.61, 0.93)]
    path = save_checkpoint(tmp_path / "run" / "ckpt.pth", G, D, opt_G, opt_D, epoch=20, history=history,
                           latent_dim=LATENT)
    assert path == tmp_path / "run" / "ckpt.pth" and path.is_file()

    G2, D2, opt_G2, opt_D2 = trained_setup(1)
    assert not torch.equal(G2(*inputs()), G(*inputs()))
    saved = load_checkpoint(path, G2, D2, opt_G2, opt_D2)

    assert torch.equal(G2(*inputs()), G(*inputs()))
    x = torch.randn(3, 28 * 28)
    assert torch.equal(D2(x), D(x))
    assert same_state(opt_G2.state_dict(), opt_G.state_dict())
    assert same_state(opt_D2.state_dict(), opt_D.state_dict())
    assert saved["format"] == FORMAT
    assert saved["epoch"] == 20 and saved["history"] == history and saved["latent_dim"] == LATENT


def test_history_of_numpy_and_tensor_losses_is_stored_as_floats(tmp_path):
    history = [(np.float64(0.5), torch.tensor(0.25, requires_grad=True) * 1), (1.0, 2)]
    path = save_checkpoint(tmp_path / "c.pth", TinyG(), history=history)
    saved = load_checkpoint(path)["history"]
    assert saved == [(0.5, 0.25), (1.0, 2)] and type(saved[0][0]) is float


def test_default_map_location_is_cpu(tmp_path):
    path = save_checkpoint(tmp_path / "c.pth", TinyG())
    assert load_checkpoint(path)["generator"]["fc.weight"].device == torch.device("cpu")


def test_seeds_bare_state_dict_loads(tmp_path):
    G = TinyG()
    path = tmp_path / "cgan_generator 20.pth"
    torch.save(G.state_dict(), path)  # exactly how the seeds saved it
    G2 = TinyG()
    saved = load_checkpoint(path, generator=G2)
    assert torch.equal(G2(*inputs()), G(*inputs()))
    assert saved["epoch"] is None and saved["history"] is None


def test_missing_part_is_named(tmp_path):
    path = tmp_path / "cgan_generator 20.pth"
    torch.save(TinyG().state_dict(), path)
    with pytest.raises(CheckpointError, match="no discriminator state") as err:
        load_checkpoint(path, TinyG(), discriminator=nn.Linear(784, 1))
    assert str(path) in str(err.value)

    path = save_checkpoint(tmp_path / "g_only.pth", TinyG())
    with pytest.raises(CheckpointError, match="no optimizer_D state"):
        load_checkpoint(path, optimizer_D=torch.optim.Adam(nn.Linear(784, 1).parameters()))


def test_failed_save_keeps_old_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    G_old = TinyG()
    path = save_checkpoint(tmp_path / "ckpt.pth", G_old, epoch=1)

    def save_then_fail(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, TinyG(), epoch=2)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ckpt.pth"]
    G = TinyG()
    assert load_checkpoint(path, G)["epoch"] == 1
    assert torch.equal(G(*inputs()), G_old(*inputs()))


def test_unpicklable_extra_fails_cleanly(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pth", TinyG(), epoch=1)
    with pytest.raises(Exception):
        save_checkpoint(path, TinyG(), epoch=2, callback=lambda: None)
    assert os.listdir(tmp_path) == ["ckpt.pth"]
    assert load_checkpoint(path)["epoch"] == 1


def test_save_replaces_previous(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pth", TinyG(), epoch=1)
    save_checkpoint(path, TinyG(), epoch=2)
    assert load_checkpoint(path)["epoch"] == 2
    assert os.listdir(tmp_path) == ["ckpt.pth"]


def test_missing_file_lists_pth_files_in_folder(tmp_path):
    for epoch in (20, 40):
        save_checkpoint(checkpoint_path(tmp_path, epoch), TinyG())
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    wanted = tmp_path / "cgan_generator_epoch030.pth"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(wanted, TinyG())
    message = str(err.value)
    assert str(wanted) in message and "does not exist" in message
    assert "cgan_generator_epoch020.pth" in message and "cgan_generator_epoch040.pth" in message
    assert "notes.txt" not in message


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere" / "ckpt.pth")


def test_truncated_file(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pth", TinyG())
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt") as err:
        load_checkpoint(path, TinyG())
    assert str(path) in str(err.value)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pth"
    rng = torch.Generator().manual_seed(0)
    path.write_bytes(torch.randint(0, 256, (4096,), generator=rng, dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match="could not be read as a checkpoint"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(path)


def test_whole_model_pickle_is_refused_with_advice(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(TinyG(), path)
    with pytest.raises(CheckpointError, match=r"TinyG\), not just tensors.*state_dict"):
        load_checkpoint(path, TinyG())


def test_architecture_mismatch_names_file_and_layer_and_changes_nothing(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pth", TinyG(hidden=16))
    G = TinyG(hidden=32)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, G)
    message = str(err.value)
    assert str(path) in message and "different architecture" in message
    assert "fc.weight: file has shape [16, 18], your model [32, 18]" in message
    assert "out.weight: file has shape [784, 16], your model [784, 32]" in message
    assert same_state(G.state_dict(), before)


def test_missing_and_unexpected_keys(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pth", TinyG())
    G = TinyG()
    G.extra = nn.Linear(2, 2)
    del G.out
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, G)
    message = str(err.value)
    assert "extra.weight: in your model, not in the file" in message
    assert "out.weight: in the file, not in your model" in message


def test_failure_on_discriminator_leaves_generator_untouched(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.pth", TinyG(), discriminator=nn.Linear(784, 1))
    G = TinyG()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with pytest.raises(CheckpointError, match="discriminator"):
        load_checkpoint(path, G, discriminator=nn.Linear(784, 2))
    assert same_state(G.state_dict(), before)


def test_optimizer_for_other_model(tmp_path):
    G, D, opt_G, opt_D = trained_setup(0)
    path = save_checkpoint(tmp_path / "ckpt.pth", G, optimizer_G=opt_G)
    with pytest.raises(CheckpointError, match="optimizer_G"):
        load_checkpoint(path, optimizer_G=torch.optim.Adam(D.parameters()))


def test_checkpoint_path_sorts_by_epoch(tmp_path):
    assert checkpoint_path(tmp_path, 20) == tmp_path / "cgan_generator_epoch020.pth"
    paths = [checkpoint_path(tmp_path, e) for e in (100, 5, 20, 200)]
    assert sorted(paths) == [checkpoint_path(tmp_path, e) for e in (5, 20, 100, 200)]


def test_every_run_gets_a_new_folder_of_its_own(tmp_path):
    first = new_run_folder(tmp_path / "checkpoints", "quick")
    second = new_run_folder(tmp_path / "checkpoints", "quick")  # the same second, most likely
    assert first.is_dir() and second.is_dir() and first != second
    assert first.parent == second.parent == tmp_path / "checkpoints"
    assert first.name.endswith("_quick") and list(first.iterdir()) == []
    assert new_run_folder(tmp_path / "checkpoints").name[:4].isdigit()  # a date, without a label
    with pytest.raises(ValueError, match="run label"):
        new_run_folder(tmp_path, "../elsewhere")


def test_run_checkpoints_are_this_runs_only_in_epoch_order(tmp_path):
    G = TinyG()
    earlier, current = new_run_folder(tmp_path, "a"), new_run_folder(tmp_path, "b")
    for epoch in (1, 2, 3):
        save_checkpoint(checkpoint_path(earlier, epoch), G, epoch=epoch)
    for epoch in (10, 5, 20):
        save_checkpoint(checkpoint_path(current, epoch), G, epoch=epoch)
    (current / "notes.txt").write_text("not a checkpoint")
    assert [load_checkpoint(p)["epoch"] for p in run_checkpoints(current)] == [5, 10, 20]
    assert run_checkpoints(tmp_path / "empty") == []
