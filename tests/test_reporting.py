"""seq2seq/reporting.py: TensorBoard events when asked for; a clear config error when the package is missing."""

import pytest

from seq2seq.training import train

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
    with pytest.raises(ConfigError, match="train.tensorboard=true but the tensorboard package is not installed: pip install tensorboard"):
        train(tiny_config(tmp_path, demo_dir, "train.tensorboard=true", "train.max_steps=1"))


def test_tensorboard_writes_events(tmp_path, demo_dir):
    pytest.importorskip("tensorboard")
    from conftest import tiny_config

    train(tiny_config(tmp_path, demo_dir, "train.tensorboard=true", "train.max_steps=2", "train.log_every=1"))
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
