"""Kill a worker of a two-process torchrun group, again and again, and count how often one restart is enough.

    python tools/restart_check.py --trials 10 [--nodes 1|2] [--max-restarts 1] [--work-dir DIR]

Each trial runs tests/training/distributed_worker.py under `torchrun --standalone --nproc_per_node=2
--max-restarts=N` (with --nodes 2: two launchers on this machine, one process each, meeting at a
c10d rendezvous on 127.0.0.1) on a tiny generated corpus: rank 1 is SIGKILLed at its fifth step on the first
attempt, the state is saved every 2 steps, and the trial succeeds when the group restarts, resumes
at step 4 and finishes. Prints one line per trial (with `connectFullMesh` when gloo could not
connect the restarted group) and the count; exits 0 only if every trial succeeded. Load on the
machine makes a race in forming the restarted group more likely: run it beside other work too.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A model small enough that a 6-step run is mostly process start-up.
TINY_RUN = [
    "tokenizer.vocab_size=200",
    "model.emb_dim=32",
    "model.enc_hidden=32",
    "model.dec_hidden=48",
    "model.attention_dim=32",
    "model.dropout=0.0",
    "model.emb_dropout=0.0",
    "train.batch_tokens=600",
    "train.device=cpu",
    "train.log_every=1",
    "train.max_steps=6",
    "train.eval_every=3",
    "train.threads=1",
    "train.save_every=2",
    "train.dist_timeout_minutes=0.5",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--nodes", type=int, choices=[1, 2], default=1, help="2: two torchrun launchers acting as two nodes")
    parser.add_argument("--max-restarts", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, help="where the runs go (default: a new temporary directory)")
    args = parser.parse_args()

    from seq2seq.data.demo_corpus import write_demo_corpus

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="restart-check-"))
    demo = write_demo_corpus(work / "demo", seed=0, train_size=400, valid_size=40, test_size=40)
    torchrun = Path(sys.executable).parent / "torchrun"
    succeeded = 0
    for trial in range(args.trials):
        start = time.perf_counter()
        worker = [
            REPO / "tests" / "training" / "distributed_worker.py",
            "--rank",
            "1",
            "--fail",
            "5:kill",
            REPO / "recipes" / "demo.yaml",
            "data.demo=false",
            f"data.dir={demo}",
            *TINY_RUN,
            f"run_dir={work / f'run{trial}'}",
        ]
        if args.nodes == 1:
            launchers = [[torchrun, "--standalone", "--nproc_per_node=2", f"--max-restarts={args.max_restarts}", *worker]]
        else:
            rendezvous = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{free_port()}", f"--rdzv_id=trial{trial}"]
            launchers = 2 * [[torchrun, *rendezvous, f"--max-restarts={args.max_restarts}", *worker]]
        logs = [work / f"run{trial}.launcher{i}.stderr" for i in range(len(launchers))]  # files, not pipes: no launcher blocks on a full pipe
        procs = []
        for command, log in zip(launchers, logs):
            with log.open("wb") as sink:  # the child keeps its own copy of the descriptor
                procs.append(
                    subprocess.Popen([str(c) for c in command], stdout=subprocess.DEVNULL, stderr=sink, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
                )
        codes = [proc.wait(timeout=600) for proc in procs]
        err = "".join(log.read_text(errors="replace") for log in logs)
        ok = codes == [0] * len(procs) and "at step 4" in err
        succeeded += ok
        if ok:
            for log in logs:
                log.unlink()
        print(
            f"trial {trial}: {'resumed' if ok else 'FAILED'} in {time.perf_counter() - start:.0f} s{'  connectFullMesh' if 'connectFullMesh' in err else ''}",
            flush=True,
        )
    print(f"{succeeded} of {args.trials} restarted groups formed and resumed at step 4 (runs and failed logs: {work})")
    return 0 if succeeded == args.trials else 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
