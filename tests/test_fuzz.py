"""Property-based tests: random Unicode, raw bytes and very long lines never crash the tokenizer,
the Translator or seq2seq-translate, and every input line gives exactly one output line."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq.cli import translate_main
from seq2seq.translate import Translator

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
lines = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=300)


@pytest.fixture(scope="module")
def translator(trained_model_dir):
    return Translator.from_pretrained(trained_model_dir, device="cpu")


@FAST
@given(text=st.text(max_size=2000))
def test_tokenizer_round_trips_any_unicode(translator, text):
    ids = translator.tokenizer.encode_src([text])[0]
    assert all(0 <= i < translator.tokenizer.src_vocab_size for i in ids)
    translator.tokenizer.decode_tgt([ids])


@FAST
@given(sentences=st.lists(lines, max_size=6))
def test_api_keeps_the_count(translator, sentences):
    out = translator.translate(sentences, beam_size=2)
    assert len(out) == len(sentences)
    assert all(o == "" for s, o in zip(sentences, out) if not s.strip())


@FAST
@given(data=st.binary(max_size=3000), long_words=st.integers(0, 400))
def test_translate_command_keeps_the_line_count(trained_model_dir, tmp_path_factory, data, long_words):
    data = data + b"\n" + b"dog " * long_words
    work = tmp_path_factory.mktemp("fuzz")
    (work / "in").write_bytes(data)
    code = translate_main(["--model", str(trained_model_dir), "--input", str(work / "in"), "--output", str(work / "out"),
                           "--beam-size", "1", "--quiet"])
    assert code == 0
    expected = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    out = (work / "out").read_bytes()
    assert out.count(b"\n") == expected and out.endswith(b"\n")
    out.decode("utf-8")
