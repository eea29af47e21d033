"""Backends by name: a new engine is one module implementing ``RetrievalBackend`` plus one row here.

Modules are imported only when their backend is asked for, so the local backend never needs a
service's client library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from search.backends.contract import IndexLocation, RetrievalBackend
from search.errors import IndexFormatError, UnknownBackend

if TYPE_CHECKING:
    from search.settings import Settings

DEFAULT_BACKEND = "local"
BACKENDS = {
    "local": "search.backends.local.backend:LocalBackend",
    "milvus": "search.backends.milvus.backend:MilvusBackend",
}


def parse_backend(name: object) -> str:
    """The one rule for ``--backend`` / ``SEMSEARCH_BACKEND``: a registered name."""
    text = str(name).strip().lower() if name is not None else DEFAULT_BACKEND
    if text not in BACKENDS:
        raise UnknownBackend(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return text


def backend_class(name: str) -> type[RetrievalBackend]:
    module, _, attribute = BACKENDS[parse_backend(name)].partition(":")
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        raise UnknownBackend(f"backend {name!r} cannot be loaded ({exc}); install the extra: pip install 'semsearch[{name}]'") from None
    cls: type[RetrievalBackend] = getattr(loaded, attribute)
    return cls


def open_backend(location: IndexLocation) -> RetrievalBackend:
    """The live index at ``location``, opened by the backend it names; a folder holding an index of the default
    backend is not opened as another backend's, whose index of the same name would be a different one."""
    if location.backend != DEFAULT_BACKEND and backend_class(DEFAULT_BACKEND).exists(location):
        raise IndexFormatError(
            f"index at {location.path} was built with the {DEFAULT_BACKEND!r} backend, not {location.backend!r}; "
            f"open it with --backend {DEFAULT_BACKEND}, or remove the folder to use the {location.backend!r} index of that name"
        )
    return backend_class(location.backend).open(location)


def index_location(settings: Settings) -> IndexLocation:
    """Where the configured index lives, with the options its backend reads."""
    token = settings.milvus_token.get_secret_value() if settings.milvus_token is not None else None
    return IndexLocation(settings.index, settings.backend, {"milvus_uri": settings.milvus_uri, "milvus_token": token})
