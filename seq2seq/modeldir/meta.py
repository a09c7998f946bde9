"""What a model directory is: its file names, `ModelMeta` (meta.json) with the `TrainingRecord`, and
`CheckpointError`. Imports nothing heavy: the exported runtime, the card and the server read these
without torch or the recipe."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
META = "meta.json"
CARD = "README.md"


class CheckpointError(ValueError):
    """A model directory cannot be loaded; the message says what is wrong and what to do."""


@dataclass(frozen=True, kw_only=True)
class TrainingRecord:
    """What training records about a model: where the run stood and how the model scored."""

    step: int
    epoch: int
    num_parameters: int
    train_seconds: float
    valid_bleu: float | None = None
    valid_bleu_signature: str | None = None
    test_bleu: float | None = None
    test_bleu_signature: str | None = None
    test_beam_size: int | None = None
    averaged_from: tuple[str, ...] | None = None  # the checkpoints whose weights were averaged into this model
    init_from_weights_sha256: str | None = None  # fine-tuned (train.init_from): the SHA-256 of the weights it started from

    def without_scores(self) -> TrainingRecord:
        """The run's position without the scores, which belong to other weights (e.g. before averaging)."""
        return TrainingRecord(
            step=self.step,
            epoch=self.epoch,
            num_parameters=self.num_parameters,
            train_seconds=self.train_seconds,
            init_from_weights_sha256=self.init_from_weights_sha256,
        )


@dataclass(frozen=True, kw_only=True)
class ModelMeta:
    """meta.json: what the directory's files are (written by `save_model_dir` from the files
    themselves) and, for a trained model, its `TrainingRecord`. In the file both are one flat object."""

    format_version: int
    package_version: str
    src_lang: str
    tgt_lang: str
    tokenizer_files: tuple[str, ...]
    tokenizer_sha256: str
    special_ids: dict[str, int]
    weights_sha256: str
    training: TrainingRecord | None = None

    def to_json(self) -> str:
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "training"}
        flat["tokenizer_files"] = list(self.tokenizer_files)
        if self.training is not None:
            flat.update({k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.training).items() if v is not None})
        return json.dumps(flat, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, flat: dict[str, Any], where: Path) -> ModelMeta:
        own = {f.name for f in fields(cls)} - {"training"}
        missing = sorted(own - set(flat))
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(missing)}; it was not written by seq2seq (re-run training or copy the whole model directory)")
        record_keys = {f.name for f in fields(TrainingRecord)}
        record = {k: v for k, v in flat.items() if k in record_keys}
        if record.get("averaged_from") is not None:
            record["averaged_from"] = tuple(record["averaged_from"])
        values = {k: flat[k] for k in own}
        values["tokenizer_files"] = tuple(values["tokenizer_files"])
        return cls(**values, training=TrainingRecord(**record) if record else None)
