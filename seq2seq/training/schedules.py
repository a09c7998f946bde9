"""The optimizer, the learning rate, and the limits that end a run.

`LearningRate` is built once from the recipe and is the only code that sets the optimizer's
rate. Schedules: plateau (lowered on a validation BLEU plateau, after an optional warmup),
warmup_decay (linear warmup, then inverse square root), linear (warmup, then a straight line to
train.min_lr at the end of the run) and constant (after an optional warmup).

`stop_reason` is when a run stops, and why: train.epochs, train.max_steps, train.max_minutes
and early stopping (train.patience). The only other way out is a signal, which the loop honours
at the next step boundary.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from seq2seq.config import TrainConfig
from seq2seq.training.progress import Progress


def new_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Adam:
    # fused: one kernel over all parameters instead of a dozen passes (3 ms a step for en-de on the CPU, not 9).
    return torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, fused=True)


class LearningRate:
    """The rate of every step, by one of three mechanisms that train.scheduler chooses once:

    - a per-step schedule (`make_warmup_schedule`), moved on after every step: warmup then
      inverse square root (warmup_decay), or warmup alone (plateau, constant);
    - a validation schedule (`make_plateau_schedule`, plateau only), moved on after every
      validation: the rate drops by train.plateau_factor when BLEU stops improving;
    - `linear_lr`, computed afresh before every step from where the run stands, with no state.

    The two schedules' states go into training_state.pt as "warmup" and "plateau".
    """

    def __init__(self, optimizer: torch.optim.Optimizer, tc: TrainConfig):
        self.optimizer, self.tc = optimizer, tc
        self.per_step = make_warmup_schedule(optimizer, tc)
        self.plateau = make_plateau_schedule(optimizer, tc)

    def at_step(self, progress: Progress, train_seconds: float, batches_per_epoch: int | None) -> float:
        """Set the rate of the step the run is about to take (linear) and return it."""
        if self.tc.scheduler == "linear":
            set_lr(self.optimizer, linear_lr(self.tc, progress, train_seconds, batches_per_epoch))
        return self.optimizer.param_groups[0]["lr"]

    def after_step(self) -> None:
        """Move the per-step schedule on, skipped steps included (it counts steps, not updates)."""
        if self.per_step is not None:
            self.per_step.step()

    def after_validation(self, bleu: float) -> None:
        if self.plateau is not None:
            self.plateau.step(bleu)

    def state_dict(self) -> dict[str, Any]:
        return {
            "warmup": self.per_step.state_dict() if self.per_step is not None else {},
            "plateau": self.plateau.state_dict() if self.plateau is not None else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the schedules' states; an empty one (the run had another scheduler) leaves a schedule fresh."""
        if self.per_step is not None and state["warmup"]:
            self.per_step.load_state_dict(state["warmup"])
        if self.plateau is not None and state["plateau"]:
            self.plateau.load_state_dict(state["plateau"])


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


def stop_reason(progress: Progress, tc: TrainConfig, train_seconds: float) -> str | None:
    """Why a run at `progress` stops under the recipe's (possibly changed) limits, or None to go on.

    `train_seconds`: the training time train.max_minutes counts; after a step, the loop adds the
    last validation's duration, so the final validation still fits in the budget.
    """
    if tc.max_steps and progress.step >= tc.max_steps:
        return f"train.max_steps={tc.max_steps} reached"
    if progress.epoch > tc.epochs or (progress.epoch == tc.epochs and progress.epoch_complete):
        return f"train.epochs={tc.epochs} done"
    if tc.max_minutes and train_seconds >= 60 * tc.max_minutes:
        return f"train.max_minutes={tc.max_minutes:g} spent"
    if tc.patience and progress.bad_evals >= tc.patience:
        return f"early stopping: no BLEU improvement in {tc.patience} validations (train.patience)"
    return None
