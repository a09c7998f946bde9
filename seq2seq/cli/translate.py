"""seq2seq-translate: one sentence per line from stdin or a file to stdout or a file.

With --split-sentences a line may hold a paragraph, and with --format html an HTML fragment: it is
cut into sentences (seq2seq/inference/text.py), which are translated one by one and put back in
place; one output line per input line still holds. sentencex and the HTML parser load only then.

Piped input is read in large chunks that the search sorts by length; a terminal or a trickling pipe
gets each answer as its line arrives (micro_batches). Under torchrun each process translates its
share of a file (seq2seq/inference/sharding.py). Conventions (stderr, exit codes) and the search options are
seq2seq/cli/common.py's. Nothing here imports torch: an exported model translates where torch is not installed.
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
from typing import TYPE_CHECKING, BinaryIO, TextIO

from seq2seq.cli.common import EXIT_OK, EXIT_USAGE, add_model_arguments, add_search_arguments, fail, search_options, setup_logging
from seq2seq.inference.output import clean_line, json_record, one_line

if TYPE_CHECKING:
    from seq2seq.inference import sharding
    from seq2seq.inference.translator import Translator
    from seq2seq.options import SearchOptions

log = logging.getLogger("seq2seq")


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq-translate",
        description="Translate one sentence per line from stdin (or --input) to stdout (or --output).",
        epilog="With --nbest N > 1 and text output, each input line gives N lines 'LINE ||| TRANSLATION ||| SCORE' "
        "(LINE counts from 0, best first). With --output-type json, each input line gives one JSON object "
        '{"line": i, "source": ..., "hypotheses": [{"text", "score", "tokens"}, ...]}. With --input-type json, each input line '
        'is one JSON object {"source": "...", "prefix": "..."}: the translation starts with the prefix (optional), and search continues from there. '
        "With --split-sentences or --format html, each line's sentences are translated one by one and put back in place; with --output-type json "
        "the record's one hypothesis is the whole line (score: the sum of its sentences'), and \"sentences\" lists them. "
        "These two refuse --nbest > 1 and --input-type json.",
    )
    add_model_arguments(parser)
    parser.add_argument("--input", help="read sentences from this file instead of stdin")
    parser.add_argument("--output", help="write translations to this file instead of stdout")
    parser.add_argument("--input-type", choices=["text", "json"], default="text", help='json: one {"source", "prefix"} object per line')
    parser.add_argument("--output-type", choices=["text", "json"], default="text")
    parser.add_argument(
        "--split-sentences",
        action="store_true",
        help="a line may hold several sentences: each is translated on its own and the line's translation is theirs, joined with the line's spacing",
    )
    parser.add_argument(
        "--format",
        choices=["text", "html"],
        default="text",
        help="html: each line is an HTML fragment; its text is translated, its markup kept (implies --split-sentences)",
    )
    parser.add_argument("--wait", type=float, default=0.05, help="seconds to wait for more input before translating a partial batch")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    add_search_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    options = search_options(parser, args)
    _check_splitting(parser, args, options)
    setup_logging(args.quiet)
    # No torch here: an exported model (seq2seq-export) translates where torch is not installed.
    from seq2seq.inference import sharding
    from seq2seq.inference.translator import Translator
    from seq2seq.modeldir.hub import HubError, resolve_model_dir
    from seq2seq.modeldir.meta import CheckpointError

    try:
        model_dirs = [resolve_model_dir(m, revision=args.revision) for m in args.model]
    except HubError as err:
        return fail(str(err), EXIT_USAGE)
    # Under torchrun, each process translates its share of --input (seq2seq/inference/sharding.py).
    shard = sharding.shard_from_env()
    if shard is not None and not (args.input and os.path.isfile(args.input) and args.output):
        return fail(f"{shard.world} processes translate one file: give --input (a regular file) and --output", EXIT_USAGE)
    device, threads = (args.device, args.threads) if shard is None else _shard_device(args, shard)
    try:
        translator = Translator.from_pretrained(model_dirs, device=device, precision=args.precision, threads=threads, shortlist=args.shortlist)
    except (CheckpointError, ValueError) as err:
        return fail(str(err), EXIT_USAGE)
    try:
        source = open(args.input, "rb") if args.input else sys.stdin.buffer
        sink_path = sharding.part_path(args.output, shard.rank) if shard is not None else args.output
        sink = open(sink_path, "w", encoding="utf-8", newline="\n") if args.output else sys.stdout
    except OSError as err:
        return fail(f"{err.filename}: {err.strerror}", EXIT_USAGE)
    start = time.perf_counter()
    try:
        done, counts = _translate_lines(translator, options, args, source, sink, shard)
    except RequestError as err:
        return fail(str(err), EXIT_USAGE)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    finally:
        if args.output:
            sink.close()
    if shard is not None:
        sharding.join_parts(shard, counts, args.output)
    seconds = time.perf_counter() - start
    log.info(
        "translated %d lines in %.1f s (%.1f lines/s)%s",
        done,
        seconds,
        done / max(seconds, 1e-9),
        f" on rank {shard.rank} of {shard.world}" if shard is not None else "",
    )
    return EXIT_OK


def _check_splitting(parser: argparse.ArgumentParser, args: argparse.Namespace, options: SearchOptions) -> None:
    """--split-sentences and --format html: refuse what they cannot be combined with, and load the
    splitter (sentencex, the HTML parser) now, so that a missing extra is said before the model loads."""
    args.split_sentences = args.split_sentences or args.format == "html"
    if not args.split_sentences:
        return
    flag = "--format html" if args.format == "html" else "--split-sentences"
    if options.nbest > 1:
        parser.error(f"--nbest {options.nbest} cannot be combined with {flag}: a line's sentences each have their own n-best list; leave --nbest out")
    if args.input_type == "json":
        parser.error(f"--input-type json cannot be combined with {flag}: a prefix starts one sentence's translation, not a line's; use text input")
    try:
        from seq2seq.inference.text import split_sentences

        split_sentences("")
        if args.format == "html":
            import seq2seq.inference.html  # noqa: F401  (its parser's import error, now rather than at the first line)
    except ImportError as err:
        parser.error(str(err))


def _shard_device(args: argparse.Namespace, shard: sharding.Shard) -> tuple[str, int]:
    """One process of several: join the group; one GPU per process, or its share of the CPU threads."""
    import torch

    from seq2seq.inference import sharding

    sharding.open_group()
    device = f"cuda:{shard.local_rank}" if args.device in ("auto", "cuda") and torch.cuda.is_available() else args.device
    return device, args.threads or sharding.cpu_threads(shard)


def _translate_lines(
    translator: Translator, options: SearchOptions, args: argparse.Namespace, source: BinaryIO, sink: TextIO, shard: sharding.Shard | None
) -> tuple[int, sharding.ChunkCounts]:
    """Translate every line of source (this process's share of them, under torchrun) into sink, one
    result per line; return the lines done and how many output lines each chunk wrote."""
    from seq2seq.inference import sharding
    from seq2seq.inference.translator import PrefixError

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
    counts, done = sharding.ChunkCounts(max_lines), 0
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
            if args.split_sentences:
                for (line_no, _), text, record in zip(batch, texts, _translate_split(translator, options, args, texts)):
                    counts.add(line_no, _write_split(sink, line_no, text, record, args.output_type))
            else:
                try:
                    results = translator.translate_nbest(texts, options, batch_size=args.batch_size, prefixes=prefixes if args.input_type == "json" else None)
                except PrefixError as err:
                    raise RequestError(f"line {batch[err.index][0] + 1}: {err}") from None
                for (line_no, _), text, hyps in zip(batch, texts, results):
                    counts.add(line_no, _write_result(sink, line_no, text, hyps, options.nbest, args.output_type))
            sink.flush()
            bar.update(len(batch))
            done += len(batch)
    finally:
        bar.close()
    return done, counts


class RequestError(ValueError):
    """A line of --input-type json input is not a request; the message names the line."""


def read_request(line: str, line_no: int) -> tuple[str, str | None]:
    """One line of JSON input → (source, prefix or None); a blank line is an empty source."""
    if not line.strip():
        return "", None
    try:
        request = json.loads(line)
    except json.JSONDecodeError as err:
        raise RequestError(f'line {line_no}: not JSON ({err.msg}); with --input-type json each line is {{"source": "...", "prefix": "..."}}') from None
    if not isinstance(request, dict) or not isinstance(request.get("source"), str):
        raise RequestError(f'line {line_no}: expected an object with a string "source" (and optionally "prefix"); got {line[:80]!r}')
    unknown = sorted(set(request) - {"source", "prefix"})
    if unknown:
        raise RequestError(f"line {line_no}: unknown key(s) {', '.join(unknown)}; the keys are source and prefix")
    prefix = request.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise RequestError(f'line {line_no}: "prefix" must be a string or null; got {type(prefix).__name__}')
    return request["source"], None if prefix is None else clean_line(prefix)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _line_bar(total: int | None, enabled: bool):
    """tqdm's bar; none in an environment with only an exported model's runtime, which lacks tqdm and yaml."""
    try:
        from seq2seq.training.reporting import progress_bar

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
            sink.write(f"{line_no} ||| {one_line(h.text)} ||| {h.score:.4f}\n")
        return len(hyps[:nbest])
    sink.write(one_line(hyps[0].text) + "\n")
    return 1


def _translate_split(translator: Translator, options: SearchOptions, args: argparse.Namespace, texts: list[str]) -> list[tuple[str, list[str], list]]:
    """Each line cut into sentences (text or HTML), all sentences of the batch translated in one call:
    per line (its translation, its sentences, their best hypotheses). The translation is what
    `Translator.translate_text` gives for the line."""
    from seq2seq.inference.text import plan

    plans = [plan(text, args.format, language=translator.meta.src_lang) for text in texts]
    hyps = [h[0] for h in translator.translate_nbest([s for p in plans for s in p.sentences], options, batch_size=args.batch_size)]
    out, start = [], 0
    for p in plans:
        mine = hyps[start : start + len(p.sentences)]
        out.append((p.join([h.text for h in mine]), p.sentences, mine))
        start += len(p.sentences)
    return out


def _write_split(sink: TextIO, line_no: int, source: str, record: tuple[str, list[str], list], output_type: str) -> int:
    """Write one split line's result (always one output line); return 1."""
    translation, sentences, hyps = record
    if output_type == "json":
        best = {"text": translation, "score": sum(h.score for h in hyps), "tokens": [t for h in hyps for t in h.tokens]}
        sentence_records = [{"source": s, "text": h.text, "score": h.score} for s, h in zip(sentences, hyps)]
        sink.write(json.dumps({"line": line_no, "source": source, "hypotheses": [best], "sentences": sentence_records}, ensure_ascii=False) + "\n")
    else:
        sink.write(one_line(translation) + "\n")
    return 1
