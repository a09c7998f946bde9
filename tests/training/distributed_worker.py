"""seq2seq-train with one rank's training step sabotaged from outside, for tests/training/test_distributed.py.

    [torchrun ...] python tests/training/distributed_worker.py --rank R --fail STEP:KIND [...] RECIPE [key=value ...]

On rank R (RANK from torchrun; 0 without it) the loss of training step STEP is replaced by the
KIND of failure: `oom` raises CUDA's out-of-memory error (the CPU can raise it too), `nan`
returns a NaN loss, `kill` SIGKILLs the process (on torchrun's first attempt only, so a
restarted group trains on), `hang` sleeps forever. The training code knows nothing of this: the
patch replaces `seq2seq.training.loop.token_loss`, the function each step calls.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import torch

import seq2seq.training.loop as training
from seq2seq.cli.train import main as train_main


def sabotage(rank: int, failures: dict[int, str]) -> None:
    if int(os.environ.get("RANK", "0")) != rank:
        return
    real_loss = training.token_loss
    calls = {"n": 0}

    def failing_loss(*args, **kwargs):
        calls["n"] += 1  # token_loss runs once per training step of this process
        kind = failures.get(calls["n"])
        if kind == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated on one rank)")
        if kind == "kill" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "hang":
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # torchrun's SIGTERM ends it at once, not after its grace period
            while True:
                time.sleep(60)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if kind == "nan" else loss

    training.token_loss = failing_loss


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--fail", action="append", default=[], help="STEP:KIND, counted in this process's steps from 1")
    args, rest = parser.parse_known_args()
    failures = {int(step): kind for step, kind in (item.split(":") for item in args.fail)}
    sabotage(args.rank, failures)
    return train_main(rest)


if __name__ == "__main__":
    sys.exit(main())
