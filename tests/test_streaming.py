"""data.streaming: training reads an IterableDataset a buffer at a time, and resumes exactly."""

import json

import pytest

from seq2seq.config import DataConfig
from seq2seq.data import DataError, load_corpus, stream_batches
from seq2seq.training import train

from conftest import tiny_config

STREAM = ["data.streaming=true", "data.stream_buffer=150", "data.tokenizer_sample=300", "train.log_every=1"]


def losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["type"] == "train"]


def test_train_split_is_a_stream(demo_dir, tmp_path):
    import datasets

    corpus = load_corpus(DataConfig(dir=str(demo_dir), valid_split="val", streaming=True), tmp_path)
    assert isinstance(corpus["train"], datasets.IterableDataset)
    assert isinstance(corpus["valid"], datasets.Dataset)
    first = next(iter(corpus["train"]))
    assert set(first) == {"src", "tgt"} and first["src"] and first["tgt"]


def test_stream_batches_cover_every_kept_pair_once():
    pairs = [{"src": "a " * n, "tgt": "b " * (n % 7 + 1)} for n in range(1, 60)]
    words = lambda texts: [[5] * len(t.split()) for t in texts]  # noqa: E731
    batches = list(stream_batches(iter(pairs), words, words, 50, 16, 40, seed=1, epoch=1))
    sizes = sorted(len(s) for src, _ in batches for s in src)
    assert sizes == list(range(1, 51)), "pairs longer than max_len are dropped, the others come once"
    assert list(map(len, batches[0][0])) == list(map(len, list(stream_batches(iter(pairs), words, words, 50, 16, 40, seed=1, epoch=1))[0][0]))


def test_misaligned_stream_fails_naming_the_files(tmp_path):
    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    corpus = load_corpus(DataConfig(train=(str(tmp_path / "a.en"), str(tmp_path / "a.de")), valid=(str(tmp_path / "a.en"), str(tmp_path / "a.en")), streaming=True), tmp_path)
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


def test_streaming_training_resumes_exactly(tmp_path, demo_dir):
    train(tiny_config(tmp_path / "whole", demo_dir, *STREAM, "train.max_steps=12"))
    expected = losses(tmp_path / "whole")
    assert len(expected) == 12
    train(tiny_config(tmp_path / "parts", demo_dir, *STREAM, "train.max_steps=5"))
    train(tiny_config(tmp_path / "parts", demo_dir, *STREAM, "train.max_steps=12"))
    assert losses(tmp_path / "parts") == expected
