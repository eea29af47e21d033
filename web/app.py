"""``create_app(settings)``: wires routers, middleware and error handling around one ``Engine``."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from search.errors import SemsearchError
from search.settings import Settings, get_settings
from web import api_admin, api_documents, api_metrics, api_search, api_write, pages
from web.engine import Engine
from web.errors import install_error_handlers
from web.jobs import IndexJobs
from web.mcp_http import MCP_PATH, McpEndpoint
from web.metrics import Metrics
from web.middleware import BodyLimit, ObserveRequests, SecurityHeaders
from web.page_images import PageImages

logger = logging.getLogger("semsearch.web")

# uvicorn's h11 parser refuses a request head (request line and headers) over 16 KiB by itself, with a
# plain-text 400 and a reset connection; up to this size the app sees the request and answers in JSON,
# e.g. a 1 MB query string with the API's own 422. Bodies are limited separately (``max_body_bytes``).
MAX_REQUEST_HEAD_BYTES = 4 * 1024 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = Engine(settings.location())
    metrics = Metrics(engine)
    jobs = IndexJobs(settings=settings, engine=engine, metrics=metrics)
    mcp = McpEndpoint(engine, settings.host) if settings.mcp else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            engine.load()
        except SemsearchError as exc:
            logger.error("starting without an index: %s", exc)
        stop_watching = threading.Event()
        watcher = jobs.watch_in_background(stop_watching) if settings.watch else None
        async with mcp.running() if mcp else nullcontext():
            yield
        stop_watching.set()
        if watcher is not None:
            watcher.join(timeout=30)

    # The stock /docs page loads Swagger UI from a CDN; this one serves the same files itself.
    app = FastAPIOffline(
        title="semsearch",
        summary="Semantic search over a folder of documents.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.jobs = jobs
    app.state.metrics = metrics
    app.state.page_images = PageImages(settings.docs)
    install_error_handlers(app)
    routers = (api_search, api_documents, api_write, api_admin, pages) + ((api_metrics,) if settings.metrics else ())
    for module in routers:
        app.include_router(module.router)
    if mcp:
        # Starlette routes to an ASGI app instance as such; its stubs only know request-handler functions.
        app.add_route(MCP_PATH, mcp, methods=list(mcp.methods), include_in_schema=False)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, upload_max_bytes=settings.max_file_bytes)
    app.add_middleware(SecurityHeaders)
    # Outermost, so the 413s of BodyLimit are counted and logged like every other answer.
    app.add_middleware(ObserveRequests, metrics=metrics, log_queries=settings.log_queries)
    return app
