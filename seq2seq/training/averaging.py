"""A run's kept checkpoints and averaging them.

With train.keep_checkpoints=N, each validation saves a model directory as
RUN_DIR/checkpoints/step-NNNNNNNN and the oldest beyond N are deleted; `seq2seq-average`
averages the newest of them (or any model directories of one run) into a new model directory.
This module is the one that knows that layout.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import torch

from seq2seq.config import Config
from seq2seq.modeldir.checkpoint import load_model_dir, save_model_dir
from seq2seq.modeldir.meta import CheckpointError, ModelMeta, TrainingRecord

CHECKPOINTS = "checkpoints"


def kept_checkpoints(run_dir: Path) -> list[Path]:
    """The run's kept checkpoints, oldest first."""
    return sorted(p for p in (run_dir / CHECKPOINTS).glob("step-*") if p.is_dir())


def keep_checkpoint(run_dir: Path, model: torch.nn.Module, config: Config, record: TrainingRecord, keep: int) -> None:
    """Save this validation's model as checkpoints/step-NNNNNNNN and delete all but the last `keep`."""
    save_model_dir(run_dir / CHECKPOINTS / f"step-{record.step:08d}", model, config, tokenizer_dir=run_dir, record=record)
    for old in kept_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old)


def average_model_dirs(model_dirs: list[Path], out_dir: Path) -> ModelMeta:
    """Average the weights of model directories of one run (same recipe, same tokenizer) into a new
    model directory; return its meta. Checkpoint averaging smooths the last steps' noise."""
    if len(model_dirs) < 2:
        raise CheckpointError(f"averaging needs at least 2 model directories; got {len(model_dirs)}")
    model, config, _, meta = load_model_dir(model_dirs[0])
    params = dict(model.named_parameters())  # tied weights appear once here
    total = {name: p.detach().clone().double() for name, p in params.items()}
    for other_dir in model_dirs[1:]:
        other, other_config, _, other_meta = load_model_dir(other_dir)
        if other_config.model != config.model:
            raise CheckpointError(f"{other_dir} has a different model section from {model_dirs[0]}; only checkpoints of one run can be averaged")
        if other_meta.tokenizer_sha256 != meta.tokenizer_sha256:
            raise CheckpointError(f"{other_dir} has a different tokenizer from {model_dirs[0]}; only checkpoints of one run can be averaged")
        for name, p in other.named_parameters():
            total[name] += p.detach().double()
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(total[name] / len(model_dirs))
    # Training facts (step, epoch, time) of the newest checkpoint; its scores are not the average's.
    newest = other_meta.training
    record = None if newest is None else replace(newest.without_scores(), averaged_from=tuple(str(d) for d in model_dirs))
    return save_model_dir(out_dir, model, config, tokenizer_dir=model_dirs[0], record=record)
