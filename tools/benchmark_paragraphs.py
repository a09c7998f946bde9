"""seq2seq-serve's /translate on paragraphs beside the same sentences one per request, in one sitting.

    python tools/benchmark_paragraphs.py --model runs/en-de/best \\
        --src ../shared/data/multi30k/test_2016_flickr.en.gz --ref ../shared/data/multi30k/test_2016_flickr.de.gz \\
        [--group 5] [--concurrency 1 8] [--threads 2] [--end-sentences] [--json out.json]

One server (default settings, `--threads` CPU threads, plus `--serve-args`) on a free loopback port,
warmed with a few requests of both kinds. For each concurrency C, C client threads with a keep-alive
connection each send the whole file twice:
1. lines: every sentence as its own LibreTranslate request (format text, q a string);
2. paragraphs: the same sentences joined in groups of `--group` with one space, one request each.
Both report sentences/s over the whole file (a paragraph counts its sentences), paragraphs ÷ lines,
and the request latency's p50 and p95. `--end-sentences` puts a full stop after the sources that end
without one (captions often do; joined into a paragraph, such a sentence runs into the next, for a
reader and a splitter alike), in both loads.

Quality, with sacreBLEU (its signature printed), from the first concurrency's answers: the lines
against the references; the paragraphs against the references joined the same way; and the lines
joined in the same groups against the same joined references, so that the two paragraph-level scores
compare like with like. Also: how many paragraphs came back byte-identical to their lines joined,
how many source paragraphs the splitter does not cut into their number of lines (run-on captions),
and how many translated paragraphs split (language "de") into another number of sentences than their
sources (language "en"). Issue 33 asks for paragraphs at 0.9× the lines' sentences/s or more and
within 0.5 BLEU of the joined lines. Exit code 1 when an answer changed with the concurrency or the
server did not stop cleanly. A benchmark, not a test: compare figures of one sitting.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

import sacrebleu

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ are scripts: benchmark_serve beside this one
from benchmark_serve import free_port, load, percentile, start_server

from seq2seq.inference.text import split_sentences
from seq2seq.textfiles import read_lines

SENTENCE_ENDS = (".", "!", "?", '"', "'", "…")


def grouped(texts: list[str], group: int) -> list[str]:
    """texts joined `group` at a time with one space (the last group may be shorter)."""
    return [" ".join(texts[i : i + group]) for i in range(0, len(texts), group)]


def end_sentences(sources: list[str]) -> list[str]:
    """A full stop after each source that ends without a sentence end."""
    return [s if s.rstrip().endswith(SENTENCE_ENDS) or not s.strip() else s.rstrip() + "." for s in sources]


def speed(port: int, sources: list[str], paragraphs: list[str], concurrency: int) -> tuple[dict, list[str], list[str]]:
    """Both loads at one concurrency: (the figures, the lines' answers, the paragraphs' answers)."""
    line_seconds, line_latencies, line_out = load(port, sources, concurrency)
    para_seconds, para_latencies, para_out = load(port, paragraphs, concurrency)
    row = {
        "concurrency": concurrency,
        "lines_sentences_per_s": round(len(sources) / line_seconds, 1),
        "paragraphs_sentences_per_s": round(len(sources) / para_seconds, 1),
        "speed_ratio": round(line_seconds / para_seconds, 3),
        "lines_p50_ms": round(1000 * percentile(line_latencies, 50), 1),
        "lines_p95_ms": round(1000 * percentile(line_latencies, 95), 1),
        "paragraphs_p50_ms": round(1000 * percentile(para_latencies, 50), 1),
        "paragraphs_p95_ms": round(1000 * percentile(para_latencies, 95), 1),
    }
    return row, line_out, para_out


def quality(sources: list[str], refs: list[str], line_out: list[str], para_out: list[str], group: int) -> dict:
    """BLEU of both ways against their references, and how the paragraphs' sentences came back."""
    paragraphs, joined_refs, joined_lines = grouped(sources, group), grouped(refs, group), grouped(line_out, group)
    bleu = sacrebleu.BLEU()
    lines_bleu = bleu.corpus_score(line_out, [refs])
    lines_joined_bleu = bleu.corpus_score(joined_lines, [joined_refs])
    para_bleu = bleu.corpus_score(para_out, [joined_refs])
    sentences_in = [len(split_sentences(p, language="en")) for p in paragraphs]
    sentences_out = [len(split_sentences(p, language="de")) for p in para_out]
    lines_in = [min(group, len(sources) - i) for i in range(0, len(sources), group)]
    return {
        "bleu_lines": round(lines_bleu.score, 2),
        "bleu_lines_joined": round(lines_joined_bleu.score, 2),
        "bleu_paragraphs": round(para_bleu.score, 2),
        "bleu_difference": round(para_bleu.score - lines_joined_bleu.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "paragraphs_identical_to_joined_lines": sum(a == b for a, b in zip(para_out, joined_lines)),
        "source_paragraphs_split_unlike_their_lines": sum(a != b for a, b in zip(sentences_in, lines_in)),
        "paragraphs_split_in_other_counts": sum(a != b for a, b in zip(sentences_in, sentences_out)),
    }


def stop(server: subprocess.Popen) -> int:
    """SIGTERM, then kill after 60 s: the server's exit code."""
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.wait()


def run(args: argparse.Namespace, sources: list[str], refs: list[str]) -> dict:
    """Start the server, warm it, measure every concurrency, stop it (on errors too): the figures."""
    paragraphs = grouped(sources, args.group)
    port = free_port()
    server = start_server(args.model, port, ["--threads", str(args.threads), *args.serve_args.split()])
    rows, first = [], None
    try:
        load(port, sources[:16] + paragraphs[:4], 4)  # warm the connections, the allocator and both shapes
        for c in args.concurrency:
            row, line_out, para_out = speed(port, sources, paragraphs, c)
            first = first or (line_out, para_out)
            row["answers_unlike_first"] = sum(a != b for a, b in zip(line_out + para_out, first[0] + first[1]))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        code = stop(server)
    return {
        "sentences": len(sources),
        "paragraphs": len(paragraphs),
        "group": args.group,
        "end_sentences": args.end_sentences,
        "threads": args.threads,
        "serve_args": args.serve_args,
        "server_exit_code": code,
        **quality(sources, refs, *first, args.group),
        "rows": rows,
    }


def report(src: str, f: dict) -> None:
    """The Markdown table and the quality lines on stdout."""
    print(f"\n{f['sentences']} sentences of {src}, {f['paragraphs']} paragraphs of {f['group']}; server exit code after SIGTERM: {f['server_exit_code']}\n")
    print(
        "| concurrency | sentences/s, lines | sentences/s, paragraphs | paragraphs ÷ lines | p50/p95 ms, lines | p50/p95 ms, paragraphs | answers unlike the first |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in f["rows"]:
        print(
            f"| {r['concurrency']} | {r['lines_sentences_per_s']} | {r['paragraphs_sentences_per_s']} | {r['speed_ratio']} | "
            f"{r['lines_p50_ms']}/{r['lines_p95_ms']} | {r['paragraphs_p50_ms']}/{r['paragraphs_p95_ms']} | {r['answers_unlike_first']} |"
        )
    print(
        f"\nBLEU lines {f['bleu_lines']}; lines joined in groups {f['bleu_lines_joined']}; paragraphs {f['bleu_paragraphs']} "
        f"({f['bleu_difference']:+} against the joined lines); {f['bleu_signature']}"
    )
    print(
        f"paragraphs identical to the joined lines: {f['paragraphs_identical_to_joined_lines']} of {f['paragraphs']}; "
        f"source paragraphs not cut into their lines: {f['source_paragraphs_split_unlike_their_lines']}; "
        f"translations split into another number of sentences than their sources: {f['paragraphs_split_in_other_counts']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--src", required=True, help="source sentences, one per line (.gz allowed)")
    parser.add_argument("--ref", required=True, help="their references, one per line (.gz allowed)")
    parser.add_argument("--group", type=int, default=5, help="sentences per paragraph")
    parser.add_argument("--limit", type=int, default=0, help="only the first N sentences (0: all)")
    parser.add_argument(
        "--end-sentences",
        action="store_true",
        help="put a full stop after the source sentences that end without one (in both loads): joined, they would otherwise run into the next",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8], help="client threads; both loads at each")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model")
    parser.add_argument("--serve-args", default="", help="more seq2seq-serve arguments, e.g. '--max-wait-ms 2'")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    for name in ("group", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1; got {getattr(args, name)}")
    if args.limit < 0 or min(args.concurrency) < 1:
        parser.error(f"--limit must be >= 0 and every --concurrency >= 1; got {args.limit} and {args.concurrency}")
    sources, refs = read_lines(args.src), read_lines(args.ref)
    if len(sources) != len(refs):
        parser.error(f"--src has {len(sources)} lines and --ref {len(refs)}; give a file of references for each source line")
    if args.limit:
        sources, refs = sources[: args.limit], refs[: args.limit]
    if not sources:
        parser.error(f"{args.src} holds no sentences")
    figures = run(args, end_sentences(sources) if args.end_sentences else sources, refs)
    report(args.src, figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["server_exit_code"] == 0 and all(r["answers_unlike_first"] == 0 for r in figures["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
