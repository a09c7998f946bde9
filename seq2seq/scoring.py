"""Corpus-level evaluation of detokenized translations.

Thin wrappers over sacrebleu so every number this toolkit reports comes with
the signature needed to reproduce it. The reportable scores (BLEU, chrF++,
TER) use sacrebleu's own tokenization on detokenized text. The Multi30k
literature convention (lowercased, Moses-tokenized BLEU) is kept separate and
labelled as such, because it is not comparable with sacrebleu's BLEU.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TextIO

from sacrebleu.metrics import BLEU, CHRF, TER
from sacrebleu.metrics.base import Metric
from sacremoses import MosesPunctNormalizer, MosesTokenizer

from seq2seq.textfiles import read_lines, split_lines

LITERATURE_BLEU_NAME = "BLEU (Multi30k literature convention)"
METRICS = ("bleu", "chrf", "ter", "lit-bleu")


@dataclass(frozen=True)
class Score:
    """One corpus-level score together with the signature that reproduces it."""

    name: str
    score: float
    signature: str

    def format(self) -> str:
        """Render as ``NAME = 12.34  signature``, like sacrebleu's own output."""
        return f"{self.name} = {self.score:.2f}  {self.signature}"


def _check_aligned(hyps: list[str], refs: list[str]) -> None:
    """Refuse inputs that cannot be scored; sacrebleu would fail less clearly."""
    if len(hyps) != len(refs):
        raise ValueError(f"hypotheses have {len(hyps)} lines but references have {len(refs)}; they must be aligned line by line")
    if not hyps:
        raise ValueError("no lines to score: hypotheses and references are empty")


def _score(metric: Metric, hyps: list[str], refs: list[str]) -> Score:
    """Score one corpus with one sacrebleu metric (a single reference stream)."""
    _check_aligned(hyps, refs)
    result = metric.corpus_score(hyps, [refs])
    return Score(result.name, result.score, str(metric.get_signature()))


def corpus_bleu(hyps: list[str], refs: list[str]) -> Score:
    """sacrebleu BLEU with its defaults (cased, 13a tokenization)."""
    return _score(BLEU(), hyps, refs)


def corpus_chrf(hyps: list[str], refs: list[str]) -> Score:
    """chrF++ (character n-grams plus word uni- and bigrams)."""
    return _score(CHRF(word_order=2), hyps, refs)


def corpus_ter(hyps: list[str], refs: list[str]) -> Score:
    """sacrebleu TER with its defaults (lower is better)."""
    return _score(TER(), hyps, refs)


def literature_bleu(hyps: list[str], refs: list[str], lang: str = "de") -> Score:
    """The Multi30k literature convention, for comparison with published numbers.

    Both sides are lowercased, Moses-punctuation-normalized and
    Moses-tokenized, then BLEU is computed on those tokens without further
    tokenization. The signature says so, since sacrebleu's alone would not.
    """
    _check_aligned(hyps, refs)
    normalizer = MosesPunctNormalizer(lang)
    tokenizer = MosesTokenizer(lang)

    def prepare(lines: list[str]) -> list[str]:
        return [tokenizer.tokenize(normalizer.normalize(line.lower()), escape=False, return_str=True) for line in lines]

    score = _score(BLEU(tokenize="none", force=True), prepare(hyps), prepare(refs))
    signature = f"{score.signature}|pre:lc+moses-norm+moses-tok({lang})"
    return Score(LITERATURE_BLEU_NAME, score.score, signature)


def score_all(hyps: list[str], refs: list[str], lang: str = "de") -> list[Score]:
    """BLEU, chrF++, TER and the literature-convention BLEU, in that order."""
    return [
        corpus_bleu(hyps, refs),
        corpus_chrf(hyps, refs),
        corpus_ter(hyps, refs),
        literature_bleu(hyps, refs, lang),
    ]


def run_score(
    ref_path: str,
    hyp_path: str | None,
    lang: str,
    metrics: list[str],
    output_format: Literal["text", "json"],
    stdin: TextIO,
    stdout: TextIO,
) -> int:
    """Body of the ``score`` command: score hypotheses (a file or stdin) against a reference.

    Raises ValueError for unknown metric names or misaligned inputs, so the
    CLI can report it as a usage error.
    """
    invalid = [m for m in metrics if m not in METRICS]
    if invalid or not metrics:
        raise ValueError(f"invalid metric(s) {', '.join(invalid) or '(none given)'}; choose from {', '.join(METRICS)}")
    hyps = read_lines(hyp_path) if hyp_path is not None else split_lines(stdin.read())
    refs = read_lines(ref_path)
    scorers: dict[str, Callable[[list[str], list[str]], Score]] = {
        "bleu": corpus_bleu,
        "chrf": corpus_chrf,
        "ter": corpus_ter,
        "lit-bleu": lambda h, r: literature_bleu(h, r, lang),
    }
    scores = [scorers[m](hyps, refs) for m in metrics]
    if output_format == "json":
        payload = {s.name: {"score": s.score, "signature": s.signature} for s in scores}
        stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        stdout.writelines(s.format() + "\n" for s in scores)
    return 0
