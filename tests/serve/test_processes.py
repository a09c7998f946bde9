"""seq2seq-serve's worker processes (seq2seq.serve.processes): an exported directory is served by
children that answer as seq2seq-translate does, a child that dies is started again, SIGTERM ends
them all, and a child that cannot load its model keeps the server from starting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from serving import post_json, running_server, translate_cli

from seq2seq.options import SearchOptions
from seq2seq.serve.processes import ModelSource, WorkerError, WorkerProcess
from seq2seq.textfiles import read_lines

pytestmark = pytest.mark.slow  # trained_model_dir trains

OPTIONS = {"beam_size": 2, "max_len_ratio": 0.5}
CLI = ["--beam-size", "2", "--max-len-ratio", "0.5"]


@pytest.fixture(scope="module")
def lines(demo_dir) -> list[str]:
    return read_lines(demo_dir / "test.en.gz")[:24]


@pytest.fixture(scope="module")
def cli_text(exported, lines) -> list[str]:
    return translate_cli(exported, lines, *CLI).decode().splitlines()


def children(pid: int) -> list[int]:
    """The worker processes of server `pid` (multiprocessing's resource tracker left out)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]


def test_worker_processes_answer_as_the_command_and_one_killed_is_started_again(exported, tmp_path, lines, cli_text):
    args = ["--options", json.dumps(OPTIONS), "--max-batch-tokens", "64", "--workers", "2"]
    with running_server(exported, tmp_path / "stderr.log", *args) as server:
        assert "2 inference workers (processes), 1 thread each" in server.stderr()
        workers = children(server.proc.pid)
        assert len(workers) == 2

        reply = post_json(server.url + "/translate", {"q": lines, "source": "en", "target": "de"})
        assert reply.status == 200 and reply.json()["translatedText"] == cli_text
        assert server.metric("seq2seq_batch_sentences_count") > 2  # in several batches, over both workers
        with ThreadPoolExecutor(8) as pool:
            singles = list(pool.map(lambda line: post_json(server.url + "/translate", {"q": line, "source": "en", "target": "de"}), lines))
        assert [r.json()["translatedText"] for r in singles] == cli_text

        os.kill(workers[0], signal.SIGKILL)
        time.sleep(0.5)
        with ThreadPoolExecutor(8) as pool:  # every worker gets a batch: the dead one is started again first
            again = list(pool.map(lambda line: post_json(server.url + "/translate", {"q": line, "source": "en", "target": "de"}), lines))
        assert [r.json()["translatedText"] for r in again] == cli_text
        assert "seq2seq-worker-0 ended (exit code -9); starting it again" in server.stderr()
        workers = children(server.proc.pid)
        assert len(workers) == 2

        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
    time.sleep(0.5)
    assert not [p for p in workers if Path(f"/proc/{p}").exists()], "worker processes outlived the server"


def test_workers_as_threads_keeps_them_in_the_server(exported, tmp_path, lines, cli_text):
    args = ["--options", json.dumps(OPTIONS), "--workers", "2", "--workers-as", "threads"]
    with running_server(exported, tmp_path / "stderr.log", *args) as server:
        assert "2 inference workers (threads), 1 thread each" in server.stderr()
        assert children(server.proc.pid) == []
        assert post_json(server.url + "/translate", {"q": lines[:3], "source": "en", "target": "de"}).json()["translatedText"] == cli_text[:3]


def test_a_worker_process_translates_as_the_translator_and_says_why_it_cannot_load(exported, tmp_path, lines, cli_text):
    worker = WorkerProcess(ModelSource((str(exported),), "cpu", "fp32", 1, True), name="test-worker")
    try:
        worker.wait_ready()
        worker.send(lines[:4], SearchOptions(beam_size=2, max_len_ratio=0.5, nbest=2), batch_size=2)
        hyps = worker.receive()
        assert [h[0].text for h in hyps] == cli_text[:4] and all(len(h) == 2 for h in hyps)
    finally:
        worker.close()

    missing = WorkerProcess(ModelSource((str(tmp_path / "nowhere"),), "cpu", "fp32", 1, True), name="test-missing")
    try:
        with pytest.raises(WorkerError, match=r"test-missing: loading .*nowhere"):
            missing.wait_ready()
    finally:
        missing.close()
