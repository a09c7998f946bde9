"""What the routes share: the server's state, the API-key check, and a request's fields.

A route without a body names what it needs as FastAPI dependencies, in its signature (`state:
State`) or among its `dependencies` (`Depends(require_key)`); a route with a body calls
`read_request` first, which checks the key too. None of them reads a header or a query parameter
that FastAPI would put in the OpenAPI document: they read the `Request` itself.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from seq2seq.options import SearchOptions
from seq2seq.serve.batcher import Batcher
from seq2seq.serve.downloads import TTL_S, FileStore
from seq2seq.serve.inputs import InputError, Limits, Upload, api_key_of, parse_fields, read_body
from seq2seq.serve.limits import RateLimiter
from seq2seq.serve.metrics import Metrics
from seq2seq.serve.processes import ModelSource

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translator


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
    req_limit: int = -1  # requests per minute per key or client address (--req-limit; -1: none)
    cors_origins: tuple[str, ...] = ()  # --cors: origins whose pages may call the API (none: no CORS headers)
    file_ttl: float = TTL_S  # seconds a translated file stays downloadable
    workers: int = 1  # inference workers taking batches from the one queue (--workers)
    processes: ModelSource | None = None  # the workers' models, each in a process of its own (--workers-as processes); None: threads sharing the translator


@dataclass(frozen=True)
class ServerState:
    """One application's shared objects, built by `create_app` and kept on `app.state.server`."""

    translator: Translator
    settings: Settings
    batcher: Batcher
    metrics: Metrics
    ready: asyncio.Event  # set once the warm-up translation has run
    page: bytes  # the HTML page at /
    files: FileStore  # the translated files of /translate_file
    limiter: RateLimiter | None  # --req-limit, where set


async def get_state(request: Request) -> ServerState:
    return request.app.state.server


State = Annotated[ServerState, Depends(get_state)]


def check_key(request: Request, api_keys: frozenset[str], body_key: str | None = None) -> None:
    """Refuse (403) a request without one of `api_keys`, sent in the body, as a Bearer token or in the
    query (api_key, as LibreTranslate takes it); with no keys configured every request passes."""
    if not api_keys:
        return
    auth = request.headers.get("authorization", "")
    key = body_key or (auth[7:].strip() if auth.lower().startswith("bearer ") else None) or request.query_params.get("api_key")
    # compare_digest: how long a wrong key takes to refuse says nothing about the right ones.
    if not key or not any(hmac.compare_digest(key.encode(), k.encode()) for k in api_keys):
        raise InputError(403, "missing or invalid API key: send api_key in the body or the query, or an Authorization: Bearer header")


async def require_key(request: Request, state: State) -> None:
    """The key check of the routes without a body."""
    check_key(request, state.settings.api_keys)


async def read_fields(request: Request, state: State) -> dict[str, Any]:
    """The body's fields (JSON object or form, at most --max-body-bytes) and, as LibreTranslate reads
    them, the query string's for the names the body leaves out (a repeated name gives a list), once
    the key (which may be one of them) has been checked. A body the server cannot read is refused
    before the key is looked at."""
    body = await read_body(request, state.settings.limits.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        fields = await parse_multipart(body, content_type)
    else:
        fields = parse_fields(body, content_type) if body.strip() or not request.query_params else {}
    for name in request.query_params:
        if name not in fields:
            values = request.query_params.getlist(name)
            fields[name] = values[0] if len(values) == 1 else values
    check_key(request, state.settings.api_keys, api_key_of(fields))
    return fields


async def read_request(request: Request) -> tuple[ServerState, dict[str, Any]]:
    """A route with a body: the server's state and the request's fields (read_fields). Called by the
    route rather than declared as dependencies: FastAPI's solving of the two took 28 of the 138 µs of
    CPU an empty /translate cost the server in process (docs/logs/2026-12-07-serving-overhead.md)."""
    state: ServerState = request.app.state.server
    return state, await read_fields(request, state)


async def parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """A multipart/form-data body's fields (Starlette's parser, python-multipart): strings, and an `Upload`
    for each file; a repeated name gives a list."""
    from starlette.datastructures import Headers, UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream() -> Any:
        yield body

    try:
        form = await MultiPartParser(Headers({"content-type": content_type}), stream()).parse()
    except (MultiPartException, ValueError) as err:
        raise InputError(400, f"the multipart/form-data body cannot be read ({err}); send a well-formed form with its boundary") from None
    fields: dict[str, Any] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            value = Upload(value.filename or "", await value.read())
        fields[name] = (fields[name] if isinstance(fields[name], list) else [fields[name]]) + [value] if name in fields else value
    await form.close()
    return fields


def check_rate(request: Request, state: ServerState, fields: dict[str, Any]) -> None:
    """--req-limit: 429 with LibreTranslate's "Slowdown" body once this key (or, without one, this client
    address) has spent its requests of the last minute; a list q costs one per entry, as there."""
    if state.limiter is None:
        return
    auth = request.headers.get("authorization", "")
    key = api_key_of(fields) or (auth[7:].strip() if auth.lower().startswith("bearer ") else None)
    who = f"key:{key}" if key else f"address:{request.client.host if request.client else '-'}"
    q = fields.get("q")
    wait = state.limiter.hit(who, len(q) if isinstance(q, list) else 1)
    if wait > 0:
        raise InputError(429, f"Slowdown: {state.limiter.limit} per 1 minute", headers={"Retry-After": state.limiter.retry_after(wait)})
