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
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from seq2seq.inference.output import clean_line, json_record, one_line
from seq2seq.options import SearchOptions
from seq2seq.serve.dependencies import Fields, ServerState, State, require_key
from seq2seq.serve.inputs import LibreRequest, NativeBody, libre_request, native_request

if TYPE_CHECKING:
    from seq2seq.inference.text import TextPlan
    from seq2seq.inference.translator import Translation

LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech", "es": "Spanish", "it": "Italian", "nl": "Dutch"}
# How often a waiting request checks whether its client is still there.
DISCONNECT_POLL_S = 0.1
# Distributions whose versions /v1/model reports, where installed.
PACKAGES = ("seq2seq", "torch", "onnxruntime", "sentencepiece", "fastapi", "uvicorn", "pydantic", "prometheus-client")
# The routes read their bodies themselves (JSON or form, see inputs.parse_fields): the native body's
# schema is stated here for the OpenAPI document only.
NATIVE_SCHEMA = {"requestBody": {"content": {"application/json": {"schema": NativeBody.model_json_schema()}}, "required": True}}
KEYED = [Depends(require_key)]

router = APIRouter()


@router.get("/", include_in_schema=False, dependencies=KEYED)
async def home(state: State) -> Response:
    return Response(state.page, media_type="text/html; charset=utf-8")


@router.get("/health")
async def health() -> Response:
    return json_response({"status": "alive"})


@router.get("/ready")
async def is_ready(state: State) -> Response:
    if state.ready.is_set():
        return json_response({"status": "ready"})
    return error_response(503, "the model is warming up", {"Retry-After": "1"})


@router.get("/metrics", dependencies=KEYED)
async def prometheus(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/languages", dependencies=KEYED)
async def languages(state: State) -> Response:
    src, tgt = state.translator.meta.src_lang, state.translator.meta.tgt_lang
    return json_response([{"code": src, "name": LANGUAGE_NAMES.get(src, src), "targets": [tgt]}])


@router.post("/translate")
async def libre_translate(request: Request, state: State, fields: Fields) -> Response:
    """LibreTranslate's /translate: each q is cut into sentences (seq2seq.inference.text), every
    sentence of the request goes to the queue at once, and each q's translations are put back with
    its whitespace and line breaks. Fields come from the JSON or form body or the query string."""
    from seq2seq.inference.text import plan_text

    meta, settings = state.translator.meta, state.settings
    req = libre_request(fields, meta.src_lang, meta.tgt_lang, settings.defaults, settings.limits)
    plans = [plan_text(text, language=meta.src_lang) for text in req.sentences.raw]
    results = await queued_translations(request, state, [clean_line(s) for p in plans for s in p.sentences], req.options)
    if isinstance(results, Response):
        return results
    per_text, start = [], 0
    for p in plans:
        per_text.append(results[start : start + len(p.sentences)])
        start += len(p.sentences)
    return json_response(libre_answer(req, plans, per_text, meta.src_lang))


@router.post("/v1/translate", openapi_extra=NATIVE_SCHEMA)
async def native_translate(request: Request, state: State, fields: Fields) -> Response:
    """Any SearchOptions field; answers one `--output-type json` record per sentence."""
    req = native_request(fields, state.settings.defaults, state.settings.limits)
    results = await queued_translations(request, state, req.sentences.texts, req.options)
    if isinstance(results, Response):
        return results
    return json_response({"translations": [json_record(i, text, hyps, req.options.nbest) for i, (text, hyps) in enumerate(zip(req.sentences.texts, results))]})


@router.post("/v1/attention", openapi_extra=NATIVE_SCHEMA)
async def attention(state: State, fields: Fields) -> Response:
    """The best translation of one sentence (q, a string) with its attention weights (T, S)."""
    translator, settings, batcher = state.translator, state.settings, state.batcher
    if translator.is_exported:
        return error_response(
            501,
            "this server runs an exported model, whose runtime gives no attention weights; "
            "serve the model directory it was exported from (seq2seq-serve --model DIR) to get them",
        )
    req = native_request(fields, settings.defaults, settings.limits, one=True)
    text = req.sentences.texts[0]
    try:
        found = await asyncio.wait_for(batcher.call(lambda: translator.attention(text, req.options)), settings.timeout)
    except ValueError as err:  # sampling, a model without attention, a blank or too long sentence
        return error_response(422, str(err))
    except asyncio.TimeoutError:
        return error_response(503, f"the request took longer than {settings.timeout:g} s (--timeout); retry later", {"Retry-After": str(batcher.retry_after())})
    return json_response({"translation": found.text, "source": found.source, "target": found.target, "weights": found.weights})


@router.get("/v1/model", dependencies=KEYED)
async def model(state: State) -> Response:
    return json_response(describe(state))


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


def libre_answer(req: LibreRequest, plans: list[TextPlan], results: list[list[list[Translation]]], src_lang: str) -> dict[str, Any]:
    """LibreTranslate's answer: one value per field where q was one string, else one list per field.
    results: per q, its sentences' n-best lists. Alternative k of a q joins each sentence's k-th
    hypothesis (its best where it has fewer); a q without a sentence (empty, blank) gives '' and no alternatives."""
    best = [p.join([one_line(hyps[0].text) for hyps in sentences]) if p.sentences else "" for p, sentences in zip(plans, results)]
    body: dict[str, Any] = {"translatedText": best[0] if req.sentences.single else best}
    if req.alternatives:
        others = []
        for p, sentences in zip(plans, results):
            count = min((len(hyps) - 1 for hyps in sentences), default=0)
            others.append([p.join([one_line(hyps[min(k, len(hyps) - 1)].text) for hyps in sentences]) for k in range(1, 1 + min(count, req.alternatives))])
        body["alternatives"] = others[0] if req.sentences.single else others
    if req.auto_source:
        detected = {"confidence": 100.0, "language": src_lang}
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
