"""The server's routes, on one `APIRouter`: what each endpoint answers, with the status codes of the docs.

No translation logic: a route gets its request's fields and the key check from
seq2seq.serve.dependencies, checks the fields (seq2seq.serve.inputs), puts the sentences on the
queue (seq2seq.serve.batcher) and writes what the Translator gave with the functions
seq2seq-translate writes its output with (seq2seq.inference.output).

The routes are registered in the order the OpenAPI document lists them, and their names and
docstrings are its operation ids and descriptions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from seq2seq.inference.output import clean_line, json_record, one_line
from seq2seq.options import SearchOptions
from seq2seq.serve import openapi as api
from seq2seq.serve.dependencies import ServerState, State, check_rate, read_request, require_key
from seq2seq.serve.detection import detect, source_language
from seq2seq.serve.inputs import InputError, LibreRequest, libre_request, native_request, sentences

if TYPE_CHECKING:
    from seq2seq.inference.text import Plan
    from seq2seq.inference.translator import Translation

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech", "es": "Spanish", "it": "Italian", "nl": "Dutch"}
# How often a waiting request checks whether its client is still there.
DISCONNECT_POLL_S = 0.1
# Distributions whose versions /v1/model reports, where installed.
PACKAGES = ("seq2seq", "torch", "onnxruntime", "sentencepiece", "fastapi", "uvicorn", "pydantic", "prometheus-client")
# LibreTranslate's default for how long its page waits after a key before it translates (ms).
FRONTEND_TIMEOUT_MS = 500
KEYED = [Depends(require_key)]
# The bodies a route reads: JSON, and LibreTranslate's forms (its fields may come in the query string as well).
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
LIBRE_QUERY = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}} for n in ("q", "source", "target", "format", "alternatives")]

router = APIRouter()


@router.get("/", dependencies=KEYED, response_class=HTMLResponse, responses=api.text_answer("text/html", "The translation page", 403))
async def home(state: State) -> Response:
    return Response(state.page, media_type="text/html; charset=utf-8")


@router.get("/health", responses=api.answers(api.Status))
async def health() -> Response:
    return json_response({"status": "alive"})


@router.get("/ready", responses=api.answers(api.Status, 503))
async def is_ready(state: State) -> Response:
    if state.ready.is_set():
        return json_response({"status": "ready"})
    return error_response(503, "the model is warming up", {"Retry-After": "1"})


@router.get(
    "/metrics", dependencies=KEYED, response_class=PlainTextResponse, responses=api.text_answer("text/plain", "Prometheus' text exposition format", 403)
)
async def prometheus(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/languages", dependencies=KEYED, responses=api.answers(api.Languages, 403))
async def languages(state: State) -> Response:
    src, tgt = state.translator.meta.src_lang, state.translator.meta.tgt_lang
    return json_response([{"code": src, "name": LANGUAGE_NAMES.get(src, src), "targets": [tgt]}])


@router.post(
    "/translate",
    openapi_extra={**api.body(api.TranslateRequest, *BODY_TYPES, required=False), "parameters": [*LIBRE_QUERY, api.API_KEY]},
    responses=api.answers(api.TranslateResponse, 400, 403, 413, 415, 429, 501, 503),
)
async def libre_translate(request: Request) -> Response:
    """LibreTranslate's /translate: each q is cut into sentences (seq2seq.inference.text; with format
    html, the text of its markup), every sentence of the request goes to the queue at once, and each
    q's translations are put back with its whitespace and line breaks (or into its markup). Fields
    come from the JSON, form or multipart body or the query string. source auto detects the language
    of all q together, and refuses (400) text in another language than the model's source."""
    state, fields = await read_request(request)
    meta, settings = state.translator.meta, state.settings
    check_rate(request, state, fields)
    req = libre_request(fields, meta.src_lang, meta.tgt_lang, settings.defaults, settings.limits)
    plans = await plan_texts(req.sentences.raw, req.format, meta.src_lang)
    detected = await source_language([s for p in plans for s in p.sentences], meta.src_lang) if req.auto_source else None
    results = await queued_translations(request, state, [clean_line(s) for p in plans for s in p.sentences], req.options)
    if isinstance(results, Response):
        return results
    per_text, start = [], 0
    for p in plans:
        per_text.append(results[start : start + len(p.sentences)])
        start += len(p.sentences)
    return json_response(libre_answer(req, plans, per_text, detected))


@router.post(
    "/detect",
    openapi_extra={**api.body(api.DetectRequest, *BODY_TYPES, required=False), "parameters": [LIBRE_QUERY[0], api.API_KEY]},
    responses=api.answers(api.Detections, 400, 403, 413, 415, 429, 501),
)
async def detect_language(request: Request) -> Response:
    """LibreTranslate's /detect: the likeliest languages of q (a list: read together), best first."""
    state, fields = await read_request(request)
    check_rate(request, state, fields)
    if not fields.get("q"):
        raise InputError(400, "Invalid request: missing q parameter", "q")
    found = await detect(sentences(fields, state.settings.limits).raw)
    # LibreTranslate's answer for text without letters: its first language, at confidence 0.
    return json_response(found or [{"confidence": 0.0, "language": state.translator.meta.src_lang}])


@router.get("/frontend/settings", responses=api.answers(api.FrontendSettings))
async def frontend_settings(state: State) -> Response:
    """LibreTranslate's settings for its page and its clients: limits, keys, file formats, languages."""
    src, tgt = state.translator.meta.src_lang, state.translator.meta.tgt_lang
    formats = file_formats()
    keys = bool(state.settings.api_keys)
    return json_response(
        {
            "charLimit": state.settings.limits.char_limit,
            "frontendTimeout": FRONTEND_TIMEOUT_MS,
            "apiKeys": keys,
            "keyRequired": keys,
            "suggestions": False,
            "filesTranslation": bool(formats),
            "supportedFilesFormat": formats,
            "language": {"source": {"code": src, "name": LANGUAGE_NAMES.get(src, src)}, "target": {"code": tgt, "name": LANGUAGE_NAMES.get(tgt, tgt)}},
        }
    )


@router.post("/suggest", openapi_extra=api.body(api.SuggestRequest, *BODY_TYPES, required=False), responses=api.answers(None, 403))
async def suggest() -> Response:
    """LibreTranslate's /suggest, as it answers with suggestions off (this server keeps none)."""
    return error_response(403, "Suggestions are disabled on this server.")


@router.post(
    "/v1/translate",
    openapi_extra=api.body(api.NativeBody, "application/json"),
    responses=api.answers(api.NativeTranslations, 400, 403, 413, 415, 422, 429, 503),
)
async def native_translate(request: Request) -> Response:
    """Any SearchOptions field; answers one `--output-type json` record per sentence."""
    state, fields = await read_request(request)
    check_rate(request, state, fields)
    req = native_request(fields, state.settings.defaults, state.settings.limits)
    results = await queued_translations(request, state, req.sentences.texts, req.options)
    if isinstance(results, Response):
        return results
    return json_response({"translations": [json_record(i, text, hyps, req.options.nbest) for i, (text, hyps) in enumerate(zip(req.sentences.texts, results))]})


@router.post(
    "/v1/attention", openapi_extra=api.body(api.NativeBody, "application/json"), responses=api.answers(api.AttentionMap, 400, 403, 413, 415, 422, 429, 501, 503)
)
async def attention(request: Request) -> Response:
    """The best translation of one sentence (q, a string) with its attention weights (T, S)."""
    state, fields = await read_request(request)
    translator, settings, batcher = state.translator, state.settings, state.batcher
    if translator.is_exported:
        return error_response(
            501,
            "this server runs an exported model, whose runtime gives no attention weights; "
            "serve the model directory it was exported from (seq2seq-serve --model DIR) to get them",
        )
    check_rate(request, state, fields)
    req = native_request(fields, settings.defaults, settings.limits, one=True)
    text = req.sentences.texts[0]
    try:
        found = await asyncio.wait_for(batcher.call(lambda: translator.attention(text, req.options)), settings.timeout)
    except ValueError as err:  # sampling, a model without attention, a blank or too long sentence
        return error_response(422, str(err))
    except asyncio.TimeoutError:
        return error_response(503, f"the request took longer than {settings.timeout:g} s (--timeout); retry later", {"Retry-After": str(batcher.retry_after())})
    return json_response({"translation": found.text, "source": found.source, "target": found.target, "weights": found.weights})


@router.get("/v1/model", dependencies=KEYED, responses=api.answers(api.ModelInfo, 403))
async def model(state: State) -> Response:
    return json_response(describe(state))


# Texts up to this many characters in all are planned on the event loop: a sentence takes 5 µs, less
# than the hop to a thread and back costs the loop; a 47,000-character text took 3 ms.
PLAN_INLINE_CHARS = 2_000


async def plan_texts(texts: list[str], text_format: str, src_lang: str) -> list[Plan]:
    """Each text's plan (seq2seq.inference.text.plan); in a thread beyond PLAN_INLINE_CHARS: a 1 MiB page takes a while to parse."""
    from seq2seq.inference.text import plan

    def plans() -> list[Plan]:
        return [plan(text, text_format, language=src_lang) for text in texts]

    try:
        return plans() if sum(map(len, texts)) <= PLAN_INLINE_CHARS else await asyncio.to_thread(plans)
    except ImportError as err:
        raise InputError(501, f"format {text_format!r} needs a package this server lacks ({err}); install seq2seq[serve]", "format") from None
    except ValueError as err:
        raise InputError(400, f"q cannot be read as {text_format}: {err}", "q") from None


def file_formats() -> list[str]:
    """The file suffixes /translate_file reads (none where seq2seq.inference.files cannot be imported)."""
    try:
        from seq2seq.inference.files import FILE_FORMATS
    except ImportError:
        return []
    return list(FILE_FORMATS)


async def queued_translations(request: Request, state: ServerState, texts: list[str], options: SearchOptions) -> list | Response:
    """The n-best lists of `texts` from the worker, or the response that ends the request early: the
    queue is full or the deadline passed (503), or the client went away (499)."""
    batcher, settings = state.batcher, state.settings
    if batcher.queued + len(texts) > settings.max_queue:
        return error_response(503, f"the server is busy ({batcher.queued} sentences queued); retry later", {"Retry-After": str(batcher.retry_after())})
    ticket = batcher.submit(texts, options)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            ticket.cancel("deadline")
            return error_response(
                503,
                f"the request took longer than {settings.timeout:g} s (--timeout); the server is busy: retry later",
                {"Retry-After": str(batcher.retry_after())},
            )
        done, _ = await asyncio.wait({ticket.future}, timeout=min(left, DISCONNECT_POLL_S))
        if done:
            return ticket.future.result()
        if await request.is_disconnected():
            ticket.cancel("disconnected")
            return Response(status_code=499)  # nginx's "client closed request": only the access log sees it


def libre_answer(req: LibreRequest, plans: list[Plan], results: list[list[list[Translation]]], detected: dict[str, Any] | None) -> dict[str, Any]:
    """LibreTranslate's answer: one value per field where q was one string, else one list per field.
    results: per q, its sentences' n-best lists. Alternative k of a q joins each sentence's k-th
    hypothesis (its best where it has fewer); a q without a sentence (empty, blank) gives '' and no alternatives.
    detected: the detected source language, where source was auto."""
    # A q without a sentence answers '' in text (LibreTranslate's answer to blank text), its markup in html.
    best = [p.join([one_line(hyps[0].text) for hyps in sentences]) if p.sentences or req.format == "html" else "" for p, sentences in zip(plans, results)]
    body: dict[str, Any] = {"translatedText": best[0] if req.sentences.single else best}
    if req.alternatives:
        others = []
        for p, sentences in zip(plans, results):
            count = min((len(hyps) - 1 for hyps in sentences), default=0)
            others.append([p.join([one_line(hyps[min(k, len(hyps) - 1)].text) for hyps in sentences]) for k in range(1, 1 + min(count, req.alternatives))])
        body["alternatives"] = others[0] if req.sentences.single else others
    if detected is not None:  # source auto: as LibreTranslate, the language of all q, answered for each
        body["detectedLanguage"] = detected if req.sentences.single else [detected] * len(best)
    return body


def describe(state: ServerState) -> dict[str, Any]:
    """What /v1/model answers: languages, the model's facts and scores, defaults, limits, versions."""
    translator, settings = state.translator, state.settings
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
        "versions": {name: v for name in PACKAGES if (v := package_version(name)) is not None},
    }


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # As seq2seq-translate writes JSON (ensure_ascii=False), so /v1/translate's records are its bytes.
    return Response(json.dumps(content, ensure_ascii=False), status_code=status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """LibreTranslate's error shape."""
    return json_response({"error": message}, status, headers)
