"""Stopping and continuing a run exactly: training state, RNG states, resume guards, signals.

A run saves its position (epoch, batch within the epoch, step), the weights, optimizer and
scheduler states and every RNG state into one file, written atomically; resuming from it
replays the remaining steps bit for bit on the CPU, because batches depend only on
(seed, epoch) and every random draw comes from the restored generators.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seq2seq.atomic import atomic_write, write_text_atomic
from seq2seq.config import Config, config_to_dict
from seq2seq.training.progress import Progress
from seq2seq.training.schedules import LearningRate

log = logging.getLogger("seq2seq")

STATE_VERSION = 2
TRAINING_STATE = "training_state.pt"  # beside the weights in RUN_DIR/last
# Sections of the recipe that must not change when a run continues; train.* may (epochs, lr, …).
FROZEN_SECTIONS = ("seed", "data", "tokenizer", "model")


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived; the run saved its state at a step boundary and can be resumed."""

    def __init__(self, signum: int, step: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; state saved: re-run the same command to resume")


class ResumeError(ValueError):
    """The run directory holds a run that this recipe cannot continue."""


def state_path(run_dir: Path) -> Path:
    return run_dir / "last" / TRAINING_STATE


def save_state(
    run_dir: Path,
    *,
    config: Config,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr: LearningRate,
    progress: Progress,
    tokenizer_sha: str,
    rng: list[dict[str, Any]],
) -> None:
    """One atomic file with everything a resume needs, weights included, so that a kill between
    two writes can never pair weights with another step's optimizer state. `rng`: one entry per rank."""
    state = {
        "version": STATE_VERSION,
        "config": json.dumps(config_to_dict(config)),
        "tokenizer_sha256": tokenizer_sha,
        "progress": asdict(progress),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        **lr.state_dict(),  # "warmup" and "plateau"
        "rng": rng,
    }
    atomic_write(state_path(run_dir), lambda tmp: torch.save(state, tmp))


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The run's saved state, or None for a run that has not saved one yet."""
    path = state_path(run_dir)
    if not path.is_file():
        return None
    state = read_state_file(path)
    if state.get("version") != STATE_VERSION:
        raise ResumeError(f"{path} has state version {state.get('version')!r}, this seq2seq reads {STATE_VERSION}; start a new run_dir")
    return state


def read_state_file(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def check_resumable(state: dict[str, Any], config: Config, run_dir: Path) -> None:
    """Refuse to continue a run whose data, tokenizer or architecture the recipe has changed."""
    before, now = json.loads(state["config"]), config_to_dict(config)
    changed = []
    for section in FROZEN_SECTIONS:
        old, new = before.get(section), now.get(section)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += [(f"{section}.{k}", old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif old != new:
            changed.append((section, old, new))
    if changed:
        lines = [f"{key}: {old!r} in the run, {new!r} now" for key, old, new in changed]
        raise ResumeError(
            f"cannot resume the run in {run_dir}: " + "; ".join(lines) + ". Only train.* keys may change on resume; restore these values or use a new run_dir."
        )


def restore(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, lr: LearningRate, rank: int) -> Progress:
    """Load the saved weights, optimizer, schedules and this rank's generators; return where the run stood."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    lr.load_state_dict(state)
    if rank < len(state["rng"]):
        restore_rng(state["rng"][rank])
    else:  # more ranks than the run had: this one continues with its seeded generators
        log.warning("no saved RNG state for rank %d (the run had %d); dropout masks will differ from an uninterrupted run", rank, len(state["rng"]))
    known = {f.name for f in fields(Progress)}
    return Progress(**{k: v for k, v in state["progress"].items() if k in known})


def capture_rng() -> dict[str, Any]:
    """Every generator a training step may draw from, in types that weights_only loading accepts."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def restore_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = rng["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric records past the resumed step: those steps are about to be trained again."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


class StopFlag:
    """Turns SIGINT/SIGTERM into a request that the loop honours at the next step boundary."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum
