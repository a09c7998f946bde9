"""Kept checkpoints and their averages (seq2seq/training/averaging.py); only checkpoints of one run (one model section,
one tokenizer) are averaged."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.cli.average import main as average_main
from seq2seq.inference.translator import Translator
from seq2seq.training.loop import train

from conftest import tiny_config, with_other_tokenizer

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]


@pytest.fixture(scope="module")
def run_with_checkpoints(tmp_path_factory, demo_dir):
    run_dir = tmp_path_factory.mktemp("ckpt")
    train(tiny_config(run_dir, demo_dir, "train.max_steps=8", "train.eval_every=2", "train.keep_checkpoints=3"))
    return run_dir


def test_keep_checkpoints_keeps_the_newest(run_with_checkpoints):
    kept = sorted(p.name for p in (run_with_checkpoints / "checkpoints").iterdir())
    assert kept == ["step-00000004", "step-00000006", "step-00000008"]


def test_average_command_averages_weights(run_with_checkpoints, tmp_path):
    out = tmp_path / "avg"
    proc = subprocess.run(
        [BIN / "seq2seq-average", "--run-dir", str(run_with_checkpoints), "--last", "2", "--output", str(out)],
        capture_output=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    a, b = (load_file(run_with_checkpoints / "checkpoints" / name / "model.safetensors") for name in ("step-00000006", "step-00000008"))
    averaged = load_file(out / "model.safetensors")
    assert averaged.keys() == a.keys()
    for name in a:
        torch.testing.assert_close(averaged[name], (a[name] + b[name]) / 2)
    meta = json.loads((out / "meta.json").read_text())
    assert [p.split("/")[-1] for p in meta["averaged_from"]] == ["step-00000006", "step-00000008"]
    assert "averaged over 2 checkpoints" in (out / "README.md").read_text()
    assert Translator.from_pretrained(out, device="cpu").translate(SENTENCES[:1])[0]


def test_average_command_needs_enough_checkpoints(run_with_checkpoints, tmp_path):
    proc = subprocess.run(
        [BIN / "seq2seq-average", "--run-dir", str(run_with_checkpoints), "--last", "4", "--output", str(tmp_path / "x")],
        capture_output=True,
        env=ENV,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert b"fewer than --last 4" in proc.stderr and b"train.keep_checkpoints" in proc.stderr


def with_other_model_section(model_dir: Path, out: Path) -> Path:
    """A copy of a model directory whose config.json records another dropout: its weights still load."""
    shutil.copytree(model_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["model"]["dropout"] = 0.3
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize("differ", ["tokenizer", "model section"])
def test_average_of_different_runs_is_refused_naming_both(trained_model_dir, demo_dir, tmp_path, capsys, differ):
    if differ == "tokenizer":
        other = with_other_tokenizer(trained_model_dir, tmp_path / "other", demo_dir)
    else:
        other = with_other_model_section(trained_model_dir, tmp_path / "other")
    assert Translator.from_pretrained(other, device="cpu").translate(SENTENCES[:1])  # a usable model on its own
    assert average_main([str(trained_model_dir), str(other), "--output", str(tmp_path / "avg")]) == 2
    assert f"{other} has a different {differ} from {trained_model_dir}; only checkpoints of one run can be averaged" in capsys.readouterr().err
    assert not (tmp_path / "avg").exists()
