"""torchrun with gloo processes on the CPU trains like one process with the same global batch: on one
node, on two nodes (two launchers on this machine), through a failing rank's skipped steps and
through a killed worker's restart; a stuck rank turns into an error that names it."""

import json
import os
import socket
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


WORKER = REPO / "tests" / "distributed_worker.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def records(run_dir, kind="train"):
    return [r for r in (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def losses(run_dir):
    return [r["loss"] for r in records(run_dir)]


def run(command, timeout=TIMEOUT):
    return subprocess.run([str(c) for c in command], capture_output=True, env=ENV, cwd=REPO, timeout=timeout)


def weights(run_dir):
    from safetensors.torch import load_file

    return load_file(run_dir / "last" / "model.safetensors")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@needs_distributed
def test_ranks_skip_together_when_one_rank_fails(tmp_path, demo_dir):
    """Rank 1 alone runs out of memory at its third step and has a NaN loss at its fifth: both ranks
    skip both steps and train on in step, like one process whose steps fail the same way."""
    common = ["recipes/demo.yaml", "data.demo=false", f"data.dir={demo_dir}", *ARGS, "train.dist_timeout_minutes=1"]
    fails = ["--fail", "3:oom", "--fail", "5:nan"]
    single = run([sys.executable, WORKER, "--rank", "0", *fails, *common, f"run_dir={tmp_path / 'one'}"])
    assert single.returncode == 0, single.stderr.decode()[-3000:]
    ddp = run([BIN / "torchrun", "--standalone", "--nproc_per_node=2", WORKER, "--rank", "1", *fails, *common, f"run_dir={tmp_path / 'two'}"])
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    err = ddp.stderr.decode()
    # Each rank logs the skip: rank 0, whose own step was fine, skips too.
    assert err.count("step 3 skipped: CUDA out of memory") == 2 and err.count("step 5 skipped: loss is nan") == 2, err[-3000:]
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    assert [r["skipped_steps"] for r in two] == [r["skipped_steps"] for r in one] == [0, 0, 1, 1, 2, 2]
    assert max(abs(a["loss"] - b["loss"]) for a, b in zip(one, two)) < 1e-5, (one, two)
