"""Validation and the test split (seq2seq/validation.py)."""

import json

import pytest

from seq2seq.training import train

from conftest import tiny_config

pytestmark = pytest.mark.slow


def test_score_test_false_leaves_the_test_split_alone(tmp_path, demo_dir):
    best = train(tiny_config(tmp_path / "off", demo_dir, "train.max_steps=2", "train.score_test=false"))
    assert "test_bleu" not in json.loads((best / "meta.json").read_text())
    best = train(tiny_config(tmp_path / "on", demo_dir, "train.max_steps=2"))
    assert "test_bleu" in json.loads((best / "meta.json").read_text())
