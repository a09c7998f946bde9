"""Training and translation throughput, start-up time and peak memory on this machine.

    python tools/benchmark.py --model runs/demo/best --src test.en [--json out.json]
    python tools/benchmark.py --train-recipe recipes/en-de.yaml data.dir=../shared/data/multi30k

Translation: translates the source file greedily and with beam 5, at batch 1 and batch 64, and
prints sentences/s and target tokens/s (generation only: the model is loaded once, before
timing), then times `seq2seq-translate` for one sentence from a cold start. Training: runs the
recipe (with any key=value overrides) for a number of steps (or `--train-minutes`) in a
subprocess and reports the steady-state target tokens/s: the median over its log intervals (the
first, warm-up, left out), because a shared machine's slow moments pull a mean down, with the
slowest and fastest interval beside it; the peak resident memory; and the resident memory halfway
and at the end, sampled every 5 s, since memory that keeps growing shows only over a long stretch
(`--train-minutes 25`). A benchmark, not a test: compare figures measured side
by side in one sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from seq2seq.inference.translator import Translator
from seq2seq.options import SearchOptions
from seq2seq.textfiles import read_lines


def time_translation(translator: Translator, sentences: list[str], beam_size: int, batch_size: int) -> dict:
    options = SearchOptions(beam_size=beam_size)
    translator.translate(sentences[: min(len(sentences), 8)], options, batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    hyps = translator.translate_nbest(sentences, options, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    tokens = sum(len(h[0].tokens) + 1 for h in hyps)
    return {
        "beam_size": beam_size,
        "batch_size": batch_size,
        "sentences": len(sentences),
        "seconds": round(elapsed, 3),
        "sentences_per_s": round(len(sentences) / elapsed, 1),
        "tgt_tokens_per_s": round(tokens / elapsed, 1),
    }


def startup_seconds(model: str, repeats: int, device: str) -> float:
    """Best wall time of `seq2seq-translate` translating one sentence, process start included."""
    command = [str(Path(sys.executable).parent / "seq2seq-translate"), "--model", model, "--beam-size", "5", "--device", device, "--quiet"]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, input=b"A man is sleeping.\n", capture_output=True, check=True)
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def train_throughput(recipe: str, overrides: list[str], steps: int, log_every: int, minutes: float = 0.0) -> dict:
    """Run `steps` training steps of a recipe (or `minutes` of training, validations included);
    steady-state target tokens/s, peak memory, and resident memory sampled as it runs: halfway
    and at the end, since a short run's peak hides memory that keeps growing."""
    with tempfile.TemporaryDirectory() as run_dir:
        limit = [f"train.max_minutes={minutes}", "train.max_steps=0"] if minutes else [f"train.max_steps={steps}"]
        command = [
            str(Path(sys.executable).parent / "seq2seq-train"),
            recipe,
            *overrides,
            f"run_dir={run_dir}",
            *limit,
            f"train.log_every={log_every}",
            "data.max_valid_sentences=100",
        ]
        start = time.perf_counter()
        samples, log = run_sampling_rss(command)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["type"] == "train"]
    rates = [r["tgt_tokens_per_s"] for r in train_records][1:]
    if not rates:
        raise SystemExit(f"--train-steps {steps} gives fewer than two log intervals of {log_every} steps; raise it")
    half = next(rss for t, rss in samples if t >= samples[-1][0] / 2)
    allocator = next((line.split("allocator: ", 1)[1] for line in log.splitlines() if "allocator: " in line), "not said")
    return {
        "recipe": recipe,
        "overrides": overrides,
        "allocator": allocator,  # seq2seq-train's log line (seq2seq.training.allocator): tcmalloc where installed
        "steps": train_records[-1]["step"],
        "wall_s": round(wall, 1),
        "tgt_tokens_per_s": round(statistics.median(rates), 1),
        "intervals": len(rates),
        "tgt_tokens_per_s_min": round(min(rates), 1),
        "tgt_tokens_per_s_max": round(max(rates), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "rss_halfway_mib": round(half / 1024, 1),
        "rss_end_mib": round(samples[-1][1] / 1024, 1),
        "rss_samples": [(round(t), round(rss / 1024)) for t, rss in samples],
    }


def run_sampling_rss(command: list[str], every_s: float = 5.0) -> tuple[list[tuple[float, int]], str]:
    """Run a command to its end; its resident memory (KiB) every `every_s` seconds as (seconds, KiB), and its stderr."""
    samples: list[tuple[float, int]] = []
    start = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        # stderr is drained by a thread so that a chatty run cannot block on a full pipe.
        err: list[bytes] = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        reader.start()
        while proc.poll() is None:
            rss = resident_kib(proc.pid)
            if rss:
                samples.append((time.perf_counter() - start, rss))
            time.sleep(every_s)
        reader.join()
    if proc.returncode:
        raise SystemExit(f"training failed ({proc.returncode}): {b''.join(err).decode(errors='replace')[-2000:]}")
    return samples or [(0.0, 0)], b"".join(err).decode(errors="replace")


def resident_kib(pid: int) -> int:
    """VmRSS of a process from /proc (Linux); 0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model directory, for the translation benchmark")
    parser.add_argument("--src", help="source sentences, one per line (.gz allowed)")
    parser.add_argument("--train-recipe", help="a recipe, for the training benchmark")
    parser.add_argument("--train-steps", type=int, default=110)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument(
        "--train-minutes", type=float, default=0.0, help="train for this many minutes instead of --train-steps, to see memory after a long stretch"
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for --train-recipe")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N sentences (0: all)")
    parser.add_argument("--batch1-limit", type=int, default=200, help="sentences for the batch-1 runs, which are slow")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where the translation benchmark runs: cpu, cuda or auto")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "int8"], help="translation precisions to time")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not args.train_recipe and not (args.model and args.src):
        parser.error("give --model and --src (translation), --train-recipe (training), or both")

    torch.set_num_threads(args.threads)
    results: dict = {"threads": args.threads, "torch": torch.__version__, "cpu_count": os.cpu_count()}
    if args.train_recipe:
        results["training"] = train_throughput(args.train_recipe, args.overrides, args.train_steps, args.log_every, args.train_minutes)
        t = results["training"]
        print(
            f"training {t['recipe']} {' '.join(t['overrides'])} (allocator: {t['allocator']}): {t['tgt_tokens_per_s']} target tokens/s, the median of "
            f"{t['intervals']} intervals ({t['tgt_tokens_per_s_min']}–{t['tgt_tokens_per_s_max']}) over {t['steps']} steps, "
            f"peak resident memory {t['peak_rss_mib']} MiB; resident {t['rss_halfway_mib']} MiB halfway, {t['rss_end_mib']} MiB at the end "
            f"({t['wall_s']} s)"
        )
    if args.model and args.src:
        results.update(benchmark_translation(args.model, args.src, args.limit, args.batch1_limit, args.precision, args.device))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def benchmark_translation(model: str, src: str, limit: int, batch1_limit: int, precisions: list[str], device: str) -> dict:
    sentences = [s for s in read_lines(src) if s.strip()]
    if limit:
        sentences = sentences[:limit]
    rows = []
    for precision in precisions:
        translator = Translator.from_pretrained(model, device=device, precision=precision)
        for beam in (1, 5):
            for batch in (64, 1):
                subset = sentences if batch > 1 else sentences[:batch1_limit]
                rows.append({"precision": precision, **time_translation(translator, subset, beam, batch)})
    results = {
        "model": model,
        "translation": rows,
        "device": device,
        "startup_one_sentence_s": startup_seconds(model, 3, device),
        "translation_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(f"{'precision':<9} {'search':<8} {'batch':>5} {'sentences':>9} {'sent/s':>8} {'tok/s':>8}")
    for r in rows:
        search = "greedy" if r["beam_size"] == 1 else f"beam {r['beam_size']}"
        print(f"{r['precision']:<9} {search:<8} {r['batch_size']:>5} {r['sentences']:>9} {r['sentences_per_s']:>8} {r['tgt_tokens_per_s']:>8}")
    print(f"start-up + one sentence (seq2seq-translate, beam 5): {results['startup_one_sentence_s']} s")
    print(f"peak resident memory while translating: {results['translation_peak_rss_mib']} MiB")
    return results


if __name__ == "__main__":
    main()
