import gzip
import json

import numpy as np
import pytest

from seq2seq.config import DataConfig
from seq2seq.data import DataError, collate, encode_split, load_corpus, make_batches
from seq2seq.tokenizer import BOS_ID, EOS_ID, PAD_ID


def write(path, lines, gz=False):
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def files_config(tmp_path, src_lines, tgt_lines, **extra):
    src = write(tmp_path / "train.en", src_lines)
    tgt = write(tmp_path / "train.de", tgt_lines)
    return DataConfig(train=(src, tgt), valid=(src, tgt), **extra)


def test_plain_pairs(tmp_path):
    corpus = load_corpus(files_config(tmp_path, ["a dog", "a cat"], ["ein Hund", "eine Katze"]), tmp_path)
    assert corpus["train"]["src"] == ["a dog", "a cat"] and corpus["train"]["tgt"] == ["ein Hund", "eine Katze"]


def test_misaligned_files_name_both_counts(tmp_path):
    with pytest.raises(DataError) as err:
        load_corpus(files_config(tmp_path, ["a", "b", "c"], ["x", "y"]), tmp_path)
    message = str(err.value)
    assert "train.en has 3 lines" in message and "train.de has 2" in message


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"empty corpus file: .*train\.de"):
        load_corpus(files_config(tmp_path, ["a"], []), tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(DataConfig(train=(str(tmp_path / "nope.en"), str(tmp_path / "nope.de"))), tmp_path)


def test_corpus_empty_after_length_filter(tmp_path):
    corpus = load_corpus(files_config(tmp_path, ["one two three four"], ["eins zwei drei vier"]), tmp_path)
    split_words = lambda texts: [list(range(4, 4 + len(t.split()))) for t in texts]  # noqa: E731
    with pytest.raises(DataError, match=r"train split of x is empty after length filtering: 0 of 1 pairs .*data.max_len=2"):
        encode_split(corpus["train"], split_words, split_words, 2, "train split of x")


def test_tsv_and_jsonl(tmp_path):
    tsv = write(tmp_path / "c.tsv", ["a dog\tein Hund", "a cat\teine Katze"])
    corpus = load_corpus(DataConfig(train=(tsv,), valid=(tsv,)), tmp_path)
    assert corpus["valid"]["tgt"] == ["ein Hund", "eine Katze"]
    jsonl = write(tmp_path / "c.jsonl", [json.dumps({"en": "a dog", "de": "ein Hund"}), json.dumps({"en": "a cat", "de": "eine Katze"})])
    corpus = load_corpus(DataConfig(train=(jsonl,), valid=(jsonl,)), tmp_path)
    assert corpus["train"]["src"] == ["a dog", "a cat"]
    bad = write(tmp_path / "bad.tsv", ["only one column"])
    with pytest.raises(DataError, match="line 1: expected 2 tab-separated columns"):
        load_corpus(DataConfig(train=(bad,), valid=(bad,)), tmp_path)


def test_multi30k_directory_layout(tmp_path):
    for split, n in (("train", 3), ("val", 2), ("test_2016_flickr", 1)):
        write(tmp_path / f"{split}.en.gz", [f"en {i}" for i in range(n)], gz=True)
        write(tmp_path / f"{split}.de.gz", [f"de {i}" for i in range(n)], gz=True)
    corpus = load_corpus(DataConfig(dir=str(tmp_path), hub="ignored/when-dir-is-set"), tmp_path)
    assert [len(corpus[s]) for s in ("train", "valid", "test")] == [3, 2, 1]


def test_hub_dataset_from_local_folder_with_language_columns(tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        write(folder / f"{split}.jsonl", [json.dumps({"en": f"a {i}", "de": f"b {i}"}) for i in range(3)])
    corpus = load_corpus(DataConfig(hub=str(folder)), tmp_path)
    assert corpus["valid"]["src"] == ["a 0", "a 1", "a 2"] and corpus["test"]["tgt"][2] == "b 2"


def test_hub_dataset_with_translation_dicts(tmp_path):
    folder = tmp_path / "wmt"
    folder.mkdir()
    for split in ("train", "validation"):
        write(folder / f"{split}.jsonl", [json.dumps({"translation": {"de": f"b {i}", "en": f"a {i}"}}) for i in range(2)])
    corpus = load_corpus(DataConfig(hub=str(folder)), tmp_path)
    assert corpus["train"]["src"] == ["a 0", "a 1"] and corpus["train"]["tgt"] == ["b 0", "b 1"]
    assert "test" not in corpus


def test_unreachable_hub_says_how_to_use_local_files(tmp_path, monkeypatch):
    import datasets
    import huggingface_hub

    # Offline mode fails at once, as a machine without network does after its retries.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError) as err:
        load_corpus(DataConfig(hub="no-such-user/no-such-dataset-xyz"), tmp_path)
    assert "data.dir=" in str(err.value) and "no-such-user/no-such-dataset-xyz" in str(err.value)


def test_batches_cover_every_pair_once_within_budget():
    rng = np.random.default_rng(0)
    tgt_lens = rng.integers(1, 30, size=500)
    src_lens = rng.integers(1, 30, size=500)
    batches = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=1)
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(500))
    for b in batches:
        assert len(b) == 1 or (tgt_lens[b] + 1).sum() <= 300
    again = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other = make_batches(src_lens, tgt_lens, 300, seed=1, epoch=2)
    assert not all(len(a) == len(b) and np.array_equal(a, b) for a, b in zip(batches, other))


def test_collate_adds_bos_eos_and_padding():
    from seq2seq.data import EncodedSplit

    split = EncodedSplit([np.array([5, 6]), np.array([7])], [np.array([8]), np.array([9, 10, 11])], np.arange(2), 0)
    batch = collate(split, np.array([0, 1]))
    assert batch.src.tolist() == [[5, 6, EOS_ID], [7, EOS_ID, PAD_ID]]
    assert batch.src_len.tolist() == [3, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 8, PAD_ID, PAD_ID], [BOS_ID, 9, 10, 11]]
    assert batch.tgt_out.tolist() == [[8, EOS_ID, PAD_ID, PAD_ID], [9, 10, 11, EOS_ID]]
    assert batch.num_tokens == 6
