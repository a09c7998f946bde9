"""Validation (seq2seq/training/validation.py): early stopping, the resume states saved between validations, the test split."""

import json
import math

import pytest
import torch

from seq2seq.training.loop import train

from conftest import tiny_config

pytestmark = pytest.mark.slow


def test_score_test_false_leaves_the_test_split_alone(tmp_path, demo_dir):
    best = train(tiny_config(tmp_path / "off", demo_dir, "train.max_steps=2", "train.score_test=false"))
    assert "test_bleu" not in json.loads((best / "meta.json").read_text())
    best = train(tiny_config(tmp_path / "on", demo_dir, "train.max_steps=2"))
    assert "test_bleu" in json.loads((best / "meta.json").read_text())


def scripted_evaluate(monkeypatch, bleus):
    """Validation that gives these BLEU scores in turn, whatever the model."""
    from seq2seq.training import validation

    scores = iter(bleus)
    monkeypatch.setattr(validation, "evaluate", lambda *args, **kwargs: {"loss": 1.0, "ppl": math.e, "bleu": next(scores), "bleu_signature": "scripted"})


@pytest.mark.parametrize("patience, stopped_at", [(2, 4), (0, 6)])  # 0: no early stopping, the control
def test_early_stopping_after_patience_validations_without_improvement(tmp_path, demo_dir, monkeypatch, patience, stopped_at):
    bleus = [10.0, 12.0, 12.0, 11.0, 13.0, 14.0]  # a tie is no improvement
    scripted_evaluate(monkeypatch, bleus)
    # The control, patience 0, runs the same script to max_steps: only the patience stops the other at step 4.
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=6", "train.eval_every=1", f"train.patience={patience}", "train.scheduler=constant"))
    state = torch.load(tmp_path / "last" / "training_state.pt", weights_only=True)["progress"]
    assert state["step"] == stopped_at and state["finished"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["bleu"] for r in records if r["type"] == "valid"] == bleus[:stopped_at]
    if patience:
        assert state["bad_evals"] == 2 and state["best_bleu"] == 12.0


def test_save_every_writes_a_resume_state_between_validations(tmp_path, demo_dir, monkeypatch):
    from seq2seq.training import validation

    real_save_state, saved_at = validation.save_state, []

    def recording_save_state(run_dir, **kwargs):
        saved_at.append(kwargs["progress"].step)
        real_save_state(run_dir, **kwargs)

    monkeypatch.setattr(validation, "save_state", recording_save_state)
    train(tiny_config(tmp_path, demo_dir, "train.max_steps=5", "train.save_every=2", "train.eval_every=0"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["type"] == "valid"] == [5]  # the epoch is longer: only the last step validates
    assert saved_at == [2, 4, 5]
