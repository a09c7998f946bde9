"""seq2seq-evaluate --model DIR --src SRC --ref REF: translate a test set and score it in both conventions."""

from __future__ import annotations

import argparse
import json
import logging
import time

from seq2seq.cli.common import EXIT_OK, EXIT_USAGE, add_model_arguments, add_search_arguments, fail, search_options, setup_logging

log = logging.getLogger("seq2seq")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-evaluate",
        description="Translate a test set with a model directory and score it in both conventions: "
        "sacreBLEU (cased, detokenized) and the Multi30k literature convention (lowercased, Moses-tokenized).",
    )
    add_model_arguments(parser)
    parser.add_argument("--src", required=True, help="source sentences (.gz allowed)")
    parser.add_argument("--ref", required=True, help="reference translations (.gz allowed)")
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    add_search_arguments(parser, exclude=("nbest",))  # the best translation is scored
    args = parser.parse_args(argv)
    options = search_options(parser, args)
    setup_logging()
    from seq2seq.inference.output import clean_line, one_line
    from seq2seq.inference.translator import Translator
    from seq2seq.modeldir.meta import CheckpointError
    from seq2seq.scoring import score_all
    from seq2seq.textfiles import read_lines

    try:
        src, ref = read_lines(args.src), read_lines(args.ref)
        translator = Translator.from_pretrained(
            args.model, device=args.device, precision=args.precision, threads=args.threads, revision=args.revision, shortlist=args.shortlist
        )
    except OSError as err:
        return fail(f"{err.filename}: {err.strerror}", EXIT_USAGE)
    except (CheckpointError, ValueError) as err:
        return fail(str(err), EXIT_USAGE)
    if len(src) != len(ref):
        return fail(f"{args.src} has {len(src)} lines but {args.ref} has {len(ref)}; they must be aligned", EXIT_USAGE)
    start = time.perf_counter()
    hyps = translator.translate([clean_line(s) for s in src], options, batch_size=args.batch_size)
    log.info("translated %d sentences in %.1f s", len(src), time.perf_counter() - start)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.writelines(one_line(h) + "\n" for h in hyps)
    scores = score_all(hyps, ref, lang=translator.meta.tgt_lang)
    if args.format == "json":
        print(json.dumps({s.name: {"score": s.score, "signature": s.signature} for s in scores}, ensure_ascii=False))
    else:
        for s in scores:
            print(s.format())
    return EXIT_OK
