"""Translator: load a model directory and translate lists of sentences.

This module is on the start-up path of `seq2seq-translate`: it imports torch, sentencepiece and
safetensors, and nothing heavier (no `datasets`, no sacrebleu, no plotting, no training code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seq2seq.batching import pad_sources
from seq2seq.checkpoint import CheckpointError, ModelMeta, load_model_dir, save_model_dir
from seq2seq.config import Config
from seq2seq.devices import resolve_device
from seq2seq.model import Ensemble
from seq2seq.model.precision import with_precision
from seq2seq.options import BATCH_SIZE, PRECISIONS, Precision, SearchOptions
from seq2seq.search import Hypothesis, decode_sources, search
from seq2seq.tokenizer import Tokenizer

log = logging.getLogger("seq2seq")


@dataclass(frozen=True)
class Translation:
    text: str
    score: float  # log-probability after the length penalty
    tokens: list[str]  # target subwords, without EOS


@dataclass(frozen=True)
class Attention:
    """The best translation of one sentence and where the decoder looked while writing it."""

    text: str
    source: list[str]  # source subwords and the </s> the model appends: S labels
    target: list[str]  # target subwords and the final </s>: T labels
    weights: list[list[float]]  # (T, S): each row sums to 1


class Translator:
    """A loaded model directory: `Translator.from_pretrained(DIR).translate(["A man is sleeping."])`.

    `meta` is the first model's metadata; `precision` and `model_dirs` say how it was loaded
    (several directories: an ensemble).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Tokenizer,
        config: Config,
        meta: ModelMeta,
        *,
        model_dirs: list[Path],
        device: torch.device,
        precision: Precision,
        max_len: int,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.meta = meta
        self.model_dirs = model_dirs
        self.device = device
        self.precision = precision
        self.max_len = max_len  # source tokens per piece: longer sentences are translated in pieces

    @property
    def model_dir(self) -> Path:
        return self.model_dirs[0]

    @property
    def is_ensemble(self) -> bool:
        return len(self.model_dirs) > 1

    @classmethod
    def from_pretrained(cls, model_dir: str | Path | list[str | Path], device: str = "auto", precision: Precision = "fp32") -> Translator:
        """Load a model directory, or a list of them to translate as an ensemble (they must share a
        tokenizer: e.g. runs of one recipe with different seeds, or checkpoints of one run).

        device: auto, cpu, cuda or cuda:N. precision: fp32 (as trained), bf16 (weights and
        activations; fast on CUDA and on CPUs with bf16 instructions) or int8 (dynamic quantization
        of the LSTM and linear layers; CPU only). Both trade a little accuracy for speed: check
        BLEU on a validation set.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        resolved = resolve_device(device)
        if precision == "int8" and resolved.type != "cpu":
            raise ValueError("precision int8 is for translating on the CPU; on CUDA use bf16")
        dirs = [Path(d) for d in model_dir] if isinstance(model_dir, (list, tuple)) else [Path(model_dir)]
        if not dirs:
            raise ValueError("model_dir is an empty list; give one model directory or several for an ensemble")
        model, config, tokenizer, meta = load_model_dir(dirs[0], resolved)
        models, max_len = [with_precision(model, precision)], config.data.max_len
        for other in dirs[1:]:
            other_model, other_config, _, other_meta = load_model_dir(other, resolved)
            if other_meta.tokenizer_sha256 != meta.tokenizer_sha256:
                raise CheckpointError(f"{other} has a different tokenizer from {dirs[0]}; an ensemble needs models trained with one SentencePiece model")
            models.append(with_precision(other_model, precision))
            max_len = min(max_len, other_config.data.max_len)
        searched = models[0] if len(models) == 1 else Ensemble(models).eval()
        return cls(searched, tokenizer, config, meta, model_dirs=dirs, device=resolved, precision=precision, max_len=max_len)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Copy the model directory to `out_dir` (weights, config, tokenizer, metadata, card)."""
        if self.is_ensemble:
            raise ValueError("an ensemble has no single model directory to save; average checkpoints of one run with seq2seq-average instead")
        if self.precision != "fp32":
            raise ValueError(f"this Translator runs in {self.precision}; save from one loaded with precision='fp32'")
        out_dir = Path(out_dir)
        if out_dir.resolve() == self.model_dir.resolve():
            return
        save_model_dir(out_dir, self.model, self.config, tokenizer_dir=self.model_dir, record=self.meta.training)

    def translate(self, sentences: list[str], options: SearchOptions | None = None, *, batch_size: int = BATCH_SIZE) -> list[str]:
        """The best translation of each sentence; empty or blank sentences give ''."""
        return [hyps[0].text for hyps in self.translate_nbest(sentences, options, batch_size=batch_size)]

    def translate_nbest(self, sentences: list[str], options: SearchOptions | None = None, *, batch_size: int = BATCH_SIZE) -> list[list[Translation]]:
        """The options.nbest best translations of each sentence (beam search) or options.nbest
        samples (mode="sample"), with their scores, best first. Default options: `SearchOptions()`."""
        _check_sentences(sentences)
        options = SearchOptions() if options is None else options
        if not isinstance(options, SearchOptions):
            raise TypeError(f"options must be a SearchOptions; got {type(options).__name__}")

        todo = [i for i, s in enumerate(sentences) if s.strip()]
        encoded = self.tokenizer.encode_src([sentences[i] for i in todo])
        pieces: list[np.ndarray] = []  # over-long sentences are translated in pieces of max_len tokens
        owner: list[int] = []
        for i, ids in zip(todo, encoded):
            if len(ids) > self.max_len:
                log.warning("line %d has %d tokens, more than the model's maximum of %d: translating it in %d pieces",
                            i + 1, len(ids), self.max_len, -(-len(ids) // self.max_len))
            for start in range(0, len(ids), self.max_len):
                pieces.append(np.asarray(ids[start : start + self.max_len], dtype=np.int64))
                owner.append(i)
        with torch.inference_mode():
            hyps = decode_sources(self.model, pieces, self.device, options, batch_size)
        out: list[list[Translation]] = [[Translation("", 0.0, [])] for _ in sentences]
        joined: dict[int, list[list[Hypothesis]]] = {}
        for i, h in zip(owner, hyps):
            joined.setdefault(i, []).append(h)
        for i, parts in joined.items():
            out[i] = self._join(parts) if len(parts) > 1 else [self._to_translation(h) for h in parts[0]]
        return out

    def attention(self, sentence: str, options: SearchOptions | None = None) -> Attention:
        """The best translation of one sentence (what `translate` gives with these options) with its
        attention weights. A model trained with attention 'none', sampling, or a sentence longer than
        the model's maximum (translated in pieces, each with its own weights) raise ValueError."""
        _check_sentences([sentence])
        options = SearchOptions() if options is None else options
        if options.mode != "beam":
            raise ValueError("attention weights come from beam search; use mode='beam'")
        if not self.model.has_attention:
            raise ValueError(f"{self.model_dir} was trained with attention: none, so it has no attention weights")
        if not sentence.strip():
            raise ValueError("the sentence is empty")
        ids = self.tokenizer.encode_src([sentence])[0]
        if len(ids) > self.max_len:
            raise ValueError(f"the sentence has {len(ids)} subwords, more than the model's maximum of {self.max_len}")
        src, src_len = pad_sources([np.asarray(ids, dtype=np.int64)])
        with torch.inference_mode():
            hyp = search(self.model, src.to(self.device), src_len.to(self.device), options, return_attention=True)[0][0]
        return Attention(self.tokenizer.decode_tgt([hyp.tokens])[0], self.tokenizer.src_pieces(sentence) + ["</s>"],
                         self.tokenizer.tgt_pieces(hyp.tokens) + ["</s>"], hyp.attention.float().cpu().tolist())

    def _to_translation(self, h: Hypothesis) -> Translation:
        return Translation(self.tokenizer.decode_tgt([h.tokens])[0], h.score, self.tokenizer.tgt_pieces(h.tokens))

    def _join(self, parts: list[list[Hypothesis]]) -> list[Translation]:
        """The best hypotheses of a sentence's pieces, concatenated (an n-best of one)."""
        tokens = [t for p in parts for t in p[0].tokens]
        return [Translation(self.tokenizer.decode_tgt([tokens])[0], sum(p[0].score for p in parts), self.tokenizer.tgt_pieces(tokens))]


def _check_sentences(sentences: object) -> None:
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings, not a single string: pass [sentence]")
    if sentences is None or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a list of strings; got {type(sentences).__name__}")
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"sentences[{i}] must be a str; got {type(s).__name__}")

