"""torchrun with gloo processes on the CPU trains like one process with the same global batch: on one
node, on two nodes (two launchers on this machine), through a failing rank's skipped steps and
through a killed worker's restart; a stuck rank turns into an error that names it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from conftest import TINY

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
# Every subprocess waits at most this long: a hung rendezvous fails the test instead of the suite.
TIMEOUT = 300
ARGS = [*TINY, "model.dropout=0.0", "model.emb_dropout=0.0", "train.log_every=1", "train.max_steps=6", "train.eval_every=3", "train.threads=1"]


WORKER = REPO / "tests" / "training" / "distributed_worker.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def records(run_dir, kind="train"):
    return [r for r in (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def losses(run_dir):
    return [r["loss"] for r in records(run_dir)]


def run(command, timeout=TIMEOUT):
    """Run a command in a session of its own, so that a timeout kills torchrun's workers too, not only torchrun."""
    with subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=REPO, start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def weights(run_dir):
    from safetensors.torch import load_file

    return load_file(run_dir / "last" / "model.safetensors")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


needs_distributed = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")


def recipe(demo_dir):
    return ["recipes/demo.yaml", "data.demo=false", f"data.dir={demo_dir}", *ARGS]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, demo_dir):
    """The reference: one process trained on the whole global batches."""
    run_dir = tmp_path_factory.mktemp("one")
    single = run([BIN / "seq2seq-train", *recipe(demo_dir), f"run_dir={run_dir}"])
    assert single.returncode == 0, single.stderr.decode()[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, demo_dir):
    """Two gloo ranks on one node, uninterrupted."""
    run_dir = tmp_path_factory.mktemp("two")
    ddp = run([BIN / "torchrun", "--standalone", "--nproc_per_node=2", "--no-python", BIN / "seq2seq-train", *recipe(demo_dir), f"run_dir={run_dir}"])
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    return run_dir


def assert_only_rank_0_wrote(run_dir, ranks):
    # One metrics file with one line per step and validation, one best model, every rank's generators.
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 + 2
    assert (run_dir / "best" / "model.safetensors").is_file()
    state = torch.load(run_dir / "last" / "training_state.pt", weights_only=True)
    assert len(state["rng"]) == ranks, "each rank's generators are saved for resume"


@needs_distributed
def test_two_gloo_processes_match_one_process(one_process, two_processes):
    one, two = losses(one_process), losses(two_processes)
    assert len(one) == len(two) == 6
    assert max(abs(a - b) for a, b in zip(one, two)) < 1e-5, (one, two)
    assert_only_rank_0_wrote(two_processes, 2)


@needs_distributed
def test_two_nodes_match_one_process(tmp_path, demo_dir, one_process):
    """Two torchrun launchers on this machine act as two nodes of one process each, meeting at a c10d rendezvous."""
    node = [
        BIN / "torchrun",
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{free_port()}",
        "--rdzv_id=two-nodes",
        "--no-python",
        BIN / "seq2seq-train",
        *recipe(demo_dir),
        f"run_dir={tmp_path / 'two'}",
    ]
    launchers = [subprocess.Popen([str(c) for c in node], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=REPO) for _ in range(2)]
    results = [(launcher.communicate(timeout=TIMEOUT)[1], launcher.returncode) for launcher in launchers]
    for stderr, code in results:
        assert code == 0, stderr.decode()[-3000:]
    one, two = losses(one_process), losses(tmp_path / "two")
    assert len(two) == 6 and max(abs(a - b) for a, b in zip(one, two)) < 1e-5, (one, two)
    assert_only_rank_0_wrote(tmp_path / "two", 2)


@needs_distributed
def test_a_killed_worker_restarts_the_group_which_resumes(tmp_path, demo_dir, two_processes):
    """Rank 1 is SIGKILLed at step 5 of torchrun's first attempt; with --max-restarts=1 the group
    restarts once, resumes from the state saved at step 4 and ends as the uninterrupted run did."""
    elastic = run(
        [
            BIN / "torchrun",
            "--standalone",
            "--nproc_per_node=2",
            "--max-restarts=1",
            WORKER,
            "--rank",
            "1",
            "--fail",
            "5:kill",
            *recipe(demo_dir),
            "train.save_every=2",
            "train.dist_timeout_minutes=0.5",
            f"run_dir={tmp_path / 'two'}",
        ]
    )
    assert elastic.returncode == 0, elastic.stderr.decode()[-3000:]
    assert b"resuming" in elastic.stderr and b"at step 4" in elastic.stderr, elastic.stderr.decode()[-3000:]
    assert losses(tmp_path / "two") == losses(two_processes)
    restarted, uninterrupted = weights(tmp_path / "two"), weights(two_processes)
    assert all(torch.equal(restarted[k], uninterrupted[k]) for k in uninterrupted)


@needs_distributed
def test_a_restarted_group_agrees_on_a_new_name_whatever_the_last_one_left():
    """torchrun keeps one store for all restarts, so a restarted group must not take what the failed
    attempt left there: each group agrees on a fresh name, even when a rank starts before rank 0 and
    finds the last attempt's reply waiting for it."""
    from concurrent.futures import ThreadPoolExecutor

    from seq2seq.training.distributed import agree_on_group_name

    server = torch.distributed.TCPStore("127.0.0.1", 0, world_size=1, is_master=True, wait_for_workers=False)
    timeout = timedelta(seconds=20)

    def join(rank: int, delay: float = 0.0) -> str:
        time.sleep(delay)
        client = torch.distributed.TCPStore("127.0.0.1", server.port, world_size=3, is_master=False, timeout=timeout)
        return agree_on_group_name(client, rank, 3, timeout)

    with ThreadPoolExecutor(3) as pool:
        first = list(pool.map(join, [0, 1, 2]))
        # The second group: ranks 1 and 2 start well before rank 0 and read the first group's replies first.
        second = list(pool.map(join, [0, 1, 2], [0.5, 0.0, 0.0]))
    assert len(set(first)) == 1 and len(set(second)) == 1, (first, second)
    assert first[0] != second[0]


@needs_distributed
def test_a_missing_rank_0_is_named_when_the_group_cannot_form():
    from seq2seq.training.distributed import PeerError, agree_on_group_name

    server = torch.distributed.TCPStore("127.0.0.1", 0, world_size=1, is_master=True, wait_for_workers=False)
    with pytest.raises(PeerError, match="rank 1: rank 0 did not join the process group within 1 s"):
        agree_on_group_name(server, 1, 2, timedelta(seconds=1))


@needs_distributed
def test_a_stuck_rank_is_named_when_the_others_time_out(tmp_path, demo_dir):
    stuck = run(
        [
            BIN / "torchrun",
            "--standalone",
            "--nproc_per_node=2",
            WORKER,
            "--rank",
            "1",
            "--fail",
            "2:hang",
            *recipe(demo_dir),
            "train.dist_timeout_minutes=0.1",
            f"run_dir={tmp_path / 'two'}",
        ],
        timeout=120,
    )
    assert stuck.returncode != 0
    assert b"rank 0: a collective with the other ranks failed (rank 1 did not answer)" in stuck.stderr, stuck.stderr.decode()[-3000:]


@needs_distributed
def test_ddp_resume_continues_like_one_process(tmp_path, demo_dir, one_process):
    ddp = [BIN / "torchrun", "--standalone", "--nproc_per_node=2", "--no-python", BIN / "seq2seq-train", *recipe(demo_dir), f"run_dir={tmp_path / 'two'}"]
    first = run([*ddp, "train.max_steps=3"])
    assert first.returncode == 0, first.stderr.decode()[-3000:]
    assert len(losses(tmp_path / "two")) == 3
    second = run(ddp)
    assert second.returncode == 0, second.stderr.decode()[-3000:]
    assert b"continuing the finished run" in second.stderr
    one, two = losses(one_process), losses(tmp_path / "two")
    assert len(two) == 6 and max(abs(a - b) for a, b in zip(one, two)) < 1e-5, (one, two)


@needs_distributed
def test_ranks_skip_together_when_one_rank_fails(tmp_path, demo_dir):
    """Rank 1 alone runs out of memory at its third step and has a NaN loss at its fifth: both ranks
    skip both steps and train on in step, like one process whose steps fail the same way."""
    common = [*recipe(demo_dir), "train.dist_timeout_minutes=1"]
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
