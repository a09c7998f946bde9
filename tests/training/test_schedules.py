"""Learning-rate schedules (seq2seq/training/schedules.py): the linear schedule reaches min_lr at the first limit,
of steps, epochs or time; warmup then inverse-square-root decay; reduce-on-plateau on validation BLEU."""

import json
import math

import pytest
import torch

from seq2seq.training.loop import train

from conftest import tiny_config


def test_linear_schedule_reaches_min_lr_at_the_first_limit():
    from seq2seq.config import TrainConfig
    from seq2seq.training.resume import Progress
    from seq2seq.training.schedules import linear_lr

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


def test_warmup_decay_rises_linearly_then_decays_as_the_inverse_square_root():
    from seq2seq.config import TrainConfig
    from seq2seq.training.schedules import make_warmup_schedule

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    schedule = make_warmup_schedule(optimizer, TrainConfig(scheduler="warmup_decay", lr=1e-3, warmup_steps=4))
    lrs = []
    for _ in range(16):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[:4] == pytest.approx([0.25e-3, 0.5e-3, 0.75e-3, 1e-3])  # step s (from 0) trains at lr * (s + 1) / warmup
    assert lrs[3:] == pytest.approx([1e-3 * math.sqrt(4 / n) for n in range(4, 17)])  # then lr * sqrt(warmup / (s + 1))
    assert lrs[15] == pytest.approx(lrs[3] / 2)  # four times the steps, half the rate


def record_step_lrs(monkeypatch):
    """The learning rate of every optimizer step of the next run, as the optimizer applies it."""
    from seq2seq.training import setup as preparation

    real_new_optimizer, lrs = preparation.new_optimizer, []

    def recording_optimizer(*args, **kwargs):
        optimizer = real_new_optimizer(*args, **kwargs)
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
        return optimizer

    monkeypatch.setattr(preparation, "new_optimizer", recording_optimizer)
    return lrs


@pytest.mark.slow
def test_warmup_decay_in_training_steps_every_update(tmp_path, demo_dir, monkeypatch):
    lrs = record_step_lrs(monkeypatch)
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=6", "train.scheduler=warmup_decay", "train.warmup_steps=3", "train.lr=1e-3",
                      "train.log_every=1"))
    assert lrs == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3 * math.sqrt(3 / 4), 1e-3 * math.sqrt(3 / 5), 1e-3 * math.sqrt(3 / 6)])
    # metrics.jsonl records the rate each step trained at, not the next step's.
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in logged if r["type"] == "train"] == pytest.approx(lrs)


@pytest.mark.slow
def test_plateau_schedule_halves_the_rate_when_bleu_stops_improving(tmp_path, demo_dir, monkeypatch):
    from seq2seq.training import validation

    bleus = iter([10.0, 9.0, 9.0, 12.0, 11.0])
    monkeypatch.setattr(validation, "evaluate", lambda *args, **kwargs: {"loss": 1.0, "ppl": math.e, "bleu": next(bleus), "bleu_signature": "scripted"})
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=5", "train.eval_every=1", "train.log_every=1", "train.lr=1e-3",
                      "train.scheduler=plateau", "train.plateau_patience=0", "train.plateau_factor=0.5", "train.patience=0"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r["type"] == "train"]
    # Step k trains after validation k - 1: 10 (best), 9 and 9 (no better: halve, halve), 12 (best), 11.
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2.5e-4])
