"""Helpers for the server's tests: seq2seq-serve as a subprocess on a free loopback port, plain HTTP with
the standard library, and seq2seq-translate's output for the same lines."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 120) -> Reply:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def post_json(url: str, obj: Any, headers: dict[str, str] | None = None, timeout: float = 120) -> Reply:
    return request(url, "POST", json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})}, timeout)


def post_form(url: str, fields: dict[str, str]) -> Reply:
    return request(url, "POST", urllib.parse.urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})


@dataclass(frozen=True)
class Server:
    proc: subprocess.Popen
    url: str
    log: Path  # its stderr
    headers: dict[str, str] | None = None  # what every request needs (a key)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def metric(self, name: str, labels: str = "") -> float:
        """One sample of /metrics, e.g. metric("seq2seq_dropped_sentences_total", 'reason="deadline"'); 0 when absent."""
        reply = request(self.url + "/metrics", headers=self.headers)
        assert reply.status == 200, reply.body
        text = reply.body.decode()
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            key, _, value = line.rpartition(" ")
            if key == wanted:
                return float(value)
        return 0.0


@contextlib.contextmanager
def running_server(model_dir: Path, log: Path, *args: str, headers: dict[str, str] | None = None, env: dict[str, str] | None = None) -> Iterator[Server]:
    """seq2seq-serve on a free port, once /ready answers 200; terminated (SIGTERM) afterwards if still running."""
    port = free_port()
    cmd = [str(BIN / "seq2seq-serve"), "--model", str(model_dir), "--port", str(port), "--threads", "1", *args]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env or ENV)
    server = Server(proc, f"http://127.0.0.1:{port}", log, headers)
    try:
        wait_ready(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(server: Server, timeout: float = 120) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if server.proc.poll() is not None:
            raise RuntimeError(f"seq2seq-serve exited with {server.proc.returncode}:\n{server.stderr()}")
        with contextlib.suppress(OSError):
            if request(server.url + "/ready", timeout=5).status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"seq2seq-serve was not ready within {timeout} s:\n{server.stderr()}")


def translate_cli(model_dir: Path, lines: list[str], *args: str) -> bytes:
    """seq2seq-translate's stdout for these lines (UTF-8, one per line)."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    done = subprocess.run([str(BIN / "seq2seq-translate"), "--model", str(model_dir), "--quiet", *args], input=data, capture_output=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def cli_records(model_dir: Path, lines: list[str], *args: str) -> list[dict]:
    """seq2seq-translate --output-type json, one record per line."""
    return [json.loads(line) for line in translate_cli(model_dir, lines, "--output-type", "json", *args).decode().splitlines()]


def assert_same_records(got: list[dict], expected: list[dict]) -> None:
    """The same JSON records as seq2seq-translate's, byte for byte but for the scores' last float32 bits.

    A score is a sum of float32 log-probabilities, and its last bits depend on the shape of the batch
    a sentence is computed in (seq2seq-translate's own --output-type json differs between --batch-size 1
    and 64); the texts and tokens do not.
    """
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert (g["line"], g["source"]) == (e["line"], e["source"])
        assert [(h["text"], h["tokens"]) for h in g["hypotheses"]] == [(h["text"], h["tokens"]) for h in e["hypotheses"]]
        assert [h["score"] for h in g["hypotheses"]] == pytest.approx([h["score"] for h in e["hypotheses"]], rel=1e-5, abs=1e-5)
