"""Checkpoint averaging, ensembles, the time budget and CPU bf16 training."""

from __future__ import annotations

import json
import math
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from seq2seq.config import ModelConfig
from seq2seq.model import Ensemble, build_model
from seq2seq.resume import load_state
from seq2seq.training import train
from seq2seq.translate import Translator
from tests.conftest import tiny_config
from tests.test_translate import BIN, ENV, translate_cli

SENTENCES = ["The man is sleeping.", "Two dogs play in the park.", "A woman with a red hat reads a book."]


def small_model(seed: int, vocab: int = 30):
    torch.manual_seed(seed)
    cfg = ModelConfig(emb_dim=8, enc_hidden=8, dec_hidden=12, attention_dim=8, dropout=0.0, emb_dropout=0.0)
    return build_model(cfg, vocab, vocab, True).eval()


def test_ensemble_step_is_log_of_mean_probability():
    models = [small_model(1), small_model(2)]
    ensemble = Ensemble(models)
    src, src_len = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]]), torch.tensor([4, 3])
    y = torch.tensor([2, 2])
    memory = ensemble.encode(src, src_len)
    out, state, weights = ensemble.step(y, ensemble.init_state(memory), memory)
    probs = [torch.softmax(m.step(y, m.init_state(m.encode(src, src_len)), m.encode(src, src_len))[0], -1) for m in models]
    torch.testing.assert_close(out.exp(), (probs[0] + probs[1]) / 2)
    assert len(state) == 2 and weights.shape == (2, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


def test_ensemble_rejects_mismatched_vocabularies():
    with pytest.raises(ValueError, match="vocabularies differ"):
        Ensemble([small_model(1, 30), small_model(2, 40)])
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([small_model(1)])


def test_ensemble_of_a_model_with_itself_translates_as_the_model(trained_model_dir):
    single = Translator.from_pretrained(trained_model_dir, device="cpu").translate_nbest(SENTENCES, beam_size=3, nbest=2)
    double = Translator.from_pretrained([trained_model_dir, trained_model_dir], device="cpu").translate_nbest(SENTENCES, beam_size=3, nbest=2)
    assert [[h.text for h in hs] for hs in double] == [[h.text for h in hs] for hs in single]
    for hs, gs in zip(single, double):
        for h, g in zip(hs, gs):
            assert math.isclose(h.score, g.score, abs_tol=1e-4)


def test_translate_command_takes_several_models(trained_model_dir):
    data = "\n".join(SENTENCES).encode() + b"\n"
    one = translate_cli(trained_model_dir, data)
    two = subprocess.run([BIN / "seq2seq-translate", "--model", str(trained_model_dir), str(trained_model_dir)],
                         input=data, capture_output=True, env=ENV, timeout=120, check=False)
    assert one.returncode == two.returncode == 0, two.stderr
    assert two.stdout == one.stdout


def test_ensemble_cannot_be_saved_as_one_model(trained_model_dir, tmp_path):
    translator = Translator.from_pretrained([trained_model_dir, trained_model_dir], device="cpu")
    with pytest.raises(ValueError, match="seq2seq-average"):
        translator.save_pretrained(tmp_path / "out")


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
    proc = subprocess.run([BIN / "seq2seq-average", "--run-dir", str(run_with_checkpoints), "--last", "2", "--output", str(out)],
                          capture_output=True, env=ENV, timeout=120, check=False)
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
    proc = subprocess.run([BIN / "seq2seq-average", "--run-dir", str(run_with_checkpoints), "--last", "4", "--output", str(tmp_path / "x")],
                          capture_output=True, env=ENV, timeout=120, check=False)
    assert proc.returncode == 2
    assert b"fewer than --last 4" in proc.stderr and b"train.keep_checkpoints" in proc.stderr


def test_time_budget_stops_and_can_be_raised(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=0.0001"))
    stopped = load_state(tmp_path)["progress"]
    assert stopped["step"] == 1 and stopped["finished"]
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=0.0001", "train.max_steps=3"))
    assert load_state(tmp_path)["progress"]["step"] == 1  # still out of time: nothing to do
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.max_minutes=10", "train.max_steps=3"))
    assert load_state(tmp_path)["progress"]["step"] == 3


def test_time_budget_keeps_room_for_the_final_validation(tmp_path, demo_dir, monkeypatch):
    import time

    from seq2seq import training

    real_evaluate = training.evaluate

    def slow_evaluate(*args, **kwargs):
        time.sleep(1.0)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", slow_evaluate)
    # 1.5 s: step 1 and its 1 s validation leave 0.4 s, less than a validation, so step 2 is the
    # last; without the reservation step 2 would start a validation that ends past the budget, then step 3.
    train(tiny_config(tmp_path, demo_dir, "train.epochs=50", "train.eval_every=1", "train.max_minutes=0.025"))
    progress = load_state(tmp_path)["progress"]
    assert progress["step"] == 2 and progress["finished"]


def test_score_test_false_leaves_the_test_split_alone(tmp_path, demo_dir):
    best = train(tiny_config(tmp_path / "off", demo_dir, "train.max_steps=2", "train.score_test=false"))
    assert "test_bleu" not in json.loads((best / "meta.json").read_text())
    best = train(tiny_config(tmp_path / "on", demo_dir, "train.max_steps=2"))
    assert "test_bleu" in json.loads((best / "meta.json").read_text())


def test_bf16_autocast_trains_on_cpu(tmp_path, demo_dir):
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=4", "train.bf16=true", "train.log_every=1"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["type"] == "train"]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
