"""seq2seq-serve's /translate on paragraphs beside the same sentences one per request, in one sitting.

    python tools/benchmark_paragraphs.py --model runs/en-de/best \\
        --src ../shared/data/multi30k/test_2016_flickr.en.gz --ref ../shared/data/multi30k/test_2016_flickr.de.gz \\
        [--group 5] [--concurrency 8] [--json out.json]

One server (default settings, `--threads` CPU threads, plus `--serve-args`) on a free loopback port:
1. lines: every sentence as its own LibreTranslate request, from `--concurrency` client threads;
2. paragraphs: the same sentences joined in groups of `--group` with one space, one request each.
Both report sentences/s over the whole file (a paragraph counts its sentences), and paragraphs ÷
lines. `--end-sentences` puts a full stop after the sources that end without one (captions often do;
joined into a paragraph, such a sentence runs into the next, for a reader and a splitter alike), in
both loads. Quality, with sacreBLEU: the lines against the references; the paragraphs against the
references joined the same way; and the lines joined in the same groups against the same joined
references, so that the two paragraph-level scores compare like with like. Also: how many
paragraphs came back with another number of sentences than they went in with (German split by the
same splitter). A benchmark, not a test: compare figures of one sitting.
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
from benchmark_serve import free_port, load, start_server

from seq2seq.inference.text import split_sentences
from seq2seq.textfiles import read_lines


def grouped(texts: list[str], group: int) -> list[str]:
    return [" ".join(texts[i : i + group]) for i in range(0, len(texts), group)]


def measure(port: int, sources: list[str], refs: list[str], group: int, concurrency: int) -> dict:
    """Both loads, their rates and BLEU."""
    paragraphs, joined_refs = grouped(sources, group), grouped(refs, group)
    line_seconds, _, line_out = load(port, sources, concurrency)
    para_seconds, _, para_out = load(port, paragraphs, concurrency)
    bleu = sacrebleu.BLEU()
    lines_bleu = bleu.corpus_score(line_out, [refs])
    para_bleu = bleu.corpus_score(para_out, [joined_refs])
    lines_joined_bleu = bleu.corpus_score(grouped(line_out, group), [joined_refs])
    sentences_in = [len(split_sentences(p, language="en")) for p in paragraphs]
    sentences_out = [len(split_sentences(p, language="de")) for p in para_out]
    return {
        "sentences": len(sources),
        "paragraphs": len(paragraphs),
        "group": group,
        "concurrency": concurrency,
        "lines_sentences_per_s": round(len(sources) / line_seconds, 1),
        "paragraphs_sentences_per_s": round(len(sources) / para_seconds, 1),
        "speed_ratio": round(line_seconds / para_seconds, 3),
        "bleu_lines": round(lines_bleu.score, 2),
        "bleu_paragraphs": round(para_bleu.score, 2),
        "bleu_lines_joined": round(lines_joined_bleu.score, 2),
        "bleu_difference": round(para_bleu.score - lines_joined_bleu.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "paragraphs_split_in_other_counts": sum(a != b for a, b in zip(sentences_in, sentences_out)),
        "paragraphs_identical_to_joined_lines": sum(a == b for a, b in zip(para_out, grouped(line_out, group))),
    }


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
    parser.add_argument("--concurrency", type=int, default=8, help="client threads in both loads")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the model")
    parser.add_argument("--serve-args", default="", help="more seq2seq-serve arguments")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    sources, refs = read_lines(args.src), read_lines(args.ref)
    if len(sources) != len(refs):
        parser.error(f"--src has {len(sources)} lines and --ref {len(refs)}; give a file of references for each source line")
    if args.limit:
        sources, refs = sources[: args.limit], refs[: args.limit]
    if args.end_sentences:
        sources = [s if s.rstrip()[-1:] in (".", "!", "?", '"', "'") else s.rstrip() + "." for s in sources]
    port = free_port()
    server = start_server(args.model, port, ["--threads", str(args.threads), *args.serve_args.split()])
    try:
        figures = measure(port, sources, refs, args.group, args.concurrency)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    f = figures
    print(f"{f['sentences']} sentences, {f['paragraphs']} paragraphs of {f['group']}, {f['concurrency']} clients")
    print(f"one per request: {f['lines_sentences_per_s']} sentences/s, BLEU {f['bleu_lines']} (joined in groups: {f['bleu_lines_joined']})")
    print(
        f"paragraphs:      {f['paragraphs_sentences_per_s']} sentences/s ({f['speed_ratio']}× the lines), BLEU {f['bleu_paragraphs']} ({f['bleu_difference']:+})"
    )
    print(
        f"paragraphs identical to the joined lines: {f['paragraphs_identical_to_joined_lines']} of {f['paragraphs']}; "
        f"split into another number of sentences: {f['paragraphs_split_in_other_counts']}; {f['bleu_signature']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
