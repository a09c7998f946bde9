"""Kill a real training run with SIGKILL at random moments, resume it, and compare.

    python tools/crash_test.py --kills 5 [--work-dir DIR] [--seed 0]

First trains a shortened demo run without interruption. Then, for each of N trials, starts the
same run in a fresh directory, kills it with SIGKILL as soon as it has logged a randomly chosen
step (so the kill lands in the next step, a checkpoint save or a validation), re-runs the same
command until it finishes, and compares the per-step training losses and the final weights with
the uninterrupted run, bit for bit.

Only a trial whose re-run resumed from a checkpoint saved mid-run tests resuming; one killed
before the first checkpoint (it starts afresh) or after the run finished tests nothing, and is
reported apart. Exits 0 only if every trial ended identical, every trial with a mid-run
checkpoint resumed from it, and at least one did.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file

from seq2seq.training.resume import read_state_file, state_path

REPO = Path(__file__).resolve().parent.parent
ATTEMPT_TIMEOUT_S = 900  # one training attempt of the short run; minutes on a loaded CPU
SHORT_RUN = [
    "data.demo_train_size=600",
    "data.max_valid_sentences=60",
    "tokenizer.vocab_size=300",
    "model.emb_dim=32",
    "model.enc_hidden=32",
    "model.dec_hidden=48",
    "model.attention_dim=32",
    "model.word_dropout=0.1",
    "train.epochs=2",
    "train.batch_tokens=400",
    "train.log_every=1",
    "train.save_every=3",
    "train.threads=1",
    "train.device=cpu",
]


def train_command(run_dir: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "seq2seq-train"), str(REPO / "recipes" / "demo.yaml"), f"run_dir={run_dir}", *SHORT_RUN]


def run_to_end(run_dir: Path) -> tuple[float, str]:
    """Run (or resume) the short run until it finishes; return the wall time and the log (stderr)
    of this attempt."""
    start = time.perf_counter()
    result = subprocess.run(train_command(run_dir), capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=ATTEMPT_TIMEOUT_S)
    log = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"training in {run_dir} failed with exit code {result.returncode}:\n{log[-2000:]}")
    return time.perf_counter() - start, log


def kill_after_step(run_dir: Path, step: int) -> bool:
    """Start the run and SIGKILL it once it has logged `step`; False if it finished first."""
    proc = subprocess.Popen(train_command(run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
    try:
        while proc.poll() is None:
            if metrics.exists() and sum(1 for line in metrics.read_text().splitlines() if '"train"' in line) >= step:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            if time.monotonic() > deadline:
                raise TimeoutError(f"training in {run_dir} did not log step {step} within {ATTEMPT_TIMEOUT_S} s")
            time.sleep(0.005)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def checkpoint_step(run_dir: Path) -> int | None:
    """The step of the resume state a killed run left mid-run; None if it left none, or one of
    the finished run."""
    path = state_path(run_dir)
    if not path.exists():
        return None
    progress = read_state_file(path)["progress"]
    return None if progress["finished"] else progress["step"]


def resumed_at(log: str) -> int | None:
    """The step a training attempt said it resumed at, from its log; None if it did not resume."""
    found = re.search(r"resuming .* at step (\d+)", log)
    return int(found.group(1)) if found else None


def step_losses(run_dir: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss"]) for r in records if r["type"] == "train"]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "last" / "model.safetensors")), load_file(str(b / "last" / "model.safetensors"))
    return wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5, help="number of trials, one SIGKILL each")
    parser.add_argument("--work-dir", help="where the runs go (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the kill times")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="seq2seq-crash-"))
    rng = random.Random(args.seed)

    reference = work / "reference"
    duration, _ = run_to_end(reference)
    expected = step_losses(reference)
    print(f"uninterrupted run: {len(expected)} steps in {duration:.1f} s ({reference})")
    mid_run = identical_mid_run = 0
    untested = {"killed before the first checkpoint": 0, "killed after the run finished": 0, "finished before the kill": 0}
    failed = 0
    for trial in range(1, args.kills + 1):
        run_dir = work / f"trial-{trial}"
        step = rng.randint(1, len(expected) - 1)
        killed = kill_after_step(run_dir, step)
        checkpoint = checkpoint_step(run_dir) if killed else None
        untested_because = (
            None
            if checkpoint is not None
            else (
                "finished before the kill"
                if not killed
                else "killed after the run finished"
                if state_path(run_dir).exists()
                else "killed before the first checkpoint"
            )
        )
        _, log = run_to_end(run_dir)
        ok = step_losses(run_dir) == expected and same_weights(run_dir, reference)
        resumed = resumed_at(log)
        if checkpoint is not None:
            mid_run += 1
            identical_mid_run += ok and resumed == checkpoint
            how = (
                f"resumed mid-run from step {checkpoint}"
                if resumed == checkpoint
                else f"DID NOT RESUME from its checkpoint at step {checkpoint} (resumed at: {resumed})"
            )
        else:
            untested[untested_because] += 1
            how = f"{untested_because} (tests nothing)"
        failed += not ok or (checkpoint is not None and resumed != checkpoint)
        print(f"trial {trial}: SIGKILL after step {step}, {how}: {'identical' if ok else 'DIFFERENT'}")
    print(f"{identical_mid_run} of {mid_run} trials that resumed mid-run ended identical to the uninterrupted run")
    if sum(untested.values()):
        print(f"{sum(untested.values())} trials tested nothing: " + ", ".join(f"{n} {what}" for what, n in untested.items() if n))
    if mid_run == 0:
        print("no trial resumed mid-run, so resuming was not tested: run more --kills or another --seed")
    return 0 if failed == 0 and mid_run > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
