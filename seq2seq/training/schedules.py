"""The optimizer, the learning-rate schedules, and the limits that end a run.

Schedules: plateau (halve on a validation BLEU plateau, after an optional warmup), warmup_decay
(linear warmup, then inverse square root), linear (warmup, then a straight line to train.min_lr
at the end of the run) and constant.
"""

from __future__ import annotations

import math

import torch

from seq2seq.config import TrainConfig
from seq2seq.training.resume import Progress


def new_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Adam:
    # fused: one kernel over all parameters instead of a dozen passes (3 ms a step for en-de on the CPU, not 9).
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)



def make_warmup_schedule(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Linear warmup, then inverse-square-root decay (warmup_decay); linear warmup alone for
    plateau and constant; nothing for linear, whose `linear_lr` includes its warmup."""
    scheduler = tc.scheduler
    if scheduler == "warmup_decay":
        warm = max(tc.warmup_steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warm, math.sqrt(warm / (s + 1))))
    elif scheduler in ("plateau", "constant"):
        if tc.warmup_steps:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_factor(s, tc.warmup_steps))
        return None
    elif scheduler == "linear":
        return None  # linear_lr sets the rate at every step, from where the run stands
    raise ValueError(f"train.scheduler must be one of plateau, warmup_decay, linear, constant; got {scheduler!r}")



def make_plateau_schedule(optimizer: torch.optim.Optimizer, tc: TrainConfig) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """Lower the rate by train.plateau_factor when validation BLEU stops improving (scheduler: plateau)."""
    if tc.scheduler != "plateau":
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=tc.plateau_factor, patience=tc.plateau_patience, min_lr=tc.min_lr)


def linear_lr(tc: TrainConfig, progress: Progress, seconds: float, batches_per_epoch: int | None) -> float:
    """The `linear` schedule: warmup, then a straight line from train.lr down to train.min_lr at
    the end of the run. The end is the first limit the run will reach: train.max_minutes (so a
    time budget ends with a decayed model, whatever the machine's speed), train.max_steps or
    train.epochs. Computed afresh at every step, so a resumed run needs no scheduler state."""
    done = 0.0
    if tc.max_minutes:
        done = max(done, seconds / (60 * tc.max_minutes))
    if tc.max_steps:
        done = max(done, progress.step / tc.max_steps)
    if batches_per_epoch:
        done = max(done, (progress.epoch - 1 + progress.batch_in_epoch / batches_per_epoch) / tc.epochs)
    return warmup_factor(progress.step, tc.warmup_steps) * (tc.min_lr + (tc.lr - tc.min_lr) * max(0.0, 1.0 - done))



def warmup_factor(step: int, warmup_steps: int) -> float:
    """The learning rate's fraction at `step` of a linear warmup over `warmup_steps` (0: none)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0



def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr



def limits_reached(progress: Progress, tc: TrainConfig) -> bool:
    """Whether a run at `progress` is done under the recipe's (possibly changed) limits."""
    if tc.max_steps and progress.step >= tc.max_steps:
        return True
    if tc.max_minutes and progress.train_seconds >= 60 * tc.max_minutes:
        return True
    if tc.patience and progress.bad_evals >= tc.patience:
        return True
    return progress.epoch > tc.epochs or (progress.epoch == tc.epochs and progress.epoch_complete)
