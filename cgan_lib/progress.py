"""Show how training goes: one progress bar for the whole run, or the seeds' printed lines.

::

    with TrainingProgress(opt.n_epochs, len(dataloader)) as progress:
        for epoch in range(opt.n_epochs):
            for i, (imgs, labels) in enumerate(dataloader):
                d_loss, g_loss = train_step(...)
                progress.step(epoch, i, d_loss, g_loss)

By default a ``tqdm.auto`` bar: a widget in Jupyter (with ipywidgets), text in
a terminal. The text bar writes to **stdout**, not tqdm's default stderr,
because nbgrader counts any stderr output in a cell as a failure.

``plain=True``, or the environment variable ``CGAN_PLAIN_PROGRESS=1``, prints
the seeds' line instead, for log files and for comparing with the seeds' output::

    [Epoch 0/200] [Batch 0/938] [D loss: 0.693147] [G loss: 0.693147]
"""
import os
import sys
import time

import torch
from tqdm.auto import tqdm

SEED_LINE = "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"


def _as_float(loss):
    return loss.item() if isinstance(loss, torch.Tensor) else float(loss)


def format_seed_line(epoch, n_epochs, i, n_batches, d_loss, g_loss):
    """The seeds' progress line; losses may be floats or 0-d tensors."""
    return SEED_LINE % (epoch, n_epochs, i, n_batches, _as_float(d_loss), _as_float(g_loss))


def _plain_from_env():
    return os.environ.get("CGAN_PLAIN_PROGRESS", "").strip().lower() in ("1", "true", "yes")


def _detached(loss):
    # Keep tensors as they are (no GPU sync per batch); turn them into floats only when shown.
    return loss.detach() if isinstance(loss, torch.Tensor) else loss


class TrainingProgress:
    """Progress over `n_epochs` epochs of `n_batches` batches; call ``step`` after every batch.

    plain: print the seeds' line instead of a bar (default: $CGAN_PLAIN_PROGRESS).
    log_every: in plain mode, print every this many batches (and always an epoch's last batch).
    file: where text goes (default: sys.stdout at the time of construction).
    mininterval: with the bar, seconds between updates of the display.
    """

    def __init__(self, n_epochs, n_batches, plain=None, log_every=1, file=None, mininterval=0.5):
        if n_epochs < 1 or n_batches < 1 or log_every < 1:
            raise ValueError(f"n_epochs, n_batches and log_every must be at least 1, "
                             f"got {n_epochs}, {n_batches} and {log_every}")
        self.n_epochs, self.n_batches, self.log_every = int(n_epochs), int(n_batches), int(log_every)
        self.plain = _plain_from_env() if plain is None else bool(plain)
        self.file = sys.stdout if file is None else file
        self.mininterval = mininterval
        self.bar = None
        if not self.plain:
            # The bar redraws on every update() call (mininterval=0, miniters=1); step() decides when.
            self.bar = tqdm(total=self.n_epochs * self.n_batches, desc=f"epoch 1/{self.n_epochs}",
                            unit="batch", file=self.file, dynamic_ncols=True, mininterval=0, miniters=1)
        self.pending = 0  # steps done but not yet shown on the bar
        self.latest = None  # (epoch, d_loss, g_loss) of the last step
        self.last_shown = float("-inf")

    def step(self, epoch, i, d_loss, g_loss):
        """Record that batch `i` of epoch `epoch` (both from 0) ended with these losses."""
        if self.plain:
            if i % self.log_every == 0 or i == self.n_batches - 1:
                print(format_seed_line(epoch, self.n_epochs, i, self.n_batches, d_loss, g_loss),
                      file=self.file, flush=True)
            return
        self.pending += 1
        self.latest = (epoch, _detached(d_loss), _detached(g_loss))
        last_step = epoch == self.n_epochs - 1 and i == self.n_batches - 1
        if last_step or time.monotonic() - self.last_shown >= self.mininterval:
            self._show()

    def _show(self):
        epoch, d_loss, g_loss = self.latest
        self.bar.set_description_str(f"epoch {epoch + 1}/{self.n_epochs}", refresh=False)
        self.bar.set_postfix_str(f"D={_as_float(d_loss):.3f} G={_as_float(g_loss):.3f}", refresh=False)
        self.bar.update(self.pending)
        self.pending = 0
        self.last_shown = time.monotonic()

    def write(self, message):
        """Print a line (e.g. "saved out/epoch_020.png") without breaking the bar."""
        if self.bar is None:
            print(message, file=self.file, flush=True)
        else:
            self.bar.write(message, file=self.file)

    def close(self):
        if self.bar is not None:
            if self.pending:
                self._show()
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
