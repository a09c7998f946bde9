"""The loop's own types: the fixed parts of a run, its data, and the one way a run is closed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from seq2seq.config import Config
from seq2seq.data.batching import EncodedSplit
from seq2seq.model import Seq2Seq
from seq2seq.tokenizer import Tokenizer
from seq2seq.training.distributed import Dist, shut_down
from seq2seq.training.reporting import MetricsWriter
from seq2seq.training.schedules import LearningRate


@dataclass(frozen=True)
class TrainingRun:
    """The fixed parts of a run, built once by `start_run` and read by the loop, validation and saving."""

    config: Config
    run_dir: Path
    dist: Dist
    device: torch.device
    model: Seq2Seq
    ddp_model: torch.nn.Module  # what a training step calls: the model, wrapped in DDP when there are several ranks
    optimizer: torch.optim.Optimizer
    lr: LearningRate  # the only code that sets the optimizer's rate
    tokenizer_sha: str
    init_from_sha: str | None  # with train.init_from: the SHA-256 of the weights the run started from
    num_params: int
    writer: MetricsWriter
    bf16: bool  # train.bf16 resolved for this machine (auto: on where it is fast)
    autocast: contextlib.AbstractContextManager  # bf16 autocast, or a context that does nothing


class TrainingData(NamedTuple):
    corpus: dict[str, Any]  # the splits as `datasets` objects; train is an IterableDataset when streaming
    tokenizer: Tokenizer
    train_split: EncodedSplit | None  # None when streaming
    valid_split: EncodedSplit
    valid_refs: list[str]
    train_text: tuple[list[str], list[str]]  # raw training sentences, kept only for subword sampling


def close_run(run: TrainingRun) -> None:
    """Close the metrics writer and leave the process group: every way out of `train` ends here."""
    run.writer.close()
    shut_down(run.dist)
