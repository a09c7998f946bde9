"""seq2seq-score --ref REF [HYP]: score translations against a reference with sacreBLEU."""

from __future__ import annotations

import argparse
import sys

from seq2seq.cli.common import EXIT_USAGE, fail


def main(argv: list[str] | None = None) -> int:
    from seq2seq.scoring import METRICS, run_score

    parser = argparse.ArgumentParser(prog="seq2seq-score", description="Score translations against a reference with sacreBLEU.")
    parser.add_argument("--ref", required=True, help="reference file, one sentence per line (.gz allowed)")
    parser.add_argument("hyp", nargs="?", help="hypothesis file (default: stdin)")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    parser.add_argument("--lang", default="de", help="target language, for the Moses steps of lit-bleu")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    try:
        return run_score(args.ref, args.hyp, args.lang, args.metrics, args.format, sys.stdin, sys.stdout)
    except OSError as err:
        return fail(f"{err.filename}: {err.strerror}", EXIT_USAGE)
    except ValueError as err:
        return fail(str(err), EXIT_USAGE)
