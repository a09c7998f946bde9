"""seq2seq/training/reporting.py: TensorBoard events when asked for; a clear config error when the package is missing."""

import json
import math

import pytest

from seq2seq.training.loop import train

pytestmark = pytest.mark.slow


def test_tensorboard_missing_is_a_clear_config_error(tmp_path, demo_dir, monkeypatch):
    import builtins

    from seq2seq.config import ConfigError

    from conftest import tiny_config

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ConfigError, match=r"train\.tensorboard=true but the tensorboard package is not installed: pip install tensorboard"):
        train(tiny_config(tmp_path, demo_dir, "train.tensorboard=true", "train.max_steps=1"))


def test_tensorboard_writes_every_metric_as_a_scalar(tmp_path, demo_dir):
    """Each number of each metrics.jsonl record is a TensorBoard scalar `{type}/{key}` at its step. tensorboard is
    in the `test` extra: CI runs this test, it is never skipped."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from conftest import tiny_config

    train(
        tiny_config(tmp_path, demo_dir, "train.tensorboard=true", "train.max_steps=3", "train.log_every=1", "train.eval_every=2", "data.max_valid_sentences=4")
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    expected = {
        (f"{r['type']}/{key}", r["step"]): value
        for r in records
        for key, value in r.items()
        if isinstance(value, (int, float)) and key not in ("step", "epoch")
    }
    assert {"train/loss", "train/lr", "valid/loss", "valid/bleu"} <= {tag for tag, _ in expected}
    assert {step for _, step in expected} == {1, 2, 3}
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    scalars = EventAccumulator(str(events[0])).Reload()
    written = {(tag, e.step): e.value for tag in scalars.Tags()["scalars"] for e in scalars.Scalars(tag)}
    assert written.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(written[key], value, rel_tol=1e-6, abs_tol=1e-6), key
