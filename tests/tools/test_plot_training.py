"""tools/plot_training.py: a valid PNG of sensible size from a run's metrics.jsonl, the later record of a step
winning, clear failures without metrics, and (for both plotting tools) without matplotlib."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from conftest import TOOLS, assert_sensible_png, load_tool

plot_training = load_tool("plot_training")
plot_attention = load_tool("plot_attention")  # test_missing_matplotlib_is_reported checks both tools


def write_metrics(run_dir: Path, records: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def train_record(step: int, loss: float) -> dict:
    return {"type": "train", "step": step, "epoch": 1, "loss": loss, "ppl": 2.0, "lr": 1e-3, "tgt_tokens_per_s": 1000.0}


@pytest.mark.slow
def test_training_plot_of_a_real_run(trained_model_dir, tmp_path):
    out = plot_training.plot_training(trained_model_dir.parent, tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    assert_sensible_png(out)


def test_training_plot_default_output_and_no_validation_yet(tmp_path, capsys):
    run_dir = write_metrics(tmp_path / "run", [train_record(2, 5.0), train_record(4, 4.0)])
    assert plot_training.main([str(run_dir)]) == 0
    assert_sensible_png(run_dir / "training.png")
    assert capsys.readouterr().out.strip() == str(run_dir / "training.png")


def test_later_record_of_a_step_wins_and_a_torn_last_line_is_skipped(tmp_path):
    run_dir = write_metrics(
        tmp_path, [train_record(2, 5.0), train_record(4, 4.0), train_record(4, 3.0), {"type": "valid", "step": 4, "loss": 3.5, "bleu": 1.0}]
    )
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"type": "train", "st')
    train, valid = plot_training.read_metrics(run_dir / "metrics.jsonl")
    assert [(r["step"], r["loss"]) for r in train] == [(2, 5.0), (4, 3.0)]
    assert [r["bleu"] for r in valid] == [1.0]


@pytest.mark.parametrize("contents", [None, "", "\n"])
def test_training_plot_without_metrics_exits_2(tmp_path, capsys, contents):
    if contents is not None:
        (tmp_path / "metrics.jsonl").write_text(contents)
    assert plot_training.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl" in err and "Traceback" not in err
    assert not (tmp_path / "training.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("tool", [plot_training, plot_attention])
def test_missing_matplotlib_is_reported(tool, trained_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes find_spec and import both fail, as when absent
    argv = [str(trained_model_dir.parent)] if tool is plot_training else ["--model", str(trained_model_dir), "A horse."]
    assert tool.main([*argv, "--output", str(tmp_path / "x.png")]) == 2
    assert "pip install 'seq2seq[plot]'" in capsys.readouterr().err


@pytest.mark.slow
def test_training_tool_runs_as_a_script_without_a_display(trained_model_dir, tmp_path):
    shutil.copy(trained_model_dir.parent / "metrics.jsonl", tmp_path / "metrics.jsonl")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(TOOLS / "plot_training.py"), str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert_sensible_png(tmp_path / "training.png")
