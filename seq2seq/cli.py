"""The commands: seq2seq-train, seq2seq-translate, seq2seq-score, seq2seq-evaluate.

stdout carries only results; logs, warnings and progress go to stderr. Exit codes: 0 success,
2 a usage, recipe, data or model-directory error (a message, no traceback), 1 anything else;
seq2seq-train stopped by SIGINT or SIGTERM saves its state and exits with 128 + the signal
number (130, 143): running the same command again resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from seq2seq.options import BATCH_SIZE, PRECISIONS, SearchOptions, check_batch_size
from seq2seq.output import clean_line, json_record
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


# --- seq2seq-translate -------------------------------------------------------------------------

def read_stream_lines(stream: BinaryIO) -> Iterator[tuple[str, bool]]:
    """Lines of a byte stream as (text, had_invalid_utf8); only b'\\n' ends a line, '\\r\\n' too."""
    for raw in iter(stream.readline, b""):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            yield raw.decode("utf-8"), False
        except UnicodeDecodeError:
            yield raw.decode("utf-8", errors="replace"), True


def micro_batches(lines: Iterator[tuple[str, bool]], max_lines: int, wait_s: float) -> Iterator[list[tuple[str, bool]]]:
    """Group lines into batches without holding back early ones when input arrives slowly.

    A reader thread fills a queue; a batch is sent as soon as `max_lines` are in or no new
    line came within `wait_s`, so a pipe that trickles gets its answers line by line while a
    file is read in full batches.
    """
    q: queue.Queue = queue.Queue(maxsize=4 * max_lines)
    done = object()

    def reader() -> None:
        try:
            for item in lines:
                q.put(item)
        finally:
            q.put(done)

    threading.Thread(target=reader, daemon=True).start()
    finished = False
    while not finished:
        item = q.get()
        if item is done:
            return
        batch = [item]
        deadline = time.monotonic() + wait_s
        while len(batch) < max_lines:
            try:
                item = q.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if item is done:
                finished = True
                break
            batch.append(item)
        yield batch


def translate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="seq2seq-translate",
        description="Translate one sentence per line from stdin (or --input) to stdout (or --output).",
        epilog="With --nbest N > 1 and text output, each input line gives N lines 'LINE ||| TRANSLATION ||| SCORE' "
        "(LINE counts from 0, best first). With --output-type json, each input line gives one JSON object "
        '{"line": i, "source": ..., "hypotheses": [{"text", "score", "tokens"}, ...]}. With --input-type json, each input line '
        'is one JSON object {"source": "...", "prefix": "..."}: the translation starts with the prefix (optional), and search continues from there.',
    )
    parser.add_argument("--model", required=True, nargs="+",
                        help="a model directory written by seq2seq-train or seq2seq-export, or a model on the Hugging Face Hub (ORG/NAME); "
                        "several: an ensemble")
    parser.add_argument("--revision", help="for a model on the Hub: the branch, tag or commit (default main)")
    parser.add_argument("--input", help="read sentences from this file instead of stdin")
    parser.add_argument("--output", help="write translations to this file instead of stdout")
    _add_search_arguments(parser)
    parser.add_argument("--nbest", type=int, default=DEFAULTS.nbest)
    parser.add_argument("--max-len-ratio", type=float, default=DEFAULTS.max_len_ratio, help="longest output, relative to the source length")
    parser.add_argument("--sample", action="store_true", help="sample instead of searching (see --temperature, --top-k)")
    parser.add_argument("--temperature", type=float, default=DEFAULTS.temperature)
    parser.add_argument("--top-k", type=int, default=DEFAULTS.top_k)
    parser.add_argument("--top-p", type=float, default=DEFAULTS.top_p, help="nucleus sampling: draw from the most likely tokens whose probability reaches P")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed for --sample")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: faster on CUDA and CPUs with bf16 instructions; int8: dynamic quantization, CPU only")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's or onnxruntime's default)")
    parser.add_argument("--input-type", choices=["text", "json"], default="text", help="json: one {\"source\", \"prefix\"} object per line")
    parser.add_argument("--output-type", choices=["text", "json"], default="text")
    parser.add_argument("--wait", type=float, default=0.05, help="seconds to wait for more input before translating a partial batch")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    args = parser.parse_args(argv)
    options = _search_options(parser, args, mode="sample" if args.sample else "beam", nbest=args.nbest, max_len_ratio=args.max_len_ratio,
                              temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    _setup_logging(args.quiet)
    from seq2seq.hub import HubError, resolve_model_dir

    try:
        model_dirs = [resolve_model_dir(m, revision=args.revision) for m in args.model]
    except HubError as err:
        return _fail(str(err), EXIT_USAGE)

    # No torch here: an exported model (seq2seq-export) translates where torch is not installed.
    from seq2seq import sharding
    from seq2seq.checkpoint import CheckpointError
    from seq2seq.translate import PrefixError, Translator

    # Under torchrun, each process translates its share of --input (seq2seq/sharding.py).
    shard = sharding.shard_from_env()
    if shard is not None and not (args.input and os.path.isfile(args.input) and args.output):
        return _fail(f"{shard.world} processes translate one file: give --input (a regular file) and --output", EXIT_USAGE)
    device, threads = args.device, args.threads
    if shard is not None:
        import torch

        sharding.open_group()
        if device in ("auto", "cuda") and torch.cuda.is_available():
            device = f"cuda:{shard.local_rank}"  # one GPU per process
        threads = threads or sharding.cpu_threads(shard)
    try:
        translator = Translator.from_pretrained(model_dirs, device=device, precision=args.precision, threads=threads)
    except (CheckpointError, ValueError) as err:
        return _fail(str(err), EXIT_USAGE)
    try:
        source = open(args.input, "rb") if args.input else sys.stdin.buffer
        sink_path = sharding.part_path(args.output, shard.rank) if shard is not None else args.output
        sink = open(sink_path, "w", encoding="utf-8", newline="\n") if args.output else sys.stdout
    except OSError as err:
        return _fail(f"{err.filename}: {err.strerror}", EXIT_USAGE)
    # Interactive use answers each line at once; piped input is read in large sorted chunks.
    interactive = source.isatty()
    max_lines = 1 if interactive else 16 * args.batch_size
    # A regular file's line count gives the bar an end, so a long job (distilling a corpus) shows how
    # far it is; a pipe or FIFO given as --input must not be read twice.
    total = _count_lines(args.input) if args.input and os.path.isfile(args.input) else None
    if shard is not None and total is not None:
        total = sharding.share_size(total, shard, max_lines)
    bar = _line_bar(total, enabled=not interactive and (shard is None or shard.rank == 0))
    lines = read_stream_lines(source)
    numbered = enumerate(lines) if shard is None else sharding.own_lines(lines, shard, max_lines)
    counts = sharding.ChunkCounts(max_lines)
    done = 0
    start = time.perf_counter()
    try:
        for batch in micro_batches(numbered, max_lines, args.wait):
            texts, prefixes = [], []
            for line_no, (text, invalid) in batch:
                if invalid:
                    log.warning("line %d: invalid UTF-8 replaced by U+FFFD", line_no + 1)
                if args.input_type == "json":
                    text, prefix = read_request(text, line_no + 1)
                    prefixes.append(prefix)
                texts.append(clean_line(text))
            results = translator.translate_nbest(texts, options, batch_size=args.batch_size, prefixes=prefixes if args.input_type == "json" else None)
            for (line_no, _), text, hyps in zip(batch, texts, results):
                counts.add(line_no, _write_result(sink, line_no, text, hyps, args.nbest, args.output_type))
            sink.flush()
            bar.update(len(batch))
            done += len(batch)
    except RequestError as err:
        return _fail(str(err), EXIT_USAGE)
    except PrefixError as err:
        return _fail(f"line {batch[err.index][0] + 1}: {err}", EXIT_USAGE)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        bar.close()
        if args.output:
            sink.close()
    if shard is not None:
        sharding.join_parts(shard, counts, args.output)
    seconds = time.perf_counter() - start
    log.info("translated %d lines in %.1f s (%.1f lines/s)%s", done, seconds, done / max(seconds, 1e-9),
             f" on rank {shard.rank} of {shard.world}" if shard is not None else "")
    return EXIT_OK


class RequestError(ValueError):
    """A line of --input-type json input is not a request; the message names the line."""


def read_request(line: str, line_no: int) -> tuple[str, str | None]:
    """One line of JSON input → (source, prefix or None); a blank line is an empty source."""
    if not line.strip():
        return "", None
    try:
        request = json.loads(line)
    except json.JSONDecodeError as err:
        raise RequestError(f"line {line_no}: not JSON ({err.msg}); with --input-type json each line is {{\"source\": \"...\", \"prefix\": \"...\"}}") from None
    if not isinstance(request, dict) or not isinstance(request.get("source"), str):
        raise RequestError(f"line {line_no}: expected an object with a string \"source\" (and optionally \"prefix\"); got {line[:80]!r}")
    unknown = sorted(set(request) - {"source", "prefix"})
    if unknown:
        raise RequestError(f"line {line_no}: unknown key(s) {', '.join(unknown)}; the keys are source and prefix")
    prefix = request.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise RequestError(f"line {line_no}: \"prefix\" must be a string or null; got {type(prefix).__name__}")
    return request["source"], None if prefix is None else clean_line(prefix)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _line_bar(total: int | None, enabled: bool):
    """tqdm's bar; none in an environment with only an exported model's runtime, which lacks tqdm and yaml."""
    try:
        from seq2seq.reporting import progress_bar

        return progress_bar(total, "translating", enabled=enabled, unit="line")
    except ImportError:
        return _NoBar()


def _count_lines(path: str) -> int:
    """Lines as read_lines yields them: a last line without b'\\n' counts too."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            count, last = count + chunk.count(b"\n"), chunk
    return count + (not last.endswith(b"\n"))


def _write_result(sink: TextIO, line_no: int, source: str, hyps, nbest: int, output_type: str) -> int:
    """Write one input line's result; return the number of lines written."""
    if output_type == "json":
        sink.write(json.dumps(json_record(line_no, source, hyps, nbest), ensure_ascii=False) + "\n")
        return 1
    if nbest > 1:
        for h in hyps[:nbest]:
            sink.write(f"{line_no} ||| {_one_line(h.text)} ||| {h.score:.4f}\n")
        return len(hyps[:nbest])
    sink.write(_one_line(hyps[0].text) + "\n")
    return 1


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
    parser.add_argument("--model", required=True, nargs="+", help="a model directory; several: an ensemble")
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
        translator = Translator.from_pretrained(args.model, device=args.device, precision=args.precision)
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
