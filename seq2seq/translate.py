"""Translator: load a model directory and translate lists of sentences.

This module is on the start-up path of `seq2seq-translate`: it imports torch, sentencepiece and
safetensors, and nothing heavier (no `datasets`, no sacrebleu, no plotting).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from seq2seq.data import pad_sources
from seq2seq.search import Hypothesis, beam_search, sample

log = logging.getLogger("seq2seq")

Mode = Literal["beam", "sample"]
Precision = Literal["fp32", "bf16", "int8"]
PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class Translation:
    text: str
    score: float  # log-probability after the length penalty
    tokens: list[str]  # target subwords, without EOS


@dataclass(frozen=True)
class SearchOptions:
    """How to search: beam search (K, n-best, length penalty) or sampling (temperature, top-k, seed)."""

    beam_size: int = 5
    nbest: int = 1
    length_penalty: float = 1.0
    max_len_ratio: float = 2.0
    mode: Mode = "beam"
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0
    early_stop: bool = True


def decode_sources(model, sources: list[np.ndarray], device: torch.device, options: SearchOptions, batch_size: int = 64) -> list[list[Hypothesis]]:
    """Search for each source (token ids without EOS) in batches of similar length; results in input order."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]), reverse=True)
    results: list[list[Hypothesis]] = [[] for _ in sources]
    o = options
    generator = torch.Generator(device=device).manual_seed(o.seed) if o.mode == "sample" else None
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        src, src_len = pad_sources([sources[i] for i in chunk])
        src, src_len = src.to(device), src_len.to(device)
        if o.mode == "beam":
            hyps = beam_search(model, src, src_len, o.beam_size, max_len_ratio=o.max_len_ratio, length_penalty=o.length_penalty, nbest=o.nbest,
                               early_stop=o.early_stop)
        elif o.mode == "sample":
            hyps = sample(model, src, src_len, temperature=o.temperature, top_k=o.top_k, nbest=o.nbest, max_len_ratio=o.max_len_ratio, generator=generator)
        else:
            raise ValueError(f"mode must be one of beam, sample; got {o.mode!r}")
        for i, h in zip(chunk, hyps):
            results[i] = h
    return results


class Translator:
    """A loaded model directory: `Translator.from_pretrained(DIR).translate(["A man is sleeping."])`."""

    def __init__(self, model, tokenizer, config, meta: dict, model_dir: Path, device: torch.device):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.meta = meta
        self.model_dir = model_dir
        self.device = device
        self.max_len = config.data.max_len

    @classmethod
    def from_pretrained(cls, model_dir: str | Path | list[str | Path], device: str = "auto", precision: Precision = "fp32") -> Translator:
        """Load a model directory, or a list of them to translate as an ensemble (they must share a
        tokenizer: e.g. runs of one recipe with different seeds, or checkpoints of one run).

        precision: fp32 (as trained), bf16 (weights and activations; fast on CUDA and on CPUs with
        bf16 instructions) or int8 (dynamic quantization of the LSTM and linear layers; CPU only).
        Both trade a little accuracy for speed: check BLEU on a validation set.
        """
        from seq2seq.checkpoint import CheckpointError, load_model_dir
        from seq2seq.model import Ensemble

        if device not in ("auto", "cpu", "cuda") and not str(device).startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N; got {device!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        resolved = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
        if precision == "int8" and resolved.type != "cpu":
            raise ValueError("precision int8 is for translating on the CPU; on CUDA use bf16")
        dirs = [Path(d) for d in model_dir] if isinstance(model_dir, (list, tuple)) else [Path(model_dir)]
        if not dirs:
            raise ValueError("model_dir is an empty list; give one model directory or several for an ensemble")
        model, config, tokenizer, meta = load_model_dir(dirs[0], resolved)
        if len(dirs) == 1:
            return cls(with_precision(model, precision), tokenizer, config, {**meta, "precision": precision}, dirs[0], resolved)
        models, max_len = [with_precision(model, precision)], config.data.max_len
        for other in dirs[1:]:
            other_model, other_config, _, other_meta = load_model_dir(other, resolved)
            if other_meta["tokenizer_sha256"] != meta["tokenizer_sha256"]:
                raise CheckpointError(f"{other} has a different tokenizer from {dirs[0]}; an ensemble needs models trained with one SentencePiece model")
            models.append(with_precision(other_model, precision))
            max_len = min(max_len, other_config.data.max_len)
        translator = cls(Ensemble(models).eval(), tokenizer, config, {**meta, "precision": precision, "ensemble": [str(d) for d in dirs]}, dirs[0], resolved)
        translator.max_len = max_len
        return translator

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Copy the model directory to `out_dir` (weights, config, tokenizer, metadata, card)."""
        from seq2seq.checkpoint import CARD, FIXED_META, save_model_dir

        if "ensemble" in self.meta:
            raise ValueError("an ensemble has no single model directory to save; average checkpoints of one run with seq2seq-average instead")
        if self.meta["precision"] != "fp32":
            raise ValueError(f"this Translator runs in {self.meta['precision']}; save from one loaded with precision='fp32'")
        out_dir = Path(out_dir)
        if out_dir.resolve() == self.model_dir.resolve():
            return
        card = (self.model_dir / CARD).read_text(encoding="utf-8") if (self.model_dir / CARD).is_file() else ""
        extra = {k: v for k, v in self.meta.items() if k not in FIXED_META and k != "precision"}
        save_model_dir(out_dir, self.model, self.config, self.model_dir, extra, card)

    def translate(
        self,
        sentences: list[str],
        beam_size: int = 5,
        batch_size: int = 64,
        length_penalty: float = 1.0,
        max_len_ratio: float = 2.0,
        early_stop: bool = True,
    ) -> list[str]:
        """Translate each sentence (best hypothesis); empty or blank sentences give ''."""
        hyps = self.translate_nbest(sentences, beam_size, 1, batch_size, length_penalty, max_len_ratio, early_stop=early_stop)
        return [h[0].text for h in hyps]

    def translate_nbest(
        self,
        sentences: list[str],
        beam_size: int = 5,
        nbest: int = 5,
        batch_size: int = 64,
        length_penalty: float = 1.0,
        max_len_ratio: float = 2.0,
        mode: Mode = "beam",
        temperature: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        early_stop: bool = True,
    ) -> list[list[Translation]]:
        """The `nbest` best translations of each sentence with their scores, best first.

        mode="sample" draws `nbest` samples at `temperature` (from the `top_k` most likely tokens
        when top_k > 0) instead of searching. early_stop=False keeps searching a sentence until
        beam_size hypotheses have ended (see `beam_search`).
        """
        _check_sentences(sentences)
        for name, value, lo in (("beam_size", beam_size, 1), ("nbest", nbest, 1), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{name} must be an integer >= {lo}; got {value!r}")
        if mode == "beam" and nbest > beam_size:
            raise ValueError(f"nbest ({nbest}) cannot exceed beam_size ({beam_size}); raise beam_size")
        if mode not in ("beam", "sample"):
            raise ValueError(f"mode must be one of beam, sample; got {mode!r}")
        if mode == "sample" and not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature!r}")

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
            options = SearchOptions(beam_size, nbest, length_penalty, max_len_ratio, mode, temperature, top_k, seed, early_stop)
            hyps = decode_sources(self.model, pieces, self.device, options, batch_size)
        out: list[list[Translation]] = [[Translation("", 0.0, [])] for _ in sentences]
        joined: dict[int, list[list[Hypothesis]]] = {}
        for i, h in zip(owner, hyps):
            joined.setdefault(i, []).append(h)
        for i, parts in joined.items():
            out[i] = self._join(parts) if len(parts) > 1 else [self._to_translation(h) for h in parts[0]]
        return out

    def _to_translation(self, h: Hypothesis) -> Translation:
        return Translation(self.tokenizer.decode_tgt([h.tokens])[0], h.score, self.tokenizer.tgt_pieces(h.tokens))

    def _join(self, parts: list[list[Hypothesis]]) -> list[Translation]:
        """The best hypotheses of a sentence's pieces, concatenated (an n-best of one)."""
        tokens = [t for p in parts for t in p[0].tokens]
        return [Translation(self.tokenizer.decode_tgt([tokens])[0], sum(p[0].score for p in parts), self.tokenizer.tgt_pieces(tokens))]


def with_precision(model: torch.nn.Module, precision: Precision) -> torch.nn.Module:
    """The model in the precision translation runs in (see Translator.from_pretrained)."""
    if precision == "fp32":
        return model
    elif precision == "bf16":
        return model.to(torch.bfloat16)
    elif precision == "int8":
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deprecated.*")  # torch's note on quantized tensors; the kernels work
            return quantize_dynamic(model, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8)
    else:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")


def _check_sentences(sentences: object) -> None:
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of strings, not a single string: pass [sentence]")
    if sentences is None or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a list of strings; got {type(sentences).__name__}")
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"sentences[{i}] must be a str; got {type(s).__name__}")

