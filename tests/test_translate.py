"""The Translator API (seq2seq/translate.py): argument checks, n-best lists, seeded sampling, any input keeps
its count, precision and ensembles."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seq2seq.options import SearchOptions
from seq2seq.translate import Translator

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


def test_sampling_is_seeded(translator):
    a = translator.translate_nbest(["The big dog sees a small cat."], SearchOptions(nbest=3, mode="sample", temperature=1.5, seed=1))
    b = translator.translate_nbest(["The big dog sees a small cat."], SearchOptions(nbest=3, mode="sample", temperature=1.5, seed=1))
    assert [h.text for h in a[0]] == [h.text for h in b[0]]


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
