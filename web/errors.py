"""The one place errors become HTTP responses: always JSON with a ``detail``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from search.errors import (
    DocumentChanged,
    DocumentNotFound,
    IndexFormatError,
    IndexLocked,
    IndexNotFound,
    InvalidQuery,
    PageNotFound,
    SemanticUnavailable,
    SemsearchError,
)

logger = logging.getLogger("semsearch.web")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_STATUS_BY_ERROR: list[tuple[type[SemsearchError], int]] = [
    (InvalidQuery, 422),
    (DocumentNotFound, 404),
    (PageNotFound, 404),
    (DocumentChanged, 409),
    (IndexLocked, 409),
    (IndexNotFound, 503),
    (IndexFormatError, 503),
    (SemanticUnavailable, 503),
    (SemsearchError, 400),
]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SemsearchError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def error_response(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in _STATUS_BY_ERROR if isinstance(exc, kind))
    return error_response(status, str(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", "invalid value"), "type": error.get("type", "value_error")}
        for error in exc.errors()
    ]
    return error_response(422, details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allowed}
    return error_response(exc.status_code, exc.detail, headers)


def _allowed_methods(request: Request) -> str:
    """The methods the router would serve at this path: Starlette's 405 names only the first route's
    (``GET`` for ``/search``, which also takes ``POST``). Mounts are skipped: they match every method."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return ", ".join(
        method for method in _METHODS if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the server log has the details")
