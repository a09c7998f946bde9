"""The FastAPI application, wired: its shared state, the lifespan (the worker and the warm-up), the
error shape, the access log and metrics middleware, and the routes (seq2seq.serve.routes).

Nothing here answers a request itself: the routes do, and reach the state through the dependencies
of seq2seq.serve.dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from seq2seq.serve.batcher import Batcher
from seq2seq.serve.dependencies import ServerState, Settings
from seq2seq.serve.inputs import InputError
from seq2seq.serve.metrics import Metrics, new_metrics
from seq2seq.serve.routes import error_response, package_version, router

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translator

__all__ = ["Settings", "create_app"]

log = logging.getLogger("seq2seq.serve")
access_log = logging.getLogger("seq2seq.serve.access")

# The paths the request metrics name: the routes'. Any other is counted as "other" (a scanner's
# paths would otherwise make one time series each).
ENDPOINTS = frozenset(route.path for route in router.routes)


def create_app(translator: Translator, settings: Settings) -> FastAPI:
    metrics = new_metrics()
    batcher = Batcher(translator, metrics, max_tokens=settings.max_tokens, max_wait=settings.max_wait, batch_size=settings.batch_size)
    page = (importlib.resources.files("seq2seq.serve") / "page.html").read_bytes()
    app = FastAPI(title="seq2seq-serve", version=package_version("seq2seq"), lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = ServerState(translator, settings, batcher, metrics, asyncio.Event(), page)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(AccessLog, metrics=metrics)
    app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.server
    state.batcher.start()
    task = asyncio.create_task(warm_up(state))
    yield
    # uvicorn has finished every request it accepted before it gets here.
    await task
    state.batcher.stop()


async def warm_up(state: ServerState) -> None:
    """One translation through the worker, then /ready answers 200."""
    translator = state.translator
    await state.batcher.call(lambda: translator.translate(["A man is sleeping."]))
    state.ready.set()
    log.info("ready: %s → %s, model %s", translator.meta.src_lang, translator.meta.tgt_lang, ", ".join(str(d) for d in translator.model_dirs))


async def input_error(request: Request, err: InputError) -> Response:
    return error_response(err.status, err.message)


async def http_error(request: Request, err: HTTPException) -> Response:
    """Starlette's own errors (404, 405) in the error shape of the others."""
    return error_response(err.status_code, str(err.detail), err.headers)


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
            access_log.info(
                '%s:%s "%s %s HTTP/%s" %d %.1f ms', host, port, scope["method"], scope["path"], scope.get("http_version", "1.1"), status, 1000 * seconds
            )
