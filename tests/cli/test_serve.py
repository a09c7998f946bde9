"""seq2seq-serve's command line (seq2seq/cli/serve.py) without a server: how --workers and --threads
resolve. The server itself is tested in tests/serve."""

import os

from seq2seq.cli.serve import workers_and_threads


def test_an_exported_directory_gets_one_single_thread_worker_per_cpu_unless_told(tmp_path, monkeypatch):
    exported, plain = tmp_path / "onnx", tmp_path / "model"
    exported.mkdir()
    plain.mkdir()
    (exported / "export.json").write_text("{}")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert workers_and_threads([str(exported)], 0, 0) == (3, 1)
    assert workers_and_threads([str(plain)], 0, 0) == (1, 0)  # a torch directory: one worker, torch's threads
    assert workers_and_threads([str(exported)], 0, 2) == (1, 2)  # threads given: one worker of them
    assert workers_and_threads([str(exported)], 2, 0) == (2, 0)  # workers given: kept as they are
    assert workers_and_threads(["org/name"], 0, 0) == (1, 0)  # a Hub name is not a local exported directory
