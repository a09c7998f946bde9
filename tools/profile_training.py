"""Profile training steps of a recipe with torch.profiler and print the top operators.

    python tools/profile_training.py recipes/en-de.yaml data.dir=../shared/data/multi30k [--steps 5]

Trains the tokenizer in a temporary run directory, builds the recipe's model, runs a few warm-up
steps and then `--steps` profiled steps (forward, loss, backward, clip, Adam) on real batches, and
prints the operators by self CPU time. The figures are for reading, not for comparing runs: use
tools/benchmark.py for throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from seq2seq.config import load_config
from seq2seq.data import collate_pairs, make_batches
from seq2seq.distributed import Dist
from seq2seq.model import build_model
from seq2seq.training import prepare_data, seed_everything, token_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(args.recipe, [*args.overrides, f"run_dir={run_dir}"])
        seed_everything(config.seed)
        data = prepare_data(config, Path(run_dir), Dist(), None)
    tc = config.train
    model = build_model(config.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size, data.tokenizer.joint)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    split = data.train_split
    batches = make_batches(np.array([len(s) + 1 for s in split.src]), np.array([len(t) for t in split.tgt]), tc.batch_tokens, config.seed, 1)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if tc.bf16 else contextlib.nullcontext()
    model.train()

    def step(indices: np.ndarray) -> None:
        batch = collate_pairs([split.src[i] for i in indices], [split.tgt[i] for i in indices])
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            features = model(batch.src, batch.src_len, batch.tgt_in, tc.teacher_forcing)
            loss = token_loss(model, features, batch.tgt_out, tc.label_smoothing)
        (loss / batch.num_tokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
        optimizer.step()

    for indices in batches[: args.warmup]:
        step(indices)
    profiled = batches[args.warmup : args.warmup + args.steps]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for indices in profiled:
            step(indices)
    tokens = sum(len(split.tgt[i]) + 1 for b in profiled for i in b)
    print(f"{len(profiled)} steps, {tokens} target tokens")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
