"""tools/plot_attention.py: a valid PNG that grows with the sentence, labels with both EOS, rows that are
distributions, and exit code 2 for a model without attention and for usage errors."""

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from seq2seq.model import build_model
from seq2seq.modeldir.checkpoint import read_model_dir, save_model_dir
from seq2seq.tokenizer import load_tokenizer

from conftest import assert_sensible_png, load_tool

pytestmark = pytest.mark.slow

plot_attention = load_tool("plot_attention")


def test_attention_plot_grows_with_the_sentence(trained_model_dir, tmp_path):
    short = plot_attention.plot_attention(trained_model_dir, "A horse runs.", tmp_path / "short.png", beam_size=2)
    long = plot_attention.plot_attention(
        trained_model_dir, "My mother opens the bed against a horse because the cold kings buy Maria.", tmp_path / "long.png", beam_size=2
    )
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
    save_model_dir(tmp_path / "none", model, config, tokenizer_dir=trained_model_dir, record=None)
    return tmp_path / "none"


def test_attention_plot_of_a_model_without_attention_exits_2(no_attention_model_dir, tmp_path, capsys):
    out = tmp_path / "a.png"
    assert plot_attention.main(["--model", str(no_attention_model_dir), "--output", str(out), "A horse runs."]) == 2
    err = capsys.readouterr().err
    assert "attention: none" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "{missing}", "A horse runs."],  # not a model directory
        ["--model", "{model}", " "],  # blank sentence
        ["--model", "{model}", "--beam-size", "0", "A horse."],
    ],
)
def test_attention_usage_errors_exit_2(trained_model_dir, tmp_path, capsys, args):
    args = [a.format(missing=tmp_path / "nope", model=trained_model_dir) for a in args]
    assert plot_attention.main(["--output", str(tmp_path / "a.png"), *args]) == 2
    assert capsys.readouterr().err.startswith("error: ")
