"""seq2seq-train (seq2seq/cli/train.py): recipe errors, exit codes, SIGINT and resume."""

import logging
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from commands import BIN, ENV, wait_for

from seq2seq.training.allocator import find_tcmalloc

from conftest import TINY


def test_cli_exit_code_2_without_traceback(capsys):
    from seq2seq.cli.train import main as train_main

    assert train_main(["recipes/demo.yaml", "model.atention=luong", "train.lr=abc"]) == 2
    err = capsys.readouterr().err
    assert "did you mean model.attention?" in err and "train.lr: expected a number" in err
    assert "Traceback" not in err


def test_print_config(capsys):
    from seq2seq.cli.train import main as train_main

    assert train_main(["recipes/demo.yaml", "train.lr=0.5", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.5" in out and "attention: bahdanau" in out


def test_train_exit_codes_for_data_and_other_errors(tmp_path, demo_dir, capsys):
    from seq2seq.cli.train import main as train_main

    (tmp_path / "empty").mkdir()
    base = ["recipes/demo.yaml", "data.demo=false", "train.device=cpu"]
    assert train_main([*base, f"data.dir={tmp_path / 'empty'}", f"run_dir={tmp_path / 'run'}"]) == 2  # DataError
    err = capsys.readouterr().err
    assert "no train split" in err and "Traceback" not in err
    (tmp_path / "file").write_text("")
    assert train_main([*base, f"data.dir={demo_dir}", f"run_dir={tmp_path / 'file' / 'run'}"]) == 1  # OSError: not a user's recipe mistake
    assert "Not a directory" in capsys.readouterr().err


@pytest.mark.slow
def test_sigint_saves_state_and_exits_130_and_resume_refuses_a_changed_model(tmp_path, demo_dir, capsys, caplog):
    caplog.set_level(logging.INFO, logger="seq2seq")
    from seq2seq.cli.train import main as train_main

    run_dir = tmp_path / "run"
    argv = [
        "recipes/demo.yaml",
        "data.demo=false",
        f"data.dir={demo_dir}",
        f"run_dir={run_dir}",
        *TINY,
        "train.epochs=100",
        "train.log_every=1",
        "train.score_test=false",
    ]
    proc = subprocess.Popen([BIN / "seq2seq-train", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        metrics = run_dir / "metrics.jsonl"
        wait_for(lambda: (metrics.is_file() and metrics.read_text().count("\n") >= 1) or proc.poll() is not None, 120, "no step logged")
        assert proc.poll() is None, proc.stderr.read().decode()
        # The command ran itself again with tcmalloc where it is installed (seq2seq.training.allocator), in the same process.
        mapped = Path(f"/proc/{proc.pid}/maps").read_text()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode()
    err = err.decode()
    assert "stopped by SIGINT after step" in err and "Traceback" not in err
    if find_tcmalloc():
        assert "allocator: tcmalloc (preloaded)" in err and "libtcmalloc" in mapped
    else:
        assert "tcmalloc is not installed" in err and "libtcmalloc" not in mapped
    step = int(err.split("stopped by SIGINT after step ")[1].split(";")[0])
    state = torch.load(run_dir / "last" / "training_state.pt", weights_only=True)
    assert state["progress"]["step"] == step >= 1
    # A changed architecture cannot continue this state: a usage error that names the key.
    assert train_main([*argv, "model.emb_dim=16"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "model.emb_dim: 32 in the run, 16 now" in err
    # The same recipe continues from the saved step (train.* may change: stop two steps later).
    assert train_main([*argv, f"train.max_steps={step + 2}"]) == 0
    assert f"resuming {run_dir} at step {step}" in caplog.text
    assert torch.load(run_dir / "last" / "training_state.pt", weights_only=True)["progress"]["step"] == step + 2
