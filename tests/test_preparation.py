"""What training prepares before its loop (today in seq2seq/training.py, to be seq2seq/preparation.py): the run
directory, the tokenizer, subword sampling, the allocator."""

import pytest

from seq2seq.training import train

from conftest import tiny_config


def test_unwritable_run_dir_fails_before_training(tmp_path, demo_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        train(tiny_config(blocker / "run", demo_dir))
