"""tools/plot_training.py and tools/plot_attention.py: valid PNGs of sensible size, clear failures."""

import dataclasses
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from seq2seq.checkpoint import read_model_dir, save_model_dir
from seq2seq.model import build_model
from seq2seq.tokenizer import load_tokenizer

TOOLS = Path(__file__).resolve().parent.parent / "tools"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_tool(name: str):
    """tools/ is not a package: load a script as a module by its path."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plot_training = load_tool("plot_training")
plot_attention = load_tool("plot_attention")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which the PNG format puts first."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_sensible_png(path: Path) -> tuple[int, int]:
    assert path.is_file()
    width, height = png_size(path)
    assert 300 <= width <= 5000 and 300 <= height <= 5000
    assert path.stat().st_size > 10_000
    return width, height


def write_metrics(run_dir: Path, records: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def train_record(step: int, loss: float) -> dict:
    return {"type": "train", "step": step, "epoch": 1, "loss": loss, "ppl": 2.0, "lr": 1e-3, "tgt_tokens_per_s": 1000.0}


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
    run_dir = write_metrics(tmp_path, [train_record(2, 5.0), train_record(4, 4.0), train_record(4, 3.0),
                                       {"type": "valid", "step": 4, "loss": 3.5, "bleu": 1.0}])
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


def test_attention_plot_grows_with_the_sentence(trained_model_dir, tmp_path):
    short = plot_attention.plot_attention(trained_model_dir, "A horse runs.", tmp_path / "short.png", beam_size=2)
    long = plot_attention.plot_attention(
        trained_model_dir, "My mother opens the bed against a horse because the cold kings buy Maria.", tmp_path / "long.png", beam_size=2)
    short_w, short_h = assert_sensible_png(short)
    long_w, long_h = assert_sensible_png(long)
    # The source length decides the width; the height follows the translation, which a
    # two-epoch model may not make much longer.
    assert long_w > short_w and long_h >= short_h


def test_attention_labels_include_both_eos(trained_model_dir):
    src, tgt, translation, attention = plot_attention.attend(trained_model_dir, "A horse runs.", beam_size=2)
    assert src[-1] == "</s>" and tgt[-1] == "</s>"
    assert attention.shape == (len(tgt), len(src))
    assert abs(float(attention.sum(-1).mean()) - 1.0) < 1e-4  # each row is a distribution over the source
    assert isinstance(translation, str)


def test_attention_main_writes_the_output(trained_model_dir, tmp_path, capsys):
    out = tmp_path / "sub" / "a.png"
    assert plot_attention.main(["--model", str(trained_model_dir), "--beam-size", "2", "--output", str(out), "A horse runs."]) == 0
    assert_sensible_png(out)


@pytest.fixture
def no_attention_model_dir(trained_model_dir, tmp_path) -> Path:
    """The trained model's recipe with attention: none, saved with fresh weights: enough to load."""
    config, _ = read_model_dir(trained_model_dir)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, attention="none"))
    tokenizer = load_tokenizer(trained_model_dir, config.tokenizer.joint)
    model = build_model(config.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size, tokenizer.joint)
    save_model_dir(tmp_path / "none", model, config, trained_model_dir, {}, "")
    return tmp_path / "none"


def test_attention_plot_of_a_model_without_attention_exits_2(no_attention_model_dir, tmp_path, capsys):
    out = tmp_path / "a.png"
    assert plot_attention.main(["--model", str(no_attention_model_dir), "--output", str(out), "A horse runs."]) == 2
    err = capsys.readouterr().err
    assert "attention: none" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("args", [
    ["--model", "{missing}", "A horse runs."],  # not a model directory
    ["--model", "{model}", " "],  # blank sentence
    ["--model", "{model}", "--beam-size", "0", "A horse."],
])
def test_attention_usage_errors_exit_2(trained_model_dir, tmp_path, capsys, args):
    args = [a.format(missing=tmp_path / "nope", model=trained_model_dir) for a in args]
    assert plot_attention.main(["--output", str(tmp_path / "a.png"), *args]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("tool", [plot_training, plot_attention])
def test_missing_matplotlib_is_reported(tool, trained_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes find_spec and import both fail, as when absent
    argv = [str(trained_model_dir.parent)] if tool is plot_training else ["--model", str(trained_model_dir), "A horse."]
    assert tool.main([*argv, "--output", str(tmp_path / "x.png")]) == 2
    assert "pip install 'seq2seq[plot]'" in capsys.readouterr().err


def test_training_tool_runs_as_a_script_without_a_display(trained_model_dir, tmp_path):
    shutil.copy(trained_model_dir.parent / "metrics.jsonl", tmp_path / "metrics.jsonl")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(TOOLS / "plot_training.py"), str(tmp_path)], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert_sensible_png(tmp_path / "training.png")
