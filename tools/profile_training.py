"""Profile training steps of a recipe with torch.profiler and print the top operators.

    python tools/profile_training.py recipes/en-de.yaml data.dir=../shared/data/multi30k [--steps 5]
    python tools/profile_training.py recipes/en-de.yaml data.dir=../shared/data/multi30k --primitives --steps 400 [--exact-shapes]

Trains the tokenizer in a temporary run directory, builds the recipe's model, runs a few warm-up
steps and then `--steps` profiled steps (forward, loss, backward, clip, Adam) on real batches, and
prints the operators by self CPU time. The figures are for reading, not for comparing runs: use
tools/benchmark.py for throughput.

It also counts the FLOPs a training step executes per target token (forward and backward):
torch's FlopCounterMode for the matrix products, plus the LSTMs or GRUs, which it does not know,
counted from their shapes (2·G·H·(I+H) per position and direction forward, G = 4 gates for an LSTM,
3 for a GRU; twice that backward). Multiplied
by a measured tokens/s and divided by the machine's matrix-multiply FLOP/s (`--peak`, measured
here on 2048² products), this says how close training comes to the CPU's limit.

`--primitives` counts instead how many primitives oneDNN creates (compiles, or takes from its cache)
at each step: it runs the steps again in a child process with ONEDNN_VERBOSE=2, which logs every
creation as a cache hit or miss, and prints the misses per step by stretches of steps, and the
distinct primitives. Its steps are drawn epoch after epoch as seq2seq-train draws them (subword
sampling and joined pairs change the lengths every epoch); validation, which adds shapes of its
own, is not run. The cache's capacity is what seq2seq-train sets
(seq2seq.devices.size_onednn_cache) unless ONEDNN_PRIMITIVE_CACHE_CAPACITY is set;
`--exact-shapes` cuts batches by tokens alone and pads them to their longest sentence only, as before
the shape ladder.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from seq2seq.config import load_config
from seq2seq.data.batching import collate_pairs, make_batches
from seq2seq.devices import size_onednn_cache
from seq2seq.training.distributed import Dist
from seq2seq.training.loop import epoch_batches
from seq2seq.training.loss import token_loss
from seq2seq.training.schedules import new_optimizer
from seq2seq.training.setup import keep_freed_memory, new_model, prepare_data, resolve_bf16, seed_everything

# What marks the end of a step in the child's stdout, between oneDNN's lines.
STEP_MARK = "seq2seq-step-done"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--by-shape", action="store_true", help="also list the operators by input shape")
    parser.add_argument("--peak", action="store_true", help="also measure fp32 and bf16 2048² matrix-multiply FLOP/s")
    parser.add_argument("--primitives", action="store_true", help="count oneDNN's primitive creations per step over --steps steps instead of profiling")
    parser.add_argument("--exact-shapes", action="store_true", help="pad each batch to its longest sentence only (no shape ladder)")
    parser.add_argument("--mark-steps", action="store_true", help=argparse.SUPPRESS)  # the child of --primitives
    args = parser.parse_args()
    if args.primitives:
        count_primitives(args)
        return
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as seq2seq-train does on the CPU
    size_onednn_cache()

    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(args.recipe, [*args.overrides, f"run_dir={run_dir}"])
        seed_everything(config.seed)
        data = prepare_data(config, Path(run_dir), Dist(), None)
    tc = config.train
    model = new_model(config, data.tokenizer, data.train_split)
    optimizer = new_optimizer(model, tc)
    split = data.train_split
    lens = np.array([len(s) + 1 for s in split.src]), np.array([len(t) for t in split.tgt])
    batches = make_batches(*lens, tc.batch_tokens, config.seed, 1, ladder=not args.exact_shapes)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if resolve_bf16(tc.bf16, torch.device("cpu")) else contextlib.nullcontext()
    model.train()

    def step(indices: np.ndarray) -> None:
        pairs([split.src[i] for i in indices], [split.tgt[i] for i in indices])

    def pairs(srcs: list[np.ndarray], tgts: list[np.ndarray]) -> None:
        batch = collate_pairs(srcs, tgts, ladder=not args.exact_shapes)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            features = model(batch.src, batch.src_len, batch.tgt_in, tc.teacher_forcing)
            loss = token_loss(model, features, batch.tgt_out, tc.label_smoothing)
        (loss / batch.num_tokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_norm)
        optimizer.step()

    if args.mark_steps:
        # Epoch after epoch, as training draws them (subword sampling and joined pairs included): the
        # shapes a long run meets. Validation is left out; its search brings shapes of its own.
        ladder = not args.exact_shapes
        every = (batch for epoch in itertools.count(1) for batch in epoch_batches(config, data, epoch, 0, ladder=ladder)[1])
        for srcs, tgts in itertools.islice(every, args.steps):
            pairs(srcs, tgts)
            print(STEP_MARK, flush=True)
        return
    for indices in batches[: args.warmup]:
        step(indices)
    profiled = batches[args.warmup : args.warmup + args.steps]
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.by_shape) as prof:
        for indices in profiled:
            step(indices)
    tokens = sum(len(split.tgt[i]) + 1 for b in profiled for i in b)
    print(f"{len(profiled)} steps, {tokens} target tokens")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if args.by_shape:
        print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=args.rows))

    print_flops(model, step, profiled, tokens)
    if args.peak:
        for dtype in (torch.float32, torch.bfloat16):
            print(f"2048² matrix multiply, {dtype}: {matmul_flops(dtype) / 1e9:.0f} GFLOP/s")


def count_primitives(args: argparse.Namespace) -> None:
    """Run the steps in a child with ONEDNN_VERBOSE=2 and print oneDNN's primitive creations that
    missed its cache, per step, by stretches of steps; and how many distinct primitives there were."""
    command = [sys.executable, __file__, args.recipe, *args.overrides, "--steps", str(args.steps), "--threads", str(args.threads), "--mark-steps"]
    if args.exact_shapes:
        command.append("--exact-shapes")
    misses, hits, distinct, current = [], [], set(), [0, 0]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "ONEDNN_VERBOSE": "2"}) as proc:
        for line in proc.stdout:
            if line.startswith(STEP_MARK):
                misses.append(current[0])
                hits.append(current[1])
                current = [0, 0]
            elif line.startswith("onednn_verbose") and ",create:cache_" in line:
                fields = line.rstrip().split(",")
                if fields[3] == "create:cache_miss":
                    current[0] += 1
                    distinct.add(",".join(fields[4:-1]))  # what the primitive is, without the time it took
                else:
                    current[1] += 1
    if proc.returncode:
        raise SystemExit(f"the child failed ({proc.returncode})")
    print(
        f"oneDNN primitive creations per step ({'exact shapes' if args.exact_shapes else 'shape ladder'}, capacity {os.environ.get('ONEDNN_PRIMITIVE_CACHE_CAPACITY', 'as seq2seq-train sets it')}):"
    )
    stretch = max(1, len(misses) // 8)
    for start in range(0, len(misses), stretch):
        part = slice(start, start + stretch)
        print(f"  steps {start + 1}–{min(start + stretch, len(misses))}: {np.mean(misses[part]):.1f} misses (compiled), {np.mean(hits[part]):.1f} cache hits")
    kinds = collections.Counter(d.split(",")[1] for d in distinct)
    print("by kind: " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()))
    late = misses[len(misses) // 2 :]
    print(f"distinct primitives compiled: {len(distinct)}; in the second half of the steps {sum(late)} misses in all, {sum(late) / len(late):.2f} per step")


def print_flops(model: torch.nn.Module, step: Callable[[np.ndarray], None], profiled: list[np.ndarray], tokens: int) -> None:
    """Run the profiled steps again under FlopCounterMode and print FLOPs per target token; the
    recurrent cells, which the counter does not see, are counted from their shapes."""
    rnn_flops = [0]

    def count(rnn: torch.nn.LSTM | torch.nn.GRU, positions: int) -> None:
        rnn_flops[0] += _rnn_forward_flops(rnn, positions)

    # The decoder calls its nn.LSTM or nn.GRU; the encoder runs its RNN's weights through the fused kernel
    # itself, so it is counted from its input, over the real source tokens only.
    hooks = [
        model.decoder.rnn.register_forward_hook(lambda m, inputs, _: count(m, inputs[0].shape[0] * inputs[0].shape[1])),
        model.encoder.register_forward_hook(lambda m, inputs, _: count(m.rnn, int(inputs[1].sum()))),
    ]
    with FlopCounterMode(display=False) as counter:
        for indices in profiled:
            step(indices)
    for h in hooks:
        h.remove()
    total = counter.get_total_flops() + 3 * rnn_flops[0]
    print(
        f"FLOPs per target token, forward + backward: {total / tokens / 1e6:.1f} M "
        f"(matrix products {counter.get_total_flops() / tokens / 1e6:.1f} M, {model.decoder.cell.upper()}s {3 * rnn_flops[0] / tokens / 1e6:.1f} M)"
    )


def _rnn_forward_flops(rnn: torch.nn.LSTM | torch.nn.GRU, positions: int) -> int:
    """Forward FLOPs of one LSTM or GRU call over `positions` tokens: positions × directions ×
    Σ_layers 2·G·H·(I+H), with G gates: 4 for an LSTM, 3 for a GRU."""
    gates = 4 if isinstance(rnn, torch.nn.LSTM) else 3
    directions = 2 if rnn.bidirectional else 1
    H = rnn.hidden_size
    per_position = sum(2 * gates * H * ((rnn.input_size if layer == 0 else directions * H) + H) for layer in range(rnn.num_layers))
    return positions * directions * per_position


def matmul_flops(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    import time

    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
