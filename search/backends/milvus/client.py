"""One Milvus client per server and token in a process, every request it sends counted.

The counting is a small proxy around ``MilvusClient``: each method call is one request (``search``,
``query``, ``insert``...), which is what a Milvus proxy sees; pymilvus adds one ``describe_collection`` the
first time a client inserts into a collection (its schema cache), not counted here. ``semsearch bench
scale --backend milvus`` reads the counts (``milvus_requests_per_search``, ``milvus_requests_per_put``) and
the tests read the consistency level every read asked for.

Clients are shared: a writer's lease, its backend and the readers of one process reuse one connection
(and pymilvus's schema cache) instead of opening one per ``open``.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from pymilvus import MilvusClient, MilvusException

from search.errors import SemsearchError

TOKEN_ENV = "SEMSEARCH_MILVUS_TOKEN"
READS = frozenset({"search", "query", "hybrid_search", "query_iterator"})


class CountingClient:
    """A ``MilvusClient`` whose calls are counted by method name, with the consistency level of each read."""

    def __init__(self, client: MilvusClient) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.read_levels: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                if name in READS:
                    self.read_levels[str(kwargs.get("consistency_level", "collection default"))] += 1
            return attribute(*args, **kwargs)

        return counted

    def requests(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def levels(self) -> Counter[str]:
        with self._lock:
            return self.read_levels.copy()


_clients: dict[tuple[str, str], CountingClient] = {}
_clients_lock = threading.Lock()


def connect(uri: str | None, token: str | None = None) -> Any:
    """The process's client for ``uri`` (a ``CountingClient``, typed loosely as the ``MilvusClient`` it stands for)."""
    if not uri:
        raise SemsearchError("the milvus backend needs a server: name the index as milvus://HOST:PORT/NAME")
    secret = token or os.environ.get(TOKEN_ENV, "")
    with _clients_lock:
        client = _clients.get((uri, secret))
        if client is None:
            try:
                client = CountingClient(MilvusClient(uri=uri, token=secret))
            except MilvusException as exc:
                raise SemsearchError(f"cannot reach Milvus at {uri} ({exc.message})") from None
            _clients[(uri, secret)] = client
        return client


def requests_sent() -> int:
    """Requests sent by every client of this process so far."""
    with _clients_lock:
        clients = list(_clients.values())
    return sum(client.requests() for client in clients)


def read_levels() -> Counter[str]:
    """How many reads of this process asked for each consistency level."""
    with _clients_lock:
        clients = list(_clients.values())
    total: Counter[str] = Counter()
    for client in clients:
        total.update(client.levels())
    return total
