"""torchrun with two gloo processes on the CPU trains like one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
# Every subprocess waits at most this long: a hung rendezvous fails the test instead of the suite.
TIMEOUT = 300
ARGS = [*TINY, "model.dropout=0.0", "model.emb_dropout=0.0", "train.log_every=1", "train.max_steps=6", "train.eval_every=3", "train.threads=1"]


def losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["type"] == "train"]


needs_distributed = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")


@needs_distributed
def test_two_gloo_processes_match_one_process(tmp_path, demo_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["recipes/demo.yaml", "data.demo=false", f"data.dir={demo_dir}", *ARGS]
    single = subprocess.run([BIN / "seq2seq-train", *common, f"run_dir={tmp_path / 'one'}"], capture_output=True, env=env, cwd=REPO, timeout=TIMEOUT)
    assert single.returncode == 0, single.stderr.decode()
    ddp = subprocess.run([BIN / "torchrun", "--standalone", "--nproc_per_node=2", "--no-python", BIN / "seq2seq-train", *common,
                          f"run_dir={tmp_path / 'two'}"], capture_output=True, env=env, cwd=REPO, timeout=TIMEOUT)
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) == 6
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-5, (one, two)
    # Only rank 0 writes: one metrics file with one line per step and validation, one best model.
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 + 2
    assert (tmp_path / "two" / "best" / "model.safetensors").is_file()
    state = torch.load(tmp_path / "two" / "last" / "training_state.pt", weights_only=True)
    assert len(state["rng"]) == 2, "each rank's generators are saved for resume"


@needs_distributed
def test_ddp_resume_continues_like_one_process(tmp_path, demo_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["recipes/demo.yaml", "data.demo=false", f"data.dir={demo_dir}", *ARGS]
    subprocess.run([BIN / "seq2seq-train", *common, f"run_dir={tmp_path / 'one'}"], check=True, capture_output=True, env=env, cwd=REPO, timeout=TIMEOUT)
    ddp = [BIN / "torchrun", "--standalone", "--nproc_per_node=2", "--no-python", BIN / "seq2seq-train", *common, f"run_dir={tmp_path / 'two'}"]
    first = subprocess.run([*ddp, "train.max_steps=3"], capture_output=True, env=env, cwd=REPO, timeout=TIMEOUT)
    assert first.returncode == 0, first.stderr.decode()[-3000:]
    assert len(losses(tmp_path / "two")) == 3
    second = subprocess.run(ddp, capture_output=True, env=env, cwd=REPO, timeout=TIMEOUT)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    assert b"continuing the finished run" in second.stderr
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(two) == 6 and max(abs(a - b) for a, b in zip(one, two)) < 1e-5, (one, two)
