"""Milvus index URLs: ``milvus://HOST:PORT/NAME?option=value``, parsed and checked once, where they are read.

``URL_OPTIONS`` lists what a URL may set: the vector index type, the writer's lease term, the grace for
replaced rows, and the cluster layout of a new set (``schema.ClusterSettings``). The token comes from
``SEMSEARCH_MILVUS_TOKEN``, never from a URL, which may be logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from search.backends.contract import IndexLocation
from search.backends.milvus.client import TOKEN_ENV, connect
from search.backends.milvus.lease import DEFAULT_LEASE_S
from search.backends.milvus.schema import ClusterSettings, parse_index_type
from search.errors import IndexFormatError

URL_OPTIONS = ("index_type", "lease_seconds", "grace_seconds", "shards", "replicas", "mmap")
# Replaced rows are kept this long for searches that read the state before a commit.
DEFAULT_GRACE_S = 10.0


def parse_url(url: str, backend: str) -> IndexLocation:
    """The index a ``milvus://`` URL names, every option checked; ``IndexFormatError`` says what is wrong."""
    parts = urlsplit(url)
    name = parts.path.strip("/")
    if parts.username or parts.password:
        raise IndexFormatError(f"put no credentials in a milvus URL; set {TOKEN_ENV} instead")
    if not parts.hostname or not name or "/" in name:
        raise IndexFormatError(f"a milvus index URL is milvus://HOST:PORT/NAME, not {url!r}")
    options: dict[str, str | None] = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - set(URL_OPTIONS))
    if unknown:
        raise IndexFormatError(f"unknown milvus URL option {unknown[0]!r}; choose from {', '.join(URL_OPTIONS)}")
    try:
        port = parts.port or 19530
    except ValueError:
        raise IndexFormatError(f"a milvus index URL is milvus://HOST:PORT/NAME, not {url!r}") from None
    location = IndexLocation(Path(name), backend, options | {"uri": f"http://{parts.hostname}:{port}"})
    cluster_of(location)
    try:
        parse_index_type(location.option("index_type"))
    except ValueError as exc:
        raise IndexFormatError(str(exc)) from None
    grace_of(location)
    lease_of(location)
    return location


def connect_to(location: IndexLocation) -> Any:
    return connect(location.option("uri"), location.option("token"))


def cluster_of(location: IndexLocation) -> ClusterSettings:
    try:
        return ClusterSettings.parse(location.option("shards"), location.option("replicas"), location.option("mmap"))
    except ValueError as exc:
        raise IndexFormatError(str(exc)) from None


def grace_of(location: IndexLocation) -> float:
    return _seconds(location, "grace_seconds", DEFAULT_GRACE_S)


def lease_of(location: IndexLocation) -> float:
    return _seconds(location, "lease_seconds", DEFAULT_LEASE_S)


def _seconds(location: IndexLocation, option: str, default: float) -> float:
    text = location.option(option)
    try:
        seconds = default if text is None else float(text)
    except ValueError:
        raise IndexFormatError(f"milvus URL option {option} must be a number of seconds, not {text!r}") from None
    if seconds < 0:
        raise IndexFormatError(f"milvus URL option {option} must not be negative")
    return seconds
