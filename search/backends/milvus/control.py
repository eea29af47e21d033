"""The control collection: small JSON rows by key that every index on a server hangs on.

    live/<index>              the live set of an index and its committed state (generation, rows pending
                              deletion, counters, settings): the row a commit flips and every reader reads
    build/<set>               the state of a set being built, until ``publish`` makes it the live one
    lease/<index>/<holder>    one claim per writer that wants or holds the index (``lease``)
    df/<set>/<term>           how many passages of a set hold a term, by generation (``terms``)

Each row is written by an upsert, which Milvus applies atomically per row: the flip of ``live/<index>`` is
the commit point of the backend. A row's ``scope`` (indexed) groups the rows read or dropped together: an
index's claims, a set's term statistics.

The collection has one shard, so the rows one upsert writes become visible together, and in the order
they were written. Its name carries a version: the first layout had no scope, and indexes written then
are rebuilt (they are not found in this collection, so the next build is a full one).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pymilvus import DataType, MilvusClient

from search.backends.contract import iter_chunks
from search.backends.milvus.schema import READ_LEVEL, VARCHAR_BYTES

CONTROL = "semsearch_control_v2"
KEY_BYTES = 512
# Milvus requires a vector field in every collection; this one is never searched.
_UNUSED_VECTOR = [0.0, 0.0]
_ROWS_PER_UPSERT = 2_000
_KEYS_PER_QUERY = 2_000
# Rows per page when a whole scope is read (Milvus returns at most 16,384 rows a query).
_ROWS_PER_PAGE = 10_000
_ensured: set[int] = set()
# A query iterator first asks the server for its timestamp; milvus-lite has none to give, and pymilvus warns on
# every scan that it uses the client's clock instead (harmless for a scan of committed term rows).
logging.getLogger("pymilvus.orm.iterator").setLevel(logging.ERROR)
_ensured_lock = threading.Lock()


class Control:
    def __init__(self, client: MilvusClient) -> None:
        self.client = client
        with _ensured_lock:
            if id(client) in _ensured:
                return
            if not client.has_collection(CONTROL):
                schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=KEY_BYTES)
                schema.add_field("scope", DataType.VARCHAR, max_length=KEY_BYTES)
                schema.add_field("value", DataType.VARCHAR, max_length=VARCHAR_BYTES)
                schema.add_field("unused", DataType.FLOAT_VECTOR, dim=len(_UNUSED_VECTOR))
                indexes = client.prepare_index_params()
                indexes.add_index("unused", index_type="FLAT", metric_type="L2")
                indexes.add_index("scope", index_type="INVERTED")
                client.create_collection(CONTROL, schema=schema, index_params=indexes, consistency_level=READ_LEVEL, num_shards=1)
            _ensured.add(id(client))

    def get(self, key: str, level: str = READ_LEVEL) -> Any | None:
        return self.rows([key], level=level).get(key)

    def rows(self, keys: Sequence[str] = (), scope: str | None = None, level: str = READ_LEVEL) -> dict[str, Any]:
        """The rows named by ``keys`` and every row of ``scope``, in one query per ``_KEYS_PER_QUERY`` keys."""
        found: dict[str, Any] = {}
        chunks = list(iter_chunks(list(keys), _KEYS_PER_QUERY)) or [[]]
        for number, chunk in enumerate(chunks):
            parts = [f"key in {json.dumps(chunk)}"] if chunk else []
            if scope is not None and number == 0:
                parts.append(f"scope == {json.dumps(scope)}")
            if not parts:
                continue
            rows = self.client.query(CONTROL, filter=" or ".join(parts), output_fields=["key", "value"], consistency_level=level)
            found.update((row["key"], json.loads(row["value"])) for row in rows)
        return found

    def scan(self, scope: str, level: str = READ_LEVEL) -> Iterator[tuple[str, Any]]:
        """Every row of ``scope``, however many, a page of ``_ROWS_PER_PAGE`` per request."""
        pages = self.client.query_iterator(
            CONTROL,
            batch_size=_ROWS_PER_PAGE,
            filter=f"scope == {json.dumps(scope)}",
            output_fields=["key", "value"],
            consistency_level=level,
        )
        try:
            while page := pages.next():
                yield from ((row["key"], json.loads(row["value"])) for row in page)
        finally:
            pages.close()

    def put(self, key: str, value: Any, scope: str = "") -> None:
        self.put_rows([(key, scope, value)])

    def put_rows(self, rows: Iterable[tuple[str, str, Any]]) -> None:
        """Upsert (key, scope, value) rows, in order: the last row lands with or after every other."""
        encoded = []
        for key, scope, value in rows:
            text = json.dumps(value)
            if len(text.encode("utf-8")) > VARCHAR_BYTES:
                raise ValueError(f"control row {key} is over {VARCHAR_BYTES} bytes; commit the change in smaller parts")
            encoded.append({"key": key, "scope": scope, "value": text, "unused": _UNUSED_VECTOR})
        for chunk in iter_chunks(encoded, _ROWS_PER_UPSERT):
            self.client.upsert(CONTROL, chunk)

    def delete(self, key: str) -> None:
        self.client.delete(CONTROL, filter=f"key == {json.dumps(key)}")

    def delete_scope(self, scope: str) -> None:
        self.client.delete(CONTROL, filter=f"scope == {json.dumps(scope)}")
