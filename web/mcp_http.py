"""``/mcp``: the MCP tools over streamable HTTP inside the API's app, behind the read token like every read route."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from fastapi import HTTPException, Request
from starlette.types import Receive, Scope, Send

from web.dependencies import require_reader
from web.engine import Engine
from web.errors import error_response
from web.mcp_server import build_mcp_server

MCP_PATH = "/mcp"


class McpEndpoint:
    """An ASGI app for ``MCP_PATH``; ``running()`` belongs in the app's lifespan.

    Stateless, with JSON answers: each POST stands alone and the server keeps nothing per client; the tools
    need no session. Only POST is routed: a GET would open a stream for messages this server never sends,
    and the protocol's answer for a server without one is 405. The SDK's DNS rebinding check is on when the
    server listens on loopback (``host``), where a page in the user's browser is the caller to fear.
    """

    methods = ("POST",)

    def __init__(self, engine: Engine, host: str) -> None:
        self._server = build_mcp_server(engine)
        self._app = self._server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True, host=host)

    def running(self) -> AbstractAsyncContextManager[None]:
        return self._server.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            require_reader(Request(scope))
        except HTTPException as exc:
            await error_response(exc.status_code, exc.detail, dict(exc.headers or {}))(scope, receive, send)
            return
        await self._app(scope, receive, send)
