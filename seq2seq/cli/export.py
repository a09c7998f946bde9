"""Argument parsing for `seq2seq-export`; the work is in seq2seq.export.exporter.

Kept beside the exporter rather than in seq2seq/cli/common.py so the export command's imports (torch,
onnx, onnxruntime's quantizer) stay off every other command's path.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from functools import partial
from pathlib import Path

from seq2seq.cli.common import EXIT_OK, EXIT_USAGE, fail, setup_logging

log = logging.getLogger("seq2seq")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-export",
        description="Export a model directory to ONNX graphs that translate with onnxruntime, numpy and sentencepiece (no torch).",
        epilog="Translate with the result as with a model directory: seq2seq-translate --model OUT, or Translator.from_pretrained(OUT).",
    )
    parser.add_argument("--model", required=True, nargs="+", help="the model directory to export (an ensemble of several is refused)")
    parser.add_argument("--output", required=True, help="the exported directory to write")
    parser.add_argument(
        "--quantize", choices=["none", "int8"], default="none", help="int8: weight products in int8, activations scaled per row (faster, check BLEU)"
    )
    parser.add_argument(
        "--shortlist",
        nargs="*",
        metavar="FILE",
        help="learn a vocabulary shortlist (each batch scores its likely target pieces only: faster, check BLEU) from the "
        "model's training corpus as its config.json names it, or from two files given here: source and target text, one sentence per line (.gz too)",
    )
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    args = parser.parse_args(argv)
    setup_logging(args.quiet)

    from seq2seq.export.exporter import check_ensemble, export_model_dir, shortlist_pairs
    from seq2seq.modeldir.meta import CheckpointError

    if args.shortlist is not None and len(args.shortlist) not in (0, 2):
        parser.error(f"--shortlist takes no file (the model's training corpus) or two (source and target text); got {len(args.shortlist)}")
    start = time.perf_counter()
    try:
        check_ensemble([Path(d) for d in args.model])
        pairs = None if args.shortlist is None else partial(shortlist_pairs, [Path(f) for f in args.shortlist])
        meta = export_model_dir(Path(args.model[0]), Path(args.output), quantize=args.quantize, shortlist_pairs=pairs)
    except (CheckpointError, ValueError, OSError) as err:
        return fail(str(err), EXIT_USAGE)
    except ImportError as err:
        return fail(f'{err}; seq2seq-export needs the onnx extra: pip install -e ".[onnx]"', EXIT_USAGE)
    log.info("exported %s to %s (opset %d, %s) in %.1f s", args.model[0], args.output, meta.opset, meta.quantize, time.perf_counter() - start)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
