"""Tests for seq2seq.scoring: agreement with sacrebleu's CLI, the literature convention, I/O."""

from __future__ import annotations

import gzip
import io
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sacrebleu.metrics import BLEU
from sacremoses import MosesPunctNormalizer, MosesTokenizer

from seq2seq import scoring
from seq2seq.scoring import (
    Score,
    corpus_bleu,
    corpus_chrf,
    corpus_ter,
    literature_bleu,
    run_score,
    score_all,
)

REFS = [
    "Ein Mann fährt mit dem Fahrrad durch die Stadt.",
    "Zwei Kinder spielen im Garten mit einem roten Ball.",
    "Eine Frau liest ein Buch, während ihr Hund schläft.",
    "Drei Männer sitzen auf einer Bank am Fluss.",
]
HYPS = [
    "Ein Mann fährt Fahrrad durch die Stadt.",
    "Zwei Kinder spielen im Garten mit einem Ball.",
    "Eine Frau liest ein Buch während ihr Hund schläft.",
    "Drei Männer sitzen auf der Bank am Fluss.",
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def sacrebleu_cli(ref: Path, hyp: Path, *args: str) -> list[dict]:
    """Run sacrebleu's own command line and return its JSON results as a list."""
    out = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-w", "4", "-f", "json", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    result = json.loads(out)
    return result if isinstance(result, list) else [result]


def test_scores_match_sacrebleu_command_line(tmp_path: Path) -> None:
    ref, hyp = write(tmp_path / "ref.de", REFS), write(tmp_path / "hyp.de", HYPS)
    bleu_cli, ter_cli = sacrebleu_cli(ref, hyp, "-m", "bleu", "ter")
    (chrf_cli,) = sacrebleu_cli(ref, hyp, "-m", "chrf", "--chrf-word-order", "2")

    for ours, cli in [
        (corpus_bleu(HYPS, REFS), bleu_cli),
        (corpus_chrf(HYPS, REFS), chrf_cli),
        (corpus_ter(HYPS, REFS), ter_cli),
    ]:
        assert ours.name == cli["name"]
        assert round(ours.score, 4) == pytest.approx(cli["score"], abs=1e-9)
        assert ours.signature == cli["signature"]
    assert 0 < bleu_cli["score"] < 100  # the fixture is neither trivial nor hopeless
    assert chrf_cli["name"] == "chrF2++"


def test_literature_convention_lowercases_and_tokenizes() -> None:
    refs = ["Ein Mann fährt Fahrrad, und eine Frau läuft im Park."]
    hyps = ["ein mann fährt fahrrad , und eine frau läuft im park ."]

    literature = literature_bleu(hyps, refs)
    assert literature.score == pytest.approx(100.0)
    assert corpus_bleu(hyps, refs).score < 100.0
    assert literature.name == "BLEU (Multi30k literature convention)"
    assert "tok:none" in literature.signature
    assert "lc+moses-norm+moses-tok(de)" in literature.signature


def test_literature_convention_normalizes_punctuation() -> None:
    refs = ['Sie sagt "Hallo" zu dem kleinen Hund.']
    hyps = ["Sie sagt „Hallo“ zu dem kleinen Hund."]
    assert literature_bleu(hyps, refs).score == pytest.approx(100.0)
    assert corpus_bleu(hyps, refs).score < 100.0


# Sentences whose literature-convention form is written out by hand: lowercased, German quotes
# normalized to ", punctuation split off, but "z.b.", "ca." (a German non-breaking prefix, which the
# English tokenizer splits) and "3,50" kept.
LIT_REFS = [
    "Ein Mann fährt Fahrrad, und eine Frau läuft im Park.",
    'Sie sagt "Hallo" zu dem kleinen Hund.',
    "Die Kinder spielen im Garten (mit 2 Bällen).",
    "Er kauft z.B. ca. 5 Äpfel für 3,50 Euro.",
]
LIT_HYPS = [
    "ein Mann fährt Rad, und die Frau läuft im Park.",
    "Sie sagt „Hallo“ zum kleinen Hund.",
    "Die Kinder spielen im Garten mit zwei Bällen.",
    "Er kauft z.B. ca. 5 Birnen für 3,50 Euro.",
]
LIT_REFS_TOKENIZED = [
    "ein mann fährt fahrrad , und eine frau läuft im park .",
    'sie sagt " hallo " zu dem kleinen hund .',
    "die kinder spielen im garten ( mit 2 bällen ) .",
    "er kauft z.b. ca. 5 äpfel für 3,50 euro .",
]
LIT_HYPS_TOKENIZED = [
    "ein mann fährt rad , und die frau läuft im park .",
    'sie sagt " hallo " zum kleinen hund .',
    "die kinder spielen im garten mit zwei bällen .",
    "er kauft z.b. ca. 5 birnen für 3,50 euro .",
]


def plain_bleu(hyps: list[str], refs: list[str]) -> float:
    """BLEU-4 from its definition on whitespace tokens (one reference, no smoothing): written here so
    the expected value depends on neither sacrebleu nor sacremoses."""
    matches, totals, hyp_len, ref_len = [0] * 4, [0] * 4, 0, 0
    for hyp, ref in zip(hyps, refs):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            h_grams = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            r_grams = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, r_grams[g]) for g, c in h_grams.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(sum(math.log(m / t) for m, t in zip(matches, totals)) / 4)


def test_literature_convention_value_equals_an_independent_computation() -> None:
    # The hand-written tokens are what the Moses tools give (so the expectation is about this convention) …
    normalizer, tokenizer = MosesPunctNormalizer("de"), MosesTokenizer("de")
    assert [
        tokenizer.tokenize(normalizer.normalize(s.lower()), escape=False, return_str=True) for s in LIT_REFS + LIT_HYPS
    ] == LIT_REFS_TOKENIZED + LIT_HYPS_TOKENIZED
    # … and the score on raw text is BLEU on those tokens, by definition and by sacreBLEU without its own tokenizer.
    expected = plain_bleu(LIT_HYPS_TOKENIZED, LIT_REFS_TOKENIZED)
    assert 30 < expected < 90
    assert BLEU(tokenize="none").corpus_score(LIT_HYPS_TOKENIZED, [LIT_REFS_TOKENIZED]).score == pytest.approx(expected, abs=1e-9)
    assert literature_bleu(LIT_HYPS, LIT_REFS).score == pytest.approx(expected, abs=1e-9)
    assert corpus_bleu(LIT_HYPS, LIT_REFS).score != pytest.approx(expected, abs=0.01)  # the conventions differ here


def test_moses_tools_are_built_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = scoring.MosesTokenizer

    def counting(lang: str) -> object:
        built.append(lang)
        return real(lang)

    monkeypatch.setattr(scoring, "MosesTokenizer", counting)
    literature_bleu(HYPS, REFS, lang="de")
    assert built == ["de"]


def test_score_all_order_and_format() -> None:
    names = [s.name for s in score_all(HYPS, REFS)]
    assert names == ["BLEU", "chrF2++", "TER", "BLEU (Multi30k literature convention)"]
    assert Score("BLEU", 35.2149, "nrefs:1|tok:13a").format() == "BLEU = 35.21  nrefs:1|tok:13a"


@pytest.mark.parametrize("metric", [corpus_bleu, corpus_chrf, corpus_ter, literature_bleu])
def test_line_count_mismatch_names_both_counts(metric) -> None:
    with pytest.raises(ValueError, match="hypotheses have 3 lines but references have 4"):
        metric(HYPS[:3], REFS)


def test_empty_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        corpus_bleu([], [])


def test_run_score_text_from_stdin(tmp_path: Path) -> None:
    ref = tmp_path / "ref.de.gz"
    with gzip.open(ref, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in REFS))
    stdout = io.StringIO()
    stdin = io.StringIO("".join(line + "\n" for line in HYPS))

    assert run_score(str(ref), None, "de", ["bleu", "chrf"], "text", stdin, stdout) == 0
    assert stdout.getvalue().splitlines() == [
        corpus_bleu(HYPS, REFS).format(),
        corpus_chrf(HYPS, REFS).format(),
    ]


def test_run_score_json_from_file(tmp_path: Path) -> None:
    ref, hyp = write(tmp_path / "ref.de", REFS), write(tmp_path / "hyp.de", HYPS)
    stdout = io.StringIO()

    run_score(str(ref), str(hyp), "de", ["ter", "lit-bleu"], "json", io.StringIO(), stdout)
    result = json.loads(stdout.getvalue())
    expected = [corpus_ter(HYPS, REFS), literature_bleu(HYPS, REFS)]
    assert result == {s.name: {"score": s.score, "signature": s.signature} for s in expected}


def test_run_score_mismatch_raises(tmp_path: Path) -> None:
    ref, hyp = write(tmp_path / "ref.de", REFS), write(tmp_path / "hyp.de", HYPS[:2])
    with pytest.raises(ValueError, match="hypotheses have 2 lines but references have 4"):
        run_score(str(ref), str(hyp), "de", ["bleu"], "text", io.StringIO(), io.StringIO())


def test_run_score_rejects_unknown_metric(tmp_path: Path) -> None:
    ref, hyp = write(tmp_path / "ref.de", REFS), write(tmp_path / "hyp.de", HYPS)
    with pytest.raises(ValueError, match=r"meteor.*bleu, chrf, ter, lit-bleu"):
        run_score(str(ref), str(hyp), "de", ["bleu", "meteor"], "text", io.StringIO(), io.StringIO())
