"""The run's clock (seq2seq/training/clock.py): training time carries over a resume and counts validation;
log windows leave validation and saving out; the last validation's duration is kept free."""

from types import SimpleNamespace

import pytest


@pytest.fixture
def now(monkeypatch):
    from seq2seq.training import clock

    now = [100.0]
    monkeypatch.setattr(clock, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_training_time_counts_validation_but_log_windows_do_not(now):
    from seq2seq.training.clock import RunClock

    clock = RunClock(train_seconds=30.0)  # a resumed run: 30 s before
    now[0] += 5
    assert clock.train_seconds() == 35.0 and clock.budget_seconds() == 35.0
    with clock.aside():
        with clock.evaluation():
            now[0] += 20
        now[0] += 2  # the saves
    now[0] += 3
    assert clock.train_seconds() == 60.0
    assert clock.last_validation_s == 20.0
    assert clock.budget_seconds() == 80.0  # the next validation is expected to take as long
    assert clock.take_window() == 8.0  # 5 + 3 s of training
    now[0] += 1
    assert clock.take_window() == 1.0
