"""The FastAPI application: routes, status codes, limits, keys, metrics and the access log.

No translation logic: a route parses and checks its request (seq2seq.serve.inputs), puts the
sentences on the queue (seq2seq.serve.batcher) and writes what the Translator gave, with the
functions seq2seq-translate writes its output with (seq2seq.inference.output).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import importlib.metadata
import importlib.resources
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from seq2seq.inference.output import json_record, one_line
from seq2seq.options import SearchOptions
from seq2seq.serve.batcher import Batcher
from seq2seq.serve.inputs import InputError, Limits, NativeBody, libre_request, native_request, parse_fields, read_body
from seq2seq.serve.metrics import Metrics, new_metrics

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translator

log = logging.getLogger("seq2seq.serve")
access_log = logging.getLogger("seq2seq.serve.access")

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech", "es": "Spanish", "it": "Italian", "nl": "Dutch"}
ENDPOINTS = ("/", "/translate", "/languages", "/v1/translate", "/v1/attention", "/v1/model", "/health", "/ready", "/metrics")
# How often a waiting request checks whether its client is still there.
DISCONNECT_POLL_S = 0.1
# Distributions whose versions /v1/model reports, where installed.
PACKAGES = ("seq2seq", "torch", "onnxruntime", "sentencepiece", "fastapi", "uvicorn", "pydantic", "prometheus-client")


@dataclass(frozen=True)
class Settings:
    limits: Limits
    max_tokens: int  # source subwords per batch the worker takes
    max_wait: float  # seconds the worker waits for more sentences after the first
    batch_size: int  # sentences per decoder batch inside translate_nbest
    timeout: float  # seconds a request may take before a 503
    max_queue: int  # sentences waiting, beyond which new requests get a 503 at once
    api_keys: frozenset[str]
    defaults: SearchOptions  # the decoding options of /translate, and of /v1 where a request leaves one out


def create_app(translator: Translator, settings: Settings) -> FastAPI:
    metrics = new_metrics()
    batcher = Batcher(translator, metrics, max_tokens=settings.max_tokens, max_wait=settings.max_wait, batch_size=settings.batch_size)
    src, tgt = translator.meta.src_lang, translator.meta.tgt_lang
    limits = settings.limits
    ready = asyncio.Event()
    page = (importlib.resources.files("seq2seq.serve") / "page.html").read_bytes()

    async def warm_up() -> None:
        await batcher.call(lambda: translator.translate(["A man is sleeping."]))
        ready.set()
        log.info("ready: %s → %s, model %s", src, tgt, ", ".join(str(d) for d in translator.model_dirs))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        task = asyncio.create_task(warm_up())
        yield
        # uvicorn has finished every request it accepted before it gets here.
        await task
        batcher.stop()

    app = FastAPI(title="seq2seq-serve", version=_version("seq2seq"), lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(AccessLog, metrics=metrics)

    def check_key(request: Request, body_key: str | None = None) -> None:
        if not settings.api_keys:
            return
        auth = request.headers.get("authorization", "")
        key = body_key or (auth[7:].strip() if auth.lower().startswith("bearer ") else None) or request.query_params.get("api_key")
        if not key or not any(hmac.compare_digest(key.encode(), k.encode()) for k in settings.api_keys):
            raise InputError(403, "missing or invalid API key: send api_key in the body or the query, or an Authorization: Bearer header")

    async def translate(request: Request, texts: list[str], options: SearchOptions) -> list | Response:
        """The n-best lists of `texts` from the worker, or the response that ends the request early."""
        if batcher.queued + len(texts) > settings.max_queue:
            return _error(503, f"the server is busy ({batcher.queued} sentences queued); retry later", {"Retry-After": str(batcher.retry_after())})
        ticket = batcher.submit(texts, options)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                ticket.cancel("deadline")
                return _error(503, f"the request took longer than {settings.timeout:g} s (--timeout); the server is busy: retry later",
                              {"Retry-After": str(batcher.retry_after())})
            done, _ = await asyncio.wait({ticket.future}, timeout=min(left, DISCONNECT_POLL_S))
            if done:
                return ticket.future.result()
            if await request.is_disconnected():
                ticket.cancel("disconnected")
                return Response(status_code=499)  # nginx's "client closed request": only the access log sees it

    async def fields_of(request: Request) -> dict[str, Any]:
        return parse_fields(await read_body(request, limits.max_body_bytes), request.headers.get("content-type", ""))

    @app.exception_handler(InputError)
    async def input_error(request: Request, err: InputError) -> Response:
        return _error(err.status, err.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> Response:
        return _error(err.status_code, str(err.detail), err.headers)

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        check_key(request)
        return Response(page, media_type="text/html; charset=utf-8")

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "alive"})

    @app.get("/ready")
    async def is_ready() -> Response:
        if ready.is_set():
            return _json({"status": "ready"})
        return _error(503, "the model is warming up", {"Retry-After": "1"})

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        check_key(request)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/languages")
    async def languages(request: Request) -> Response:
        check_key(request)
        return _json([{"code": src, "name": LANGUAGE_NAMES.get(src, src), "targets": [tgt]}])

    @app.post("/translate")
    async def libre_translate(request: Request) -> Response:
        fields = await fields_of(request)
        check_key(request, fields.get("api_key") if isinstance(fields.get("api_key"), str) else None)
        req = libre_request(fields, src, tgt, settings.defaults, limits)
        results = await translate(request, req.sentences.texts, req.options)
        if isinstance(results, Response):
            return results
        best = [one_line(hyps[0].text) for hyps in results]
        body: dict[str, Any] = {"translatedText": best[0] if req.sentences.single else best}
        if req.alternatives:
            others = [[one_line(h.text) for h in hyps[1 : 1 + req.alternatives]] for hyps in results]
            body["alternatives"] = others[0] if req.sentences.single else others
        if req.auto_source:
            detected = {"confidence": 100.0, "language": src}
            body["detectedLanguage"] = detected if req.sentences.single else [detected] * len(best)
        return _json(body)

    native_schema = {"requestBody": {"content": {"application/json": {"schema": NativeBody.model_json_schema()}}, "required": True}}

    @app.post("/v1/translate", openapi_extra=native_schema)
    async def native_translate(request: Request) -> Response:
        """Any SearchOptions field; answers one `--output-type json` record per sentence."""
        fields = await fields_of(request)
        check_key(request, fields.get("api_key") if isinstance(fields.get("api_key"), str) else None)
        req = native_request(fields, settings.defaults, limits)
        results = await translate(request, req.sentences.texts, req.options)
        if isinstance(results, Response):
            return results
        return _json({"translations": [json_record(i, text, hyps, req.options.nbest) for i, (text, hyps) in enumerate(zip(req.sentences.texts, results))]})

    @app.post("/v1/attention", openapi_extra=native_schema)
    async def attention(request: Request) -> Response:
        """The best translation of one sentence (q, a string) with its attention weights (T, S)."""
        fields = await fields_of(request)
        check_key(request, fields.get("api_key") if isinstance(fields.get("api_key"), str) else None)
        req = native_request(fields, settings.defaults, limits, one=True)
        text = req.sentences.texts[0]
        if not hasattr(translator, "attention"):
            return _error(501, "this model's runtime does not give attention weights")
        try:
            found = await asyncio.wait_for(batcher.call(lambda: translator.attention(text, req.options)), settings.timeout)
        except ValueError as err:
            return _error(422, str(err))
        except asyncio.TimeoutError:
            return _error(503, f"the request took longer than {settings.timeout:g} s (--timeout); retry later", {"Retry-After": str(batcher.retry_after())})
        return _json({"translation": found.text, "source": found.source, "target": found.target, "weights": found.weights})

    @app.get("/v1/model")
    async def model(request: Request) -> Response:
        check_key(request)
        return _json(describe(translator, settings))

    return app


def describe(translator: Translator, settings: Settings) -> dict[str, Any]:
    """What /v1/model answers: languages, the model's facts and scores, defaults, limits, versions."""
    meta, record = translator.meta, translator.meta.training
    scores = {}
    if record is not None:
        for split, score, signature in (("validation", record.valid_bleu, record.valid_bleu_signature), ("test", record.test_bleu, record.test_bleu_signature)):
            if score is not None:
                scores[split] = {"bleu": score, "signature": signature}
    return {
        "source": meta.src_lang,
        "target": meta.tgt_lang,
        "model_dirs": [str(d) for d in translator.model_dirs],
        "precision": translator.precision,
        "device": str(translator.device),
        "parameters": record.num_parameters if record is not None else None,
        "format_version": meta.format_version,
        "trained_with": meta.package_version,
        "scores": scores,
        "search_defaults": dataclasses.asdict(settings.defaults),
        "limits": {**dataclasses.asdict(settings.limits), "timeout_s": settings.timeout, "max_batch_tokens": settings.max_tokens},
        "versions": {name: v for name in PACKAGES if (v := _version(name)) is not None},
    }


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # As seq2seq-translate writes JSON (ensure_ascii=False), so /v1/translate's records are its bytes.
    return Response(json.dumps(content, ensure_ascii=False), status_code=status, headers=headers, media_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """LibreTranslate's error shape."""
    return _json({"error": message}, status, headers)


class AccessLog:
    """ASGI middleware: one line per request on stderr, and the request metrics. The query string is
    left out of the line: it may hold an API key."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # what the server answers when the app raises

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - start
            endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(seconds)
            host, port = scope.get("client") or ("-", 0)
            access_log.info('%s:%s "%s %s HTTP/%s" %d %.1f ms', host, port, scope["method"], scope["path"], scope.get("http_version", "1.1"), status,
                            1000 * seconds)
