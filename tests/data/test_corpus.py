"""Corpora (seq2seq/data/corpus.py): plain, gzip, TSV, JSONL, Multi30k and hub sources,
loaded or streamed; alignment checks; the length filter; a streamed hub corpus trains, its tokenizer
on the first data.tokenizer_sample pairs only."""

import gzip
import json

import pytest

from seq2seq.config import DataConfig, load_config
from seq2seq.data.corpus import DataError, encode_split, load_corpus
from seq2seq.textfiles import read_lines

from conftest import TINY


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


def test_train_split_is_a_stream(demo_dir, tmp_path):
    import datasets

    corpus = load_corpus(DataConfig(dir=str(demo_dir), valid_split="val", streaming=True), tmp_path)
    assert isinstance(corpus["train"], datasets.IterableDataset)
    assert isinstance(corpus["valid"], datasets.Dataset)
    first = next(iter(corpus["train"]))
    assert set(first) == {"src", "tgt"} and first["src"] and first["tgt"]


def test_misaligned_stream_fails_naming_the_files(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    corpus = load_corpus(
        DataConfig(train=(str(tmp_path / "a.en"), str(tmp_path / "a.de")), valid=(str(tmp_path / "a.en"), str(tmp_path / "a.en")), streaming=True), tmp_path
    )
    with pytest.raises(DataError, match=r"a\.de has 2 lines but .*a\.en has more"):
        list(corpus["train"])


def test_streamed_and_loaded_lines_agree_on_line_ends(tmp_path):
    """A stream reads the pairs a loaded corpus holds: CRLF and LF ends go, a "\r" of the text stays."""
    (tmp_path / "a.en").write_bytes(b"one\r\ntwo\r\r\nthree\rx\n\xff four")
    (tmp_path / "a.de").write_bytes(b"eins\nzwei\r\ndrei\nvier\r\n")
    files = (str(tmp_path / "a.en"), str(tmp_path / "a.de"))
    streamed = list(load_corpus(DataConfig(train=files, valid=files, streaming=True), tmp_path)["train"])
    loaded = load_corpus(DataConfig(train=files, valid=files), tmp_path)["train"]
    assert streamed == [{"src": s, "tgt": t} for s, t in zip(loaded["src"], loaded["tgt"])]
    assert [p["src"] for p in streamed] == ["one", "two\r", "three\rx", "\ufffd four"]
    assert [p["tgt"] for p in streamed] == ["eins", "zwei", "drei", "vier"]


def write_hub_folder(folder, splits, translation_dicts=False):
    """A dataset folder that `datasets.load_dataset` reads offline, as it would a hub dataset: {split}.jsonl
    with `en`/`de` columns (or a `translation` dict) and a column the corpus does not use."""
    folder.mkdir()
    for split, (src, tgt) in splits.items():
        rows = [{"translation": {"de": t, "en": s}} if translation_dicts else {"id": i, "de": t, "en": s} for i, (s, t) in enumerate(zip(src, tgt))]
        write(folder / f"{split}.jsonl", [json.dumps(row) for row in rows])
    return str(folder)


@pytest.fixture
def load_dataset_calls(monkeypatch):
    """The (split, streaming) of each datasets.load_dataset call; the real function still loads."""
    import datasets

    calls, real = [], datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: calls.append((kwargs.get("split"), kwargs.get("streaming"))) or real(*args, **kwargs))
    return calls


@pytest.mark.parametrize("translation_dicts", [False, True])
def test_hub_dataset_streams_the_train_split(tmp_path, load_dataset_calls, translation_dicts):
    import datasets

    src, tgt = [f"a {i}" for i in range(30)], [f"b {i}" for i in range(30)]
    hub = write_hub_folder(tmp_path / "hub", {"train": (src, tgt), "validation": (src[:3], tgt[:3])}, translation_dicts)
    corpus = load_corpus(DataConfig(hub=hub, streaming=True), tmp_path)
    assert load_dataset_calls == [("train", True), ("validation", False), ("test", False)]
    assert isinstance(corpus["train"], datasets.IterableDataset) and isinstance(corpus["valid"], datasets.Dataset)
    assert list(corpus["train"]) == [{"src": s, "tgt": t} for s, t in zip(src, tgt)]
    assert corpus["valid"]["src"] == src[:3] and "test" not in corpus


@pytest.mark.slow
def test_streamed_hub_corpus_trains_with_a_tokenizer_from_the_first_pairs(tmp_path, demo_dir, load_dataset_calls, monkeypatch):
    """data.hub + data.streaming=true trains; SentencePiece sees exactly the first data.tokenizer_sample pairs."""
    from seq2seq.training import setup as preparation
    from seq2seq.training.loop import train

    src, tgt = read_lines(demo_dir / "train.en.gz"), read_lines(demo_dir / "train.de.gz")
    splits = {"train": (src, tgt), "validation": (read_lines(demo_dir / "val.en.gz"), read_lines(demo_dir / "val.de.gz"))}
    hub = write_hub_folder(tmp_path / "hub", splits)
    seen = []
    real = preparation.train_tokenizer
    monkeypatch.setattr(preparation, "train_tokenizer", lambda out, s, t, **kw: seen.append((s, t)) or real(out, s, t, **kw))
    config = load_config(
        "recipes/demo.yaml",
        [
            "data.demo=false",
            f"data.hub={hub}",
            "data.streaming=true",
            "data.valid_split=validation",
            "data.tokenizer_sample=250",
            f"run_dir={tmp_path / 'run'}",
            *TINY,
            "train.max_steps=3",
            "train.log_every=1",
            "data.max_valid_sentences=4",
        ],
    )
    train(config)
    assert ("train", True) in load_dataset_calls
    assert seen == [(src[:250], tgt[:250])]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2, 3]
