"""Shared ``Depends`` callables: the live searcher, settings and the admin check."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from search.searcher import Searcher
from search.settings import Settings
from web.engine import Engine
from web.jobs import IndexJobs


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_jobs(request: Request) -> IndexJobs:
    return request.app.state.jobs


def current_searcher(request: Request) -> Searcher:
    """The searcher this request will use to the end, even if a rebuild swaps in another meanwhile."""
    engine = get_engine(request)
    searcher = engine.searcher
    if searcher is None:
        raise HTTPException(status_code=503, detail=f"no index is loaded: {engine.unavailable_reason}")
    return searcher


def require_admin(request: Request) -> None:
    """Bearer-token check in constant time; with no token configured, write endpoints are off."""
    token = get_settings_dep(request).admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(status_code=403, detail="index updates over HTTP are disabled; set SEMSEARCH_ADMIN_TOKEN to enable them")
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.encode(), token.get_secret_value().encode()):
        raise HTTPException(
            status_code=401, detail="a valid admin token is required", headers={"WWW-Authenticate": "Bearer"}
        )
