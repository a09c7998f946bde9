"""Benchmark an exported model against the torch path it came from, in one sitting.

    flock /tmp/seq2seq-bench.lock python tools/benchmark_export.py --model /work/models/m30k-lstm/best \\
        --exported /work/models/export/m30k-onnx --data /work/shared/data/multi30k --json export-benchmark.json

Exports the model afresh on every run, fp32 into --exported and int8 into the same name + -int8
(replacing an earlier export there; a directory that is not an export is refused), each with a
vocabulary shortlist learned from --data's train.{en,de}.gz, and checks that each export.json names
the model's weights (`source_weights_sha256` = meta.json's `weights_sha256`), this package's export
format and the quantization asked for, so a stale export is never measured. Each export is measured
twice: as "exported fp32" (`shortlist=False`, the whole vocabulary) and "exported fp32 + shortlist".
Then measures on test_2016_flickr: how many beam-5 output lines of the fp32 export differ from the
torch model's, BLEU (sacreBLEU, cased 13a, as ../shared/peers) of torch, fp32 and int8 exports; a
fresh process's start-up plus one sentence, for the torch path and for the exported path (also in a
runtime-only environment when --runtime-python is given); sentences/s greedy and beam 5 at batch 1
and 64, fp32 and int8, exported and torch; and the disk size of the environments given with --env.
Prints a Markdown table and writes every number, with what was measured, to --json.

`--part search` measures instead what the exported runtime spends outside onnxruntime (the search's
numpy work per step, tokenizing), by replaying onnxruntime's recorded outputs (`_search`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTUP = (
    "import sys; from seq2seq import Translator; t = Translator.from_pretrained(sys.argv[1], threads={threads}); t.translate(['A man is riding a bicycle.'])"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="the torch model directory")
    parser.add_argument(
        "--exported",
        type=Path,
        help="where to write the fp32 export, afresh on every run (an earlier export there is replaced); int8 goes to "
        "the same name + -int8 (default: a temporary directory, removed at the end)",
    )
    parser.add_argument("--data", required=True, type=Path, help="the Multi30k directory (test_2016_flickr.{en,de}.gz)")
    parser.add_argument("--lines", type=int, default=1000, help="test lines for quality and batch-64 speed")
    parser.add_argument("--batch1-lines", type=int, default=200, help="lines for the batch-1 speed runs (they are slow)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and onnxruntime alike")
    parser.add_argument("--runtime-python", type=Path, help="python of an environment with the runtime only (no torch), for the start-up figure")
    parser.add_argument("--env", type=Path, action="append", default=[], help="a virtual environment whose disk size to report (repeatable)")
    parser.add_argument(
        "--part",
        choices=["all", "quality", "speed", "search"],
        default="all",
        help="quality (differing lines, BLEU) needs no lock; speed (sentences/s, start-up, sizes) runs under flock; "
        "search: the exported runtime's own Python time (the search, numpy) apart from onnxruntime's (not part of all)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="time each speed figure this many times and keep the median (this machine's speeds move ±20%% between runs)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="benchmark-export-") as scratch:
        if args.exported is None:
            args.exported = Path(scratch) / f"{args.model.name}-onnx"
        _run(args)


def _run(args: argparse.Namespace) -> None:
    from seq2seq.inference.translator import Translator
    from seq2seq.options import SearchOptions
    from seq2seq.textfiles import read_lines

    int8_dir = args.exported.with_name(args.exported.name + "-int8")
    pairs = [args.data / "train.en.gz", args.data / "train.de.gz"]
    exports = {
        name: _export_fresh(args.model, out, quantize, pairs)
        for name, out, quantize in (("exported fp32", args.exported, "none"), ("exported int8", int8_dir, "int8"))
    }
    src = read_lines(args.data / "test_2016_flickr.en.gz")[: args.lines]
    ref = read_lines(args.data / "test_2016_flickr.de.gz")[: args.lines]
    figures: dict = {"threads": args.threads, "lines": len(src), "batch1_lines": args.batch1_lines, "model": str(args.model), "exports": exports}
    beam5 = SearchOptions(beam_size=5)
    if args.part == "search":  # its own one-thread translators of the two exports
        _search(figures, {"exported fp32": args.exported, "exported int8": int8_dir}, src, beam5, args)
        _write(figures, args)
        return
    translators = {
        "torch fp32": Translator.from_pretrained(args.model, device="cpu", threads=args.threads),
        "torch int8": Translator.from_pretrained(args.model, device="cpu", precision="int8", threads=args.threads),
        "exported fp32": Translator.from_pretrained(args.exported, threads=args.threads, shortlist=False),
        "exported int8": Translator.from_pretrained(int8_dir, threads=args.threads, shortlist=False),
        "exported fp32 + shortlist": Translator.from_pretrained(args.exported, threads=args.threads),
        "exported int8 + shortlist": Translator.from_pretrained(int8_dir, threads=args.threads),
    }
    if args.part in ("all", "quality"):
        _quality(figures, translators, src, ref, beam5)
    if args.part in ("all", "speed"):
        _speed(figures, translators, src, beam5, args, int8_dir)
    _write(figures, args)


def _write(figures: dict, args: argparse.Namespace) -> None:
    """The figures to --json, where given."""
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")


def _export_fresh(model_dir: Path, out: Path, quantize: str, shortlist_files: list[Path]) -> dict:
    """Export model_dir into out afresh (through a temporary sibling, so a failed export leaves no
    half-written directory), with a shortlist learned from `shortlist_files`, replacing an earlier export there, and check that the result names
    model_dir's weights, this package's export format and `quantize`. Returns what export.json says."""
    from functools import partial

    from seq2seq.export import EXPORT_FORMAT_VERSION, EXPORT_META, is_exported_dir
    from seq2seq.export.exporter import export_model_dir, shortlist_pairs
    from seq2seq.modeldir.meta import META, WEIGHTS

    if out.exists() and any(out.iterdir()) and (not is_exported_dir(out) or (out / WEIGHTS).exists()):
        sys.exit(f"{out} exists and is not an exported model directory; give --exported a new path or an earlier export to replace")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        export_model_dir(model_dir, tmp, quantize=quantize, shortlist_pairs=partial(shortlist_pairs, shortlist_files))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    written = json.loads((out / EXPORT_META).read_text(encoding="utf-8"))
    weights = json.loads((model_dir / META).read_text(encoding="utf-8"))["weights_sha256"]
    expected = {"source_weights_sha256": weights, "export_format_version": EXPORT_FORMAT_VERSION, "quantize": quantize}
    wrong = {k: written.get(k) for k, v in expected.items() if written.get(k) != v}
    if wrong:
        sys.exit(f"{out}/{EXPORT_META} does not describe the export just made ({wrong}, expected {expected}); not measuring it")
    return {"dir": str(out), **{k: written[k] for k in ("export_format_version", "quantize", "shortlist", "package_version", "source_weights_sha256")}}


def _quality(figures: dict, translators: dict, src: list[str], ref: list[str], beam5) -> None:
    outputs = {name: t.translate(src, beam5, batch_size=64) for name, t in translators.items()}
    diff = [i for i, (a, b) in enumerate(zip(outputs["torch fp32"], outputs["exported fp32"])) if a != b]
    figures["differing_lines_fp32_beam5"] = len(diff)
    figures["differing_examples"] = [{"line": i, "torch": outputs["torch fp32"][i], "exported": outputs["exported fp32"][i]} for i in diff[:5]]
    figures["bleu_beam5"] = {name: _bleu(hyps, ref) for name, hyps in outputs.items()}
    print(f"lines that differ (fp32 beam 5, torch vs exported): {len(diff)} of {len(src)}; BLEU {figures['bleu_beam5']}", flush=True)


def _speed(figures: dict, translators: dict, src: list[str], beam5, args: argparse.Namespace, int8_dir: Path) -> None:
    from seq2seq.options import SearchOptions

    speed: dict[str, dict[str, float]] = {name: {} for name in translators}
    for name, t in translators.items():
        t.translate(src[:16], beam5)  # warm-up: first-call allocations and lazy initialisation
        for beam in (1, 5):
            for batch in (1, 64):
                lines = src[: args.batch1_lines] if batch == 1 else src
                runs = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    t.translate(lines, SearchOptions(beam_size=beam), batch_size=batch)
                    runs.append(len(lines) / (time.perf_counter() - start))
                speed[name][f"beam{beam}_batch{batch}"] = statistics.median(runs)
        print(name, {k: round(v, 1) for k, v in speed[name].items()}, flush=True)
    figures["sentences_per_s"] = speed

    code = STARTUP.format(threads=args.threads)
    startup = {"torch fp32": _startup(sys.executable, code, args.model), "exported fp32": _startup(sys.executable, code, args.exported)}
    if args.runtime_python:
        startup["exported fp32, runtime-only env"] = _startup(str(args.runtime_python), code, args.exported)
    figures["startup_plus_one_sentence_s"] = startup
    print("start-up + one sentence (s):", startup, flush=True)
    figures["disk_mb"] = {str(env): _du_mb(env) for env in args.env}
    figures["export_dir_mb"] = {str(d): _du_mb(d) for d in (args.exported, int8_dir)}
    print(_table(figures))


def _search(figures: dict, exports: dict[str, Path], src: list[str], beam5, args: argparse.Namespace) -> None:
    """The exported runtime's time per sentence at beam 5, batch 1 and 64, on one thread, split into
    onnxruntime's and the rest (the search's numpy work, tokenizing): each run once with onnxruntime,
    its sessions' outputs recorded in order, then replayed from the recording with onnxruntime left
    out (the best of 3 replays, which must give the same translations). The replay's time is the
    runtime's own with warm caches; the first run's time outside onnxruntime, with the caches that
    onnxruntime leaves. One thread, so that the calls come in one order (with two threads the runtime
    searches two batches at once, and their calls interleave)."""
    import onnxruntime

    from seq2seq.inference.translator import Translator

    run = onnxruntime.InferenceSession.run
    tape: list = []
    search: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name, directory in exports.items():
            t = Translator.from_pretrained(directory, threads=1, shortlist=False)
            t.translate(src[:16], beam5)  # warm-up
            for batch in (1, 64):
                lines = src[: args.batch1_lines] if batch == 1 else src
                tape.clear()
                in_ort = 0.0

                def record(session, *a, **k):
                    nonlocal in_ort
                    start = time.perf_counter()
                    out = run(session, *a, **k)
                    in_ort += time.perf_counter() - start
                    tape.append(out)
                    return out

                onnxruntime.InferenceSession.run = record
                start = time.perf_counter()
                want = t.translate(lines, beam5, batch_size=batch)
                total = time.perf_counter() - start
                replays = []
                for _ in range(3):
                    onnxruntime.InferenceSession.run = _replaying(tape)
                    start = time.perf_counter()
                    if t.translate(lines, beam5, batch_size=batch) != want:
                        sys.exit(f"{name}: the replay translated otherwise than onnxruntime did; not measuring it")
                    replays.append(time.perf_counter() - start)
                onnxruntime.InferenceSession.run = run
                own = min(replays)
                n = len(lines)
                search.setdefault(name, {})[f"beam5_batch{batch}"] = {
                    "ms_per_sentence": round(total / n * 1e3, 3),
                    "onnxruntime_ms_per_sentence": round(in_ort / n * 1e3, 3),
                    # Outside onnxruntime in the same run: slower than the replay, whose caches onnxruntime does not empty.
                    "outside_onnxruntime_ms_per_sentence": round((total - in_ort) / n * 1e3, 3),
                    "own_ms_per_sentence": round(own / n * 1e3, 3),
                    "onnxruntime_calls_per_sentence": round(len(tape) / n, 2),
                    "own_us_per_call": round(own / len(tape) * 1e6, 1),
                }
                print(name, f"beam 5 batch {batch}:", search[name][f"beam5_batch{batch}"], flush=True)
    finally:
        onnxruntime.InferenceSession.run = run
    figures["search"] = search


def _replaying(outputs: list):
    """An InferenceSession.run that hands back the recorded outputs, one call after another."""
    played = iter(outputs)
    return lambda session, *args, **kwargs: next(played)


def _bleu(hyps: list[str], refs: list[str]) -> float:
    from sacrebleu.metrics import BLEU

    return round(BLEU().corpus_score(hyps, [refs]).score, 2)


def _startup(python: str, code: str, model: Path, runs: int = 3) -> float:
    """Median wall-clock seconds of a fresh process that loads the model and translates one sentence."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([python, "-c", code, str(model)], check=True, capture_output=True, timeout=300)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def _du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return round(int(out.split()[0]) / 1024, 1)


def _table(f: dict) -> str:
    rows = ["| path | greedy b1 | greedy b64 | beam 5 b1 | beam 5 b64 |", "|---|---|---|---|---|"]
    for name, s in f["sentences_per_s"].items():
        rows.append(f"| {name} | {s['beam1_batch1']:.1f} | {s['beam1_batch64']:.1f} | {s['beam5_batch1']:.1f} | {s['beam5_batch64']:.1f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
