"""Resume after SIGTERM and SIGKILL, resume guards, atomic writes, skipped steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.atomic import atomic_write
from seq2seq.resume import ResumeError
from seq2seq.training import train

from conftest import TINY, tiny_config

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent


def losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["type"] == "train"]


def weights(run_dir):
    return torch.load(run_dir / "last" / "training_state.pt", weights_only=True)["model"]


def test_resume_after_sigterm_is_exact(tmp_path, demo_dir):
    args = ["recipes/demo.yaml", "data.demo=false", f"data.dir={demo_dir}", *TINY, "train.epochs=3", "train.log_every=1",
            "model.dropout=0.2", "train.threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([BIN / "seq2seq-train", *args, f"run_dir={tmp_path / 'ref'}"], check=True, capture_output=True, env=env, cwd=REPO)

    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen([BIN / "seq2seq-train", *args, f"run_dir={run_dir}"], stderr=subprocess.PIPE, env=env, cwd=REPO)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert b"state saved: re-run the same command to resume" in err
    stopped_at = torch.load(run_dir / "last" / "training_state.pt", weights_only=True)["progress"]["step"]
    assert stopped_at >= 3

    result = subprocess.run([BIN / "seq2seq-train", *args, f"run_dir={run_dir}"], capture_output=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr.decode()
    assert f"resuming {run_dir} at step {stopped_at}".encode() in result.stderr
    assert losses(run_dir) == losses(tmp_path / "ref")
    ref = weights(tmp_path / "ref")
    assert all(torch.equal(t, ref[k]) for k, t in weights(run_dir).items())


def test_crash_test_tool_with_sigkill(tmp_path):
    result = subprocess.run([sys.executable, REPO / "tools" / "crash_test.py", "--kills", "2", "--work-dir", tmp_path, "--seed", "3"],
                            capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"2 of 2 resumed runs ended identical" in result.stdout


def test_resume_guard_names_the_changed_key(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=2"))
    with pytest.raises(ResumeError, match=r"model.dec_hidden: 48 in the run, 64 now"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "model.dec_hidden=64"))
    with pytest.raises(ResumeError, match=r"data.max_len"):
        train(tiny_config(tmp_path, demo_dir, "data.max_len=10"))
    # train.* keys may change: a finished run with more steps allowed is still finished, no error
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=2", "train.lr=1e-4"))


def test_tampered_tokenizer_blocks_resume(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=2", "train.epochs=5"))
    (tmp_path / "spm.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(ResumeError, match="SentencePiece model changed"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=2", "train.epochs=5"))


def test_atomic_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "state.pt"
    atomic_write(target, lambda tmp: tmp.write_bytes(b"old"))

    def crash(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"], "no temporary file left behind"


def test_failed_save_stops_the_run(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training as training

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training, "save_state", disk_full)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=2"))


def test_unwritable_run_dir_fails_before_training(tmp_path, demo_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError):
        train(tiny_config(blocker / "run", demo_dir))


def test_non_finite_steps_are_skipped_then_stop_the_run(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training as training

    real_loss = training.token_loss
    calls = {"n": 0}

    def sometimes_nan(model, features, tgt_out, label_smoothing):
        calls["n"] += 1
        loss = real_loss(model, features, tgt_out, label_smoothing)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(training, "token_loss", sometimes_nan)
    train(tiny_config(tmp_path / "one", demo_dir, "train.max_steps=4", "train.log_every=4"))
    record = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()][0]
    assert record["skipped_steps"] == 1 and record["loss"] == record["loss"]  # counted, and the mean stays finite

    def poisoned(model, features, tgt_out, label_smoothing):
        with torch.no_grad():
            model.decoder.generator.bias.fill_(float("inf"))
        return real_loss(model, features, tgt_out, label_smoothing)

    monkeypatch.setattr(training, "token_loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"3 steps in a row .*decoder.generator.bias"):
        train(tiny_config(tmp_path / "two", demo_dir, "train.max_skipped_steps=3"))


def test_out_of_memory_batches_are_skipped(tmp_path, demo_dir, monkeypatch):
    import seq2seq.training as training

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(training, "token_loss", out_of_memory)
    with pytest.raises(MemoryError, match=r"2 batches in a row ran out of CUDA memory \(last: source \("):
        train(tiny_config(tmp_path, demo_dir, "train.max_skipped_steps=2"))


@pytest.mark.parametrize("streaming", [False, True])
def test_resume_is_exact_with_subword_sampling(tmp_path, demo_dir, streaming):
    extra = ["tokenizer.sample_alpha=0.2", "train.log_every=1", "model.dropout=0.2", f"data.streaming={str(streaming).lower()}",
             "data.stream_buffer=150"]
    train(tiny_config(tmp_path / "whole", demo_dir, *extra, "train.max_steps=8"))
    train(tiny_config(tmp_path / "parts", demo_dir, *extra, "train.max_steps=3"))
    train(tiny_config(tmp_path / "parts", demo_dir, *extra, "train.max_steps=8"))
    assert losses(tmp_path / "parts") == losses(tmp_path / "whole")
