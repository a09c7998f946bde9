"""What a run reports: metrics.jsonl lines, TensorBoard scalars, the progress bar."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from seq2seq.config import ConfigError


def train_record(*, step: int, epoch: int, loss_sum: float, tokens: int, lr: float, seconds: float, skipped_steps: int) -> dict[str, Any]:
    """The metrics.jsonl record of one log interval: the loss per target token over its `tokens`,
    perplexity, learning rate and target tokens/s over its `seconds`."""
    loss = loss_sum / max(tokens, 1)
    return {
        "type": "train",
        "step": step,
        "epoch": epoch,
        "loss": loss,
        "ppl": math.exp(min(loss, 50)),
        "lr": lr,
        "tgt_tokens_per_s": tokens / max(seconds, 1e-9),
        "skipped_steps": skipped_steps,
    }


class MetricsWriter:
    """metrics.jsonl, one JSON object per line, and TensorBoard scalars when asked for."""

    def __init__(self, path: Path | None, tensorboard_dir: Path | None):
        self.file = open(path, "a", encoding="utf-8") if path is not None else None
        self.tensorboard = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(tensorboard_dir))

    def write(self, record: dict[str, Any]) -> None:
        if self.file is None:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self.tensorboard.add_scalar(f"{record['type']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def metrics_writer(run_dir: Path, tensorboard: bool, enabled: bool) -> MetricsWriter:
    if tensorboard:
        try:
            import tensorboard  # SummaryWriter needs the package
        except ImportError:
            raise ConfigError(
                ["train.tensorboard=true but the tensorboard package is not installed: pip install tensorboard, or set train.tensorboard=false"]
            ) from None
    return MetricsWriter(run_dir / "metrics.jsonl" if enabled else None, run_dir / "tensorboard" if tensorboard and enabled else None)


def progress_bar(total: int | None, desc: str, initial: int = 0, enabled: bool = True, unit: str = "batch"):
    """A tqdm bar on stderr, shown only when stderr is a terminal (never in logs or pipes)."""
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=desc, file=sys.stderr, disable=not (enabled and sys.stderr.isatty()), leave=False, dynamic_ncols=True, unit=unit
    )
