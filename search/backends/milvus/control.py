"""The control collection: small JSON rows by key that every index on a server hangs on.

    live/<index>    which set of collections is the live index (the pointer ``publish`` flips)
    state/<set>     a set's settings and committed state (generation, pending deletes, counters)
    lease/<index>   the writer's lease

Each row is written by one single-row upsert, which Milvus applies atomically: these writes are the
commit points of the backend. Reads are Strong, so a reader sees every write acknowledged before it.
"""

from __future__ import annotations

import json
from typing import Any

from pymilvus import DataType, MilvusClient

from search.backends.milvus.schema import CONSISTENCY, VARCHAR_BYTES

CONTROL = "semsearch_control"
# Milvus requires a vector field in every collection; this one is never searched.
_UNUSED_VECTOR = [0.0, 0.0]


class Control:
    def __init__(self, client: MilvusClient) -> None:
        self.client = client
        if not client.has_collection(CONTROL):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
            schema.add_field("value", DataType.VARCHAR, max_length=VARCHAR_BYTES)
            schema.add_field("unused", DataType.FLOAT_VECTOR, dim=len(_UNUSED_VECTOR))
            indexes = client.prepare_index_params()
            indexes.add_index("unused", index_type="FLAT", metric_type="L2")
            client.create_collection(CONTROL, schema=schema, index_params=indexes, consistency_level=CONSISTENCY)

    def get(self, key: str) -> dict[str, Any] | None:
        rows = self.client.query(CONTROL, filter=f"key == {json.dumps(key)}", output_fields=["value"])
        return json.loads(rows[0]["value"]) if rows else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value)
        if len(text.encode("utf-8")) > VARCHAR_BYTES:
            raise ValueError(f"control row {key} is over {VARCHAR_BYTES} bytes; commit the change in smaller parts")
        self.client.upsert(CONTROL, [{"key": key, "value": text, "unused": _UNUSED_VECTOR}])

    def delete(self, key: str) -> None:
        self.client.delete(CONTROL, filter=f"key == {json.dumps(key)}")
