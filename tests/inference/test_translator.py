"""The Translator API (seq2seq/inference/translator.py): argument checks, n-best lists, seeded sampling, any input keeps
its count, precision and ensembles."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seq2seq.inference.translator import Translator
from seq2seq.options import SearchOptions

from conftest import FAST

pytestmark = pytest.mark.slow

lines = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=300)


def test_api_rejects_bad_arguments(translator):
    with pytest.raises(TypeError, match="not a single string"):
        translator.translate("A dog.")
    with pytest.raises(TypeError, match="list of strings"):
        translator.translate(None)
    with pytest.raises(TypeError, match=r"sentences\[1\] must be a str"):
        translator.translate(["A dog.", 3])
    with pytest.raises(ValueError, match="beam_size must be an integer >= 1"):
        translator.translate(["A dog."], SearchOptions(beam_size=0))
    with pytest.raises(ValueError, match="cannot exceed beam_size"):
        translator.translate_nbest(["A dog."], SearchOptions(beam_size=2, nbest=3))
    with pytest.raises(TypeError, match="options must be a SearchOptions; got dict"):
        translator.translate(["A dog."], {"beam_size": 2})
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        translator.translate(["A dog."], batch_size=0)


def test_nbest_sorted_by_score(translator):
    nbest = translator.translate_nbest(["The big dog sees a small cat.", "We laugh."], SearchOptions(beam_size=4, nbest=4))
    for hyps in nbest:
        assert len(hyps) == 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
    assert translator.translate(["The big dog sees a small cat."], SearchOptions(beam_size=4))[0] == nbest[0][0].text


SAMPLED = ["The big dog sees a small cat.", "The woman reads a book in the garden.", "Two children play with a ball."]


def texts(nbest) -> list[list[str]]:
    return [[h.text for h in hyps] for hyps in nbest]


def test_sampling_is_seeded(translator):
    def draw(seed: int, **kwargs):
        return translator.translate_nbest(SAMPLED, SearchOptions(nbest=3, mode="sample", temperature=1.5, seed=seed, **kwargs))

    first = draw(1)
    assert draw(1) == first  # texts and scores
    assert texts(draw(2)) != texts(first)  # the seed is used
    # Sampling is not beam search: the beam's n-best is deterministic and distinct, samples are neither.
    beam = translator.translate_nbest(SAMPLED, SearchOptions(beam_size=3, nbest=3))
    assert texts(first) != texts(beam)
    # top_k=1 leaves one token to draw: every sample is the greedy translation.
    greedy = translator.translate(SAMPLED, SearchOptions(beam_size=1))
    assert texts(draw(4, top_k=1)) == [[g] * 3 for g in greedy]


def test_sample_flags_of_the_command_equal_the_api(trained_model_dir, translator):
    """The command's --sample, --nbest, --temperature, --top-k and --seed give the API's samples."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [
            Path(sys.executable).parent / "seq2seq-translate",
            "--model",
            str(trained_model_dir),
            "--sample",
            "--nbest",
            "3",
            "--temperature",
            "1.5",
            "--top-k",
            "5",
            "--seed",
            "7",
        ],
        input=SAMPLED[0].encode() + b"\n",
        capture_output=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr.decode()
    api = translator.translate_nbest(SAMPLED[:1], SearchOptions(nbest=3, mode="sample", temperature=1.5, top_k=5, seed=7))
    assert [tuple(line.split(" ||| ")) for line in result.stdout.decode().splitlines()] == [("0", h.text, f"{h.score:.4f}") for h in api[0]]


def test_sampling_does_not_depend_on_the_batch(translator):
    options = SearchOptions(nbest=3, mode="sample", temperature=1.5, top_k=5, seed=7)
    assert texts(translator.translate_nbest(SAMPLED, options, batch_size=1)) == texts(translator.translate_nbest(SAMPLED, options, batch_size=64))


def test_output_does_not_depend_on_the_batch_size(translator, demo_dir):
    """The design's promise on the CPU: batch size 1 and 64 give the same text, byte for byte."""
    from seq2seq.textfiles import read_lines

    sentences = read_lines(demo_dir / "test.en.gz")
    options = SearchOptions(beam_size=3, nbest=2)
    one = translator.translate_nbest(sentences, options, batch_size=1)
    many = translator.translate_nbest(sentences, options, batch_size=64)
    assert texts(one) == texts(many)
    assert [h.score for hyps in one for h in hyps] == pytest.approx([h.score for hyps in many for h in hyps], rel=1e-4, abs=1e-5)


def test_precision_is_checked_and_low_precision_is_not_saved(trained_model_dir, tmp_path):
    with pytest.raises(ValueError, match="fp32, bf16, int8"):
        Translator.from_pretrained(trained_model_dir, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision='fp32'"):
        Translator.from_pretrained(trained_model_dir, device="cpu", precision="bf16").save_pretrained(tmp_path / "x")


def test_ensemble_cannot_be_saved_as_one_model(trained_model_dir, tmp_path):
    translator = Translator.from_pretrained([trained_model_dir, trained_model_dir], device="cpu")
    with pytest.raises(ValueError, match="seq2seq-average"):
        translator.save_pretrained(tmp_path / "out")


@FAST
@given(sentences=st.lists(lines, max_size=6))
def test_api_keeps_the_count(translator, sentences):
    out = translator.translate(sentences, SearchOptions(beam_size=2))
    assert len(out) == len(sentences)
    assert all(o == "" for s, o in zip(sentences, out) if not s.strip())


PARAGRAPH = ["The dog sees the cat.", "A small woman laughs.", "We laugh.", "They believe that the king reads a letter."]


def test_translate_text_joins_the_sentences_translations(translator, monkeypatch):
    """A paragraph comes back as its sentences' translations one by one, with the original whitespace,
    and all sentences of all texts go to the model in one call."""
    options = SearchOptions(beam_size=2)
    one_by_one = [translator.translate([s], options)[0] for s in PARAGRAPH]
    texts = [
        f"  {PARAGRAPH[0]}  {PARAGRAPH[1]}\n\n{PARAGRAPH[2]}\r\n",
        "",
        " \n ",
        f"{PARAGRAPH[3]}\t{PARAGRAPH[0]}",
    ]
    calls = []
    translate = translator.translate
    monkeypatch.setattr(translator, "translate", lambda sentences, *a, **k: calls.append(list(sentences)) or translate(sentences, *a, **k))
    out = translator.translate_text(texts, options)
    assert calls == [[*PARAGRAPH[:3], PARAGRAPH[3], PARAGRAPH[0]]]
    assert out == [
        f"  {one_by_one[0]}  {one_by_one[1]}\n\n{one_by_one[2]}\r\n",
        "",
        " \n ",
        f"{one_by_one[3]}\t{one_by_one[0]}",
    ]
    # Without splitting the paragraph is one "sentence", and a different translation.
    assert translate([texts[0]], options)[0] != out[0].strip()


def test_translate_text_checks_its_arguments(translator):
    with pytest.raises(TypeError, match=r"texts must be a list of strings, not a single string: pass \[text\]"):
        translator.translate_text("A dog.")
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        translator.translate_text([None])
    with pytest.raises(ValueError, match="format must be one of text, html; got 'xml'"):
        translator.translate_text(["A dog."], format="xml")
    assert translator.translate_text([]) == []


def test_over_long_sentences_are_cut_at_clauses(translator):
    """A sentence over max_len is translated in the pieces cut_long gives (each within max_len), their
    best translations joined; one within max_len is translated whole, as before."""
    import numpy as np

    from seq2seq.inference.text import cut_long
    from seq2seq.inference.translator import Translator

    LIMIT = 20  # source tokens: the sentence below has 43 with the fixture's tokenizer, its clauses 10 to 17
    small = Translator(translator.backend, translator.tokenizer, translator.meta, model_dirs=translator.model_dirs, precision="fp32", max_len=LIMIT)
    sentence = "The dog sees the cat, and the small woman reads a letter; we laugh in the garden."

    def count(text: str) -> int:
        return len(translator.tokenizer.encode_src([text])[0])

    pieces = cut_long(sentence, LIMIT, count)
    assert count(sentence) > LIMIT and len(pieces) == 3 and all(count(p) <= LIMIT for p in pieces)
    assert "".join(pieces) == sentence
    options = SearchOptions(beam_size=2)
    parts = translator.translate_nbest(pieces, options)
    tokens = [t for hyps in parts for t in hyps[0].tokens]
    cut = small.translate_nbest([sentence, PARAGRAPH[2]], options)
    assert cut[0][0].tokens == tokens
    assert cut[0][0].score == pytest.approx(sum(hyps[0].score for hyps in parts))
    alone = translator.translate_nbest([PARAGRAPH[2]], options)[0]
    # The same hypotheses; the score may differ in the last bits, as the sentence shares its batch here.
    assert [h.tokens for h in cut[1]] == [h.tokens for h in alone]
    assert [h.score for h in cut[1]] == pytest.approx([h.score for h in alone], rel=1e-5)
    # Text with no boundary at all still goes through the cut every max_len tokens.
    words = " ".join(["dog"] * 40)
    ids = translator.tokenizer.encode_src([words])[0]
    chunks = [np.asarray(ids[k : k + LIMIT], dtype=np.int64) for k in range(0, len(ids), LIMIT)]
    expected = [t for hyps in translator.backend.decode(chunks, options, 8, None) for t in hyps[0].tokens]
    assert len(chunks) == 2 and small.translate_nbest([words], options)[0][0].tokens == translator.tokenizer.tgt_pieces(expected)
