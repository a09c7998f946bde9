"""Learning-rate schedules (seq2seq/schedules.py): the linear schedule reaches
min_lr at the first limit, of steps, epochs or time."""

import json

import pytest

from seq2seq.training import train

from conftest import tiny_config


def test_linear_schedule_reaches_min_lr_at_the_first_limit():
    from seq2seq.config import TrainConfig
    from seq2seq.resume import Progress
    from seq2seq.schedules import linear_lr

    tc = TrainConfig(scheduler="linear", lr=1e-3, min_lr=0.0, epochs=4, max_minutes=10)
    at = Progress(step=0, epoch=1, batch_in_epoch=0)
    assert linear_lr(tc, at, 0.0, 100) == pytest.approx(1e-3)
    assert linear_lr(tc, at, 300.0, 100) == pytest.approx(5e-4)  # half the time budget is gone
    later = Progress(step=250, epoch=3, batch_in_epoch=50)  # 2.5 of 4 epochs
    assert linear_lr(tc, later, 60.0, 100) == pytest.approx(1e-3 * (1 - 2.5 / 4))
    assert linear_lr(tc, later, 900.0, 100) == 0.0  # past the budget: never negative
    warm = TrainConfig(scheduler="linear", lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=100)
    assert linear_lr(warm, Progress(step=4), 0.0, None) == pytest.approx(0.5 * (1e-4 + 9e-4 * 0.96))


@pytest.mark.slow
def test_linear_schedule_in_training_decays_every_step(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=5", "train.scheduler=linear", "train.lr=1e-3", "train.min_lr=0", "train.log_every=1"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r["type"] == "train"]
    assert lrs == pytest.approx([1e-3 * (1 - s / 5) for s in range(5)])
