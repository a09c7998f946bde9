"""The commands (seq2seq/cli.py): exit codes and messages, stdin and stdout, files, several models."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def translate_cli(model_dir, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "seq2seq-translate", "--model", str(model_dir), *args], input=data, capture_output=True, env=ENV, timeout=120)


SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]


def test_translate_command_takes_several_models(trained_model_dir):
    data = "\n".join(SENTENCES).encode() + b"\n"
    one = translate_cli(trained_model_dir, data)
    two = subprocess.run([BIN / "seq2seq-translate", "--model", str(trained_model_dir), str(trained_model_dir)],
                         input=data, capture_output=True, env=ENV, timeout=120, check=False)
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout
