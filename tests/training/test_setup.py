"""What a run prepares before its first step (seq2seq/training/setup.py): the run directory, the tokenizer, the allocator."""

import ctypes
import platform
from pathlib import Path

import pytest
import torch

from seq2seq.textfiles import read_lines
from seq2seq.training.loop import train
from seq2seq.training.setup import keep_freed_memory

from conftest import tiny_config


def forbid_preparation(monkeypatch):
    """Make every step of preparation after the run directory fail the test if it runs."""
    from seq2seq.training import setup as preparation

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
    from seq2seq.tokenizer import JOINT_MODEL
    from seq2seq.training.setup import prepare_tokenizer

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


# --- fine-tuning: train.init_from ---------------------------------------------------------------


@pytest.mark.slow
def test_fine_tuning_starts_from_the_models_weights_with_a_fresh_optimizer(trained_model_dir, tmp_path, demo_dir):
    import json

    from safetensors.torch import load_file

    from seq2seq.tokenizer import JOINT_MODEL
    from seq2seq.training.setup import start_run

    # model.dropout may change: it regularises training and is no part of the architecture.
    args = (f"train.init_from={trained_model_dir}", "model.dropout=0.1", "train.max_steps=2", "train.eval_every=2", "train.score_test=false")
    run, _, progress = start_run(tiny_config(tmp_path / "probe", demo_dir, *args))
    run.writer.close()
    source = load_file(trained_model_dir / "model.safetensors")
    state = run.model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in source.items())
    assert progress.step == 0 and run.optimizer.state_dict()["state"] == {}  # Adam's moments start empty
    assert (tmp_path / "probe" / JOINT_MODEL).read_bytes() == (trained_model_dir / JOINT_MODEL).read_bytes()

    best = train(tiny_config(tmp_path / "ft", demo_dir, *args))
    records = [json.loads(line) for line in (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "valid"] == [0, 2]  # step 0: the weights it started from
    meta = json.loads((best / "meta.json").read_text())
    assert meta["init_from_weights_sha256"] == json.loads((trained_model_dir / "meta.json").read_text())["weights_sha256"]
    assert json.loads((best / "config.json").read_text())["train"]["init_from"] == str(trained_model_dir)
    assert not all(torch.equal(t, source[k]) for k, t in load_file(best / "model.safetensors").items())  # and it trained


@pytest.mark.slow
def test_fine_tuning_refuses_a_recipe_that_changes_the_tokenizer_or_model(trained_model_dir, tmp_path, demo_dir):
    from seq2seq.config import ConfigError

    changed = tiny_config(
        tmp_path / "a",
        demo_dir,
        f"train.init_from={trained_model_dir}",
        "model.dec_hidden=64",
        "model.cell=gru",
        "tokenizer.vocab_size=300",
        f"tokenizer.reuse={trained_model_dir}",
    )
    with pytest.raises(ConfigError) as err:
        train(changed)
    problems = "\n".join(err.value.problems)
    assert "model.dec_hidden: 64 in the recipe but 48 in train.init_from" in problems and "set model.dec_hidden=48" in problems
    assert "model.cell: 'gru' in the recipe but 'lstm'" in problems and "set model.cell=lstm" in problems
    assert "tokenizer.vocab_size: 300" in problems and "drop tokenizer.reuse" in problems
    assert len(err.value.problems) == 4
    with pytest.raises(ConfigError, match=r"train\.init_from: .*nowhere is not a directory"):
        train(tiny_config(tmp_path / "b", demo_dir, f"train.init_from={tmp_path / 'nowhere'}"))


# --- bf16: train.bf16 = auto | true | false ----------------------------------------------------


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_auto_follows_the_cpu_and_says_so(monkeypatch, caplog, has_bf16):
    import logging

    from seq2seq.training import setup as preparation

    monkeypatch.setattr(preparation, "cpu_has_bf16", lambda: has_bf16)
    with caplog.at_level(logging.INFO, logger="seq2seq"):
        assert preparation.resolve_bf16("auto", torch.device("cpu")) is has_bf16
    said = {
        True: "bf16 autocast: on (train.bf16=auto: this CPU has bf16 instructions (AVX-512 BF16 or AMX))",
        False: "bf16 autocast: off (train.bf16=auto: this CPU has no bf16 instructions)",
    }
    assert [r.getMessage() for r in caplog.records] == [said[has_bf16]]  # once


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_true_and_false_are_taken_as_set(monkeypatch, has_bf16):
    from seq2seq.config import ConfigError
    from seq2seq.training import setup as preparation

    monkeypatch.setattr(preparation, "cpu_has_bf16", lambda: has_bf16)
    assert preparation.resolve_bf16(False, torch.device("cpu")) is False
    if has_bf16:
        assert preparation.resolve_bf16(True, torch.device("cpu")) is True
    else:
        with pytest.raises(ConfigError, match=r"train\.bf16=true but this CPU has no bf16 instructions.*set train\.bf16=false or auto"):
            preparation.resolve_bf16(True, torch.device("cpu"))


def test_bf16_auto_on_cuda_asks_the_gpu(monkeypatch):
    from seq2seq.training import setup as preparation

    monkeypatch.setattr(preparation, "cpu_has_bf16", lambda: pytest.fail("the CPU was asked about a CUDA run"))
    for has_units in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, has_units=has_units: has_units and not including_emulation)
        assert preparation.resolve_bf16("auto", torch.device("cuda")) is has_units


def test_bf16_auto_decides_before_anything_runs_and_the_run_records_it(tmp_path, demo_dir, monkeypatch):
    """start_run resolves auto once, into the run's bf16 flag and its autocast (no training needed)."""
    from seq2seq.training import setup as preparation
    from seq2seq.training.run import close_run

    for has_bf16 in (True, False):
        monkeypatch.setattr(preparation, "cpu_has_bf16", lambda has_bf16=has_bf16: has_bf16)
        run, _, _ = preparation.start_run(tiny_config(tmp_path / str(has_bf16), demo_dir, "train.bf16=auto"))
        close_run(run)
        assert run.bf16 is has_bf16
        assert isinstance(run.autocast, torch.autocast) is has_bf16
