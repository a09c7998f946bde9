"""What a run prepares before its first step (seq2seq/preparation.py): the run directory, the tokenizer, the allocator."""

import ctypes
import platform
from pathlib import Path

import pytest
import torch

from seq2seq.preparation import keep_freed_memory
from seq2seq.textfiles import read_lines
from seq2seq.training import train

from conftest import tiny_config


def forbid_preparation(monkeypatch):
    """Make every step of preparation after the run directory fail the test if it runs."""
    from seq2seq import preparation

    def must_not_run(*args, **kwargs):
        raise AssertionError("preparation went past the run directory")

    for name in ("load_corpus", "train_tokenizer", "new_model", "new_optimizer"):
        monkeypatch.setattr(preparation, name, must_not_run)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc: a directory that refuses files, even to root")
def test_unwritable_run_dir_fails_before_training(monkeypatch, demo_dir):
    forbid_preparation(monkeypatch)
    with pytest.raises(OSError, match=r"^run_dir /proc cannot be created or is not writable \(.+\); choose another run_dir$"):
        train(tiny_config(Path("/proc"), demo_dir))


def test_run_dir_that_cannot_be_created_fails_before_training(tmp_path, monkeypatch, demo_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    forbid_preparation(monkeypatch)
    with pytest.raises(OSError) as failure:
        train(tiny_config(blocker / "run", demo_dir))
    assert str(blocker / "run") in str(failure.value)
    assert "choose another run_dir" in str(failure.value)
    assert blocker.read_text() == "x"


@pytest.mark.slow
def test_reused_tokenizer_is_copied_not_trained(trained_model_dir, tmp_path, demo_dir):
    from seq2seq.config import ConfigError
    from seq2seq.preparation import prepare_tokenizer
    from seq2seq.tokenizer import JOINT_MODEL

    # Other training text and another vocabulary size: training would give a different model.
    text = (read_lines(demo_dir / "val.en.gz"), read_lines(demo_dir / "val.de.gz"))
    config = tiny_config(tmp_path / "run", demo_dir, f"tokenizer.reuse={trained_model_dir}", "tokenizer.vocab_size=90")
    tokenizer = prepare_tokenizer(config, tmp_path / "run", text, None)
    assert (tmp_path / "run" / JOINT_MODEL).read_bytes() == (trained_model_dir / JOINT_MODEL).read_bytes()
    assert tokenizer.src_vocab_size != 90

    separate = tiny_config(tmp_path / "sep", demo_dir, f"tokenizer.reuse={trained_model_dir}", "tokenizer.joint=false")
    with pytest.raises(ConfigError, match=r"tokenizer\.reuse: .* holds no spm\.src\.model or spm\.tgt\.model"):
        prepare_tokenizer(separate, tmp_path / "sep", text, None)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_large_tensors_come_from_the_heap_and_stay_there_when_freed():
    # A 64 MB tensor, like the per-step buffers of a training step: with glibc's defaults it is
    # mapped on its own (hblkhd) and unmapped when freed, to be faulted in afresh the next step.
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    keep_freed_memory()
    before = libc.mallinfo2()
    x = torch.ones(16 << 20)
    during = libc.mallinfo2()
    del x
    after = libc.mallinfo2()
    assert during.hblkhd - before.hblkhd < 1 << 20
    assert after.arena >= during.arena >= 64 << 20
