"""How long the notebook trains: the lab's training schedules, by name.

    SCHEDULE = use_schedule(opt, "quick")   # sets opt.n_epochs, sample_interval, checkpoint_interval, train_subset

The student picks one of

    quick      4 epochs over all 60,000 images: about 65 s on a 2-core CPU, and enough to see
               whether the GAN learns (the generator draws recognisable clothes of the requested class)
    standard   15 epochs: a good result (about 90% conditional accuracy) in about 4 minutes on a 2-core CPU
    full       the original exercise's 200 epochs (about an hour on a 2-core CPU, estimated)

``ema_decay`` is the decay of the moving average of the generator's weights that the notebook
samples and evaluates (its section 9). Over quick's 4 epochs averaging made the samples much less
varied, so there it is 0: the averaged generator is a copy of the trained one.

Two more are not for choosing: ``grading``, which nbgrader runs while it grades (every cell once,
in seconds: the grade does not depend on this training), and ``short``, the test suite's smoke run.

Overrides, strongest first: while nbgrader executes the notebook (it sets ``NBGRADER_EXECUTION``)
the schedule is ``grading``, whatever was chosen; otherwise the environment variable
``CGAN_SCHEDULE``, when set, replaces the choice (e.g. ``CGAN_SCHEDULE=standard jupyter lab``).
The measured time and quality of each are in benchmarks/RESULTS.md (``benchmarks/quality.py``).
"""
import os
from dataclasses import dataclass

STUDENT_CHOICES = ("quick", "standard", "full")


@dataclass(frozen=True)
class Schedule:
    n_epochs: int                 # passes over the training images
    sample_interval: int          # epochs between sample grids
    checkpoint_interval: int      # epochs between checkpoints
    train_subset: int = None      # None: all 60,000 training images; k: k images per class
    eval_per_class: int = 1000    # generated images per class for the quality numbers
    ema_decay: float = 0.999      # the averaged generator: its weights follow the trained ones at this decay (0: a copy)

    def settings(self):
        """The fields of the notebook's `opt` that the schedule sets."""
        return {"n_epochs": self.n_epochs, "sample_interval": self.sample_interval,
                "checkpoint_interval": self.checkpoint_interval, "train_subset": self.train_subset}

    def describe(self):
        images = "all 60,000 images" if self.train_subset is None else f"{self.train_subset * 10:,} images"
        return f"{self.n_epochs} epochs over {images}"


SCHEDULES = {
    "quick": Schedule(n_epochs=4, sample_interval=1, checkpoint_interval=1, ema_decay=0.0),
    "standard": Schedule(n_epochs=15, sample_interval=5, checkpoint_interval=5),
    "full": Schedule(n_epochs=200, sample_interval=10, checkpoint_interval=20),
    "grading": Schedule(n_epochs=2, sample_interval=1, checkpoint_interval=1, train_subset=200, eval_per_class=100,
                        ema_decay=0.0),
    "short": Schedule(n_epochs=10, sample_interval=5, checkpoint_interval=5, train_subset=200, eval_per_class=100,
                      ema_decay=0.0),
}


def chosen_schedule(choice):
    """The schedule to train with: "grading" under nbgrader, else $CGAN_SCHEDULE if set, else `choice`.

    Raises ValueError, listing the names, when the result is not a known schedule.
    """
    if os.environ.get("NBGRADER_EXECUTION"):
        return "grading"
    name = os.environ.get("CGAN_SCHEDULE", "").strip() or str(choice).strip()
    if name not in SCHEDULES:
        source = "the environment variable CGAN_SCHEDULE" if os.environ.get("CGAN_SCHEDULE", "").strip() else "SCHEDULE"
        raise ValueError(f"{source} is {name!r}; choose one of {', '.join(map(repr, STUDENT_CHOICES))}")
    return name


def use_schedule(opt, choice):
    """Set `opt`'s schedule fields (n_epochs, sample_interval, checkpoint_interval, train_subset) for the
    schedule in force (``chosen_schedule(choice)``); return its name."""
    name = chosen_schedule(choice)
    for key, value in SCHEDULES[name].settings().items():
        setattr(opt, key, value)
    return name
