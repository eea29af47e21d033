"""Backends by name: a new engine is one package implementing ``RetrievalBackend`` plus one row here.

An index is named by one value: a folder path is a local index, ``NAME://...`` an index of the backend
registered as ``NAME``, which parses the rest of its own URL (``RetrievalBackend.locate``). Modules are
imported only when their backend is asked for, so the local backend never needs a service's client library.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from search.backends.contract import IndexLocation, RetrievalBackend
from search.errors import UnknownBackend

DEFAULT_BACKEND = "local"
BACKENDS = {
    "local": "search.backends.local.backend:LocalBackend",
    "milvus": "search.backends.milvus.backend:MilvusBackend",
}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

AnyBackend = RetrievalBackend[Any]


def register(name: str, target: str) -> None:
    """Add a backend: ``target`` is ``module:Class``; its indexes are then named ``NAME://...``."""
    BACKENDS[name.lower()] = target


def parse_backend(name: object) -> str:
    """The one rule for a backend's name (``--backend`` / ``SEMSEARCH_BACKEND``, a URL's scheme): a registered one."""
    text = str(name).strip().lower() if name is not None else DEFAULT_BACKEND
    if text not in BACKENDS:
        raise UnknownBackend(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return text


def backend_class(name: str) -> type[AnyBackend]:
    module, _, attribute = BACKENDS[parse_backend(name)].partition(":")
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        raise UnknownBackend(f"backend {name!r} cannot be loaded ({exc}); install the extra: pip install 'semsearch[{name}]'") from None
    cls: type[AnyBackend] = getattr(loaded, attribute)
    return cls


def is_url(index: str | Path) -> bool:
    return isinstance(index, str) and _URL.match(index) is not None


def locate(index: str | Path) -> IndexLocation:
    """The index that ``--index`` names: a URL through the backend of its scheme, anything else a local folder."""
    match = _URL.match(index) if isinstance(index, str) else None
    if match is None:
        return IndexLocation(Path(index))
    return backend_class(match.group(1)).locate(str(index))


def open_backend(location: IndexLocation) -> AnyBackend:
    """The live index at ``location``, opened by the backend it names."""
    return backend_class(location.backend).open(location)
