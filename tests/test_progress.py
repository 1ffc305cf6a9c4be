"""cgan_lib.progress: the seeds' lines in plain mode, a bar on stdout in a terminal, a saved output in Jupyter."""
import io

import pytest
import torch

from cgan_lib.progress import TrainingProgress, default_mode, format_duration, format_seed_line, status_bundle


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


# --- Notebook mode: an ordinary output updated in place, saved with the notebook ---------------

class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, bundle, raw=False):
        assert raw
        self.shown.append(bundle)


@pytest.fixture
def notebook_display(monkeypatch):
    """What TrainingProgress shows in notebook mode: every bundle, first display then updates."""
    import IPython.display

    shown = []

    def display(bundle, raw=False, display_id=None):
        assert raw and display_id is True
        shown.append(bundle)
        return FakeHandle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    return shown


def test_notebook_mode_updates_one_output_and_ends_with_the_summary(notebook_display, capsys):
    run(TrainingProgress(2, 3, mode="notebook", mininterval=60), 2, 3)
    assert capsys.readouterr() == ("", "")  # nothing printed: one display, updated
    first, last = notebook_display[0], notebook_display[-1]
    assert set(first) == set(last) == {"text/plain", "text/html"}
    assert len(notebook_display) <= 4  # throttled: start, first step, last step, close
    assert "done: 2 epochs, 6 batches in 0:00" in last["text/plain"] and "100%" in last["text/plain"]
    assert "D loss 2.500, G loss 1.250" in last["text/plain"]
    assert '<progress value="6" max="6"' in last["text/html"] and "done: 2 epochs" in last["text/html"]


def test_notebook_mode_says_where_an_interrupted_run_stopped(notebook_display):
    with pytest.raises(KeyboardInterrupt):
        with TrainingProgress(2, 10, mode="notebook", mininterval=60) as progress:
            for i in range(7):
                progress.step(0, i, 0.1, 0.2)
            raise KeyboardInterrupt
    text = notebook_display[-1]["text/plain"]
    assert "stopped in epoch 1/2 after batch 7/10" in text and "35%" in text


def test_status_line_while_running_estimates_the_time_left():
    bundle = status_bundle(done=25, total=100, epoch=0, n_epochs=4, batch=24, n_batches=25, d_loss=0.5,
                           g_loss=torch.tensor(0.25), elapsed=30)
    assert bundle["text/plain"] == ("█" * 8 + "░" * 22 + "  25%  epoch 1/4, batch 25/25, 0:30 so far, "
                                    "about 1:30 left | D loss 0.500, G loss 0.250")
    assert "&" not in bundle["text/plain"] and "<" not in bundle["text/plain"]


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 725, 3723)] == ["0:00", "0:42", "12:05", "1:02:03"]


def test_default_mode_outside_jupyter_is_the_bar(monkeypatch):
    monkeypatch.delenv("CGAN_PLAIN_PROGRESS", raising=False)
    assert default_mode() == "bar"
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainingProgress(1, 1, mode="widget")


def test_a_real_notebook_keeps_a_readable_record_of_the_run(tmp_path, monkeypatch):
    """Run in a Jupyter kernel, the progress is a saved text/HTML output, not a widget that needs its state."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from cgan_lib.progress import TrainingProgress\n"
        "with TrainingProgress(3, 4, mininterval=0) as progress:\n"
        "    for epoch in range(3):\n"
        "        for i in range(4):\n"
        "            progress.step(epoch, i, 0.25, 0.5)\n")]
    monkeypatch.delenv("CGAN_PLAIN_PROGRESS", raising=False)  # the kernel inherits the environment
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs  # as a reopened notebook has them
    assert [o.output_type for o in outputs] == ["display_data"]
    data = outputs[0].data
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert "done: 3 epochs, 12 batches" in data["text/plain"] and "done: 3 epochs" in data["text/html"]
