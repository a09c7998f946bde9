"""Resuming a run (seq2seq/training/resume.py): after SIGTERM, with subword sampling and with streaming, exactly as if
it had not stopped; the guards against a changed recipe or tokenizer."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.training.loop import train
from seq2seq.training.resume import ResumeError

from conftest import TINY, tiny_config

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
STREAM = ["data.streaming=true", "data.stream_buffer=150", "data.tokenizer_sample=300", "train.log_every=1"]


def losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["type"] == "train"]


def weights(run_dir):
    return torch.load(run_dir / "last" / "training_state.pt", weights_only=True)["model"]


@pytest.mark.parametrize("cell,epochs", [("lstm", 3), ("gru", 2)])  # the GRU's run shorter: the suite's time
def test_resume_after_sigterm_is_exact(tmp_path, demo_dir, cell, epochs):
    args = [
        "recipes/demo.yaml",
        "data.demo=false",
        f"data.dir={demo_dir}",
        *TINY,
        f"train.epochs={epochs}",
        "train.log_every=1",
        "model.dropout=0.2",
        "train.threads=1",
        f"model.cell={cell}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([BIN / "seq2seq-train", *args, f"run_dir={tmp_path / 'ref'}"], check=True, capture_output=True, env=env, cwd=REPO, timeout=300)

    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen([BIN / "seq2seq-train", *args, f"run_dir={run_dir}"], stderr=subprocess.PIPE, env=env, cwd=REPO)
    try:
        metrics = run_dir / "metrics.jsonl"
        deadline = time.time() + 120
        while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # timed out: leave no training process behind
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert b"state saved: re-run the same command to resume" in err
    stopped_at = torch.load(run_dir / "last" / "training_state.pt", weights_only=True)["progress"]["step"]
    assert stopped_at >= 3

    result = subprocess.run([BIN / "seq2seq-train", *args, f"run_dir={run_dir}"], capture_output=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert f"resuming {run_dir} at step {stopped_at}".encode() in result.stderr
    assert losses(run_dir) == losses(tmp_path / "ref")
    ref = weights(tmp_path / "ref")
    assert all(torch.equal(t, ref[k]) for k, t in weights(run_dir).items())


def test_resume_guard_names_the_changed_key(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=2"))
    with pytest.raises(ResumeError, match=r"model.dec_hidden: 48 in the run, 64 now"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "model.dec_hidden=64"))
    with pytest.raises(ResumeError, match=r"data.max_len"):
        train(tiny_config(tmp_path, demo_dir, "data.max_len=10"))
    with pytest.raises(ResumeError, match=r"seed: 1 in the run, 2 now"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "seed=2"))
    with pytest.raises(ResumeError, match=r"tokenizer.vocab_size: 200 in the run, 150 now"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "tokenizer.vocab_size=150"))
    with pytest.raises(ResumeError, match=r"tokenizer.sample_alpha: 0.0 in the run, 0.1 now"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "tokenizer.sample_alpha=0.1"))
    # train.* keys may change: a finished run with more steps allowed is still finished, no error
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=2", "train.lr=1e-4"))


def test_tampered_tokenizer_blocks_resume(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=2", "train.epochs=5"))
    (tmp_path / "spm.model").write_bytes(b"not a sentencepiece model")
    with pytest.raises(ResumeError, match="SentencePiece model changed"):
        train(tiny_config(tmp_path, demo_dir, "train.max_steps=2", "train.epochs=5"))


@pytest.mark.parametrize("streaming", [False, True])
def test_resume_is_exact_with_subword_sampling(tmp_path, demo_dir, streaming):
    extra = ["tokenizer.sample_alpha=0.2", "train.log_every=1", "model.dropout=0.2", f"data.streaming={str(streaming).lower()}", "data.stream_buffer=150"]
    train(tiny_config(tmp_path / "whole", demo_dir, *extra, "train.max_steps=8"))
    train(tiny_config(tmp_path / "parts", demo_dir, *extra, "train.max_steps=3"))
    train(tiny_config(tmp_path / "parts", demo_dir, *extra, "train.max_steps=8"))
    assert losses(tmp_path / "parts") == losses(tmp_path / "whole")


def test_streaming_training_resumes_exactly(tmp_path, demo_dir):
    train(tiny_config(tmp_path / "whole", demo_dir, *STREAM, "train.max_steps=12"))
    expected = losses(tmp_path / "whole")
    assert len(expected) == 12
    train(tiny_config(tmp_path / "parts", demo_dir, *STREAM, "train.max_steps=5"))
    train(tiny_config(tmp_path / "parts", demo_dir, *STREAM, "train.max_steps=12"))
    assert losses(tmp_path / "parts") == expected
