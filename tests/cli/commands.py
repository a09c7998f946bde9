"""What the command tests share: running a command as a process, and a command's exit status."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]


def run(cmd, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, env=env, timeout=300, **kwargs)


def translate_cli(model_dir, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "seq2seq-translate", "--model", str(model_dir), *args], input=data, capture_output=True, env=ENV, timeout=120)


def exit_code(main, argv: list[str]) -> int:
    """A command's exit status, whether its main returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds} s")
        time.sleep(0.1)
