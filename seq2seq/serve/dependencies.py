"""What the routes share, as FastAPI dependencies: the server's state, the API-key check, and a request's fields.

A route names what it needs in its signature (`state: State`, `fields: Fields`) or among its
`dependencies` (`Depends(require_key)`); none of them reads a header or a query parameter that
FastAPI would put in the OpenAPI document: they read the `Request` itself.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from seq2seq.options import SearchOptions
from seq2seq.serve.batcher import Batcher
from seq2seq.serve.inputs import InputError, Limits, api_key_of, parse_fields, read_body
from seq2seq.serve.metrics import Metrics

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


@dataclass(frozen=True)
class ServerState:
    """One application's shared objects, built by `create_app` and kept on `app.state.server`."""

    translator: Translator
    settings: Settings
    batcher: Batcher
    metrics: Metrics
    ready: asyncio.Event  # set once the warm-up translation has run
    page: bytes  # the HTML page at /


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
    fields = parse_fields(body, request.headers.get("content-type", "")) if body.strip() or not request.query_params else {}
    for name in request.query_params:
        if name not in fields:
            values = request.query_params.getlist(name)
            fields[name] = values[0] if len(values) == 1 else values
    check_key(request, state.settings.api_keys, api_key_of(fields))
    return fields


Fields = Annotated[dict[str, Any], Depends(read_fields)]
