"""seq2seq-serve: load a model directory (or several: an ensemble) and answer HTTP on uvicorn.

Exit codes as the other commands: 2 for a usage or model-directory error (a message, no
traceback), 1 when the server cannot start (e.g. the port is taken), 0 after SIGTERM (or SIGINT)
once every accepted request has been answered.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from seq2seq.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, add_model_arguments, fail, setup_logging
from seq2seq.options import BATCH_SIZE

if TYPE_CHECKING:
    from fastapi import FastAPI

    from seq2seq.inference.translator import Translator
    from seq2seq.options import SearchOptions
    from seq2seq.serve.inputs import Limits
    from seq2seq.serve.processes import ModelSource

log = logging.getLogger("seq2seq.serve")

WORKERS_AS = ("auto", "processes", "threads")
MISSING = "seq2seq-serve needs FastAPI, uvicorn and prometheus-client: pip install 'seq2seq[serve]'"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seq2seq-serve",
        description="Serve a translation model over HTTP: LibreTranslate's /translate, /detect, /translate_file, /languages, "
        "/frontend/settings and /suggest, the native /v1/translate (every seq2seq-translate decoding option), /v1/model, /health, /ready, "
        "/metrics, a page at /, the OpenAPI document at /openapi.json and its docs page at /docs.",
    )
    add_model_arguments(
        parser,
        model_help="a model directory written by seq2seq-train, an exported one (seq2seq-export: the fast "
        "deployment runtime, no torch), or a model on the Hugging Face Hub (ORG/NAME); several: an ensemble",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--options",
        default="{}",
        metavar="JSON",
        help="decoding options of /translate, and defaults of /v1/translate: a JSON object of SearchOptions fields, "
        'e.g. \'{"beam_size": 10, "length_penalty": 0.6}\' (default: seq2seq-translate\'s defaults)',
    )
    _add_batching_arguments(parser)
    _add_limit_arguments(parser)
    parser.add_argument(
        "--cors", metavar="ORIGINS", help="comma-separated origins whose web pages may call this server (e.g. https://example.org; * for any); default: none"
    )
    parser.add_argument("--file-ttl", type=float, default=1800.0, help="seconds a file translated by /translate_file can be downloaded (default: 30 minutes)")
    parser.add_argument("--api-keys", help="a file of API keys, one per line (# comments); every endpoint but /health and /ready then needs one")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr (no access log)")
    return parser


def _add_batching_arguments(parser: argparse.ArgumentParser) -> None:
    """How sentences become batches and who translates them."""
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="sentences per decoder batch, as in seq2seq-translate")
    parser.add_argument(
        "--max-batch-tokens", type=int, default=2048, help="source subwords the inference worker takes into one batch at most (a longer sentence goes alone)"
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="milliseconds the worker waits for more sentences after the first before it starts a batch, "
        "while the arrival rate of the last second expects another request within the wait",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="inference workers, each translating its own batch with --threads threads (0: for an exported directory "
        "with --threads 0, one worker of one thread per CPU, which served 1.5x the sentences/s of one worker at 64 clients; else one)",
    )
    parser.add_argument(
        "--workers-as",
        choices=WORKERS_AS,
        default="auto",
        help="processes: each worker loads the model in a process of its own and translates without the server's GIL "
        "(at 64 clients on 2 cores 1.1x the sentences/s of threads); threads: the workers share the server's model; "
        "auto (default): processes for an exported directory, threads for a model directory (each process would load torch)",
    )


def _add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """What a request may take and ask for, and how long it may wait."""
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take; then 503 with Retry-After")
    parser.add_argument("--max-queue", type=int, default=20000, help="sentences waiting at most; a request beyond gets 503 at once")
    parser.add_argument("--max-lines", type=int, default=1000, help="sentences per request at most (more: 413)")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, help="request body size at most (more: 413)")
    parser.add_argument("--max-beam-size", type=int, default=32, help="largest beam_size and nbest a request may ask for (more: 422)")
    parser.add_argument("--char-limit", type=int, default=-1, help="characters of each q at most (more: 400, as LibreTranslate's; -1: no limit)")
    parser.add_argument("--batch-limit", type=int, default=-1, help="q entries per request at most (more: 400, as LibreTranslate's; -1: no limit)")
    parser.add_argument(
        "--req-limit",
        type=int,
        default=-1,
        help="requests per minute per API key, else per client address (a list q counts one per entry; more: 429, as LibreTranslate's; -1: no limit)",
    )


def read_api_keys(path: str) -> frozenset[str]:
    with open(path, encoding="utf-8") as f:
        keys = frozenset(k for line in f if (k := line.split("#", 1)[0].strip()))
    if not keys:
        raise ValueError(f"{path} holds no API key; put one key per line")
    return keys


def workers_and_threads(models: list[str], workers: int, threads: int) -> tuple[int, int]:
    """--workers and --threads as the server runs them. --workers 0 with --threads 0: an exported
    directory gets one worker of one thread per CPU this process may use (at 64 clients on 2 cores
    that served 1.5x one worker of two threads, and the same at one client:
    docs/logs/2026-12-06-serving-workers.md); anything else one worker. Given values are kept."""
    from seq2seq.export import is_exported_dir
    from seq2seq.export.runtime import usable_cpus

    if workers:
        return workers, threads
    if threads == 0 and len(models) == 1 and is_exported_dir(Path(models[0])):
        return usable_cpus(), 1
    return 1, threads


def _check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The numeric flags' bounds, as usage errors that name the flag."""
    for name in ("port", "batch_size", "max_batch_tokens", "max_queue", "max_lines", "max_body_bytes", "max_beam_size", "workers"):
        zero_ok = name in ("port", "workers")
        if getattr(args, name) < (0 if zero_ok else 1):
            parser.error(f"--{name.replace('_', '-')} must be {'>= 0' if zero_ok else '>= 1'}; got {getattr(args, name)}")
    for name in ("max_wait_ms", "timeout", "file_ttl"):
        if not getattr(args, name) >= 0 or (name != "max_wait_ms" and getattr(args, name) == 0):
            parser.error(f"--{name.replace('_', '-')} must be a number {'>= 0' if name == 'max_wait_ms' else '> 0'}; got {getattr(args, name)}")
    for name in ("char_limit", "batch_limit", "req_limit"):
        if getattr(args, name) < 1 and getattr(args, name) != -1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, or -1 for no limit; got {getattr(args, name)}")
    if args.cors is not None and not _origins(args.cors):
        parser.error("--cors needs at least one origin, e.g. --cors https://example.org,https://other.example or --cors '*'")


def _origins(text: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def _default_options(parser: argparse.ArgumentParser, text: str, limits: Limits) -> SearchOptions:
    """--options: a JSON object of SearchOptions fields, checked as a request's are."""
    from seq2seq.options import SearchOptions
    from seq2seq.serve.inputs import InputError, search_options

    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("it must be a JSON object")
        return search_options(values, SearchOptions(), limits)
    except (ValueError, InputError) as err:  # JSONDecodeError is a ValueError
        parser.error(f"--options: {err}")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_numbers(parser, args)
    setup_logging(args.quiet)
    if any(importlib.util.find_spec(name) is None for name in ("fastapi", "uvicorn", "prometheus_client")):
        return fail(MISSING, EXIT_USAGE)

    limits = _limits(args)
    defaults = _default_options(parser, args.options, limits)
    try:
        keys = read_api_keys(args.api_keys) if args.api_keys else frozenset()
    except OSError as err:
        return fail(f"--api-keys {err.filename}: {err.strerror}", EXIT_USAGE)
    except ValueError as err:
        return fail(f"--api-keys: {err}", EXIT_USAGE)
    # The model's framework last: the mistakes above are reported without waiting for it (torch, for
    # a model directory, comes in with the model; an exported one needs onnxruntime only).
    from seq2seq.inference.translator import Translator
    from seq2seq.modeldir.meta import CheckpointError
    from seq2seq.serve.app import Settings, create_app

    workers, threads = workers_and_threads(args.model, args.workers, args.threads)
    try:
        translator = Translator.from_pretrained(
            args.model, device=args.device, precision=args.precision, threads=threads, revision=args.revision, shortlist=args.shortlist
        )
    except (CheckpointError, ValueError) as err:
        return fail(str(err), EXIT_USAGE)
    processes = _worker_models(args, translator, threads)
    settings = Settings(
        limits=limits,
        max_tokens=args.max_batch_tokens,
        max_wait=args.max_wait_ms / 1000,
        batch_size=args.batch_size,
        timeout=args.timeout,
        max_queue=args.max_queue,
        api_keys=keys,
        defaults=defaults,
        req_limit=args.req_limit,
        cors_origins=_origins(args.cors) if args.cors else (),
        file_ttl=args.file_ttl,
        workers=workers,
        processes=processes,
    )
    log.info(
        "%d inference worker%s (%s), %s",
        workers,
        "s" if workers > 1 else "",
        "processes" if processes else "threads",
        f"{threads} thread{'s' if threads > 1 else ''} each" if threads else "the library's threads",
    )
    return _run(create_app(translator, settings), host=args.host, port=args.port)


def _limits(args: argparse.Namespace) -> Limits:
    from seq2seq.serve.inputs import Limits

    return Limits(
        max_body_bytes=args.max_body_bytes,
        max_lines=args.max_lines,
        max_beam_size=args.max_beam_size,
        char_limit=args.char_limit,
        batch_limit=args.batch_limit,
    )


def _worker_models(args: argparse.Namespace, translator: Translator, threads: int) -> ModelSource | None:
    """--workers-as: what each worker process loads, or None where the workers are threads. The children
    load the directories the server loaded: local paths, a Hub model's in the cache."""
    from seq2seq.serve.processes import ModelSource

    if not (args.workers_as == "processes" or (args.workers_as == "auto" and translator.is_exported)):
        return None
    return ModelSource(tuple(str(d) for d in translator.model_dirs), args.device, args.precision, threads, args.shortlist)


def _run(app: FastAPI, *, host: str, port: int) -> int:
    """Serve `app` until a signal stops it: the command's exit code."""
    import uvicorn

    # No uvicorn logging config and no uvicorn access log: its lines go to stderr through ours, and
    # the app writes one access line per request itself. No limit on the graceful shutdown: a
    # request's own deadline (--timeout) bounds how long an accepted request can take.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=None))
    received: list[int] = []
    # uvicorn catches SIGTERM and SIGINT, shuts down gracefully, then raises the signal again with the
    # handlers it found installed: these record it, so the process ends with our exit code, not killed.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    # What the server holds from here on (the model, the app, the libraries' modules) is left out of the
    # cyclic garbage collector's passes: walking it took 14% of the server process's CPU at 64 clients.
    gc.freeze()
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot start, e.g. the port is taken; it has logged why
        return EXIT_FAILURE
    if not server.started:
        return EXIT_FAILURE
    log.info("stopped%s", f" on signal {signal.Signals(received[0]).name}" if received else "")
    return EXIT_OK
