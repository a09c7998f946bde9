"""The two ways a Translator searches: torch over a model directory (or an ensemble of them), and
onnxruntime over an exported directory. `Translator.from_pretrained` picks one; each method of the
Translator asks its backend, so a third backend is one more class here, not a branch in every method.

This module imports neither torch nor onnxruntime: `TorchBackend.load` imports torch and
`ExportedBackend.load` onnxruntime, so the exported path runs where torch is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from seq2seq.decoding.hypotheses import Hypothesis
from seq2seq.modeldir.meta import CheckpointError, ModelMeta, TrainingRecord
from seq2seq.options import Precision, SearchOptions
from seq2seq.tokenizer import Tokenizer

if TYPE_CHECKING:
    import torch

    from seq2seq.config import Config
    from seq2seq.export.runtime import ExportedModel


@dataclass(frozen=True)
class Loaded:
    """What loading gives a Translator besides the backend: the tokenizer, the first model's meta.json,
    the precision it runs in, and the source tokens per piece (longer sentences are translated in pieces)."""

    tokenizer: Tokenizer
    meta: ModelMeta
    precision: Precision
    max_len: int


@dataclass
class TorchBackend:
    """A model directory searched with torch; several directories: an ensemble (seq2seq.model.Ensemble)."""

    model: torch.nn.Module  # Seq2Seq or Ensemble
    config: Config  # the first model's recipe
    device: torch.device
    precision: Precision
    kind: Literal["torch"] = "torch"

    @classmethod
    def load(cls, dirs: list[Path], device: str, precision: Precision, threads: int, shortlist: bool) -> tuple[TorchBackend, Loaded]:
        """shortlist is for exported directories: a model directory has none."""
        import torch

        from seq2seq.devices import resolve_device
        from seq2seq.model import Ensemble
        from seq2seq.model.precision import with_precision
        from seq2seq.modeldir.checkpoint import load_model_dir

        if threads:
            torch.set_num_threads(threads)
        resolved = resolve_device(device)
        if precision == "int8" and resolved.type != "cpu":
            raise ValueError("precision int8 is for translating on the CPU; on CUDA use bf16")
        model, config, tokenizer, meta = load_model_dir(dirs[0], resolved)
        models, max_len = [with_precision(model, precision)], config.data.max_len
        for other in dirs[1:]:
            other_model, other_config, _, other_meta = load_model_dir(other, resolved)
            if other_meta.tokenizer_sha256 != meta.tokenizer_sha256:
                raise CheckpointError(f"{other} has a different tokenizer from {dirs[0]}; an ensemble needs models trained with one SentencePiece model")
            models.append(with_precision(other_model, precision))
            max_len = min(max_len, other_config.data.max_len)
        searched = models[0] if len(models) == 1 else Ensemble(models).eval()
        return cls(searched, config, resolved, precision), Loaded(tokenizer, meta, precision, max_len)

    def decode(self, pieces: list[np.ndarray], options: SearchOptions, batch_size: int, prefixes: list[list[int] | None] | None) -> list[list[Hypothesis]]:
        import torch

        from seq2seq.decoding.torch_search import decode_sources

        with torch.inference_mode():
            return decode_sources(self.model, pieces, self.device, options, batch_size, prefixes=prefixes)

    def emittable(self) -> np.ndarray | None:
        """(V,) True for the target ids the model (or any model of an ensemble) can output; None: every id."""
        import torch

        from seq2seq.model import Ensemble

        masks = [m.decoder.output_mask for m in (self.model.models if isinstance(self.model, Ensemble) else [self.model])]
        return None if any(mask is None for mask in masks) else torch.stack(masks).any(0).cpu().numpy()

    def check_attention(self, options: SearchOptions, model_dir: Path) -> None:
        """Raise ValueError, saying what to do, where `best_with_attention` cannot give weights."""
        if options.mode != "beam":
            raise ValueError("attention weights come from beam search; use mode='beam'")
        if not self.model.has_attention:
            raise ValueError(
                f"{model_dir} was trained with attention: none, so it has no attention weights; use a model trained with attention: luong or bahdanau"
            )

    def best_with_attention(self, ids: list[int], options: SearchOptions) -> Hypothesis:
        """The best hypothesis for one source (token ids without EOS), with its attention weights (T, S)."""
        import torch

        from seq2seq.data.batching import pad_sources
        from seq2seq.decoding.torch_search import search

        src, src_len = pad_sources([np.asarray(ids, dtype=np.int64)])
        with torch.inference_mode():
            return search(self.model, src.to(self.device), src_len.to(self.device), options, return_attention=True)[0][0]

    def save(self, out_dir: Path, model_dirs: list[Path], record: TrainingRecord | None) -> None:
        """Write the model directory to out_dir (weights, config, tokenizer, metadata, card)."""
        from seq2seq.modeldir.checkpoint import save_model_dir

        if len(model_dirs) > 1:
            raise ValueError("an ensemble has no single model directory to save; average checkpoints of one run with seq2seq-average instead")
        if self.precision != "fp32":
            raise ValueError(f"this Translator runs in {self.precision}; save from one loaded with precision='fp32'")
        if out_dir.resolve() != model_dirs[0].resolve():
            save_model_dir(out_dir, self.model, self.config, tokenizer_dir=model_dirs[0], record=record)


@dataclass
class ExportedBackend:
    """An exported directory (seq2seq-export) searched with onnxruntime and numpy, on the CPU, in the
    precision it was exported in; export.json is `model.meta`."""

    model: ExportedModel
    config: None = None  # the graphs carry what they need; the recipe is not read
    device: str = "cpu"
    kind: Literal["exported"] = "exported"

    @classmethod
    def load(cls, dirs: list[Path], device: str, precision: Precision, threads: int, shortlist: bool) -> tuple[ExportedBackend, Loaded]:
        from seq2seq.export.runtime import load_exported

        if len(dirs) > 1:
            raise CheckpointError("an exported model cannot join an ensemble; give one exported directory, or the model directories to ensemble with torch")
        if device not in ("auto", "cpu"):
            raise ValueError(f"an exported model runs on the CPU (onnxruntime); got device {device!r}: use cpu, or the model directory on CUDA")
        model, tokenizer, meta, export_meta = load_exported(dirs[0], threads, shortlist=shortlist)
        exported = "int8" if export_meta.quantize == "int8" else "fp32"
        if precision not in ("fp32", exported):
            raise ValueError(f"{dirs[0]} was exported in {exported}; its precision is chosen by seq2seq-export --quantize, not by precision={precision!r}")
        return cls(model), Loaded(tokenizer, meta, exported, export_meta.max_len)

    def decode(self, pieces: list[np.ndarray], options: SearchOptions, batch_size: int, prefixes: list[list[int] | None] | None) -> list[list[Hypothesis]]:
        from seq2seq.decoding.numpy_search import decode_sources

        return decode_sources(self.model, pieces, options, batch_size, prefixes=prefixes)

    def emittable(self) -> np.ndarray | None:
        """(V,) True for the target ids the exported model can output (export.json's output_ids); None: every id."""
        meta = self.model.meta
        if meta.output_ids is None:
            return None
        emittable = np.zeros(meta.tgt_vocab_size, dtype=bool)
        emittable[list(meta.output_ids)] = True
        return emittable

    def check_attention(self, options: SearchOptions, model_dir: Path) -> None:
        raise ValueError(f"{model_dir} is an exported model, whose runtime does not return attention weights; use the model directory")

    def best_with_attention(self, ids: list[int], options: SearchOptions) -> Hypothesis:
        raise ValueError("an exported model's runtime does not return attention weights; use the model directory")

    def save(self, out_dir: Path, model_dirs: list[Path], record: TrainingRecord | None) -> None:
        raise ValueError("an exported model directory is saved by copying it (all its files); save_pretrained writes model directories")


Backend = TorchBackend | ExportedBackend
