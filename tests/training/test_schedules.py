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
    from seq2seq.training.progress import Progress
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
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=6", "train.scheduler=warmup_decay", "train.warmup_steps=3", "train.lr=1e-3", "train.log_every=1"))
    assert lrs == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3 * math.sqrt(3 / 4), 1e-3 * math.sqrt(3 / 5), 1e-3 * math.sqrt(3 / 6)])
    # metrics.jsonl records the rate each step trained at, not the next step's.
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in logged if r["type"] == "train"] == pytest.approx(lrs)


@pytest.mark.slow
def test_plateau_schedule_halves_the_rate_when_bleu_stops_improving(tmp_path, demo_dir, monkeypatch):
    from seq2seq.training import validation

    bleus = iter([10.0, 9.0, 9.0, 12.0, 11.0])
    monkeypatch.setattr(validation, "evaluate", lambda *args, **kwargs: {"loss": 1.0, "ppl": math.e, "bleu": next(bleus), "bleu_signature": "scripted"})
    train(
        tiny_config(
            tmp_path,
            demo_dir,
            "train.max_steps=5",
            "train.eval_every=1",
            "train.log_every=1",
            "train.lr=1e-3",
            "train.scheduler=plateau",
            "train.plateau_patience=0",
            "train.plateau_factor=0.5",
            "train.patience=0",
        )
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r["type"] == "train"]
    # Step k trains after validation k - 1: 10 (best), 9 and 9 (no better: halve, halve), 12 (best), 11.
    assert lrs == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2.5e-4])


def test_stop_reason_names_the_limit():
    from seq2seq.config import TrainConfig
    from seq2seq.training.progress import Progress
    from seq2seq.training.schedules import stop_reason

    tc = TrainConfig(epochs=3, max_steps=100, max_minutes=2, patience=2)
    assert stop_reason(Progress(step=10, epoch=2), tc, 60.0) is None
    assert stop_reason(Progress(step=100, epoch=2), tc, 60.0) == "train.max_steps=100 reached"
    assert stop_reason(Progress(step=10, epoch=3, epoch_complete=True), tc, 60.0) == "train.epochs=3 done"
    assert stop_reason(Progress(step=10, epoch=4), tc, 60.0) == "train.epochs=3 done"  # a resumed run whose epochs were lowered
    assert stop_reason(Progress(step=10, epoch=2), tc, 120.0) == "train.max_minutes=2 spent"
    assert stop_reason(Progress(step=10, epoch=2, bad_evals=2), tc, 60.0).startswith("early stopping")
    assert stop_reason(Progress(step=10**6, epoch=2, bad_evals=9), TrainConfig(epochs=3, patience=0), 1e9) is None  # 0: no limit


@pytest.mark.parametrize("scheduler, warmup", [("plateau", 0), ("plateau", 2), ("warmup_decay", 2), ("linear", 2), ("constant", 0)])
def test_learning_rate_sets_the_rate_and_restores_its_state(scheduler, warmup):
    """Only LearningRate moves the optimizer's rate; a new one loaded with its state goes on at the same rates."""
    from seq2seq.config import TrainConfig
    from seq2seq.training.progress import Progress
    from seq2seq.training.schedules import LearningRate

    tc = TrainConfig(scheduler=scheduler, warmup_steps=warmup, lr=1e-3, min_lr=0.0, max_steps=8, plateau_patience=0)

    def rates(lr, progress, steps):
        out = []
        for _ in range(steps):
            out.append(lr.at_step(progress, 0.0, None))
            lr.optimizer.step()
            progress.count_step(progress.step, False, loss_sum=1.0, tokens=1, skipped=False)
            lr.after_step()
            lr.after_validation(1.0)  # never better than the first: the plateau schedule lowers the rate
        return out

    def new_lr():
        return LearningRate(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=tc.lr), tc)

    whole = rates(new_lr(), Progress(), 6)
    first, progress = new_lr(), Progress()
    head = rates(first, progress, 3)
    resumed = new_lr()
    resumed.optimizer.load_state_dict(first.optimizer.state_dict())
    resumed.load_state_dict(first.state_dict())
    assert head + rates(resumed, progress, 3) == whole
    assert len(set(whole)) > 1 or scheduler == "constant"
