"""seq2seq-train → seq2seq-translate → seq2seq-score, as a user runs them, on generated data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def run(cmd, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, env=env, timeout=300, **kwargs)


def test_train_then_translate_then_score(tmp_path, demo_dir):
    run_dir = tmp_path / "run"
    result = run([BIN / "seq2seq-train", "recipes/demo.yaml", "data.demo=false", f"data.dir={demo_dir}", f"run_dir={run_dir}",
                  "train.epochs=1", *TINY])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"", "training writes nothing to stdout"
    assert b"valid step" in result.stderr
    model = run_dir / "best"

    lines = [b"The dog sees the cat.", b"", b"A small woman laughs.", b"   "]
    result = run([BIN / "seq2seq-translate", "--model", str(model), "--beam-size", "3"], input=b"\n".join(lines) + b"\n")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode().split("\n")
    assert len(out) == 5 and out[-1] == ""
    assert out[1] == "" and out[3] == ""
    assert out[0] and out[2]

    result = run([BIN / "seq2seq-translate", "--model", str(model), "--output-type", "json", "--nbest", "2", "--beam-size", "3"], input=lines[0] + b"\n")
    record = json.loads(result.stdout)
    assert record["line"] == 0 and len(record["hypotheses"]) == 2
    assert record["hypotheses"][0]["score"] >= record["hypotheses"][1]["score"]

    hyp = tmp_path / "hyp.txt"
    hyp.write_text(out[0] + "\n" + out[2] + "\n")
    ref = tmp_path / "ref.txt"
    ref.write_text("Der Hund sieht die Katze.\nEine kleine Frau lacht.\n")
    result = run([BIN / "seq2seq-score", "--ref", str(ref), str(hyp), "--metrics", "bleu", "chrf"])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("BLEU = ")
