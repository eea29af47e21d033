"""Shared ``Depends`` callables: the live searcher, settings, and the admin and search token checks."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from pydantic import SecretStr

from search.ranking.searcher import Searcher
from search.settings import Settings
from web.engine import Engine
from web.jobs import IndexJobs
from web.page_images import PageImages


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_jobs(request: Request) -> IndexJobs:
    return request.app.state.jobs


def get_page_images(request: Request) -> PageImages:
    return request.app.state.page_images


def current_searcher(request: Request) -> Searcher:
    """The searcher this request will use to the end, even if a rebuild swaps in another meanwhile."""
    return get_engine(request).current()


def require_admin(request: Request) -> None:
    """Bearer-token check in constant time; with no token configured, write endpoints are off."""
    token = get_settings_dep(request).admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(status_code=403, detail="index updates over HTTP are disabled; set SEMSEARCH_ADMIN_TOKEN to enable them")
    if not _bearer_matches(request, token):
        raise HTTPException(status_code=401, detail="a valid admin token is required", headers=_CHALLENGE)


def require_reader(request: Request) -> None:
    """With ``SEMSEARCH_SEARCH_TOKEN`` set, reads need it as a bearer token: 401 without one, 403 with another.

    Unlike the admin token, no token means open: a search server on a private network needs none.
    """
    token = get_settings_dep(request).search_token
    if token is None or not token.get_secret_value():
        return
    if _bearer(request) is None:
        raise HTTPException(status_code=401, detail="a search token is required", headers=_CHALLENGE)
    if not _bearer_matches(request, token):
        raise HTTPException(status_code=403, detail="the search token is not valid")


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without one."""
    scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
    return supplied if scheme.lower() == "bearer" and supplied else None


def _bearer_matches(request: Request, token: SecretStr) -> bool:
    """Compared in constant time, so the answer's timing says nothing about how much of a guess was right."""
    supplied = _bearer(request)
    return supplied is not None and hmac.compare_digest(supplied.encode(), token.get_secret_value().encode())
