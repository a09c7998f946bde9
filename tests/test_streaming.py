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


def test_streaming_training_resumes_exactly(tmp_path, demo_dir):
    train(tiny_config(tmp_path / "whole", demo_dir, *STREAM, "train.max_steps=12"))
    expected = losses(tmp_path / "whole")
    assert len(expected) == 12
    train(tiny_config(tmp_path / "parts", demo_dir, *STREAM, "train.max_steps=5"))
    train(tiny_config(tmp_path / "parts", demo_dir, *STREAM, "train.max_steps=12"))
    assert losses(tmp_path / "parts") == expected
