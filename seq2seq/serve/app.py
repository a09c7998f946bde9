"""The FastAPI application, wired: its shared state, the lifespan (the worker, the warm-up, the
files' directory), the error shape, the access log and metrics middleware, CORS (--cors), the
routes (seq2seq.serve.routes, seq2seq.serve.file_routes), the OpenAPI document and its docs page.

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

from seq2seq.serve import file_routes, openapi
from seq2seq.serve.batcher import Batcher
from seq2seq.serve.dependencies import ServerState, Settings
from seq2seq.serve.downloads import FileStore
from seq2seq.serve.inputs import InputError
from seq2seq.serve.limits import RateLimiter
from seq2seq.serve.metrics import Metrics, new_metrics
from seq2seq.serve.routes import error_response, package_version, router

if TYPE_CHECKING:
    from seq2seq.inference.translator import Translator

__all__ = ["Settings", "create_app"]

log = logging.getLogger("seq2seq.serve")
access_log = logging.getLogger("seq2seq.serve.access")

# The paths the request metrics name: the routes'. Any other is counted as "other" (a scanner's
# paths would otherwise make one time series each).
ENDPOINTS = frozenset(route.path for r in (router, file_routes.router) for route in r.routes)
# A path under this prefix is counted as the route's template: each file's name would be a series of its own.
DOWNLOADS = "/download_file/"


def create_app(translator: Translator, settings: Settings) -> FastAPI:
    metrics = new_metrics()
    batcher = Batcher(
        translator,
        metrics,
        max_tokens=settings.max_tokens,
        max_wait=settings.max_wait,
        batch_size=settings.batch_size,
        workers=settings.workers,
        processes=settings.processes,
    )
    page = (importlib.resources.files("seq2seq.serve") / "page.html").read_bytes()
    app = FastAPI(
        title="seq2seq-serve",
        version=package_version("seq2seq"),
        description="LibreTranslate's API (/translate, /detect, /translate_file, /languages, /frontend/settings) and the native /v1 API. "
        'Every error answers {"error": message}.',
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The routes themselves rather than include_router: FastAPI matches an included router through
        # a wrapper it checks on every request, 17 µs of the 105 an empty /translate cost in process.
        routes=[*router.routes, *file_routes.router.routes],
    )
    limiter = RateLimiter(settings.req_limit) if settings.req_limit != -1 else None
    app.state.server = ServerState(translator, settings, batcher, metrics, asyncio.Event(), page, FileStore(settings.file_ttl), limiter)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(AccessLog, metrics=metrics)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        # Outermost: a preflight is answered before the access log (and any key check) sees it.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]
        )
    add_docs(app)
    return app


def add_docs(app: FastAPI) -> None:
    """/openapi.json with the request bodies' schemas, and /docs with Swagger UI's files from this server
    (where the swagger-ui-bundle-v2 package is installed)."""
    document: dict[str, Any] = {}
    generate = app.openapi

    def contract() -> dict[str, Any]:
        if not document:
            document.update(openapi.extend(generate()))
        return document

    app.openapi = contract  # type: ignore[method-assign]
    directory = openapi.swagger_ui_directory()
    if directory is None:
        return
    from starlette.staticfiles import StaticFiles

    app.mount("/docs/static", StaticFiles(directory=directory), name="swagger-ui")
    app.add_api_route("/docs", lambda: openapi.docs_page("/openapi.json"), include_in_schema=False)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.server
    state.batcher.start()
    state.files.open()
    task = asyncio.create_task(warm_up(state))
    try:
        yield
        # uvicorn has finished every request it accepted before it gets here.
        await task
    finally:
        state.batcher.stop()
        state.files.close()


async def warm_up(state: ServerState) -> None:
    """One translation through the worker, then /ready answers 200."""
    translator = state.translator
    await state.batcher.call(lambda: translator.translate(["A man is sleeping."]))
    state.ready.set()
    log.info("ready: %s → %s, model %s", translator.meta.src_lang, translator.meta.tgt_lang, ", ".join(str(d) for d in translator.model_dirs))


async def input_error(request: Request, err: InputError) -> Response:
    return error_response(err.status, err.message, err.headers)


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
            path = scope["path"]
            endpoint = path if path in ENDPOINTS else DOWNLOADS + "{filename}" if path.startswith(DOWNLOADS) else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(seconds)
            host, port = scope.get("client") or ("-", 0)
            access_log.info(
                '%s:%s "%s %s HTTP/%s" %d %.1f ms', host, port, scope["method"], scope["path"], scope.get("http_version", "1.1"), status, 1000 * seconds
            )
