"""cgan_lib.schedules: the student's choice, the environment's override, and nbgrader's own schedule."""
from types import SimpleNamespace

import pytest

from cgan_lib.schedules import SCHEDULES, STUDENT_CHOICES, chosen_schedule, use_schedule


@pytest.fixture
def environment(monkeypatch):
    monkeypatch.delenv("CGAN_SCHEDULE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return monkeypatch


def test_the_choice_is_used_when_nothing_overrides_it(environment):
    for name in STUDENT_CHOICES:
        assert chosen_schedule(name) == name


def test_the_environment_variable_overrides_the_choice(environment):
    environment.setenv("CGAN_SCHEDULE", "standard")
    assert chosen_schedule("quick") == "standard"
    environment.setenv("CGAN_SCHEDULE", "")
    assert chosen_schedule("quick") == "quick"  # set but empty: no override


@pytest.mark.parametrize("override", [None, "full"])
@pytest.mark.parametrize("choice", ["quick", "full", "no such schedule"])
def test_nbgrader_always_grades_with_its_own_schedule(environment, choice, override):
    environment.setenv("NBGRADER_EXECUTION", "autograde")
    if override:
        environment.setenv("CGAN_SCHEDULE", override)
    assert chosen_schedule(choice) == "grading"


def test_an_unknown_name_is_refused_listing_the_choices(environment):
    with pytest.raises(ValueError, match=r"SCHEDULE is 'fast'; choose one of 'quick', 'standard', 'full'"):
        chosen_schedule("fast")
    environment.setenv("CGAN_SCHEDULE", "slow")
    with pytest.raises(ValueError, match=r"environment variable CGAN_SCHEDULE is 'slow'"):
        chosen_schedule("quick")


def test_use_schedule_sets_the_fields_of_opt(environment):
    opt = SimpleNamespace(lr=0.0002, n_epochs=200)
    assert use_schedule(opt, "quick") == "quick"
    assert (opt.n_epochs, opt.sample_interval, opt.checkpoint_interval, opt.train_subset) == (4, 1, 1, None)
    assert opt.lr == 0.0002  # nothing else changes
    environment.setenv("NBGRADER_EXECUTION", "validate")
    assert use_schedule(opt, "full") == "grading" and opt.n_epochs == SCHEDULES["grading"].n_epochs


def test_the_schedules_students_choose_train_on_every_image_and_save_two_checkpoints_or_more():
    for name in STUDENT_CHOICES:
        schedule = SCHEDULES[name]
        assert schedule.train_subset is None and schedule.eval_per_class == 1000
        assert schedule.n_epochs // schedule.checkpoint_interval >= 2  # a first and a last to compare
        assert schedule.n_epochs % schedule.sample_interval == 0  # the last epoch's grid is shown
    assert SCHEDULES["full"].n_epochs == 200  # the original exercise
    assert SCHEDULES["quick"].n_epochs < SCHEDULES["standard"].n_epochs < SCHEDULES["full"].n_epochs
    assert SCHEDULES["grading"].describe() == "2 epochs over 2,000 images"
