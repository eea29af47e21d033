"""Pure ASGI middleware: request body limits, security headers, and the access log and request metrics."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.metrics import Metrics

access_log = logging.getLogger("semsearch.access")

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# Swagger UI and ReDoc bootstrap with an inline script; only their two pages allow one.
_DOCS_POLICY = PAGE_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
_DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = _DOCS_POLICY if scope["path"] in _DOCS_PATHS else PAGE_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", policy.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


UPLOAD_PATH_PREFIX = "/documents/"


class BodyLimit:
    """Reads at most the allowed body size; anything larger is answered 413 before the app sees it.

    Uploads (``PUT /documents/...``) carry whole documents, so they get ``upload_max_bytes`` (the
    indexer's per-file limit) while every other request keeps the small ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes

    def _limit(self, scope: Scope) -> int:
        is_upload = scope["method"] == "PUT" and scope["path"].startswith(UPLOAD_PATH_PREFIX)
        return self.upload_max_bytes if is_upload else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _too_large(send, limit)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    payload = json.dumps({"detail": f"request body is larger than the {limit}-byte limit"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ObserveRequests:
    """Counts, times and logs every HTTP request: one ``semsearch.access`` line and the request metrics.

    The route template (``/documents/{doc_id:path}``), not the raw path, labels the metrics, so their
    number stays bounded whatever clients ask for. Routes add fields to the log line through
    ``request.state.log_fields`` (a search: mode, results and the query, kept only if ``log_queries``).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, log_queries: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.log_queries = log_queries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        state = scope.setdefault("state", {})

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(method=scope["method"], route=route, status=str(status)).inc()
            self.metrics.request_seconds.labels(route=route).observe(seconds)
            self._log(scope, status, seconds, state.get("log_fields", {}))

    def _log(self, scope: Scope, status: int, seconds: float, extra: dict) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        fields = {
            "event": "request",
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "took_ms": round(seconds * 1000, 2),
        }
        fields.update((name, value) for name, value in extra.items() if name != "query" or self.log_queries)
        access_log.info("%s %s %s %.1f ms", scope["method"], scope["path"], status, seconds * 1000, extra={"fields": fields})
