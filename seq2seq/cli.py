"""The commands: seq2seq-train, seq2seq-score, seq2seq-evaluate, seq2seq-average (seq2seq-translate:
translate_command.py, which shares the conventions and the search options defined here).

stdout carries only results; logs, warnings and progress go to stderr. Exit codes: 0 success,
2 a usage, recipe, data or model-directory error (a message, no traceback), 1 anything else;
seq2seq-train stopped by SIGINT or SIGTERM saves its state and exits with 128 + the signal
number (130, 143): running the same command again resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from seq2seq.options import BATCH_SIZE, PRECISIONS, SearchOptions, check_batch_size
from seq2seq.output import clean_line
from seq2seq.output import one_line as _one_line

log = logging.getLogger("seq2seq")

DEFAULTS = SearchOptions()

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """The beam search and batch options that seq2seq-translate and seq2seq-evaluate share."""
    parser.add_argument("--beam-size", type=int, default=DEFAULTS.beam_size)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="sentences per batch")
    parser.add_argument("--length-penalty", type=float, default=DEFAULTS.length_penalty, help="GNMT length penalty alpha (0 = none)")
    parser.add_argument("--no-early-stop", action="store_true",
                        help="search each sentence until beam-size hypotheses have ended, not only until its best candidate ends")
    parser.add_argument("--min-len-ratio", type=float, default=DEFAULTS.min_len_ratio,
                        help="shortest output, relative to the source length (0: no minimum)")
    parser.add_argument("--no-repeat-ngram", type=int, default=DEFAULTS.no_repeat_ngram, metavar="N",
                        help="no N-gram of target tokens occurs twice in an output (0: off)")
    parser.add_argument("--ban-unk", action="store_true", help="never output <unk>")


def _search_options(parser: argparse.ArgumentParser, args: argparse.Namespace, **more: object) -> SearchOptions:
    """The SearchOptions the arguments describe; an invalid value is a usage error naming its flag."""
    try:
        check_batch_size(args.batch_size)
        return SearchOptions(beam_size=args.beam_size, length_penalty=args.length_penalty, early_stop=not args.no_early_stop,
                             min_len_ratio=args.min_len_ratio, no_repeat_ngram=args.no_repeat_ngram, ban_unk=args.ban_unk, **more)
    except ValueError as err:
        message = str(err)
        for name in ("beam_size", "batch_size", "nbest", "length_penalty", "max_len_ratio", "min_len_ratio", "no_repeat_ngram", "temperature",
                     "top_k", "top_p", "seed"):
            message = message.replace(name, "--" + name.replace("_", "-"))
        parser.error(message)


# --- seq2seq-train -----------------------------------------------------------------------------


def train_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seq2seq-train", description="Train a translation model from a YAML recipe.")
    parser.add_argument("recipe", help="a YAML recipe, e.g. recipes/demo.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=5e-4 data.dir=../shared/data/multi30k")
    parser.add_argument("--print-config", action="store_true", help="print the resolved recipe and exit")
    args = parser.parse_args(argv)

    from seq2seq.config import ConfigError, dump_yaml, load_config

    try:
        config = load_config(args.recipe, args.overrides)
    except ConfigError as err:
        return _fail(str(err), EXIT_USAGE)
    if args.print_config:
        sys.stdout.write(dump_yaml(config))
        return EXIT_OK
    _setup_logging()
    from seq2seq.corpus import DataError
    from seq2seq.resume import ResumeError, TrainingInterrupted
    from seq2seq.training import train

    try:
        train(config)
    except (DataError, ConfigError, ResumeError) as err:
        return _fail(str(err), EXIT_USAGE)
    except TrainingInterrupted as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except (OSError, FloatingPointError, MemoryError) as err:
        return _fail(str(err), EXIT_FAILURE)
    return EXIT_OK


# --- seq2seq-score and seq2seq-evaluate --------------------------------------------------------


def score_main(argv: list[str] | None = None) -> int:
    from seq2seq.scoring import METRICS

    parser = argparse.ArgumentParser(prog="seq2seq-score", description="Score translations against a reference with sacreBLEU.")
    parser.add_argument("--ref", required=True, help="reference file, one sentence per line (.gz allowed)")
    parser.add_argument("hyp", nargs="?", help="hypothesis file (default: stdin)")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=METRICS)
    parser.add_argument("--lang", default="de", help="target language, for the Moses steps of lit-bleu")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    from seq2seq.scoring import run_score

    try:
        return run_score(args.ref, args.hyp, args.lang, args.metrics, args.format, sys.stdin, sys.stdout)
    except OSError as err:
        return _fail(f"{err.filename}: {err.strerror}", EXIT_USAGE)
    except ValueError as err:
        return _fail(str(err), EXIT_USAGE)


def evaluate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-evaluate",
        description="Translate a test set with a model directory and score it in both conventions: "
        "sacreBLEU (cased, detokenized) and the Multi30k literature convention (lowercased, Moses-tokenized).",
    )
    parser.add_argument("--model", required=True, nargs="+",
                        help="a model directory written by seq2seq-train or seq2seq-export, or a model on the Hugging Face Hub (ORG/NAME); "
                        "several: an ensemble")
    parser.add_argument("--revision", help="for a model on the Hub: the branch, tag or commit (default main)")
    parser.add_argument("--src", required=True, help="source sentences (.gz allowed)")
    parser.add_argument("--ref", required=True, help="reference translations (.gz allowed)")
    _add_search_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--output", help="also write the translations to this file")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    options = _search_options(parser, args)
    _setup_logging()
    from seq2seq.checkpoint import CheckpointError
    from seq2seq.scoring import score_all
    from seq2seq.textfiles import read_lines
    from seq2seq.translate import Translator

    try:
        src, ref = read_lines(args.src), read_lines(args.ref)
        translator = Translator.from_pretrained(args.model, device=args.device, precision=args.precision, revision=args.revision)
    except OSError as err:
        return _fail(f"{err.filename}: {err.strerror}", EXIT_USAGE)
    except (CheckpointError, ValueError) as err:
        return _fail(str(err), EXIT_USAGE)
    if len(src) != len(ref):
        return _fail(f"{args.src} has {len(src)} lines but {args.ref} has {len(ref)}; they must be aligned", EXIT_USAGE)
    start = time.perf_counter()
    hyps = translator.translate([clean_line(s) for s in src], options, batch_size=args.batch_size)
    log.info("translated %d sentences in %.1f s", len(src), time.perf_counter() - start)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.writelines(_one_line(h) + "\n" for h in hyps)
    scores = score_all(hyps, ref, lang=translator.meta.tgt_lang)
    if args.format == "json":
        print(json.dumps({s.name: {"score": s.score, "signature": s.signature} for s in scores}, ensure_ascii=False))
    else:
        for s in scores:
            print(s.format())
    return EXIT_OK


# --- seq2seq-average ----------------------------------------------------------------------------


def average_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-average",
        description="Average the weights of checkpoints of one run into a new model directory. "
        "Give the directories, or --run-dir with --last N to take the newest N of RUN_DIR/checkpoints "
        "(kept when the recipe sets train.keep_checkpoints).",
    )
    parser.add_argument("model_dirs", nargs="*", help="model directories of one run")
    parser.add_argument("--run-dir", help="a run directory whose checkpoints/ to average")
    parser.add_argument("--last", type=int, default=5, help="with --run-dir: how many of the newest checkpoints")
    parser.add_argument("--output", required=True, help="the new model directory")
    args = parser.parse_args(argv)
    _setup_logging()
    if bool(args.model_dirs) == bool(args.run_dir):
        parser.error("give either model directories or --run-dir, not both or neither")
    from pathlib import Path

    from seq2seq.averaging import CHECKPOINTS, average_model_dirs, kept_checkpoints
    from seq2seq.checkpoint import CheckpointError

    if args.run_dir:
        found = kept_checkpoints(Path(args.run_dir))
        if len(found) < args.last:
            return _fail(f"{args.run_dir}/{CHECKPOINTS} holds {len(found)} checkpoints, fewer than --last {args.last}; "
                         "train with train.keep_checkpoints=N (N >= --last)", EXIT_USAGE)
        dirs = found[-args.last :]
    else:
        dirs = [Path(d) for d in args.model_dirs]
    try:
        average_model_dirs(dirs, Path(args.output))
    except CheckpointError as err:
        return _fail(str(err), EXIT_USAGE)
    log.info("averaged %d checkpoints (%s) into %s", len(dirs), ", ".join(d.name for d in dirs), args.output)
    return EXIT_OK
