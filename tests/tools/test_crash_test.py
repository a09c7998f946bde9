"""tools/crash_test.py: training killed with SIGKILL at random moments resumes to the same result; only a
trial that resumed from a mid-run checkpoint counts as tested."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import load_tool

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_crash_test_tool_with_sigkill(tmp_path):
    # Seed 3 kills after steps 16 and 38 of 60; with a resume state every 3 steps, both resume mid-run.
    proc = subprocess.Popen(
        [sys.executable, REPO / "tools" / "crash_test.py", "--kills", "2", "--work-dir", tmp_path, "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=REPO,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the tool and the training run it started
        proc.communicate()
        raise
    out = out.decode()
    assert proc.returncode == 0, out + err.decode()
    resumed = re.findall(r"^trial \d: SIGKILL after step (\d+), resumed mid-run from step (\d+): identical$", out, re.MULTILINE)
    assert len(resumed) == 2 and all(0 < int(start) <= int(killed) for killed, start in resumed), out
    assert "2 of 2 trials that resumed mid-run ended identical to the uninterrupted run" in out
    assert "tested nothing" not in out


@pytest.fixture
def scripted_tool(tmp_path, monkeypatch):
    """The tool with training replaced: every run logs the same losses and ends with the same weights."""
    tool = load_tool("crash_test")
    monkeypatch.setattr(tool, "step_losses", lambda run_dir: [(1, 1.0), (2, 0.5), (3, 0.25), (4, 0.125)])
    monkeypatch.setattr(tool, "same_weights", lambda a, b: True)
    return tool


def killed_leaving(state_progress):
    """A kill_after_step that leaves this resume state behind (None: none)."""

    def kill_after_step(run_dir, step):
        if state_progress is not None:
            (run_dir / "last").mkdir(parents=True)
            torch.save({"progress": state_progress}, run_dir / "last" / "training_state.pt")
        return True

    return kill_after_step


def test_trials_without_a_mid_run_checkpoint_test_nothing(scripted_tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scripted_tool, "run_to_end", lambda run_dir: (0.1, "INFO training from the start"))
    monkeypatch.setattr(scripted_tool, "kill_after_step", killed_leaving(None))
    assert scripted_tool.main(["--kills", "1", "--work-dir", str(tmp_path / "early")]) == 1
    monkeypatch.setattr(scripted_tool, "kill_after_step", killed_leaving({"step": 4, "finished": True}))
    assert scripted_tool.main(["--kills", "1", "--work-dir", str(tmp_path / "late")]) == 1
    out = capsys.readouterr().out
    assert "killed before the first checkpoint (tests nothing): identical" in out
    assert "killed after the run finished (tests nothing): identical" in out
    assert out.count("0 of 0 trials that resumed mid-run ended identical") == 2
    assert out.count("no trial resumed mid-run, so resuming was not tested") == 2


def test_a_trial_must_resume_from_its_mid_run_checkpoint(scripted_tool, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scripted_tool, "kill_after_step", killed_leaving({"step": 2, "finished": False}))
    # Identical losses and weights, but the re-run started afresh: resuming was not tested, and it failed.
    monkeypatch.setattr(scripted_tool, "run_to_end", lambda run_dir: (0.1, "INFO training from the start"))
    assert scripted_tool.main(["--kills", "1", "--work-dir", str(tmp_path / "afresh")]) == 1
    assert "DID NOT RESUME from its checkpoint at step 2" in capsys.readouterr().out
    monkeypatch.setattr(scripted_tool, "run_to_end", lambda run_dir: (0.1, f"INFO resuming {run_dir} at step 2 (epoch 1, batch 2)"))
    assert scripted_tool.main(["--kills", "1", "--work-dir", str(tmp_path / "resumed")]) == 0
    out = capsys.readouterr().out
    assert "resumed mid-run from step 2: identical" in out and "1 of 1 trials that resumed mid-run ended identical" in out
