"""Translator: load a model directory (or an exported one) and translate lists of sentences.

This module is on the start-up path of `seq2seq-translate`. It imports no torch itself: a model
directory loads torch, sentencepiece and safetensors when `from_pretrained` reads it, and an
exported directory (seq2seq-export) loads onnxruntime instead, so the exported path works where
torch is not installed. Nothing heavier is ever imported (no `datasets`, no sacrebleu, no
plotting, no training code).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seq2seq.decoding.hypotheses import Hypothesis
from seq2seq.export import is_exported_dir
from seq2seq.inference.backends import Backend, ExportedBackend, TorchBackend
from seq2seq.inference.text import FORMATS, Format, cut_long, plan
from seq2seq.modeldir.hub import resolve_model_dir
from seq2seq.modeldir.meta import ModelMeta
from seq2seq.options import BATCH_SIZE, PRECISIONS, Precision, SearchOptions
from seq2seq.tokenizer import Tokenizer

if TYPE_CHECKING:
    import torch

    from seq2seq.config import Config
    from seq2seq.export.runtime import ExportedModel

log = logging.getLogger("seq2seq")


class PrefixError(ValueError):
    """A forced prefix cannot be used; `index` is its sentence's position in the call."""

    def __init__(self, index: int, message: str):
        self.index = index
        super().__init__(message)


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
    """A loaded model: `Translator.from_pretrained(DIR).translate(["A man is sleeping."])`.

    `backend` searches (seq2seq.inference.backends: torch for a model directory or an ensemble of
    them, onnxruntime for an exported directory); `meta` is the first model's metadata; `precision`
    and `model_dirs` say how it was loaded (several directories: an ensemble).
    """

    def __init__(self, backend: Backend, tokenizer: Tokenizer, meta: ModelMeta, *, model_dirs: list[Path], precision: Precision, max_len: int):
        self.backend = backend
        self.tokenizer = tokenizer
        self.meta = meta
        self.model_dirs = model_dirs
        self.precision = precision
        self.max_len = max_len  # source tokens per piece: longer sentences are translated in pieces

    @property
    def model(self) -> torch.nn.Module | ExportedModel:
        """The searched model: a Seq2Seq or Ensemble (torch), or the onnxruntime `ExportedModel`."""
        return self.backend.model

    @property
    def config(self) -> Config | None:
        """The first model's recipe; None for an exported directory (export.json, in `model.meta`, says what the graphs need)."""
        return self.backend.config

    @property
    def device(self) -> torch.device | str:
        return self.backend.device

    @property
    def model_dir(self) -> Path:
        return self.model_dirs[0]

    @property
    def is_ensemble(self) -> bool:
        return len(self.model_dirs) > 1

    @property
    def is_exported(self) -> bool:
        return self.backend.kind == "exported"

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path | list[str | Path],
        device: str = "auto",
        precision: Precision = "fp32",
        *,
        threads: int = 0,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        shortlist: bool = True,
    ) -> Translator:
        """Load a model directory, or a list of them to translate as an ensemble (they must share a
        tokenizer: e.g. runs of one recipe with different seeds, or checkpoints of one run), or a
        directory written by seq2seq-export (translated with onnxruntime; torch is not imported).

        A string `ORG/NAME` that is not a local path is a model on the Hugging Face Hub: it is
        downloaded into the Hub cache (`cache_dir`, else HF_HUB_CACHE or HF_HOME) at `revision`
        (branch, tag or commit; default main), or read from the cache alone with HF_HUB_OFFLINE=1.
        A local directory always wins over a Hub id (seq2seq.modeldir.hub).

        device: auto, cpu, cuda or cuda:N. precision: fp32 (as trained), bf16 (weights and
        activations, for GPUs and CPUs with bf16 instructions; measure whether it is faster on
        yours) or int8 (dynamic quantization of the LSTM and linear layers; CPU only). Both may cost a
        little accuracy, and whether they are faster depends on the hardware: check BLEU and speed on yours. An exported directory's precision
        is chosen when exporting. threads: CPU threads (0: the library's default; torch's setting is
        process-wide). shortlist: an exported directory's vocabulary shortlist (seq2seq-export
        --shortlist) is used when it has one; False scores the whole vocabulary.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        dirs = [resolve_model_dir(d, revision=revision, cache_dir=cache_dir) for d in (model_dir if isinstance(model_dir, (list, tuple)) else [model_dir])]
        if not dirs:
            raise ValueError("model_dir is an empty list; give one model directory or several for an ensemble")
        kind = ExportedBackend if any(is_exported_dir(d) for d in dirs) else TorchBackend
        backend, loaded = kind.load(dirs, device, precision, threads, shortlist)
        return cls(backend, loaded.tokenizer, loaded.meta, model_dirs=dirs, precision=loaded.precision, max_len=loaded.max_len)

    def save_pretrained(self, out_dir: str | Path) -> None:
        """Copy the model directory to `out_dir` (weights, config, tokenizer, metadata, card)."""
        self.backend.save(Path(out_dir), self.model_dirs, self.meta.training)

    def translate(
        self, sentences: list[str], options: SearchOptions | None = None, *, batch_size: int = BATCH_SIZE, prefixes: list[str | None] | None = None
    ) -> list[str]:
        """The best translation of each sentence; empty or blank sentences give ''. prefixes: see `translate_nbest`."""
        return [hyps[0].text for hyps in self.translate_nbest(sentences, options, batch_size=batch_size, prefixes=prefixes)]

    def translate_text(self, texts: list[str], options: SearchOptions | None = None, *, format: Format = "text", batch_size: int = BATCH_SIZE) -> list[str]:
        """Translate texts that may hold several sentences and line breaks (format "text"), or HTML
        fragments and documents (format "html", markup kept): each text is cut into sentences
        (seq2seq.inference.text.plan), the sentences of all texts are translated in one `translate`
        call, and each text's translations are put back with its whitespace and line breaks. A text
        with no sentence (empty, blank) comes back as it is. Needs the `text` extra (sentencex);
        options.nbest is not used (one translation per text).
        """
        _check_sentences(texts, "texts")
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
        plans = [plan(text, format, language=self.meta.src_lang) for text in texts]
        translations = self.translate([s for p in plans for s in p.sentences], options, batch_size=batch_size)
        out, start = [], 0
        for p in plans:
            out.append(p.join(translations[start : start + len(p.sentences)]))
            start += len(p.sentences)
        return out

    def translate_nbest(
        self, sentences: list[str], options: SearchOptions | None = None, *, batch_size: int = BATCH_SIZE, prefixes: list[str | None] | None = None
    ) -> list[list[Translation]]:
        """The options.nbest best translations of each sentence (beam search) or options.nbest
        samples (mode="sample"), with their scores, best first. Default options: `SearchOptions()`.

        prefixes: None, or one target-language string (or None) per sentence: that sentence's
        translations start with it, tokenized with the target tokenizer, and search continues
        from there; the prefix is part of each translation's text, tokens and score. It is per
        sentence, so it is an argument here rather than a field of the shared `SearchOptions`.
        """
        _check_sentences(sentences)
        options = SearchOptions() if options is None else options
        if not isinstance(options, SearchOptions):
            raise TypeError(f"options must be a SearchOptions; got {type(options).__name__}")
        forced = self._encode_prefixes(prefixes, len(sentences))

        todo = [i for i, s in enumerate(sentences) if s.strip()]
        encoded = self.tokenizer.encode_src([sentences[i] for i in todo])
        pieces: list[np.ndarray] = []  # over-long sentences are translated in pieces of at most max_len tokens
        owner: list[int] = []
        piece_prefixes: list[list[int] | None] = []  # a prefix starts its sentence's first piece
        for i, ids in zip(todo, encoded):
            parts = [ids] if len(ids) <= self.max_len else self._cut(sentences[i])
            if len(parts) > 1:
                log.warning(
                    "line %d has %d tokens, more than the model's maximum of %d: translating it in %d pieces, cut at sentence and clause boundaries where possible",
                    i + 1,
                    len(ids),
                    self.max_len,
                    len(parts),
                )
            for k, part in enumerate(parts):
                pieces.append(np.asarray(part, dtype=np.int64))
                owner.append(i)
                piece_prefixes.append(forced[i] if forced is not None and k == 0 else None)
        hyps = self.backend.decode(pieces, options, batch_size, piece_prefixes if forced is not None else None)
        out: list[list[Translation]] = [[Translation("", 0.0, [])] for _ in sentences]
        joined: dict[int, list[list[Hypothesis]]] = {}
        for i, h in zip(owner, hyps):
            joined.setdefault(i, []).append(h)
        for i, parts in joined.items():
            out[i] = self._join(parts) if len(parts) > 1 else [self._to_translation(h) for h in parts[0]]
        return out

    def _cut(self, sentence: str) -> list[list[int]]:
        """An over-long sentence's pieces as source ids: cut at sentence, then clause boundaries
        (seq2seq.inference.text.cut_long), and a piece still over max_len every max_len tokens."""

        def count(text: str) -> int:
            return len(self.tokenizer.encode_src([text])[0])

        parts = [ids for ids in self.tokenizer.encode_src(cut_long(sentence, self.max_len, count, language=self.meta.src_lang)) if ids]
        return [ids[start : start + self.max_len] for ids in parts for start in range(0, len(ids), self.max_len)]

    def _encode_prefixes(self, prefixes: object, n: int) -> list[list[int] | None] | None:
        """Each sentence's prefix as target ids (None where it has none), or None when no sentence has one."""
        if prefixes is None:
            return None
        if not isinstance(prefixes, (list, tuple)) or len(prefixes) != n:
            raise TypeError(f"prefixes must be a list of one string (or None) per sentence, {n} in all; got {_describe(prefixes)}")
        for i, p in enumerate(prefixes):
            if p is not None and not isinstance(p, str):
                raise TypeError(f"prefixes[{i}] must be a str or None; got {type(p).__name__}")
        forced = [self.tokenizer.encode_tgt([p])[0] if p and p.strip() else None for p in prefixes]
        emittable = self.backend.emittable()
        for i, ids in enumerate(forced):
            if ids and emittable is not None and not bool(emittable[ids].all()):
                bad = [self.tokenizer.tgt_pieces([t])[0] for t in ids if not bool(emittable[t])]
                raise PrefixError(
                    i,
                    f"prefixes[{i}] {prefixes[i]!r} has pieces this model never outputs ({', '.join(bad)}): "
                    "it was trained with model.output_vocab=target; write the prefix in the target language",
                )
        return forced if any(forced) else None

    def attention(self, sentence: str, options: SearchOptions | None = None) -> Attention:
        """The best translation of one sentence (what `translate` gives with these options) with its
        attention weights. A model trained with attention 'none', sampling, or a sentence longer than
        the model's maximum (translated in pieces, each with its own weights) raise ValueError."""
        _check_sentences([sentence])
        options = SearchOptions() if options is None else options
        self.backend.check_attention(options, self.model_dir)
        if not sentence.strip():
            raise ValueError("the sentence is empty; pass the English sentence to translate")
        ids = self.tokenizer.encode_src([sentence])[0]
        if len(ids) > self.max_len:
            raise ValueError(f"the sentence has {len(ids)} subwords, more than the model's maximum of {self.max_len}; use a shorter one")
        hyp = self.backend.best_with_attention(ids, options)
        return Attention(
            self.tokenizer.decode_tgt([hyp.tokens])[0],
            self.tokenizer.src_pieces(sentence) + ["</s>"],
            self.tokenizer.tgt_pieces(hyp.tokens) + ["</s>"],
            hyp.attention.float().cpu().tolist(),
        )

    def _to_translation(self, h: Hypothesis) -> Translation:
        return Translation(self.tokenizer.decode_tgt([h.tokens])[0], h.score, self.tokenizer.tgt_pieces(h.tokens))

    def _join(self, parts: list[list[Hypothesis]]) -> list[Translation]:
        """The best hypotheses of a sentence's pieces, concatenated (an n-best of one)."""
        tokens = [t for p in parts for t in p[0].tokens]
        return [Translation(self.tokenizer.decode_tgt([tokens])[0], sum(p[0].score for p in parts), self.tokenizer.tgt_pieces(tokens))]


def _describe(value: object) -> str:
    return f"{len(value)} entries" if isinstance(value, (list, tuple)) else type(value).__name__


def _check_sentences(sentences: object, name: str = "sentences") -> None:
    if isinstance(sentences, str):
        raise TypeError(f"{name} must be a list of strings, not a single string: pass [{name[:-1]}]")
    if sentences is None or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"{name} must be a list of strings; got {type(sentences).__name__}")
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"{name}[{i}] must be a str; got {type(s).__name__}")
