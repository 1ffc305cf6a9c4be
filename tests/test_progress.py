"""cgan_lib.progress: the seeds' lines in plain mode, a bar on stdout otherwise."""
import io

import pytest
import torch

from cgan_lib.progress import TrainingProgress, format_seed_line


def run(progress, n_epochs, n_batches, losses=lambda epoch, i: (0.5 + i, 0.25 + epoch)):
    with progress:
        for epoch in range(n_epochs):
            for i in range(n_batches):
                progress.step(epoch, i, *losses(epoch, i))


def test_format_seed_line_is_the_seeds_format():
    assert (format_seed_line(3, 200, 17, 938, 0.5, torch.tensor(1.25))
            == "[Epoch 3/200] [Batch 17/938] [D loss: 0.500000] [G loss: 1.250000]")


def test_plain_prints_every_batch_like_the_seeds(capsys):
    run(TrainingProgress(2, 3, plain=True), 2, 3)
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]" % (epoch, 2, i, 3, 0.5 + i, 0.25 + epoch)
        for epoch in range(2) for i in range(3)]


@pytest.mark.parametrize("n_batches, printed", [(5, [0, 2, 4]), (4, [0, 2, 3]), (1, [0])])
def test_log_every_and_always_the_last_batch(n_batches, printed):
    out = io.StringIO()
    run(TrainingProgress(2, n_batches, plain=True, log_every=2, file=out), 2, n_batches)
    batches = [int(line.split("[Batch ")[1].split("/")[0]) for line in out.getvalue().splitlines()]
    assert batches == printed * 2


def test_plain_from_environment(monkeypatch, capsys):
    monkeypatch.setenv("CGAN_PLAIN_PROGRESS", "1")
    progress = TrainingProgress(1, 2)
    assert progress.plain and progress.bar is None
    run(progress, 1, 2)
    assert capsys.readouterr().out.startswith("[Epoch 0/1] [Batch 0/2]")


def test_tensor_losses_plain(capsys):
    d = torch.tensor(0.75, requires_grad=True) * 1  # a loss with a graph, as train_step returns it
    run(TrainingProgress(1, 1, plain=True), 1, 1, lambda epoch, i: (d, torch.tensor(2.0)))
    assert capsys.readouterr().out == "[Epoch 0/1] [Batch 0/1] [D loss: 0.750000] [G loss: 2.000000]\n"


def test_bar_writes_to_stdout_only(monkeypatch, capsys):
    monkeypatch.delenv("CGAN_PLAIN_PROGRESS", raising=False)
    progress = TrainingProgress(2, 3, mininterval=0)
    assert progress.bar is not None
    run(progress, 2, 3, lambda epoch, i: (torch.tensor(0.5 + i), torch.tensor(1.0)))
    out, err = capsys.readouterr()
    assert err == ""
    final = out.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("epoch 2/2") and "6/6" in final and "D=2.500 G=1.000" in final
    assert "[Epoch" not in out


def test_bar_is_not_redrawn_every_batch(capsys):
    run(TrainingProgress(3, 100, plain=False, mininterval=60), 3, 100)
    out = capsys.readouterr().out
    assert out.count("\r") <= 4  # initial, first step, last step, close
    final = out.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("epoch 3/3") and "300/300" in final


def test_close_shows_pending_steps_after_interruption(capsys):
    with pytest.raises(KeyboardInterrupt):
        with TrainingProgress(2, 10, plain=False, mininterval=60) as progress:
            for i in range(7):
                progress.step(0, i, 0.1, 0.2)
            raise KeyboardInterrupt
    final = capsys.readouterr().out.replace("\r", "\n").strip().splitlines()[-1]
    assert "7/20" in final


def test_write_goes_to_file():
    out = io.StringIO()
    with TrainingProgress(1, 1, plain=False, file=out) as progress:
        progress.write("saved out/epoch_000.png")
    assert "saved out/epoch_000.png\n" in out.getvalue()


def test_bad_sizes():
    with pytest.raises(ValueError, match="at least 1"):
        TrainingProgress(0, 10)


def test_last_step_is_shown_even_without_close(capsys):
    progress = TrainingProgress(2, 50, plain=False, mininterval=60)
    for epoch in range(2):
        for i in range(50):
            progress.step(epoch, i, 0.1, 0.2)
    final = capsys.readouterr().out.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("epoch 2/2") and "100/100" in final
    progress.close()
