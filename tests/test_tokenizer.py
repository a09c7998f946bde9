import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seq2seq.textfiles import read_lines
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

from conftest import FAST, tiny_tokenizer


def test_same_data_and_seed_give_the_same_model(tmp_path, demo_dir):
    tiny_tokenizer(tmp_path / "a", demo_dir)
    tiny_tokenizer(tmp_path / "b", demo_dir)
    assert (tmp_path / "a" / "spm.model").read_bytes() == (tmp_path / "b" / "spm.model").read_bytes()


def test_special_ids_and_round_trip(tmp_path, demo_dir):
    tok = tiny_tokenizer(tmp_path, demo_dir)
    sp = tok.src
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
    text = "Der kleine Hund sieht die Katze."
    assert tok.decode_tgt(tok.encode_tgt([text])) == [text]


def test_separate_vocabularies(tmp_path, demo_dir):
    tok = tiny_tokenizer(tmp_path, demo_dir, joint=False)
    assert (tmp_path / "spm.src.model").is_file() and (tmp_path / "spm.tgt.model").is_file()
    assert tok.src is not tok.tgt
    assert "▁Hund" in {tok.tgt.id_to_piece(i) for i in range(tok.tgt_vocab_size)}
    assert "▁Hund" not in {tok.src.id_to_piece(i) for i in range(tok.src_vocab_size)}


def test_reachable_target_ids_cover_every_sampled_segmentation_and_leave_source_pieces_out(tmp_path, demo_dir):
    from seq2seq.tokenizer import SPECIAL_IDS, reachable_target_ids, seed_sampling

    tok = tiny_tokenizer(tmp_path, demo_dir)
    tgt = read_lines(demo_dir / "train.de.gz")
    best = tok.encode_tgt(tgt)
    seen = {i for s in best for i in s}
    reachable = set(reachable_target_ids(tok, best))
    assert set(SPECIAL_IDS.values()) | seen <= reachable
    seed_sampling(0)
    sampled = {i for s in tok.encode_tgt(tgt, alpha=0.1) for i in s}
    assert sampled <= reachable and sampled - seen  # sampling reached pieces beyond the best
    # Pieces of English words that no German word contains are unreachable.
    english_only = {i for s in tok.encode_src(["the dog sees"]) for i in s} - seen
    assert english_only and not english_only & reachable
    assert len(reachable) < tok.tgt_vocab_size


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, demo_dir):
    return tiny_tokenizer(tmp_path_factory.mktemp("tok"), demo_dir)


def normalized_text(sp, text: str) -> str:
    """What decoding can give back at best: SentencePiece's own normalization of text (NFKC,
    control characters dropped, whitespace runs collapsed and stripped), with its ▁ as spaces."""
    return sp.normalize(text).replace("\u2581", " ").removeprefix(" ")


@FAST
@given(text=st.text(max_size=500))
def test_tokenizer_round_trips_any_unicode(tokenizer, text):
    """Any text encodes to valid ids; where no character is unknown, decoding gives back the text as
    SentencePiece normalizes it (the model never sees anything else); where one is, UNK stands for it."""
    sp = tokenizer.src
    ids = tokenizer.encode_src([text])[0]
    assert all(0 <= i < tokenizer.src_vocab_size for i in ids)
    decoded = tokenizer.decode_tgt([ids])[0]
    if UNK_ID in ids:
        assert "\u2047" in decoded  # SentencePiece's ⁇ for an unknown piece
    else:
        assert decoded == normalized_text(sp, text)


@FAST
@given(data=st.data())
def test_tokenizer_round_trips_text_in_its_alphabet(tokenizer, demo_dir, data):
    """Text made of the corpus's characters, with any whitespace, control characters and compatibility
    forms NFKC folds into them, always round-trips: no UNK, and decode(encode(x)) is x normalized."""
    alphabet = corpus_alphabet(demo_dir)
    text = "".join(data.draw(st.lists(st.sampled_from(alphabet + [" ", "  ", "\t", "\x07", "\u3000", "\ufb01", "\uff21"]), max_size=100)))
    ids = tokenizer.encode_src([text])[0]
    assert UNK_ID not in ids
    assert tokenizer.decode_tgt([ids])[0] == normalized_text(tokenizer.src, text)
    if text.isprintable() and text == " ".join(text.split()) and unicodedata.normalize("NFKC", text) == text:
        assert tokenizer.decode_tgt([ids])[0] == text  # plain text comes back unchanged


def corpus_alphabet(demo_dir) -> list[str]:
    """The characters of the training corpus: with character_coverage=1.0 the tokenizer has a piece for each."""
    return sorted({ch for line in read_lines(demo_dir / "train.de.gz") + read_lines(demo_dir / "train.en.gz") for ch in line} - {" "})


def test_short_lists_are_coded_text_by_text_and_long_ones_in_one_call(tokenizer, monkeypatch):
    """SentencePiece's list call costs about 80 µs before its first text, and starts a thread per CPU
    unless told otherwise: a short list goes one text per call, a batch in one call of one thread, and
    only a corpus gets the pool. The ids are the same either way."""
    from seq2seq.tokenizer import LIST_FROM, POOL_FROM

    texts = [("Der Hund.", "Ein Mann.", "Die Frau.")[i % 3] for i in range(LIST_FROM)]
    one_call = tokenizer.src.encode(texts, num_threads=1)
    asked = []
    for name in ("encode", "decode"):
        real = getattr(tokenizer.src, name)
        monkeypatch.setattr(tokenizer.src, name, lambda x, real=real, **k: asked.append((type(x).__name__, k.get("num_threads"))) or real(x, **k))
    ids = tokenizer.encode_src(texts[:3])
    assert ids == one_call[:3] and tokenizer.decode_tgt(ids) == texts[:3]
    assert asked == [("str", None)] * 3 + [("list", None)] * 3
    asked.clear()
    assert tokenizer.encode_src(texts) == one_call and tokenizer.decode_tgt(one_call) == texts
    tokenizer.encode_src(["Der Hund."] * POOL_FROM)
    assert asked == [("list", 1), ("list", 1), ("list", -1)]
